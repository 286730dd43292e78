"""Helpers of the naive reference implementations in test_conv.py and test_pool.py:
per-axis options and where windows start, written from the rules, not from the engine."""

from __future__ import annotations


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
