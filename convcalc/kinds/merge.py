"""Layers that read two or more inputs: ``add`` (element-wise sum), ``mul``
(element-wise product) and ``concat`` (joined along the channel axis, spatial sizes
equal).

``add`` and ``mul`` broadcast as NumPy does, on the shapes without the batch axis,
aligned at the last axis: axis by axis from the last, the sizes must be equal or one of
them 1, and the output takes the larger (``(C, 1, 1) × (C, H, W) → (C, H, W)``,
squeeze-and-excitation; a missing leading axis counts as 1).  A flat ``(F,)`` input
meeting a feature map therefore lines up with its *last* spatial axis, not with the
channels: that is a warning when ``F > 1``.  No parameters, no MACs.

The receptive field is the union of the paths' fields, output by output; a size-1 axis
broadcast to ``n`` positions gives its one field to each of them (exact, see
:func:`~convcalc.receptive.merge_fields`).  Paths whose fields are not aligned
(different jumps, or centres that differ output by output) are a warning; a path that
sees at every output everything the others see anywhere (a gate pooled from the whole
map, a group norm's output) carries no position and is never misaligned.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from ..axes import AXIS_NAMES
from ..receptive import ReceptiveField
from ..spec import Add, Concat, Mul
from .base import Context, Cost, Kind, Outcome, Shape, State, size_of


def broadcast_shapes(shapes: Sequence[Shape]) -> Shape | None:
    """NumPy's broadcast of ``shapes`` aligned at their last axis, or ``None`` when they
    do not broadcast.

    >>> broadcast_shapes([(8, 1, 1), (8, 5, 5)]), broadcast_shapes([(1,), (3, 4)])
    ((8, 5, 5), (3, 4))
    >>> broadcast_shapes([(4, 6, 6), (4, 8, 8)]) is None
    True
    """
    rank = max(len(shape) for shape in shapes)
    out = []
    for axis in range(rank):
        sizes = {shape[axis - rank + len(shape)] for shape in shapes
                 if axis - rank + len(shape) >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _axis_label(axis: int, rank: int) -> str:
    """``"C"`` for axis 0 of a shape of ``rank`` axes, else its spatial axis name."""
    if axis == 0:
        return "C" if rank > 1 else "F"
    return AXIS_NAMES[rank - 1][axis - 1]


def clash(shapes: Sequence[Shape]) -> str:
    """Where shapes that do not broadcast first disagree, counting from the last axis.

    >>> clash([(4, 6, 6), (4, 8, 8)]), clash([(5,), (4, 3, 3)])
    ('W is 6 and 8', 'W is 5 and 3')
    """
    rank = max(len(shape) for shape in shapes)
    for axis in range(rank - 1, -1, -1):
        sizes = [shape[axis - rank + len(shape)] for shape in shapes
                 if axis - rank + len(shape) >= 0]
        distinct = list(dict.fromkeys(n for n in sizes if n != 1))
        if len(distinct) > 1:
            return f"{_axis_label(axis, rank)} is {' and '.join(map(str, distinct))}"
    return "they broadcast"


class MergeKind(Kind):
    """Base of the merges: the inputs' fields joined, misalignment reported."""

    min_inputs = 2
    max_inputs = None

    @staticmethod
    def listed(layer: Any, inputs: tuple[State, ...]) -> str:
        """``"conv2 [8, 4, 4], input [4, 8, 8]"``: each input's name and shape."""
        return ", ".join(f"{name} {list(x.shape)}"
                         for name, x in zip(layer.inputs or [], inputs))

    @staticmethod
    def field(layer: Any, inputs: tuple[State, ...], ctx: Context, out: Shape,
              broadcast: Sequence[Sequence[int]] = ()) -> ReceptiveField:
        fields = [x.field for x in inputs]
        field, misaligned = ReceptiveField.merge(fields, out[1:], broadcast)
        if misaligned:
            # the fields' axes are the network input's (a flat output keeps them)
            names = AXIS_NAMES[len(fields[0].axes or ())]
            offsets = ReceptiveField.centre_offsets(fields, out[1:], broadcast, misaligned)
            jumps = [sorted({f.axes[a].jump for f in fields}, reverse=True)  # type: ignore[index]
                     for a in misaligned]
            where = f"misaligned along {', '.join(names[a] for a in misaligned)}: " + \
                _offsets_text([names[a] for a in misaligned], offsets, jumps)
            details = {"axes": [names[a] for a in misaligned],
                       "offsets": [str(offset) for offset, _ in offsets]}
            sources = ", ".join(layer.inputs or [])
            if layer.accept_misalignment:
                ctx.note(f"the receptive fields of {sources} are {where} (declared: "
                         "accept_misalignment: true)", "accept_misalignment", **details)
            else:
                ctx.warn(f"the receptive fields of {sources} are {where}, so one output "
                         "combines features of different places of the input",
                         "inputs", fixes=[{"option": "accept_misalignment", "value": True}],
                         **details)
        return field


def pixels(value: Fraction) -> str:
    """A number of pixels as a person writes it: ``½``, ``1½``, ``4``, ``1⅔``, ``12/7``.

    >>> [pixels(Fraction(n, d)) for n, d in ((1, 2), (3, 2), (4, 1), (5, 3), (12, 7))]
    ['½', '1½', '4', '1⅔', '12/7']
    """
    whole, part = divmod(value, 1)
    if not part:
        return str(whole)
    glyph = _GLYPHS.get(part)
    if glyph is None:
        return str(value)
    return f"{whole}{glyph}" if whole else glyph


_GLYPHS = {Fraction(1, 2): "½", Fraction(1, 4): "¼", Fraction(3, 4): "¾",
           Fraction(1, 3): "⅓", Fraction(2, 3): "⅔"}


def _offsets_text(axes: list[str], offsets: list[tuple[Fraction, bool]],
                  jumps: list[list[Any]]) -> str:
    """``their centres differ by ½ input pixel``: "up to" where it changes from output
    to output, in pixels of the layer's own resolution too when its jump is not 1,
    different jumps named; per axis when the axes differ.

    >>> _offsets_text(["H", "W"], [(Fraction(1, 2), True)] * 2, [[1]] * 2)
    'their centres differ by ½ input pixel'
    >>> _offsets_text(["H", "W"], [(Fraction(4), True), (Fraction(2), True)], [[8]] * 2)
    'their centres differ by 4 input pixels (½ pixel of this layer) along H; 2 input pixels (¼ pixel of this layer) along W'
    >>> _offsets_text(["L"], [(Fraction(5, 2), False)], [[2, 1]])
    'their centres differ by up to 2½ input pixels (their jumps differ: 2 and 1)'
    """
    def amount(value: Fraction, noun: str) -> str:
        return f"{pixels(value)} {noun}{'' if value <= 1 else 's'}"

    groups: dict[tuple[Fraction, bool, tuple[Any, ...]], list[str]] = {}
    for axis, (offset, even), axis_jumps in zip(axes, offsets, jumps):
        groups.setdefault((offset, even, tuple(axis_jumps)), []).append(axis)
    parts = []
    for (offset, even, jump), names in groups.items():
        text = ("" if even else "up to ") + amount(offset, "input pixel")
        if len(jump) == 1 and jump[0] not in (0, 1):
            text += f" ({amount(offset / Fraction(jump[0]), 'pixel')} of this layer)"
        if len(groups) > 1:
            text += f" along {', '.join(names)}"
        if len(jump) > 1:
            text += f" (their jumps differ: {' and '.join(pixels(Fraction(j)) for j in jump)})"
        parts.append(text)
    return "their centres differ by " + "; ".join(parts)


class BroadcastKind(MergeKind):
    """Base of ``add`` and ``mul``: the inputs broadcast to one shape (module docstring)."""

    def mismatch(self, layer: Any, inputs: tuple[State, ...]) -> str:
        shapes = [x.shape for x in inputs]
        return (f"{layer.type} needs inputs whose shapes broadcast (sizes equal, or 1, axis "
                f"by axis from the last), but got {self.listed(layer, inputs)}: "
                f"{clash(shapes)}")

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        out = broadcast_shapes([x.shape for x in inputs])
        if out is None:
            raise ctx.fatal(self.mismatch(layer, inputs), "inputs")
        return Outcome(out, self.broadcast_field(layer, inputs, ctx, out))

    def broadcast_field(self, layer: Any, inputs: tuple[State, ...], ctx: Context,
                        out: Shape) -> ReceptiveField:
        """The union field, each input's broadcast axes named; a flat vector of more
        than one value lined up with a spatial axis is a warning, and the field is not
        tracked then (a flat vector's field is the union of its values', not each
        value's)."""
        spatial = len(out) - 1
        broadcast: list[tuple[int, ...]] = []
        for name, x in zip(layer.inputs or [], inputs):
            if len(x.shape) == len(out):
                broadcast.append(tuple(a for a in range(spatial)
                                       if x.shape[a + 1] == 1 and out[a + 1] > 1))
            elif size_of(x.shape) == 1:
                broadcast.append(tuple(range(spatial)))
            else:
                gate = "[C" + ", 1" * spatial + "]"
                ctx.warn(f"{name} {list(x.shape)} is a flat vector: broadcasting lines it up "
                         f"with the last axis ({_axis_label(len(out) - 1, len(out))} of "
                         f"{list(out)}), not with the channels; for a per-channel factor "
                         f"give it the shape {gate} (adaptive_avgpool with output 1 instead "
                         "of a global pool)", "inputs")
                return ReceptiveField(None)
        return self.field(layer, inputs, ctx, out, broadcast)

    def cost(self, layer: Any, row: Any) -> Cost:
        raise NotImplementedError


class AddKind(BroadcastKind):
    models = (Add,)

    def mismatch(self, layer: Any, inputs: tuple[State, ...]) -> str:
        message = f"add needs inputs of one shape, but got {self.listed(layer, inputs)}"
        if len({len(x.shape) for x in inputs}) == 1:   # the message add always had
            return message
        return (f"{message} (broadcasting lines shapes up at their last axis: "
                f"{clash([x.shape for x in inputs])})")

    def cost(self, layer: Add, row: Any) -> Cost:
        """An input of the output's shape gets ``dy`` itself; a broadcast one the sum of
        ``dy`` over its broadcast axes, a new array of its own size (all are returned
        together)."""
        out = row.output_shape
        return Cost(transient=sum(size_of(shape) for shape in row.input_shapes
                                  if shape != out))


class MulKind(BroadcastKind):
    models = (Mul,)

    def cost(self, layer: Mul, row: Any) -> Cost:
        """Backward, input by input in order: ``dy`` times the other inputs, an
        output-sized product that is the input's gradient — or, for a broadcast input,
        is summed over its broadcast axes into one of the input's size, while the
        gradients made before it are held; all are returned together."""
        out = size_of(row.output_shape)
        held = peak = 0
        for shape in row.input_shapes:
            if shape != row.output_shape:
                peak = max(peak, held + out)
            held += size_of(shape)
            peak = max(peak, held)
        return Cost(transient=peak)


class ConcatKind(MergeKind):
    models = (Concat,)

    def rule(self, layer: Concat, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        if len({x.shape[1:] for x in inputs}) > 1:
            raise ctx.fatal(f"concat joins channels and needs equal spatial sizes, but got "
                            f"{self.listed(layer, inputs)}", "inputs")
        channels = sum(x.shape[0] for x in inputs)
        out = (channels, *inputs[0].shape[1:])
        return Outcome(out, self.field(layer, inputs, ctx, out))

    def cost(self, layer: Concat, row: Any) -> Cost:
        """The output only (counted with the activations); gradients are views of dy."""
        return Cost()
