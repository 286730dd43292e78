"""Padding by mode, and its adjoint: what the ``pad`` layer and a ``conv`` with a
``padding_mode`` other than ``zeros`` do to their input (PyTorch's ``F.pad`` modes).

Per spatial axis of size ``n`` padded by ``(pb, pa)``, padded position ``j`` holds input
position ``i = j − pb`` when ``0 ≤ i < n``, and otherwise:

- ``zeros``: the constant ``value``;
- ``reflect``: the input mirrored without its edge, ``−i`` before and ``2(n − 1) − i``
  after (needs ``pb, pa < n``);
- ``replicate``: the edge repeated, ``clip(i, 0, n − 1)`` (needs ``n ≥ 1``);
- ``circular``: the input wrapped around, ``i mod n`` (needs ``pb, pa ≤ n``).

Axes are padded one after the other (the corners of the later axes read the earlier
axes' padding), which is the same as mapping every axis at once: F.pad's result.

>>> import numpy as np
>>> x = np.arange(4.0).reshape(1, 1, 4)
>>> for mode in MODES:
...     print(mode, pad_by_mode(x, ((2, 3),), mode)[0, 0].tolist())
zeros [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0]
reflect [2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0]
replicate [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]
circular [2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0]

The adjoint sends each padded position's gradient to the input position it copies:

>>> unpad_by_mode(np.ones((1, 1, 9)), ((2, 3),), "replicate")[0, 0].tolist()
[3.0, 1.0, 1.0, 4.0]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .im2col import Index, IndexEntry, pad
from .padding import axis_names

MODES = ("zeros", "reflect", "replicate", "circular")

Pads = Sequence[tuple[int, int]]


def check_mode_padding(sizes: Sequence[int], pads: Pads, mode: str, layer: str) -> None:
    """``ValueError`` naming the axis, the padding and the size when ``mode`` cannot pad
    that much: reflect needs padding < size, circular padding ≤ size, replicate a
    non-empty axis."""
    if mode not in MODES:
        raise ValueError(f"{layer}: padding mode must be one of {', '.join(MODES)} "
                         f"(got {mode!r})")
    problems = []
    for axis, n, (pb, pa) in zip(axis_names(len(sizes)), sizes, pads):
        widest = max(pb, pa)
        if mode == "reflect" and widest >= n:
            problems.append(f"{axis}: reflect padding {widest} must be smaller than the "
                            f"input size {n}")
        elif mode == "circular" and widest > n:
            problems.append(f"{axis}: circular padding {widest} must be at most the input "
                            f"size {n}")
    if problems:
        raise ValueError(f"{layer}: " + "; ".join(problems))


def _sources(n: int, positions: np.ndarray, mode: str) -> np.ndarray:
    """The input positions that padded input positions ``positions`` (``< 0`` or
    ``≥ n``) copy."""
    if mode == "reflect":
        return np.where(positions < 0, -positions, 2 * (n - 1) - positions)
    if mode == "replicate":
        clipped: np.ndarray = np.clip(positions, 0, n - 1)
        return clipped
    return positions % n


def _borders(n: int, before: int, after: int, mode: str
             ) -> tuple[tuple[slice, np.ndarray], tuple[slice, np.ndarray]]:
    """Along one axis: the padded slices before and after the input, each with the
    input positions it copies."""
    ahead = np.arange(-before, 0)
    behind = np.arange(n, n + after)
    return ((slice(0, before), _sources(n, ahead, mode)),
            (slice(before + n, before + n + after), _sources(n, behind, mode)))


def pad_by_mode(x: np.ndarray, pads: Pads, mode: str, value: float = 0.0,
                out: np.ndarray | None = None) -> np.ndarray:
    """``x (N, C, *n) → (N, C, *(n + pb + pa))`` padded by ``mode`` (``value`` for
    ``zeros``); a fresh array (or ``out``, a buffer of that shape and ``x``'s dtype),
    even when nothing is padded.  The sizes must suit the mode
    (:func:`check_mode_padding`)."""
    lead = x.ndim - len(pads)
    sizes = x.shape[lead:]
    shape = x.shape[:lead] + tuple(n + pb + pa for n, (pb, pa) in zip(sizes, pads))
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.empty(shape, x.dtype)
    if mode == "zeros":
        if not any(pb or pa for pb, pa in pads):
            out[...] = x
            return out
        return pad(x, tuple(pads), value, out=out)
    inner = tuple(slice(pb, pb + n) for n, (pb, _) in zip(sizes, pads))
    inside: Index = (Ellipsis, *inner)
    out[inside] = x
    for axis, (n, (pb, pa)) in enumerate(zip(sizes, pads)):
        # axes before this one are padded already, axes after it not yet
        region: list[IndexEntry] = \
            [slice(None)] * lead + [slice(None)] * axis + [None] + list(inner[axis + 1:])
        for where, sources in _borders(n, pb, pa, mode):
            if sources.size:
                region[lead + axis] = pb + sources
                read = out[tuple(region)]
                region[lead + axis] = where
                out[tuple(region)] = read
    return out


def unpad_by_mode(dy: np.ndarray, pads: Pads, mode: str) -> np.ndarray:
    """The adjoint of :func:`pad_by_mode`: ``dy (N, C, *(n + pb + pa)) → dx (N, C, *n)``,
    each padded position's gradient added to the input position it copies (``zeros``:
    dropped, one cropped copy).  A fresh array; ``dy`` is not modified.  Other modes undo
    the axes last first, each step an array smaller along one axis."""
    lead = dy.ndim - len(pads)
    if mode == "zeros":
        inside: Index = (Ellipsis, *(slice(pb, n - pa) for n, (pb, pa) in
                                     zip(dy.shape[lead:], pads)))
        return dy[inside].copy()
    g = dy
    for axis in range(len(pads) - 1, -1, -1):
        pb, pa = pads[axis]
        if not pb and not pa:
            continue
        n = g.shape[lead + axis] - pb - pa
        where: list[IndexEntry] = [slice(None)] * g.ndim
        where[lead + axis] = slice(pb, pb + n)
        kept = g[tuple(where)].copy()
        for border, sources in _borders(n, pb, pa, mode):
            if not sources.size:
                continue
            where[lead + axis] = border
            part = g[tuple(where)]
            if mode == "replicate":   # every position of one side copies the same edge
                where[lead + axis] = slice(sources[0], sources[0] + 1)
                kept[tuple(where)] += part.sum(axis=lead + axis, keepdims=True)
            else:                     # no input position is copied twice on one side
                where[lead + axis] = sources
                kept[tuple(where)] += part
            del part                  # a view: it would keep this step's input alive
        g = kept
    return g if g is not dy else dy.copy()
