"""PyTorch's ops for the resizing kinds (upsample, pixel_shuffle, pixel_unshuffle, pad,
crop): the values the engine's layers in ``engine/resize.py`` are held to
(tests/test_kinds.py).

- ``upsample``: ``F.interpolate`` with ``size=`` (never ``scale_factor``, whose source
  positions use ``1/scale`` instead of ``in/out``); the output size is the spec's
  ``floor(n·scale)`` of the float's exact value, or ``size``, or the reference's.
  ``nearest`` is ``nearest``, ``linear`` is ``linear``/``bilinear``/``trilinear`` by the
  number of axes.  PyTorch has cubic interpolation in 2-D only (``bicubic``), which is
  separable (each output the 1-D cubic along W of the 1-D cubics along H); so 1-D cubic
  is ``bicubic`` with a size-1 W axis (1 → 1: the identity), and 3-D cubic is
  ``bicubic`` over (H, W) with D as a batch axis, then over (D, H·W) with H·W kept.
- ``pixel_shuffle`` / ``pixel_unshuffle``: ``F.pixel_shuffle`` / ``F.pixel_unshuffle``
  (2-D only in PyTorch: they take the last two axes as H and W, and anything before as
  batch).  The 1-D case uses the 2-D op on an extra W axis of size ``r`` whose other
  columns are zeros; the 3-D case is the 2-D op over (H, W) with D as a batch axis and
  the 1-D case along D — in PyTorch's channel order, channel ``c·r^d + (i₁·r^(d−1) + … +
  i_d)`` going to offset ``(i₁, …, i_d)``.
- ``pad``: ``F.pad`` with ``constant`` (``value``), ``reflect``, ``replicate`` or
  ``circular``.
- ``crop``: slicing.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor
from typing import Any

from torch_reference import _torch_pads, reference

from engine.padding import per_axis, resolve_padding


def _functional() -> Any:
    import torch.nn.functional as functional

    return functional


def _out_sizes(layer: Any, inputs: list) -> tuple[int, ...]:
    """The spec's output sizes: the reference's, ``size``, or ``floor(n·scale)``."""
    x = inputs[0]
    sizes = tuple(x.shape[2:])
    if len(inputs) > 1:
        return tuple(inputs[1].shape[2:])
    if layer.scale is None:
        return per_axis(layer.size, len(sizes), "size")
    scales = layer.scale if isinstance(layer.scale, tuple) else (layer.scale,) * len(sizes)
    return tuple(floor(n * Fraction(s)) for n, s in zip(sizes, scales))


def _bicubic(x: Any, size: tuple[int, int], align_corners: bool) -> Any:
    return _functional().interpolate(x, size=size, mode="bicubic", align_corners=align_corners)


def _cubic(x: Any, out: tuple[int, ...], align_corners: bool) -> Any:
    """Cubic interpolation in 1, 2 or 3 axes from PyTorch's ``bicubic`` (see above)."""
    if len(out) == 2:
        return _bicubic(x, out, align_corners)
    if len(out) == 1:
        return _bicubic(x[..., None], (out[0], 1), align_corners)[..., 0]
    n, c, d, h, w = x.shape
    planes = _bicubic(x.reshape(n, c * d, h, w), out[1:], align_corners)
    depth = _bicubic(planes.reshape(n, c, d, out[1] * out[2]), (out[0], out[1] * out[2]),
                     align_corners)
    return depth.reshape(n, c, *out)


@reference("upsample")
def upsample(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    x = inputs[0]
    out = _out_sizes(layer, inputs)
    if layer.mode == "cubic":
        return _cubic(x, out, layer.align_corners)
    if layer.mode == "nearest":
        return _functional().interpolate(x, size=out, mode="nearest")
    mode = ("linear", "bilinear", "trilinear")[len(out) - 1]
    return _functional().interpolate(x, size=out, mode=mode, align_corners=layer.align_corners)


def _shuffle_1d(x: Any, r: int) -> Any:
    """``(N, C·r, L) → (N, C, L·r)`` by ``F.pixel_shuffle`` on ``(N, C·r², L, 1)`` whose
    channels ``(c·r + i)·r + j`` hold ``x[c·r + i]`` for ``j = 0`` and zeros else."""
    import torch

    n, channels, length = x.shape
    spread = torch.cat([x[:, :, None], x.new_zeros(n, channels, r - 1, length)], dim=2)
    return _functional().pixel_shuffle(spread.reshape(n, channels * r, length, 1), r)[..., 0]


def _unshuffle_1d(x: Any, r: int) -> Any:
    """``(N, C, L·r) → (N, C·r, L)`` by ``F.pixel_unshuffle`` on ``(N, C, L·r, r)`` whose
    first column is ``x`` (the others zeros): channels ``(c·r + i)·r + 0`` are kept."""
    import torch

    n, channels, length = x.shape
    wide = torch.cat([x[..., None], x.new_zeros(n, channels, length, r - 1)], dim=3)
    y = _functional().pixel_unshuffle(wide, r)                      # (N, C·r², L/r, 1)
    return y.reshape(n, channels * r, r, length // r)[:, :, 0]


def _along_depth(x: Any, op: Any) -> Any:
    """A 1-D op along D of ``(N, C, D, H, W)``, H and W as batch axes."""
    n, c, d, h, w = x.shape
    flat = x.permute(0, 3, 4, 1, 2).reshape(n * h * w, c, d)
    y = op(flat)
    return y.reshape(n, h, w, y.shape[1], y.shape[2]).permute(0, 3, 4, 1, 2)


def _over_planes(x: Any, op: Any) -> Any:
    """A 2-D op over (H, W) of ``(N, C, D, H, W)``, D as a batch axis."""
    n, c, d, h, w = x.shape
    y = op(x.permute(0, 2, 1, 3, 4).reshape(n * d, c, h, w))
    return y.reshape(n, d, *y.shape[1:]).permute(0, 2, 1, 3, 4)


@reference("pixel_shuffle")
def pixel_shuffle(layer: Any, params: dict, buffers: dict, inputs: list,
                  engine_layer: Any) -> Any:
    functional = _functional()
    (x,) = inputs
    r = layer.factor
    if x.dim() == 4:
        return functional.pixel_shuffle(x, r)
    if x.dim() == 3:
        return _shuffle_1d(x, r)
    planes = _over_planes(x, lambda t: functional.pixel_shuffle(t, r))   # channels c·r + i
    return _along_depth(planes, lambda t: _shuffle_1d(t, r))


@reference("pixel_unshuffle")
def pixel_unshuffle(layer: Any, params: dict, buffers: dict, inputs: list,
                    engine_layer: Any) -> Any:
    functional = _functional()
    (x,) = inputs
    r = layer.factor
    if x.dim() == 4:
        return functional.pixel_unshuffle(x, r)
    if x.dim() == 3:
        return _unshuffle_1d(x, r)
    depth = _along_depth(x, lambda t: _unshuffle_1d(t, r))             # channels c·r + i
    return _over_planes(depth, lambda t: functional.pixel_unshuffle(t, r))


@reference("pad")
def pad(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    dims = x.dim() - 2
    ones = (1,) * dims
    pads = resolve_padding(layer.padding, tuple(x.shape[2:]), ones, ones, ones)
    if layer.mode == "zeros":
        return _functional().pad(x, _torch_pads(pads), mode="constant", value=layer.value)
    return _functional().pad(x, _torch_pads(pads), mode=layer.mode)


@reference("crop")
def crop(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    x = inputs[0]
    sizes = tuple(x.shape[2:])
    out = tuple(inputs[1].shape[2:]) if len(inputs) > 1 else \
        per_axis(layer.size, len(sizes), "size")
    starts = [(n - m) // 2 if layer.anchor == "center" else 0 for n, m in zip(sizes, out)]
    return x[(slice(None), slice(None), *(slice(s, s + m) for s, m in zip(starts, out)))]
