"""Window options resolved to per-axis numbers, and the checks that a window fits.

This module turns the spec's window options (:mod:`convcalc.spec`) into plain per-axis
tuples and *padding amounts*.  It never computes an output size: the layers read
their output sizes off the sliding-window views numpy builds over the padded arrays
(:func:`engine.im2col.windows`).

Notation per spatial axis: ``n`` input size, ``k`` kernel, ``d`` dilation, ``s`` stride,
``pb``/``pa`` padding before/after, ``e = d·(k − 1) + 1`` the dilated kernel extent.

>>> window = resolve_window((7, 7), kernel=3, stride=2, padding="same", dilation=1)
>>> window.kernel, window.stride, window.padding
((3, 3), (2, 2), ((1, 1), (1, 1)))
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

#: Names of the spatial axes in error messages, as the calculator prints them.
AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

Pads = tuple[tuple[int, int], ...]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def axis_names(dims: int) -> tuple[str, ...]:
    """``("H", "W")`` for 2 spatial axes, ``("L",)`` for one, ``("D", "H", "W")`` for 3.

    >>> axis_names(3)
    ('D', 'H', 'W')
    """
    return AXIS_NAMES.get(dims, tuple(f"axis{i}" for i in range(dims)))


def _one_per_axis(value: Any, dims: int, option: str, layer: str) -> tuple[Any, ...]:
    """An int repeated for every axis, or a sequence that must have one entry per axis."""
    if _is_int(value):
        return (int(value),) * dims
    entries = tuple(value)
    if len(entries) != dims:
        raise ValueError(
            f"{layer}: {option} has {len(entries)} entries but the input has {dims} "
            f"spatial {'axes' if dims != 1 else 'axis'} ({', '.join(axis_names(dims))})")
    return entries


def per_axis(value: int | Sequence[int], dims: int, option: str,
             layer: str = "im2col", minimum: int = 1) -> tuple[int, ...]:
    """One int for every spatial axis, or a sequence with one entry per axis.

    >>> per_axis(3, 2, "kernel")
    (3, 3)
    >>> per_axis((1, 2, 3), 3, "stride")
    (1, 2, 3)
    >>> per_axis((1, 2), 3, "stride", layer="conv1")
    Traceback (most recent call last):
    ...
    ValueError: conv1: stride has 2 entries but the input has 3 spatial axes (D, H, W)
    """
    values = _one_per_axis(value, dims, option, layer)
    for axis, item in zip(axis_names(dims), values):
        if not _is_int(item) or item < minimum:
            raise ValueError(f"{layer}: {axis}: {option} must be a whole number ≥ {minimum} "
                             f"(got {item!r})")
    return values


def extents(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """Dilated kernel extent per axis, ``e = d·(k − 1) + 1`` (how far one window reaches).

    >>> extents((3, 5), (2, 1))
    (5, 5)
    """
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def same_padding(size: int, extent: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding amounts for one axis; the odd one goes at the end.

    The rule targets ``ceil(n / s)`` windows: ``total = max((ceil(n/s) − 1)·s + e − n, 0)``,
    ``before = total // 2``, ``after = total − before``.

    >>> same_padding(7, 3, 1), same_padding(32, 4, 1), same_padding(7, 3, 2)
    ((1, 1), (1, 2), (1, 1))
    """
    target = -(-size // stride)
    total = max((target - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: Any, sizes: Sequence[int], kernel: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int],
                    layer: str = "im2col") -> Pads:
    """Padding as ``((before, after), ...)``, one pair per spatial axis.

    ``padding`` is an int (both sides, all axes), ``"valid"`` (0), ``"same"``
    (:func:`same_padding`), ``"full"`` (``e − 1`` each side), or a sequence with one entry
    per axis, each an int or a ``(before, after)`` pair.

    >>> resolve_padding("full", (7,), (3,), (1,), (2,))
    ((4, 4),)
    >>> resolve_padding((1, (0, 2)), (5, 5), (3, 3), (1, 1), (1, 1))
    ((1, 1), (0, 2))
    """
    dims = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding == "same":
            return tuple(same_padding(n, e, s)
                         for n, e, s in zip(sizes, extents(kernel, dilation), stride))
        if padding == "full":
            return tuple((e - 1, e - 1) for e in extents(kernel, dilation))
        raise ValueError(f"{layer}: padding must be a whole number, 'valid', 'same' or "
                         f"'full' (got {padding!r})")
    entries = _one_per_axis(padding, dims, "padding", layer)
    pads = []
    for axis, entry in zip(axis_names(dims), entries):
        pair = (entry, entry) if _is_int(entry) else tuple(entry)
        if len(pair) != 2 or not all(_is_int(p) and p >= 0 for p in pair):
            raise ValueError(f"{layer}: {axis}: padding must be a whole number ≥ 0 or a "
                             f"(before, after) pair of them (got {entry!r})")
        pads.append((int(pair[0]), int(pair[1])))
    return tuple(pads)


@dataclass(frozen=True)
class Window:
    """A sliding window resolved for one input: every option one int per spatial axis.

    ``padding`` is the explicit padding; ``overhang`` the implicit extra padding at the
    end of each axis that ceil rounding adds (0 with floor rounding).
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: Pads
    overhang: tuple[int, ...]

    @property
    def extent(self) -> tuple[int, ...]:
        """Dilated kernel extent per axis."""
        return extents(self.kernel, self.dilation)

    @property
    def total_padding(self) -> Pads:
        """Explicit padding with the ceil overhang added at the end of each axis."""
        return tuple((pb, pa + o) for (pb, pa), o in zip(self.padding, self.overhang))


def check_fits(sizes: Sequence[int], window: Window, layer: str = "im2col") -> None:
    """Raise ``ValueError`` when a window is larger than its padded input on some axis.

    >>> w = resolve_window((4, 9), kernel=5, stride=1, padding=0, dilation=1)
    Traceback (most recent call last):
    ...
    ValueError: im2col: H: window 5 is larger than the padded input 4
    """
    problems = []
    for axis, n, k, d, e, (pb, pa) in zip(axis_names(len(sizes)), sizes, window.kernel,
                                          window.dilation, window.extent, window.padding):
        if e > n + pb + pa:
            what = f"window {e}" + (f" (kernel {k} dilated by {d})" if d > 1 else "")
            padded = f"{n} + {pb + pa} = {n + pb + pa}" if pb + pa else f"{n}"
            problems.append(f"{axis}: {what} is larger than the padded input {padded}")
    if problems:
        raise ValueError(f"{layer}: " + "; ".join(problems))


def ceil_overhang(size: int, pad: tuple[int, int], extent: int, stride: int) -> int:
    """Implicit end padding that ceil rounding needs on one axis (PyTorch's rule).

    Windows start at every multiple of ``s``.  When the last window that fits ends short
    of the padded input, ceil adds one more window and pads the input at the end so it
    fits — unless that window would start at or past ``n + pb`` (inside the explicit
    right padding or beyond it), in which case it is dropped and nothing is added.

    >>> ceil_overhang(7, (0, 0), 3, 3)   # windows at 0, 3, and 6 (covering 6..8): 2 extra
    2
    >>> ceil_overhang(6, (1, 1), 2, 2)   # extra window would start at 8 ≥ 6 + 1: dropped
    0
    >>> ceil_overhang(6, (0, 1), 2, 2)   # extra window would start at 6 = 6 + 0: dropped
    0
    >>> ceil_overhang(8, (0, 0), 2, 2)   # windows tile: nothing to add
    0
    >>> ceil_overhang(2, (0, 0), 3, 2)   # no window fits: the one at 0 hangs 1 past the end
    1
    """
    pb, pa = pad
    padded = size + pb + pa
    if padded < extent:    # no window fits: one that starts at 0 and hangs past the end
        return extent - padded if extent - padded < stride else 0
    slack = (padded - extent) % stride          # padded positions after the last window start
    if slack == 0:
        return 0
    extra_start = padded - extent - slack + stride  # where one more window would start
    if extra_start >= size + pb:
        return 0
    return extra_start + extent - padded


def resolve_window(sizes: Sequence[int], kernel: Any, stride: Any, padding: Any,
                   dilation: Any, rounding: str = "floor", layer: str = "im2col") -> Window:
    """Resolve window options for an input with spatial ``sizes`` and check they fit.

    ``rounding`` is ``"floor"``, ``"exact"`` (treated as floor: specs the calculator accepts
    as exact always tile) or ``"ceil"`` (adds :func:`ceil_overhang`).

    >>> resolve_window((7,), 3, 3, 0, 1, rounding="ceil").overhang
    (2,)
    >>> resolve_window((7, 7), 3, 1, 0, 1, rounding="round")
    Traceback (most recent call last):
    ...
    ValueError: im2col: rounding must be 'floor', 'exact' or 'ceil' (got 'round')
    """
    if rounding not in ("floor", "exact", "ceil"):
        raise ValueError(f"{layer}: rounding must be 'floor', 'exact' or 'ceil' "
                         f"(got {rounding!r})")
    dims = len(sizes)
    kernel_ = per_axis(kernel, dims, "kernel", layer)
    stride_ = per_axis(stride, dims, "stride", layer)
    dilation_ = per_axis(dilation, dims, "dilation", layer)
    pads = resolve_padding(padding, sizes, kernel_, stride_, dilation_, layer)
    window = Window(kernel_, stride_, dilation_, pads, (0,) * dims)
    if rounding == "ceil":
        window = replace(window, overhang=tuple(
            ceil_overhang(n, p, e, s)
            for n, p, e, s in zip(sizes, pads, window.extent, stride_)))
    # a ceil window may hang past the end: it fits in the padding plus its overhang
    check_fits(sizes, replace(window, padding=window.total_padding), layer)
    return window
