"""Per-axis options: axis names, one value per spatial axis, padding resolved to pairs,
and the resolved window geometry a report row carries.

The calculator resolves a layer's window options once, here, for the input it meets;
everything after (receptive fields, the memory estimate) reads the resolved
:class:`Window`.  (The reference engine has its own, ``engine/padding.py``: an oracle
must not share the calculator's formulas.)

>>> window = resolve_window(kernel=3, stride=2, dilation=1, padding="same", sizes=(7, 8))
>>> window.padding, window.extent
(((1, 1), (0, 1)), (3, 3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import geometry

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
#: What one step along an axis is called in messages ("the last 2 rows are lost").
AXIS_NOUNS = {"L": "position", "D": "slice", "H": "row", "W": "column"}

Pads = tuple[tuple[int, int], ...]


def axis_names(dims: int) -> tuple[str, ...]:
    """``("H", "W")`` for two spatial axes (``()`` for none).

    >>> axis_names(3), axis_names(0)
    (('D', 'H', 'W'), ())
    """
    return AXIS_NAMES.get(dims, ())


class AxisCountError(ValueError):
    """A per-axis option lists a number of entries other than the input's axes;
    ``option`` names it."""

    def __init__(self, message: str, option: str = ""):
        super().__init__(message)
        self.option = option


def per_axis(value: Any, dims: int, option: str = "") -> tuple[Any, ...]:
    """An int for every axis, or a list that must have one entry per axis.

    >>> per_axis(3, 2), per_axis((1, 2), 2)
    ((3, 3), (1, 2))
    >>> per_axis((1, 2), 3)
    Traceback (most recent call last):
    ...
    convcalc.axes.AxisCountError: has 2 entries but the input has 3 spatial axes (D, H, W)
    """
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise AxisCountError(f"has {len(value)} entries but the input has {dims} spatial "
                             f"{'axes' if dims != 1 else 'axis'} ({', '.join(axis_names(dims))})",
                             option)
    return tuple(value)


def resolve_padding(padding: Any, sizes: tuple[int, ...], extents: tuple[int, ...],
                    strides: tuple[int, ...]) -> Pads:
    """Padding as ``((before, after), …)``, one pair per axis: ``valid`` (none),
    ``same`` (TensorFlow's rule, :func:`convcalc.geometry.same_padding`), ``full``
    (``e − 1`` a side), an int, or per axis an int or a ``[before, after]`` pair.

    >>> resolve_padding([1, (0, 2)], (5, 5), (3, 3), (1, 1))
    ((1, 1), (0, 2))
    """
    if padding == "valid":
        return ((0, 0),) * len(sizes)
    if padding == "same":
        return tuple(geometry.same_padding(n, e, s) for n, e, s in zip(sizes, extents, strides))
    if padding == "full":
        return tuple(geometry.full_padding(e) for e in extents)
    return tuple(p if isinstance(p, tuple) else (p, p)
                 for p in per_axis(padding, len(sizes), "padding"))


@dataclass(frozen=True)
class Window:
    """A sliding window resolved for one input, one entry per spatial axis.

    ``padding`` holds the explicit ``(before, after)`` amounts (``same`` and ``full``
    resolved); ``extent`` is the dilated kernel ``d·(k − 1) + 1``.
    """

    #: the window's size along each axis
    kernel: tuple[int, ...]
    #: the step between windows
    stride: tuple[int, ...]
    #: the spacing of the window's taps (1: adjacent)
    dilation: tuple[int, ...]
    #: ``(before, after)`` zeros added on each axis
    padding: Pads

    @property
    def extent(self) -> tuple[int, ...]:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def pad_before(self) -> tuple[int, ...]:
        return tuple(before for before, _ in self.padding)

    def to_dict(self) -> dict[str, list[Any]]:
        """``{"kernel": [...], "stride": [...], "dilation": [...], "padding": [[b, a], ...]}``."""
        return {"kernel": list(self.kernel), "stride": list(self.stride),
                "dilation": list(self.dilation), "padding": [list(p) for p in self.padding]}


def resolve_window(kernel: Any, stride: Any, dilation: Any, padding: Any,
                   sizes: tuple[int, ...]) -> Window:
    """Every window option as one value per axis of an input of spatial ``sizes``;
    :class:`AxisCountError` names a list with the wrong number of entries."""
    dims = len(sizes)
    kernels, strides = per_axis(kernel, dims, "kernel"), per_axis(stride, dims, "stride")
    dilations = per_axis(dilation, dims, "dilation")
    extents = tuple(d * (k - 1) + 1 for k, d in zip(kernels, dilations))
    return Window(kernels, strides, dilations,
                  resolve_padding(padding, sizes, extents, strides))
