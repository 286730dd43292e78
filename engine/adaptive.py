"""Adaptive average and max pooling: ``(N, C, *n) → (N, C, *out)`` for a fixed ``out``.

PyTorch's windows, axis by axis: output ``i`` of ``m`` along an axis of ``n`` reads the
inputs ``floor(i·n/m)`` … ``ceil((i+1)·n/m) − 1`` — windows that differ in size, and
whose neighbours share a position, when ``n`` is not a multiple of ``m``; ``m`` may
exceed ``n`` (windows of one or two positions).  A box of such windows is the product
of one window per axis, so both pools run one axis at a time — the mean of a box is
the mean of the means along each axis, its maximum the maximum of the maxima — the
last spatial axis first, which makes the winner of a tie the first in C (row-major)
order within the box, as PyTorch's.  An axis with ``n = m`` is left alone (windows of
one position).  No parameters.

>>> import numpy as np
>>> from convcalc.spec import AdaptivePool as AdaptivePoolSpec
>>> pool = AdaptivePool(AdaptivePoolSpec(type="adaptive_avgpool", name="ap", output=2),
...                     np.random.default_rng(0), "float64")
>>> pool.forward(np.arange(5.0).reshape(1, 1, 5))     # windows 0…2 and 2…4
array([[[1., 3.]]])
>>> pool.backward(np.ones((1, 1, 2)))                 # position 2 is in both
array([[[0.33333333, 0.33333333, 0.66666667, 0.33333333, 0.33333333]]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcalc import spec as specs

from .base import Layer
from .padding import per_axis

__all__ = ["AdaptivePool", "windows"]


def windows(n: int, m: int) -> list[tuple[int, int]]:
    """PyTorch's ``m`` adaptive windows over ``n`` positions, as ``(start, stop)``.

    >>> windows(5, 3), windows(2, 3)
    ([(0, 2), (1, 4), (3, 5)], [(0, 1), (0, 2), (1, 2)])
    """
    return [(i * n // m, -(-(i + 1) * n // m)) for i in range(m)]


def _at(axis: int, index: Any) -> tuple[Any, ...]:
    """An index into ``axis`` (every axis before it whole)."""
    return (slice(None),) * axis + (index,)


class AdaptivePool(Layer):
    """``adaptive_avgpool`` / ``adaptive_maxpool`` from a :class:`convcalc.spec.AdaptivePool`
    model (``output``: one size for every spatial axis, or one per axis).

    Forward, one axis at a time: each window of the axis reduced (mean, or max with its
    arg-max kept for backward: an ``intp`` array the size of that step's output).
    Backward, the steps in reverse: the mean's gradient spread evenly over its window,
    the max's sent to its winner; windows that share a position add up.
    """

    spec_model = specs.AdaptivePool

    def __init__(self, spec: Any, rng: Any, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.average = spec.type == "adaptive_avgpool"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 3:
            raise ValueError(f"{self.name}: needs a feature map (N, C, *spatial) but its input "
                             f"has shape {x.shape}")
        out = per_axis(self.spec.output, x.ndim - 2, "output", self.name)
        self._steps: list[tuple[int, tuple[int, ...], list[tuple[int, int]], Any]] = []
        y = x
        for axis in range(x.ndim - 1, 1, -1):      # the last axis first (ties: C order)
            n, m = y.shape[axis], out[axis - 2]
            if n == m:
                continue
            y = self._reduce(y, axis, windows(n, m))
        return y if y is not x else x.copy()

    def _reduce(self, x: np.ndarray, axis: int, spans: list[tuple[int, int]]) -> np.ndarray:
        """One step: every window of ``axis`` reduced to one position."""
        shape = x.shape[:axis] + (len(spans),) + x.shape[axis + 1:]
        y = np.empty(shape, dtype=x.dtype)
        winners = None if self.average else np.zeros(shape, dtype=np.intp)
        for i, (start, stop) in enumerate(spans):
            part, target = x[_at(axis, slice(start, stop))], y[_at(axis, i)]
            if self.average:
                np.sum(part, axis=axis, out=target)
                target /= stop - start
            else:
                _window_max(part, axis, target, winners[_at(axis, i)])  # type: ignore[index]
        self._steps.append((axis, x.shape, spans, winners))
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        grad = dout
        for axis, shape, spans, winners in reversed(self._steps):
            grad = self._spread(grad, axis, shape, spans, winners)
        return grad if grad is not dout else dout.copy()

    def _spread(self, grad: np.ndarray, axis: int, shape: tuple[int, ...],
                spans: list[tuple[int, int]], winners: Any) -> np.ndarray:
        """One step back: ``grad`` (the step's output) to the step's input ``shape``."""
        dx = np.zeros(shape, dtype=grad.dtype)
        for i, (start, stop) in enumerate(spans):
            share = grad[_at(axis, slice(i, i + 1))]
            target = dx[_at(axis, slice(start, stop))]
            if self.average:
                target += share / (stop - start)
                continue
            # add to the winner (a neighbouring window may have sent it something too)
            where = winners[_at(axis, slice(i, i + 1))]
            np.put_along_axis(target, where, np.take_along_axis(target, where, axis) + share,
                              axis=axis)
        return dx


def _window_max(part: np.ndarray, axis: int, out: np.ndarray, winners: np.ndarray) -> None:
    """The maximum of ``part`` along ``axis`` into ``out`` and its first position into
    ``winners``, one position of the window at a time (``np.argmax`` would copy a
    strided window whole)."""
    np.copyto(out, part[_at(axis, 0)])
    for t in range(1, part.shape[axis]):
        value = part[_at(axis, t)]
        better = value > out
        winners[better] = t
        np.maximum(out, value, out=out)
