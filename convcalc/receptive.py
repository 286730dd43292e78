"""Receptive fields (Araujo, Norris & Sim, "Computing Receptive Fields of CNNs",
Distill 2019), one axis at a time, in input pixels.

For each axis a field is reported as ``(size, jump, padding)``:

- ``size`` — how many input positions one output neuron sees (the largest, when
  neurons differ);
- ``jump`` — how far apart, in input positions, neighbouring outputs' fields start
  (the product of the strides so far; a fraction after a transposed conv);
- ``padding`` — effective padding: how far the first output's field reaches before the
  input's first position, so output ``i`` sees ``[i·jump − padding, i·jump − padding + size)``.

Through a stack of convs and pools this is the familiar recurrence: a window layer
(kernel ``k``, dilation ``d``, stride ``s``, padding before ``p``) maps
``(r, j, P) → (r + (e − 1)·j, j·s, P + p·j)`` with ``e = d·(k − 1) + 1``.

>>> field = Field1D.identity()
>>> for _ in range(3):                          # three 3×3 stride-1 convs see 7×7
...     field = field.through_window(3, 1, 1, 1)
>>> field.size, field.jump, field.padding
(7, 1, 3)

After a transposed conv (upsampling) neighbouring outputs no longer see fields of the
same size, so a field is kept exactly: output ``o`` sees ``[lo(o), hi(o)]``, stored for
one *period* of outputs, with ``lo(o + period) = lo(o) + shift`` (and the same for ``hi``).
For plain conv/pool stacks the period is 1 and this is the recurrence above.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd, lcm
from typing import Callable, Optional, Sequence

Number = int | Fraction
Edge = Optional[int]

#: Beyond this period (a long chain of transposed convs) fields are not tracked.
MAX_PERIOD = 1 << 14


class FieldTooComplex(Exception):
    """The exact field would need a period longer than :data:`MAX_PERIOD`."""


def _simplify(value: Number) -> Number:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def _min(values: list[Edge]) -> Edge:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _max(values: list[Edge]) -> Edge:
    present = [v for v in values if v is not None]
    return max(present) if present else None


@dataclass(frozen=True)
class Field1D:
    """The receptive field of one layer's outputs along one axis.

    ``lo[r]``/``hi[r]`` are the first/last input positions output ``r`` sees, for
    ``r < period`` (``None`` where an output reads no input at all, as some outputs of a
    transposed conv whose stride and dilation share a factor); ``shift`` is how far the
    fields move per period.
    """

    #: the first input position each output ``r < period`` sees
    lo: tuple[Edge, ...]
    #: the last input position each output ``r < period`` sees
    hi: tuple[Edge, ...]
    #: how far the fields move in the input per period of outputs
    shift: int

    @classmethod
    def identity(cls) -> "Field1D":
        """The input itself: each position sees itself."""
        return cls((0,), (0,), 1)

    @property
    def period(self) -> int:
        return len(self.lo)

    def edges(self, output: int) -> tuple[Edge, Edge]:
        """``(first, last)`` input position that ``output`` sees (``None`` if none)."""
        turns, r = divmod(output, self.period)
        lo, hi = self.lo[r], self.hi[r]
        if lo is None or hi is None:
            return None, None
        return lo + turns * self.shift, hi + turns * self.shift

    @property
    def size(self) -> int:
        """The largest field of any output (0 if no output reads the input)."""
        spans = [h - l + 1 for l, h in zip(self.lo, self.hi) if l is not None and h is not None]
        return max(spans, default=0)

    @property
    def jump(self) -> Number:
        return _simplify(Fraction(self.shift, self.period))

    @property
    def padding(self) -> Number:
        """``o·jump − lo(o)`` for the first output ``o`` that sees anything."""
        for r, lo in enumerate(self.lo):
            if lo is not None:
                return _simplify(r * Fraction(self.shift, self.period) - lo)
        return 0

    def __repr__(self) -> str:
        return f"Field1D(size={self.size}, jump={self.jump!r}, padding={self.padding!r})"

    def _lo_over(self, positions: list[int]) -> Edge:
        return _min([self.edges(i)[0] for i in positions])

    def _hi_over(self, positions: list[int]) -> Edge:
        return _max([self.edges(i)[1] for i in positions])

    def through_window(self, kernel: int, stride: int, pad_before: int,
                       dilation: int = 1) -> "Field1D":
        """After a conv or pooling window: output ``o`` reads ``o·s − p + t·d`` for
        taps ``t < k``.  Since fields only move right (``shift ≥ 0``), the first/last
        ``period`` taps decide the union's edges."""
        if len(self.lo) == 1:      # the common case: every output sees alike
            lo0, hi0, shift = self.lo[0], self.hi[0], self.shift
            return Field1D((None if lo0 is None else lo0 - pad_before * shift,),
                           (None if hi0 is None else
                            hi0 + ((kernel - 1) * dilation - pad_before) * shift,),
                           shift * stride)
        period = self.period // gcd(self.period, stride)
        shift = self.shift * (period * stride // self.period)
        taps = min(kernel, self.period)
        lo, hi = [], []
        for r in range(period):
            base = r * stride - pad_before
            lo.append(self._lo_over([base + t * dilation for t in range(taps)]))
            hi.append(self._hi_over([base + t * dilation
                                     for t in range(kernel - taps, kernel)]))
        return Field1D(tuple(lo), tuple(hi), shift)

    def through_transposed(self, kernel: int, stride: int, pad_before: int,
                           dilation: int = 1) -> "Field1D":
        """After a transposed conv, whose output ``o`` reads inputs ``i`` with
        ``i·s = o + p − t·d`` for kernel taps ``t``.  Outputs differ in how many taps hit
        an input; ``size`` is the largest field, ``padding`` is output 0's.

        >>> Field1D.identity().through_transposed(4, 2, 1)     # ×2 upsampling
        Field1D(size=2, jump=Fraction(1, 2), padding=1)

        Output 0 reads inputs −1 (tap 3) and 0 (tap 1): two positions, starting one
        before the input.
        """
        period = self.period * stride
        if period > MAX_PERIOD:
            raise FieldTooComplex(period)
        common = gcd(stride, dilation)
        tap_step, reduced_dilation = stride // common, dilation // common
        lo: list[Edge] = []
        hi: list[Edge] = []
        for r in range(period):
            if (r + pad_before) % common:
                lo.append(None)
                hi.append(None)
                continue
            # the first tap t with t·d ≡ r + p (mod s); then every tap_step-th tap
            first = ((r + pad_before) // common * pow(reduced_dilation, -1, tap_step)
                     if tap_step > 1 else 0) % tap_step
            hits = 0 if first >= kernel else (kernel - 1 - first) // tap_step + 1
            if hits == 0:
                lo.append(None)
                hi.append(None)
                continue
            # input of the k-th hit tap: decreasing in k; the last `period` hits of the
            # input's own period decide the low edge, the first ones the high edge
            def source(hit: int) -> int:
                return (r + pad_before - (first + hit * tap_step) * dilation) // stride

            count = min(hits, self.period)
            lo.append(self._lo_over([source(h) for h in range(hits - count, hits)]))
            hi.append(self._hi_over([source(h) for h in range(count)]))
        return Field1D(tuple(lo), tuple(hi), self.shift)

    def through_reads(self, reads: "Callable[[int], Sequence[int]]", period: int,
                      step: int) -> "Field1D":
        """After any layer whose output ``o`` reads the input positions ``reads(o)``
        (unbounded coordinates: padding positions are positions outside the input), with
        ``reads(o + period) = reads(o) + step``: output ``o`` sees the union of their
        fields.  An empty ``reads(o)`` sees nothing (``None``).

        >>> conv = Field1D.identity().through_window(3, 2, 1)
        >>> conv == Field1D.identity().through_reads(lambda o: [2 * o - 1 + t for t in range(3)], 1, 2)
        True
        >>> nearest = Field1D.identity().through_reads(lambda o: [o * 2 // 3], 3, 2)  # 2 → 3
        >>> [nearest.edges(o) for o in range(4)], nearest.jump
        ([(0, 0), (0, 0), (1, 1), (2, 2)], Fraction(2, 3))
        """
        repeats = self.period // gcd(self.period, step)  # so that the input moves by periods
        outputs = period * repeats
        if outputs > MAX_PERIOD:
            raise FieldTooComplex(outputs)
        lo, hi = [], []
        for o in range(outputs):
            positions = list(reads(o))
            lo.append(self._lo_over(positions) if positions else None)
            hi.append(self._hi_over(positions) if positions else None)
        return Field1D(tuple(lo), tuple(hi), self.shift * (repeats * step // self.period))

    def whole(self, positions: int) -> "Field1D":
        """After a layer that reads every one of ``positions`` outputs (global pooling,
        flatten): one output whose field is the union of theirs.  The jump is kept as
        it was (the network's total stride), for display."""
        first = list(range(min(positions, self.period)))
        last = list(range(max(0, positions - self.period), positions))
        lo, hi = self._lo_over(first), self._hi_over(last)
        return Field1D((lo,) * self.period, (hi,) * self.period, self.shift)

    @property
    def constant(self) -> bool:
        """Whether every output sees the same positions (shift 0, one pair of edges), as
        after :meth:`spread`."""
        return self.shift == 0 and len(set(self.lo)) == 1 and len(set(self.hi)) == 1

    def spread(self, positions: int) -> "Field1D":
        """After a layer each of whose outputs reads all ``positions`` outputs of this
        one (group or instance norm's statistics), or along a size-1 axis broadcast to
        many (``positions = 1``): every output sees their union.  The field is the same
        for every output, so its shift is 0 (its jump shows 0: neighbouring outputs'
        fields start at the same place); later layers keep it exact, and keep it the
        same for every output, except that an output reading padding positions only
        (a kernel smaller than the padding) is said to see it too.

        >>> field = Field1D.identity().through_window(3, 1, 1).spread(5)
        >>> [field.edges(o) for o in (0, 4, 9)], field.jump, field.constant
        ([(-1, 5), (-1, 5), (-1, 5)], 0, True)
        """
        whole = self.whole(positions)
        return Field1D(whole.lo[:1], whole.hi[:1], 0)


def merge_fields(fields: list[Field1D], outputs: int | None = None,
                 broadcast: Sequence[bool] = ()) -> tuple[Field1D, bool]:
    """Where paths meet (add, concat, mul): the union of their fields, output by output,
    and whether they are aligned — same jump and, output by output, the same field
    centre.

    >>> three = Field1D.identity().through_window(3, 1, 1)      # 3×3 conv, pad 1
    >>> one = Field1D.identity()                                  # identity shortcut
    >>> merged, aligned = merge_fields([three, one])
    >>> (merged.size, merged.jump, merged.padding, aligned)
    (3, 1, 1, True)
    >>> shifted = Field1D.identity().through_window(3, 1, 0)    # 3×3 conv, no pad
    >>> merge_fields([shifted, one])[1]
    False

    ``outputs`` is the number of positions along the axis.  A path ``broadcast`` along
    it (size 1 there) gives its one field to every output (:meth:`Field1D.spread`).  A
    path that sees, at every output, everything the other paths see anywhere (a gate
    pooled from the whole map, a group norm's output) carries no position: it is never
    misaligned.

    >>> gate = Field1D.identity().whole(4)                # (C, 1) pooled from 4 positions
    >>> merged, aligned = merge_fields([gate, one], 4, [True, False])   # gate × x
    >>> [merged.edges(o) for o in range(4)], merged.jump, aligned
    ([(0, 3), (0, 3), (0, 3), (0, 3)], 0, True)

    Where the union does not repeat (different jumps; a constant field that widens some
    outputs only) it is exact for the ``outputs`` positions (:func:`_stored_for`); without
    ``outputs`` the largest field of paths with different jumps is kept.

    >>> strided = Field1D.identity().through_window(2, 2, 0)    # sees [2o, 2o + 1]
    >>> merged, aligned = merge_fields([strided, one], outputs=3)
    >>> [merged.edges(o) for o in range(3)], aligned
    ([(0, 1), (1, 3), (2, 5)], False)
    """
    if any(broadcast):
        fields = [f.spread(1) if b else f for f, b in zip(fields, broadcast)]
    if all(len(f.lo) == 1 for f in fields):     # the common case: one field per path
        if len({f.shift for f in fields}) == 1:
            present = [f for f in fields if f.lo[0] is not None and f.hi[0] is not None]
            aligned = fields[0].shift == 0 or \
                len({f.lo[0] + f.hi[0] for f in present}) <= 1  # type: ignore[operator]
            union = Field1D((_min([f.lo[0] for f in fields]),),
                            (_max([f.hi[0] for f in fields]),), fields[0].shift)
            return union, aligned or _aligned_over(fields, outputs)
    moving = [f for f in fields if not f.constant]
    if len(moving) < len(fields):
        constant = [f for f in fields if f.constant]
        if not moving:
            return Field1D((_min([f.lo[0] for f in constant]),),
                           (_max([f.hi[0] for f in constant]),), 0), True
        union, _ = merge_fields(moving, outputs)
        return _join_constant(union, constant, outputs), _aligned_over(fields, outputs)
    if len({f.jump for f in fields}) == 1:
        union, aligned = _periodic_union(fields)
        return union, aligned or _aligned_over(fields, outputs)
    if outputs is None:
        return max(fields, key=lambda f: f.size), False

    def union_at(o: int) -> tuple[Edge, Edge]:
        return _min([f.edges(o)[0] for f in fields]), _max([f.edges(o)[1] for f in fields])

    return _stored_for(outputs, max(f.jump for f in fields), union_at), \
        _aligned_over(fields, outputs)


def _stored_for(outputs: int, jump: Number,
                edges: "Callable[[int], tuple[Edge, Edge]]") -> Field1D:
    """A field given output by output for ``outputs`` positions that need not repeat:
    stored with a period of ``outputs`` (or of the least multiple of it over which
    ``jump`` moves a whole number of inputs; the outputs past ``outputs`` do not exist
    and read nothing), shifting by ``jump`` per output."""
    period = lcm(outputs, Fraction(jump).denominator)
    if period > MAX_PERIOD:
        raise FieldTooComplex(period)
    pairs = [edges(o) if o < outputs else (None, None) for o in range(period)]
    return Field1D(tuple(lo for lo, _ in pairs), tuple(hi for _, hi in pairs),
                   int(jump * period))


def _periodic_union(fields: list[Field1D]) -> tuple[Field1D, bool]:
    """The union of fields with one jump, over their common period, and whether their
    centres agree output by output."""
    period = lcm(*(f.period for f in fields))
    if period > MAX_PERIOD:
        raise FieldTooComplex(period)
    shift = fields[0].shift * (period // fields[0].period)
    edges = [[f.edges(r) for r in range(period)] for f in fields]
    aligned = all(
        len({lo + hi for lo, hi in (e[r] for e in edges) if lo is not None and hi is not None}) <= 1
        for r in range(period))
    lo = tuple(_min([e[r][0] for e in edges]) for r in range(period))
    hi = tuple(_max([e[r][1] for e in edges]) for r in range(period))
    return Field1D(lo, hi, shift), aligned


def _join_constant(union: Field1D, constant: list[Field1D], outputs: int | None) -> Field1D:
    """``union`` (the moving paths' field) joined, output by output, with the constant
    paths' one field: the constant field where that is the join at every output that
    exists, ``union`` where that is, else the join stored for the ``outputs`` positions
    (one period of ``union`` when not given), ``union``'s jump kept.

    >>> conv = Field1D.identity().through_window(3, 1, 1)          # sees [o − 1, o + 1]
    >>> narrow = Field1D((1,), (2,), 0)                            # a gate seeing [1, 2]
    >>> joined = _join_constant(conv, [narrow], 4)
    >>> [joined.edges(o) for o in range(4)], joined.jump
    ([(-1, 2), (0, 2), (1, 3), (1, 4)], 1)
    """
    fixed = Field1D((_min([f.lo[0] for f in constant]),), (_max([f.hi[0] for f in constant]),), 0)
    count = union.period if outputs is None else outputs

    def joined(o: int) -> tuple[Edge, Edge]:
        lo, hi = union.edges(o)
        return _min([fixed.lo[0], lo]), _max([fixed.hi[0], hi])

    edges = [joined(o) for o in range(count)]
    if all(e == fixed.edges(0) for e in edges):
        return fixed
    if all(e == union.edges(o) for o, e in enumerate(edges)):
        return union
    return _stored_for(count, union.jump, joined)


def _aligned_over(fields: list[Field1D], outputs: int | None) -> bool:
    """Whether the paths are aligned over the ``outputs`` positions once the paths that
    carry no position are set aside: those that see, at every output, the hull of what
    every other path sees at any output.  The rest must share one jump and, output by
    output, their centres.  ``False`` without ``outputs``."""
    if outputs is None:
        return False
    sample = _deciding_outputs(fields, outputs)
    seen = [[f.edges(o) for o in sample] for f in fields]
    rest = _positioned(seen)
    if len({fields[p].jump for p in rest}) > 1:
        return False
    return all(len({lo + hi for lo, hi in (seen[p][o] for p in rest)
                    if lo is not None and hi is not None}) <= 1 for o in range(len(sample)))


def _deciding_outputs(fields: list[Field1D], outputs: int) -> list[int]:
    """The outputs whose edges decide hulls, positions and — for paths of one jump —
    centre differences: the first and the last ``L`` of ``outputs`` (``L`` a common
    period of the fields), or all of them when that is not fewer.

    Fields only move right (``shift ≥ 0``), so each residue's edges grow with its turn:
    the smallest first edge is in the first ``L`` outputs, the largest last edge in the
    last ``L``.  For paths of one jump the difference of two centres repeats every
    ``L`` outputs, so any ``L`` consecutive outputs hold all its values.

    >>> up = Field1D.identity().through_window(2, 2, 0).through_transposed(2, 2, 0)
    >>> up.period, _deciding_outputs([up, Field1D.identity()], 100)   # a U-Net's skip
    (2, [0, 1, 98, 99])
    >>> _deciding_outputs([up], 3)
    [0, 1, 2]
    """
    period = lcm(*(f.period for f in fields))
    if outputs <= 2 * period:
        return list(range(outputs))
    return [*range(period), *range(outputs - period, outputs)]


def _positioned(seen: list[list[tuple[Edge, Edge]]]) -> list[int]:
    """The paths (by index) that carry a position, given each one's edges output by
    output: all but those that see, at every output, the hull of what every other path
    sees at any output."""
    hulls = [(_min([lo for lo, _ in path]), _max([hi for _, hi in path])) for path in seen]

    def carries_no_position(p: int) -> bool:
        others = [h for q, h in enumerate(hulls) if q != p]
        lo, hi = _min([h[0] for h in others]), _max([h[1] for h in others])
        if lo is None or hi is None:
            return True
        return all(a is not None and b is not None and a <= lo and b >= hi
                   for a, b in seen[p])

    return [p for p in range(len(seen)) if not carries_no_position(p)]


def centre_offset(fields: list[Field1D], outputs: int) -> tuple[Fraction, bool]:
    """How far apart the paths' fields are centred, in input pixels: the largest
    difference of centres at one of the ``outputs`` positions, and whether it is that
    at every output (paths that carry no position left out, as for alignment).

    >>> pooled = Field1D.identity().through_window(2, 2, 0)          # 2×2/2 pool
    >>> up = pooled.through_transposed(2, 2, 0)                      # then 2×2/2 up
    >>> centre_offset([up, Field1D.identity()], 4)                   # U-Net's skip
    (Fraction(1, 2), True)
    >>> centre_offset([pooled, Field1D.identity()], 3)               # jumps 2 and 1
    (Fraction(5, 2), False)
    """
    sample = _deciding_outputs(fields, outputs)
    seen = [[f.edges(o) for o in sample] for f in fields]
    rest = _positioned(seen)
    if len({fields[p].jump for p in rest}) > 1 and len(sample) < outputs:
        # paths of different jumps drift apart: every output counts
        seen = [[f.edges(o) for o in range(outputs)] for f in fields]
    spreads = []
    for o in range(len(seen[0]) if seen else 0):
        centres = [Fraction(lo + hi, 2) for lo, hi in (seen[p][o] for p in rest)
                   if lo is not None and hi is not None]
        spreads.append(max(centres) - min(centres) if centres else Fraction(0))
    return max(spreads, default=Fraction(0)), len(set(spreads)) <= 1


@dataclass(frozen=True)
class ReceptiveField:
    """Per-axis fields of one layer's output; ``axes`` is ``None`` when not tracked."""

    #: one field per spatial axis (``None``: not tracked)
    axes: tuple[Field1D, ...] | None

    @classmethod
    def identity(cls, spatial_dims: int) -> "ReceptiveField":
        return cls(tuple(Field1D.identity() for _ in range(spatial_dims)))

    def through_window(self, kernel: tuple[int, ...], stride: tuple[int, ...],
                       pad_before: tuple[int, ...], dilation: tuple[int, ...]) -> "ReceptiveField":
        if self.axes is None:
            return self
        return ReceptiveField(tuple(f.through_window(*args) for f, *args in
                                    zip(self.axes, kernel, stride, pad_before, dilation)))

    def through_reads(self, per_axis: "Sequence[tuple[Callable[[int], Sequence[int]], int, int]]"
                      ) -> "ReceptiveField":
        """:meth:`Field1D.through_reads` on every axis, with ``(reads, period, step)`` per
        axis; a field that would need too long a period is not tracked (``None``)."""
        if self.axes is None:
            return self
        try:
            return ReceptiveField(tuple(f.through_reads(*args)
                                        for f, args in zip(self.axes, per_axis)))
        except FieldTooComplex:
            return ReceptiveField(None)

    def through_transposed(self, kernel: tuple[int, ...], stride: tuple[int, ...],
                           pad_before: tuple[int, ...], dilation: tuple[int, ...]) -> "ReceptiveField":
        if self.axes is None:
            return self
        try:
            return ReceptiveField(tuple(f.through_transposed(*args) for f, *args in
                                        zip(self.axes, kernel, stride, pad_before, dilation)))
        except FieldTooComplex:
            return ReceptiveField(None)

    def whole(self, sizes: tuple[int, ...]) -> "ReceptiveField":
        if self.axes is None:
            return self
        return ReceptiveField(tuple(f.whole(n) for f, n in zip(self.axes, sizes)))

    def spread(self, sizes: tuple[int, ...]) -> "ReceptiveField":
        """:meth:`Field1D.spread` on every axis: each output sees every one of the
        ``sizes`` positions (a normalisation over the spatial axes)."""
        if self.axes is None:
            return self
        return ReceptiveField(tuple(f.spread(n) for f, n in zip(self.axes, sizes)))

    @staticmethod
    def merge(fields: list["ReceptiveField"], sizes: tuple[int, ...] | None = None,
              broadcast: "Sequence[Sequence[int]]" = ()) -> tuple["ReceptiveField", list[int]]:
        """Union of several paths' fields, and the axes on which they are misaligned.

        ``sizes``: the output's spatial sizes (``()`` for a flat output: one position),
        over which a union that does not repeat is exact and alignment is judged
        (:func:`merge_fields`); ``broadcast[i]``: the axes along which path ``i`` is
        broadcast from size 1 — its one field (its output 0's) joins every output there
        (a gate from a global pool sees everything the map does: it is not misaligned).

        >>> x = ReceptiveField.identity(2)
        >>> gate = x.whole((4, 4))                          # (C, 1, 1) from a 4×4 map
        >>> field, misaligned = ReceptiveField.merge([gate, x], (4, 4), [(0, 1), ()])
        >>> field.to_dict(), misaligned
        ({'size': [4, 4], 'jump': [0, 0], 'padding': [0, 0]}, [])
        """
        if any(f.axes is None for f in fields) or len({len(f.axes or ()) for f in fields}) > 1:
            return ReceptiveField(None), []
        merged, misaligned = [], []
        try:
            for axis, per_path in enumerate(zip(*(f.axes for f in fields))):
                flags = [index < len(broadcast) and axis in broadcast[index]
                         for index in range(len(per_path))]
                outputs = None if sizes is None else (sizes[axis] if axis < len(sizes) else 1)
                field, aligned = merge_fields(list(per_path), outputs, flags)
                merged.append(field)
                if not aligned:
                    misaligned.append(axis)
        except FieldTooComplex:
            return ReceptiveField(None), []
        return ReceptiveField(tuple(merged)), misaligned

    @staticmethod
    def centre_offsets(fields: list["ReceptiveField"], sizes: tuple[int, ...],
                       broadcast: "Sequence[Sequence[int]]", axes: Sequence[int]
                       ) -> list[tuple[Fraction, bool]]:
        """:func:`centre_offset` of the paths along each of ``axes`` (as :meth:`merge`
        takes them: ``sizes`` the output's spatial sizes, a broadcast path's one field
        at every output)."""
        out = []
        for axis in axes:
            per_path = [f.axes[axis] for f in fields]  # type: ignore[index]
            per_path = [f.spread(1) if index < len(broadcast) and axis in broadcast[index]
                        else f for index, f in enumerate(per_path)]
            out.append(centre_offset(per_path, sizes[axis] if axis < len(sizes) else 1))
        return out

    def to_dict(self) -> dict[str, list[int | float]] | None:
        """``{"size": [...], "jump": [...], "padding": [...]}``; a fractional jump or
        padding (after a transposed conv) is given as a float; ``None`` if not tracked."""
        if self.axes is None:
            return None

        def plain(value: Number) -> int | float:
            return value if isinstance(value, int) else float(value)

        return {
            "size": [a.size for a in self.axes],
            "jump": [plain(a.jump) for a in self.axes],
            "padding": [plain(a.padding) for a in self.axes],
        }
