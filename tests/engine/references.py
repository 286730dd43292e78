"""Independent references for the engine tests, written from the rules and not from the
engine: per-axis options and where windows start (for the naive conv/pool loops of
test_conv.py and test_pool.py), centred-difference gradients, and the check that a
layer leaves its arguments alone."""

from __future__ import annotations

from typing import Callable

import numpy as np


def as_tuple(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


def as_pairs(padding, dims):
    return [(p, p) if isinstance(p, int) else tuple(p) for p in as_tuple(padding, dims)]


def window_starts(n, pb, pa, extent, stride, ceil):
    """Where windows start along one axis.

    Floor: every multiple of the stride whose window ends inside the padded input.
    Ceil: if those windows leave padded positions uncovered at the end, one more window
    (hanging past the end), unless it would start at or past n + pb (PyTorch drops it).
    """
    padded = n + pb + pa
    starts = list(range(0, padded - extent + 1, stride))
    if ceil and starts[-1] + extent < padded and starts[-1] + stride < n + pb:
        starts.append(starts[-1] + stride)
    return starts


def numerical_gradient(loss: Callable[[], float], array: np.ndarray,
                       h: float = 1e-6) -> np.ndarray:
    """``dL/darray`` by centred differences; ``array`` is perturbed in place and restored."""
    grad = np.zeros_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + h
        plus = loss()
        array[index] = original - h
        minus = loss()
        array[index] = original
        grad[index] = (plus - minus) / (2 * h)
    return grad


def assert_leaves_arguments_alone(layer, x: np.ndarray, rng: np.random.Generator) -> None:
    """Two forward/backward passes (the second reuses the layer's workspaces) must not
    change ``x`` or ``dy``."""
    x_before = x.copy()
    dy = rng.standard_normal(layer.forward(x).shape)
    dy_before = dy.copy()
    for _ in range(2):
        layer.forward(x)
        layer.backward(dy)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)
