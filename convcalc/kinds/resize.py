"""Layers that change the spatial sizes without weights: ``upsample``, ``pixel_shuffle``,
``pixel_unshuffle``, ``pad`` and ``crop``.  No parameters, no MACs; the channels are
kept (the shuffles trade them for positions).

Shapes, per spatial axis of input size ``n`` (``d`` spatial axes):

- ``upsample``: ``(C, *n) → (C, *out)``, ``out = floor(n·scale)`` (as PyTorch: of
  the product in doubles), ``size``, or the reference's size
  (``inputs: [x, ref]``).  Source positions: ``nearest`` ``floor(dst·n/out)``;
  ``linear`` and ``cubic`` ``src = (dst + ½)·n/out − ½`` (linear: raised to 0 where
  negative), or with ``align_corners`` ``src = dst·(n − 1)/(out − 1)``;
- ``pixel_shuffle``: ``(C·r^d, *n) → (C, *(n·r))``; ``pixel_unshuffle``:
  ``(C, *n) → (C·r^d, *(n/r))``;
- ``pad``: ``(C, *n) → (C, *(n + pb + pa))``;
- ``crop``: ``(C, *n) → (C, *out)``, ``out ≤ n``, at offset ``floor((n − out)/2)``
  (``center``) or 0 (``start``).

Receptive fields follow every layer's reads exactly (:meth:`Field1D.through_reads`), in
unbounded input coordinates: a position outside the input — a padded position, or one a
resize reads past the edge, which the engine clamps to the edge — counts as outside,
the convention convolutions use.  So a pad is a window of 1 starting ``pb`` before the
input, a crop one starting ``offset`` inside it, and interpolation taps whose weight is
exactly zero (a source that falls on a sample) are left out.

>>> import convcalc
>>> report = convcalc.analyze({"input": [1, 4], "layers": [
...     {"type": "upsample", "scale": 2, "mode": "linear"}]})
>>> field = report.layers[0].receptive_field.axes[0]
>>> report.output_shape, [field.edges(o) for o in range(4)]
((1, 8), [(-1, 0), (0, 1), (0, 1), (1, 2)])
"""

from __future__ import annotations

from fractions import Fraction
from math import floor, gcd, prod
from typing import Any, Callable, Sequence

from ..axes import AxisCountError, axis_names, per_axis, resolve_padding
from ..engine_rules import RESIZE_TABLE
from ..spec import Crop, Pad, PixelShuffle, PixelUnshuffle, Upsample
from .base import Context, Cost, Kind, Outcome, Shape, State, size_of, spatial

Reads = Callable[[int], Sequence[int]]

#: PyTorch's cubic convolution constant, exactly.
CUBIC_A = Fraction(-3, 4)


# --- targets ---------------------------------------------------------------------------------


def _reference(ctx: Context, layer: Any, x: State, inputs: tuple[State, ...]) -> Shape | None:
    """The reference's spatial sizes (``inputs: [x, ref]``), or ``None`` without one."""
    if len(inputs) < 2:
        return None
    ref = inputs[1]
    names = layer.inputs or ["x", "the reference"]
    if len(ref.shape) < 2:
        raise ctx.fatal(f"takes the spatial size of {names[1]}, but that is a flat vector "
                        f"{list(ref.shape)}", "inputs")
    if len(ref.shape) != len(x.shape):
        raise ctx.fatal(f"{names[1]} {list(ref.shape)} has {len(ref.shape) - 1} spatial "
                        f"axes but {names[0]} {list(x.shape)} has {len(x.shape) - 1}: the "
                        "reference must have as many", "inputs")
    return ref.shape[1:]


def _per_axis(ctx: Context, value: Any, dims: int, option: str) -> tuple[Any, ...]:
    """One entry per axis (a single number for every axis), else fatal naming ``option``."""
    if isinstance(value, float):
        return (value,) * dims
    try:
        return per_axis(value, dims, option)
    except AxisCountError as error:
        raise ctx.fatal(str(error), option) from None


def scaled_size(n: int, scale: float) -> int:
    """``floor(n·scale)`` as PyTorch's ``F.interpolate(scale_factor=…)`` computes it: the
    product of doubles, then the floor.  IEEE multiplication is the exact product
    correctly rounded, which is what converting the exact product to a float does, so
    this is exact arithmetic on PyTorch's definition.

    >>> scaled_size(3, 1.5), scaled_size(10, 2.5), scaled_size(10, 0.3), scaled_size(7, 1 / 7)
    (4, 25, 3, 1)

    (``0.3`` is stored as 0.29999999999999998889…, so ``10 × 0.3`` is just under 3, but
    its double is 3.0000000000000004: PyTorch outputs 3, and so does the calculator.)
    """
    return floor(float(n * Fraction(scale)))


def _scaled_sizes(ctx: Context, sizes: Shape, scale: Any) -> Shape:
    """``floor(n·scale)`` per axis (:func:`scaled_size`); an empty axis is fatal (each
    is reported)."""
    scales = _per_axis(ctx, scale, len(sizes), "scale")
    out = []
    for axis, n, s in zip(axis_names(len(sizes)), sizes, scales):
        size = scaled_size(n, s)
        if size < 1:
            ctx.fail(f"{axis}: floor({n} × {s}) = 0 leaves no output position: use a "
                     "larger scale, or give size", "scale", axis=axis)
        out.append(size)
    ctx.stop()
    return tuple(out)


# --- upsample --------------------------------------------------------------------------------


def cubic_weights(t: Fraction) -> tuple[Fraction, ...]:
    """PyTorch's cubic convolution weights of taps ``i0 − 1 … i0 + 2`` at fraction
    ``t = src − i0`` (``A = −3/4``), exactly; they sum to 1.

    >>> cubic_weights(Fraction(0)), sum(cubic_weights(Fraction(1, 4)))
    ((Fraction(0, 1), Fraction(1, 1), Fraction(0, 1), Fraction(0, 1)), Fraction(1, 1))
    """
    a = CUBIC_A

    def near(x: Fraction) -> Fraction:           # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: Fraction) -> Fraction:            # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def source_position(dst: int, n_in: int, n_out: int, align_corners: bool) -> Fraction:
    """Where output ``dst`` samples the input, unclamped: ``dst·(n_in − 1)/(n_out − 1)``
    with ``align_corners`` (0 for a single output), else ``(dst + ½)·n_in/n_out − ½``.

    >>> source_position(0, 4, 8, False), source_position(3, 4, 7, True)
    (Fraction(-1, 4), Fraction(3, 2))
    """
    if align_corners:
        return Fraction(dst * (n_in - 1), n_out - 1) if n_out > 1 else Fraction(0)
    return Fraction((2 * dst + 1) * n_in - n_out, 2 * n_out)


def resize_reads(n_in: int, n_out: int, mode: str, align_corners: bool
                 ) -> tuple[Reads, int, int]:
    """Along one axis resized from ``n_in`` to ``n_out``: ``(reads, period, step)`` for
    :meth:`Field1D.through_reads` — the input positions each output reads with a
    nonzero weight, in unbounded coordinates (a tap past the edge, which the engine
    clamps, is outside the input), and how they repeat: ``reads(o + period) = reads(o)
    + step``.

    >>> reads, period, step = resize_reads(2, 4, "linear", False)
    >>> [list(reads(o)) for o in range(4)], period, step
    ([[-1, 0], [0, 1], [0, 1], [1, 2]], 2, 1)
    >>> reads, period, step = resize_reads(3, 6, "cubic", True)   # src = 2·dst/5
    >>> [list(reads(o)) for o in (0, 1)], period, step
    ([[0], [-1, 0, 1, 2]], 5, 2)
    """
    if align_corners:
        if n_out == 1:
            period, step = 1, 0
        else:
            common = gcd(n_in - 1, n_out - 1)
            period, step = (n_out - 1) // common, (n_in - 1) // common
    else:
        common = gcd(n_in, n_out)
        period, step = n_out // common, n_in // common
    if mode == "nearest":
        return (lambda o: [o * n_in // n_out]), period, step

    def reads(o: int) -> list[int]:
        src = source_position(o, n_in, n_out, align_corners)
        first = floor(src)
        t = src - first
        weights = (1 - t, t) if mode == "linear" else cubic_weights(t)
        start = first if mode == "linear" else first - 1
        return [start + k for k, w in enumerate(weights) if w != 0]

    return reads, period, step


class UpsampleKind(Kind):
    """``upsample``: see the module docstring.  With ``scale`` the output size is
    ``floor(n·scale)`` of the product in doubles, as PyTorch computes it (``10 × 0.3``
    is 3).  The source positions use ``n_in/n_out`` whether
    ``scale`` or ``size`` set the output (PyTorch's ``scale_factor`` uses ``1/scale``).

    ``nearest`` is ``floor(dst·n_in/n_out)`` exactly.  PyTorch's ``nearest`` (with
    ``size``) computes ``floorf(dst·(float)(n_in/n_out))`` in single precision — in
    float32, and in float64 for 2-D inputs — which falls one short where ``dst·n_in/n_out``
    is whole and the rounded ratio lies below it: 2 → 82 (output 41 reads 0, not 1),
    26 → 22 (output 11 reads 12, not 13); of the sizes ``n_in, n_out ≤ 300``, 1,722 of
    the 90,000 pairs differ at some position in float32 and 536 in 2-D float64 (1-D and
    3-D float64, and every ``n_out`` equal to ``n_in`` or ``2·n_in``, agree)."""

    models = (Upsample,)
    min_inputs, max_inputs = 1, 2

    def rule(self, layer: Upsample, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        x = inputs[0]
        sizes = spatial(ctx, x.shape)
        out = _reference(ctx, layer, x, inputs)
        if out is None:
            out = (_scaled_sizes(ctx, sizes, layer.scale) if layer.scale is not None
                   else _per_axis(ctx, layer.size, len(sizes), "size"))
        field = x.field.through_reads([resize_reads(n, m, layer.mode, layer.align_corners)
                                       for n, m in zip(sizes, out)])
        return Outcome((x.shape[0], *out), field)

    def cost(self, layer: Upsample, row: Any) -> Cost:
        """The engine resizes one axis after the other (axes that keep their size are
        skipped), each step a fresh array (:func:`_resize_transient`); its tables of
        taps are computed for at most :data:`~convcalc.engine_rules.RESIZE_TABLE` output
        positions at a time (a few hundred KiB at most, not per example: not counted)."""
        return Cost(transient=_resize_transient(row, layer.mode != "nearest"))


def _resize_steps(row: Any) -> list[tuple[int, int, int]]:
    """Per changed axis, in the engine's order: ``(values before, values after, input
    size along the axis)`` per example."""
    shape = list(row.input_shapes[0])
    steps = []
    for axis, m in enumerate(row.output_shape[1:], start=1):
        if shape[axis] != m:
            before, n = size_of(tuple(shape)), shape[axis]
            shape[axis] = m
            steps.append((before, size_of(tuple(shape)), n))
    return steps


def _resize_transient(row: Any, weighted: bool) -> int:
    """Per step (``n → m`` positions along one axis, ``rest`` values per position), with
    runs of ``r = min(m, RESIZE_TABLE)`` output positions: forward holds the step's
    input (unless it is the layer's), its output (unless it is the layer's) and, in one
    run, one weighted tap of the output (linear and cubic), or over several runs each
    run's result (``rest·r``) and its weighted tap; backward (last axis first) holds
    the incoming gradient (unless it is ``dy``), the new one, a run's weighted tap and
    the summed runs of equal indices with the copy ``+=`` makes (each at most
    ``rest·min(r, n)``), and finally the reference's zero gradient."""
    steps = _resize_steps(row)
    reference = size_of(row.input_shapes[1]) if len(row.input_shapes) > 1 else 0
    peak = reference
    for k, (before, after, n) in enumerate(steps):
        m = after * n // before
        rest = after // m
        run = rest * min(m, RESIZE_TABLE)
        first, last = k == 0, k == len(steps) - 1
        if m <= RESIZE_TABLE:
            temporaries = after if weighted else 0
        else:
            temporaries = run * (2 if weighted else 1)
        forward = (0 if first else before) + (0 if last else after) + temporaries
        backward = ((0 if last else after) + before + (run if weighted else 0)
                    + 2 * rest * min(m, RESIZE_TABLE, n) + (reference if first else 0))
        peak = max(peak, forward, backward)
    return peak


# --- pixel shuffle ---------------------------------------------------------------------------


def _multiples(value: int, factor: int) -> str:
    """The multiples of ``factor`` nearest ``value`` (at least one), as ``"4 or 8"``."""
    below, above = value - value % factor, value - value % factor + factor
    return " or ".join(str(v) for v in (below, above) if v >= 1)


class PixelShuffleKind(Kind):
    """``pixel_shuffle``: ``(C·r^d, *n) → (C, *(n·r))``; output position ``s·r + i``
    along an axis reads input position ``s`` (one channel of the ``r^d``)."""

    models = (PixelShuffle,)

    def rule(self, layer: PixelShuffle, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        sizes = spatial(ctx, x.shape)
        r, dims, channels = layer.factor, len(sizes), x.shape[0]
        block = r ** dims
        if channels % block:
            raise ctx.fatal(f"{channels} channels do not divide by {r}^{dims} = {block} "
                            f"(factor {r} on {dims} spatial {'axis' if dims == 1 else 'axes'}: "
                            f"each output channel takes {block}): use "
                            f"{_multiples(channels, block)} channels", "factor")
        field = x.field.through_reads([(lambda o: [o // r], r, 1)] * dims)
        return Outcome((channels // block, *(n * r for n in sizes)), field)

    def cost(self, layer: PixelShuffle, row: Any) -> Cost:
        """The output is one transposed copy; backward makes the input gradient."""
        return Cost(transient=size_of(row.input_shapes[0]))


class PixelUnshuffleKind(Kind):
    """``pixel_unshuffle``: ``(C, *n) → (C·r^d, *(n/r))``; output position ``s`` reads
    input positions ``s·r … s·r + r − 1`` (a window ``r`` with stride ``r``)."""

    models = (PixelUnshuffle,)

    def rule(self, layer: PixelUnshuffle, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        sizes = spatial(ctx, x.shape)
        r, dims = layer.factor, len(sizes)
        uneven = [f"{axis}: {n} (use {_multiples(n, r)})"
                  for axis, n in zip(axis_names(dims), sizes) if n % r]
        if uneven:
            raise ctx.fatal(f"the sizes must divide by the factor {r}: {'; '.join(uneven)}",
                            "factor")
        field = x.field.through_window((r,) * dims, (r,) * dims, (0,) * dims, (1,) * dims)
        return Outcome((x.shape[0] * r ** dims, *(n // r for n in sizes)), field)

    def cost(self, layer: PixelUnshuffle, row: Any) -> Cost:
        """The output is one transposed copy; backward makes the input gradient."""
        return Cost(transient=size_of(row.input_shapes[0]))


# --- padding ---------------------------------------------------------------------------------


def check_mode_padding(ctx: Context, mode: str, sizes: Shape,
                       pads: Sequence[tuple[int, int]], option: str) -> None:
    """``reflect`` mirrors the input without its edge (padding < size), ``circular``
    wraps it around once (padding ≤ size); otherwise the layer fails
    (:meth:`Context.fail`: the rule goes on checking), naming the padding, the size and
    the fix (axes with the same numbers together: "H, W: …")."""
    if mode not in ("reflect", "circular"):
        return
    too_wide: dict[tuple[int, int], list[str]] = {}
    for axis, n, (pb, pa) in zip(axis_names(len(sizes)), sizes, pads):
        widest = max(pb, pa)
        if widest >= n if mode == "reflect" else widest > n:
            too_wide.setdefault((n, widest), []).append(axis)
    problems = []
    for (n, widest), axes in too_wide.items():
        label = ", ".join(axes)
        if mode == "reflect":
            problems.append(f"{label}: reflect padding {widest} must be smaller than the "
                            f"input size {n} (it mirrors the input without its edge): pad "
                            f"at most {n - 1}, or use replicate")
        else:
            problems.append(f"{label}: circular padding {widest} must be at most the input "
                            f"size {n} (it wraps the input around once): pad at most {n}")
    if problems:
        ctx.fail("; ".join(problems), option)


def _pads(ctx: Context, padding: Any, sizes: Shape) -> tuple[tuple[int, int], ...]:
    dims = len(sizes)
    try:
        return resolve_padding(padding, sizes, (1,) * dims, (1,) * dims)
    except AxisCountError as error:
        raise ctx.fatal(str(error), "padding") from None


def mode_padding_transient(shape: Shape, pads: Sequence[tuple[int, int]],
                           incoming: int = 0) -> tuple[int, int]:
    """What ``engine.padmodes.pad_by_mode`` (a mode other than zeros) and its adjoint
    take besides their result, in values of one example of ``shape`` (channels first)
    padded by ``pads``: ``(forward, backward)``.  Forward copies one border slab at a
    time (the largest counts).  Backward undoes the axes last first, each step a new
    array one axis smaller while the step's input and a copy of one border slab live;
    the first input stays alive throughout (its caller holds it): ``incoming`` values
    when it is this layer's own (a convolution's gradient of its padded copy), 0 when it
    is ``dy``.  The backward figure includes the input gradient."""
    padded = [n + pb + pa for n, (pb, pa) in zip(shape[1:], pads)]
    slab = 0
    for axis, (pb, pa) in enumerate(pads):
        # when axis `axis` is filled, the axes before it are padded, the ones after not
        others = shape[0] * prod(padded[:axis]) * prod(shape[axis + 2:])
        slab = max(slab, others * max(pb, pa))
    current = list(padded)
    backward, previous = 0, 0
    for axis in range(len(pads) - 1, -1, -1):
        pb, pa = pads[axis]
        if not pb and not pa:
            continue
        current[axis] -= pb + pa
        smaller = shape[0] * prod(current)
        border = smaller // current[axis] * max(pb, pa)
        backward = max(backward, incoming + previous + smaller + border)
        previous = smaller
    return slab, max(backward, size_of(shape))


class PadKind(Kind):
    """``pad``: ``(C, *n) → (C, *(n + pb + pa))`` holding ``value`` (zeros), the input
    mirrored without its edge (reflect: padding < n), the edge repeated (replicate) or
    the input wrapped around (circular: padding ≤ n), as ``F.pad``.  Field: a window of
    1 starting ``pb`` before the input (padded positions are outside it)."""

    models = (Pad,)

    def rule(self, layer: Pad, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        sizes = spatial(ctx, x.shape)
        pads = _pads(ctx, layer.padding, sizes)
        check_mode_padding(ctx, layer.mode, sizes, pads, "padding")
        dims = len(sizes)
        field = x.field.through_window((1,) * dims, (1,) * dims,
                                       tuple(pb for pb, _ in pads), (1,) * dims)
        return Outcome((x.shape[0], *(n + pb + pa for n, (pb, pa) in zip(sizes, pads))),
                       field)

    def cost(self, layer: Pad, row: Any) -> Cost:
        """Forward writes the output directly (zeros: the constant around a copy; other
        modes: a border slab at a time); backward makes the input gradient — a cropped
        copy (zeros) or the axis-by-axis adjoint (:func:`mode_padding_transient`)."""
        in_shape = row.input_shapes[0]
        if layer.mode == "zeros":
            return Cost(transient=size_of(in_shape))
        dims = len(in_shape) - 1
        pads = resolve_padding(layer.padding, in_shape[1:], (1,) * dims, (1,) * dims)
        return Cost(transient=max(mode_padding_transient(in_shape, pads)))


# --- crop ------------------------------------------------------------------------------------


class CropKind(Kind):
    """``crop``: ``(C, *n) → (C, *out)`` with ``out`` from ``size`` or the reference;
    every ``out ≤ n``.  ``center`` keeps positions ``offset … offset + out − 1`` with
    ``offset = floor((n − out)/2)`` (the extra position of an odd difference is cut at
    the end), ``start`` the first ``out``.  Field: a window of 1 starting ``offset``
    inside the input."""

    models = (Crop,)
    min_inputs, max_inputs = 1, 2

    def rule(self, layer: Crop, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        x = inputs[0]
        sizes = spatial(ctx, x.shape)
        out = _reference(ctx, layer, x, inputs)
        option = "inputs" if out is not None else "size"
        if out is None:
            out = _per_axis(ctx, layer.size, len(sizes), "size")
        larger = [f"{axis}: {m} > {n}" for axis, n, m in
                  zip(axis_names(len(sizes)), sizes, out) if m > n]
        if larger:
            raise ctx.fatal(f"the crop {list(out)} is larger than its input "
                            f"{list(sizes)} ({', '.join(larger)}): a crop can only cut",
                            option)
        offsets = [(n - m) // 2 if layer.anchor == "center" else 0 for n, m in zip(sizes, out)]
        dims = len(sizes)
        field = x.field.through_window((1,) * dims, (1,) * dims,
                                       tuple(-o for o in offsets), (1,) * dims)
        return Outcome((x.shape[0], *out), field)

    def cost(self, layer: Crop, row: Any) -> Cost:
        """The output is a copy; backward makes the input gradient (zeros around
        ``dy``) and the reference's zero gradient."""
        return Cost(transient=sum(size_of(shape) for shape in row.input_shapes))

