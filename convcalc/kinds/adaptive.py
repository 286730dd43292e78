"""Adaptive pooling: ``adaptive_avgpool`` and ``adaptive_maxpool`` to a fixed ``output``.

``(C, *n) → (C, *out)``, ``out`` the ``output`` option (one size for every spatial
axis, or one per axis).  Along an axis of ``n`` positions, output ``i`` of ``m`` covers
PyTorch's window, the inputs ``floor(i·n/m)`` … ``ceil((i+1)·n/m) − 1``: ``n/m``
positions each when ``m`` divides ``n`` (a plain pool of kernel and stride ``n/m``),
one each, repeated, when ``n`` divides ``m``; otherwise the windows differ in size, or
overlap, or both (``m > n`` is allowed, as in PyTorch).  No parameters, no MACs.

The receptive field is exact: window ``i`` joins its positions' fields, and the
windows repeat with period ``m/g`` outputs moving ``n/g`` inputs (``g = gcd(n, m)``);
the size shown is the largest window's field.

Windows that do not split the input evenly are a warning under ``rounding: exact``
(the layer's own, or the spec's) naming their sizes, with the nearest even sizes as
fixes (:mod:`convcalc.fixes`); under ``floor`` or ``ceil`` (which accept windows that do
not tile) nothing is said: every input position is still read, none is lost or padded,
unlike a window pool's rounding.

>>> import convcalc
>>> report = convcalc.analyze({"input": [2, 5], "layers": [
...     {"type": "adaptive_avgpool", "output": 3}]})
>>> report.layers[0].output_shape, report.layers[0].receptive_field.to_dict()["size"]
((2, 3), [3])
>>> print(report.problems[0].message)
L: 5 positions do not split evenly into 3 windows: PyTorch's adaptive windows cover 2, 3, 2 positions and some neighbours share one. Fix: input: [2, 3] or [2, 6]; output: 1 or 5; rounding: floor
"""

from __future__ import annotations

from math import gcd
from typing import Any

from ..axes import AXIS_NAMES, AxisCountError, per_axis
from ..fixes import Patch, spec_value
from ..spec import AdaptivePool
from .base import Context, Cost, Kind, Outcome, State, size_of, spatial


def windows(n: int, m: int) -> list[tuple[int, int]]:
    """The ``m`` windows over ``n`` positions as ``(first, last)`` inputs.

    >>> windows(5, 3), windows(6, 3), windows(2, 4)
    ([(0, 1), (1, 3), (3, 4)], [(0, 1), (2, 3), (4, 5)], [(0, 0), (0, 0), (1, 1), (1, 1)])
    """
    return [(i * n // m, -(-(i + 1) * n // m) - 1) for i in range(m)]


def even(n: int, m: int) -> bool:
    """Whether ``m`` windows split ``n`` positions evenly: equal and disjoint, or each
    one position repeated equally often (``m`` a multiple or a divisor of ``n``)."""
    return n % m == 0 or m % n == 0


def _nearest_even(value: int, other: int) -> list[int]:
    """The sizes just below and above ``value`` that split evenly with ``other`` (an
    input size for ``other`` windows, or an output size for an input of ``other``): a
    multiple or a divisor of it.  Found in ``O(min(value, other))`` steps whatever the
    sizes (the next multiple is arithmetic; a divisor search gives up after 1,000
    steps for ``other`` itself, which always fits)."""
    def fits(v: int) -> bool:
        return v % other == 0 or other % v == 0

    below = next((v for v in range(value - 1, max(value - other - 1, 0), -1) if fits(v)), 1)
    multiple = (value // other + 1) * other
    above = next((v for v in range(value + 1, min(multiple, other, value + 1001))
                  if fits(v)), min(multiple, other) if other > value else multiple)
    return sorted({below, above} - {value})


def _sizes_text(spans: list[tuple[int, int]]) -> str:
    sizes = [last - first + 1 for first, last in spans]
    if len(sizes) <= 8:
        return ", ".join(map(str, sizes))
    counts = {size: sizes.count(size) for size in sorted(set(sizes))}
    return " and ".join(f"{count} of {size}" for size, count in counts.items())


def uneven_message(axes: tuple[str, ...], n: int, m: int) -> str:
    """The warning for ``m`` windows over ``n`` positions that do not split evenly (its
    fixes: :func:`uneven_fixes`)."""
    return (f"{', '.join(axes)}: {n} positions do not split evenly into {m} windows: "
            f"PyTorch's adaptive windows cover {_sizes_text(windows(n, m))} positions and some "
            f"neighbours share one")


def uneven_fixes(indices: tuple[int, ...], n: int, m: int, out: tuple[int, ...]
                 ) -> list[Patch]:
    """For axes ``indices`` of ``n`` positions pooled to ``m`` (of ``out``): the nearest
    input sizes and outputs that split evenly, or accepting the windows
    (``rounding: floor``)."""
    patches: list[Patch] = [{"layer_input": {a: size for a in indices}}
                            for size in _nearest_even(n, m)]
    for size in _nearest_even(m, n):
        output = [size if a in indices else o for a, o in enumerate(out)]
        patches.append({"option": "output", "value": spec_value(output)})
    patches.append({"option": "rounding", "value": "floor"})
    return patches


class AdaptivePoolKind(Kind):
    models = (AdaptivePool,)

    def rule(self, layer: AdaptivePool, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        sizes = spatial(ctx, x.shape)
        try:
            out = per_axis(layer.output, len(sizes), "output")
        except AxisCountError as error:
            raise ctx.fatal(str(error), error.option) from None
        if ctx.rounding == "exact":
            self._warn_uneven(ctx, sizes, out)
        field = x.field.through_reads([self._reads(n, m) for n, m in zip(sizes, out)])
        return Outcome((x.shape[0], *out), field)

    @staticmethod
    def _reads(n: int, m: int) -> tuple[Any, int, int]:
        """``(reads, period, step)`` for :meth:`ReceptiveField.through_reads`."""
        g = gcd(n, m)

        def reads(i: int) -> range:
            return range(i * n // m, -(-(i + 1) * n // m))

        return reads, m // g, n // g

    @staticmethod
    def _warn_uneven(ctx: Context, sizes: tuple[int, ...], out: tuple[int, ...]) -> None:
        """One warning per distinct ``(n, m)`` that does not split evenly, naming the
        axes that share it ("H, W: …")."""
        names = AXIS_NAMES[len(sizes)]
        pairs = list(zip(sizes, out))
        for pair in dict.fromkeys(p for p in pairs if not even(*p)):
            axes = tuple(name for name, p in zip(names, pairs) if p == pair)
            n, m = pair
            indices = tuple(names.index(axis) for axis in axes)
            ctx.warn(uneven_message(axes, n, m), "output", axes=list(axes),
                     windows=[last - first + 1 for first, last in windows(n, m)],
                     fixes=uneven_fixes(indices, n, m, out))

    def cost(self, layer: AdaptivePool, row: Any) -> Cost:
        """The engine pools one axis at a time (the last first), skipping axes whose size
        does not change: per step a new array the size of its output (the last is the
        layer's output), and for max its arg-max (``intp``, 8 bytes a value) kept for
        backward.  Backward makes, step by step, the gradient of each step's input; each
        window's share is added through two arrays of one position along the axis."""
        in_shape, out_shape = row.input_shapes[0], row.output_shape
        steps, slices = [in_shape], [0]
        shape = list(in_shape)
        for axis in range(len(in_shape) - 1, 0, -1):
            if shape[axis] != out_shape[axis]:
                slices.append(size_of(tuple(shape)) // shape[axis])
                shape[axis] = out_shape[axis]
                steps.append(tuple(shape))
        sizes = [size_of(s) for s in steps]
        if len(sizes) == 1:                      # nothing pooled: a copy each way
            return Cost(transient=sizes[0])
        masks = 0 if layer.type == "adaptive_avgpool" else 8 * sum(sizes[1:])
        forward = sum(sizes[1:-1])
        backward = sum(sizes[:-1]) + 2 * max(slices)
        return Cost(masks=masks, transient=max(forward, backward))
