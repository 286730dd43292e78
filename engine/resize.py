"""Layers that change the spatial sizes without weights: resizing, pixel (un)shuffle,
padding and cropping.  No parameters; sizes are read off the arrays (and the layer's
options), never from the calculator's formulas.

Shapes (``N`` the batch, ``S`` the spatial sizes, ``d`` spatial axes):

- :class:`Upsample`        ``(N, C, *S) → (N, C, *out)``: ``out`` from ``size``, from
  ``floor(S·scale)``, or from a second input's spatial sizes (the reference, whose
  gradient is zero).  Separable: one axis after the other, each output position a
  weighted sum of at most 1 (nearest), 2 (linear) or 4 (cubic) input positions.
- :class:`PixelShuffle`    ``(N, C·r^d, *S) → (N, C, *(S·r))``.
- :class:`PixelUnshuffle`  ``(N, C, *(S·r)) → (N, C·r^d, *S)``.
- :class:`Pad`             ``(N, C, *S) → (N, C, *(S + pb + pa))`` by mode
  (:mod:`engine.padmodes`).
- :class:`Crop`            ``(N, C, *S) → (N, C, *out)``, ``out ≤ S``: a window of the
  input at offset ``(S − out) // 2`` (``center``) or 0 (``start``).

>>> import numpy as np
>>> from convcalc.spec import Upsample as UpsampleSpec
>>> up = Upsample(UpsampleSpec(type="upsample", name="up", scale=2), np.random.default_rng(0))
>>> up.forward([np.arange(3.0).reshape(1, 1, 3)])[0, 0].tolist()
[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
>>> up.backward(np.ones((1, 1, 6)))[0][0, 0].tolist()
[2.0, 2.0, 2.0]
"""

from __future__ import annotations

import math

from typing import Any, Sequence

import numpy as np

from convcalc import spec as specs

from .base import Layer
from .im2col import Index
from .padding import axis_names, per_axis, resolve_padding
from .padmodes import check_mode_padding, pad_by_mode, unpad_by_mode

__all__ = ["Upsample", "PixelShuffle", "PixelUnshuffle", "Pad", "Crop"]

#: PyTorch's cubic convolution constant (``upsample_bicubic2d``).
CUBIC_A = -0.75

#: The taps of a run of output positions along one axis: ``(indices, weights)`` pairs,
#: each ``indices`` an int array (non-decreasing) of one input position per output
#: position, ``weights`` a float array of the same length, or ``None`` for a weight of 1.
Taps = list[tuple[np.ndarray, "np.ndarray | None"]]


def _feature_map(layer: Layer, x: np.ndarray, what: str = "its input") -> int:
    """The number of spatial axes of ``x`` (``ValueError`` unless 1–3)."""
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{layer.name}: needs a feature map (N, C, *spatial) with 1–3 "
                         f"spatial axes, but {what} has shape {x.shape}")
    return x.ndim - 2


def _with_reference(layer: Layer, xs: Sequence[np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """``[x]`` or ``[x, reference]`` → ``(x, reference or None)``."""
    if isinstance(xs, np.ndarray) or not isinstance(xs, (list, tuple)):
        raise ValueError(f"{layer.name}: {layer.spec.type} takes a list of arrays")
    if not 1 <= len(xs) <= 2:
        raise ValueError(f"{layer.name}: {layer.spec.type} takes one input, or two "
                         f"(x and the reference whose size it takes), not {len(xs)}")
    x = np.asarray(xs[0])
    _feature_map(layer, x)
    if len(xs) == 1:
        return x, None
    ref = np.asarray(xs[1])
    _feature_map(layer, ref, "its reference")
    if ref.ndim != x.ndim:
        raise ValueError(f"{layer.name}: the reference has {ref.ndim - 2} spatial axes but "
                         f"the input has {x.ndim - 2}")
    return x, ref


def _target(layer: Layer, x: np.ndarray, ref: np.ndarray | None, option: Any) -> tuple[int, ...]:
    """The output's spatial sizes: the reference's, or the option's (one per axis)."""
    if ref is not None:
        return tuple(ref.shape[2:])
    return per_axis(option, x.ndim - 2, "size", layer.name)


def _scaled(layer: Layer, sizes: Sequence[int], scale: Any) -> tuple[int, ...]:
    """``floor(n·scale)`` per axis as PyTorch computes it: the product of two doubles,
    then the floor (``10 × 0.3`` is 3: the double product rounds up to it)."""
    scales = (scale,) * len(sizes) if isinstance(scale, (int, float)) else tuple(scale)
    if len(scales) != len(sizes):
        raise ValueError(f"{layer.name}: scale has {len(scales)} entries but the input has "
                         f"{len(sizes)} spatial axes ({', '.join(axis_names(len(sizes)))})")
    out = []
    for axis, n, s in zip(axis_names(len(sizes)), sizes, scales):
        size = math.floor(float(n) * float(s))
        if size < 1:
            raise ValueError(f"{layer.name}: {axis}: {n} × {s} leaves no output position")
        out.append(size)
    return tuple(out)


#: Output positions per table of taps: an axis longer than this is resized in runs of
#: this many positions, so the tables (not per example) stay small whatever the size.
TABLE = 4096


def _source(n_in: int, n_out: int, align_corners: bool, clamp: bool, dst: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.int64]:
    """The source coordinate of output positions ``dst`` as an exact ratio, split into
    its floor and remainder: ``src = floor + remainder / denominator`` with
    ``align_corners``: ``src = dst·(n_in − 1)/(n_out − 1)`` (0 for one output);
    else ``src = (dst + ½)·n_in/n_out − ½ = ((2·dst + 1)·n_in − n_out) / (2·n_out)``,
    raised to 0 where negative when ``clamp`` (linear; cubic reads past the edge)."""
    if align_corners:
        numerator, denominator = (dst * (n_in - 1), n_out - 1) if n_out > 1 else (0 * dst, 1)
    else:
        numerator, denominator = (2 * dst + 1) * n_in - n_out, 2 * n_out
        if clamp:
            numerator = np.maximum(numerator, 0)
    floor = numerator // denominator
    return floor, numerator - floor * denominator, np.int64(denominator)


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """PyTorch's cubic convolution coefficients for taps ``floor − 1 … floor + 2`` at
    fraction ``t`` (``get_cubic_upsample_coefficients``, ``A = −0.75``)."""
    a = CUBIC_A

    def near(x: np.ndarray) -> np.ndarray:       # |x| ≤ 1
        w: np.ndarray = ((a + 2) * x - (a + 3)) * x * x + 1
        return w

    def far(x: np.ndarray) -> np.ndarray:        # 1 < |x| < 2
        w: np.ndarray = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return w

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def resize_taps(n_in: int, n_out: int, mode: str, align_corners: bool, dtype: Any,
                start: int = 0, stop: int | None = None) -> Taps:
    """The taps of output positions ``start … stop − 1`` (default: all) of one axis
    resized from ``n_in`` to ``n_out`` positions.

    - ``nearest``: source ``floor(dst·n_in/n_out)``, computed in integers;
    - ``linear``: ``src`` as in :func:`_source` (clamped at 0), taps ``i0 = floor(src)``
      with weight ``1 − λ`` and ``min(i0 + 1, n_in − 1)`` with ``λ = src − i0``;
    - ``cubic``: taps ``i0 − 1 … i0 + 2`` (clamped into the input) with
      :func:`_cubic_weights` of ``t = src − i0``.

    The fraction is the exact remainder over the denominator, rounded once: exactly 0
    where the source falls on a sample, so those taps weigh exactly 0.

    >>> [(i.tolist(), None if w is None else w.tolist())
    ...  for i, w in resize_taps(2, 4, "linear", False, "float64")]
    [([0, 0, 0, 1], [1.0, 0.75, 0.25, 0.75]), ([1, 1, 1, 1], [0.0, 0.25, 0.75, 0.25])]
    """
    dst = np.arange(start, n_out if stop is None else stop, dtype=np.int64)
    if mode == "nearest":
        return [(dst * n_in // n_out, None)]
    floor, remainder, denominator = _source(n_in, n_out, align_corners, mode == "linear", dst)
    fraction = remainder / denominator
    if mode == "linear":
        upper = np.minimum(floor + 1, n_in - 1)
        return [(floor, (1 - fraction).astype(dtype)), (upper, fraction.astype(dtype))]
    return [(np.clip(floor - 1 + k, 0, n_in - 1), w.astype(dtype))
            for k, w in enumerate(_cubic_weights(fraction))]


def _along(array_ndim: int, axis: int, index: Any) -> tuple[Any, ...]:
    """An index of ``index`` along ``axis`` and everything along the others."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (array_ndim - axis - 1)


def _weighted(weights: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """``weights`` shaped to broadcast along ``axis`` of an ``ndim`` array."""
    return weights.reshape((1,) * axis + (-1,) + (1,) * (ndim - axis - 1))


def _runs(count: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of at most :data:`TABLE` output positions."""
    return [(start, min(start + TABLE, count)) for start in range(0, count, TABLE)]


def _sampled(x: np.ndarray, axis: int, taps: Taps) -> np.ndarray:
    """``Σ_taps w[o] · x[…, index[o], …]`` along ``axis``: a fresh array."""
    y = None
    for index, weights in taps:
        part = np.take(x, index, axis=axis)
        if weights is not None:
            part *= _weighted(weights, x.ndim, axis)
        if y is None:
            y = part
        else:
            y += part
        del part
    assert y is not None, "resize_taps gives every mode at least one tap"
    return y


def resize_axis(x: np.ndarray, axis: int, n_out: int, mode: str, align_corners: bool
                ) -> np.ndarray:
    """``x`` resized to ``n_out`` positions along ``axis`` (see :func:`resize_taps`):
    ``y[…, o, …] = Σ_taps w[o] · x[…, index[o], …]``, a fresh array; an axis longer than
    :data:`TABLE` is filled a run at a time."""
    n_in = x.shape[axis]
    if n_out <= TABLE:
        return _sampled(x, axis, resize_taps(n_in, n_out, mode, align_corners, x.dtype))
    y = np.empty(x.shape[:axis] + (n_out,) + x.shape[axis + 1:], x.dtype)
    for start, stop in _runs(n_out):
        y[_along(y.ndim, axis, slice(start, stop))] = _sampled(
            x, axis, resize_taps(n_in, n_out, mode, align_corners, x.dtype, start, stop))
    return y


def resize_axis_adjoint(dy: np.ndarray, axis: int, n_in: int, mode: str,
                        align_corners: bool) -> np.ndarray:
    """The adjoint of :func:`resize_axis`: each output position's gradient, weighted,
    added to the input positions it read.  Indices are non-decreasing, so each run of
    equal indices is summed at once (``np.add.reduceat``) and added to its distinct
    position."""
    n_out = dy.shape[axis]
    dx = np.zeros(dy.shape[:axis] + (n_in,) + dy.shape[axis + 1:], dy.dtype)
    for start, stop in _runs(n_out):
        block = dy[_along(dy.ndim, axis, slice(start, stop))]
        for index, weights in resize_taps(n_in, n_out, mode, align_corners, dy.dtype,
                                          start, stop):
            part = block if weights is None else block * _weighted(weights, dy.ndim, axis)
            first = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
            dx[_along(dx.ndim, axis, index[first])] += np.add.reduceat(part, first, axis=axis)
            del part
    return dx


class Upsample(Layer):
    """``upsample``: ``[x (N, C, *S)]`` or ``[x, ref (N, C', *out)]`` → ``(N, C, *out)``
    (see :func:`resize_taps`).

    Per axis the output size is ``size``, ``floor(n·scale)`` (exactly) or the
    reference's; the source positions use ``n_in/n_out`` whether ``scale`` or ``size``
    gave ``n_out`` (PyTorch uses ``1/scale`` when it is passed ``scale_factor``), and
    ``nearest``'s source is exact (PyTorch's is computed in single precision and falls
    one short for some sizes: see ``convcalc.kinds.resize.UpsampleKind``).  An axis
    whose size does not change is left alone (every mode is the identity there), and an
    input whose sizes all stay is returned itself.  Backward: the adjoint, axes in the
    reverse order; the reference's gradient is zero.
    """

    spec_model = specs.Upsample
    many_inputs = True

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        x, ref = _with_reference(self, xs)
        sizes = x.shape[2:]
        if ref is None and self.spec.scale is not None:
            out = _scaled(self, sizes, self.spec.scale)
        else:
            out = _target(self, x, ref, self.spec.size)
        #: (array axis, input size, output size) of every axis that changes
        self._plan = [(2 + axis, n, m) for axis, (n, m) in enumerate(zip(sizes, out)) if n != m]
        self._reference = None if ref is None else ref.shape
        y = x
        for axis, _, m in self._plan:
            y = resize_axis(y, axis, m, self.spec.mode, self.spec.align_corners)
        return y

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        dx = np.asarray(dout)
        for axis, n, _ in reversed(self._plan):
            dx = resize_axis_adjoint(dx, axis, n, self.spec.mode, self.spec.align_corners)
        if self._reference is None:
            return [dx]
        return [dx, np.zeros(self._reference, dx.dtype)]


def _shuffle_factor(layer: Layer) -> int:
    return int(layer.spec.factor)


class PixelShuffle(Layer):
    """``pixel_shuffle``: ``(N, C·r^d, *S) → (N, C, *(S·r))``,
    ``y[n, c, s₁·r + i₁, …, s_d·r + i_d] = x[n, c·r^d + (i₁·r^(d−1) + … + i_d), s₁, …, s_d]``
    — PyTorch's channel order (``F.pixel_shuffle``: the channels as ``(C, r, r)``,
    interleaved with ``H`` and ``W``), in 1, 2 or 3 axes."""

    spec_model = specs.PixelShuffle

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        dims = _feature_map(self, x)
        r = _shuffle_factor(self)
        batch, channels, sizes = x.shape[0], x.shape[1], x.shape[2:]
        if channels % r ** dims:
            raise ValueError(f"{self.name}: {channels} channels do not divide by "
                             f"{r}^{dims} = {r ** dims}")
        kept = channels // r ** dims
        # (N, C, r…, S…) → (N, C, S₁, r, S₂, r, …)
        split = x.reshape(batch, kept, *(r,) * dims, *sizes)
        order = [0, 1] + [axis for a in range(dims) for axis in (2 + dims + a, 2 + a)]
        self._input_shape = x.shape
        return np.ascontiguousarray(split.transpose(order)).reshape(
            batch, kept, *(n * r for n in sizes))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dims = len(self._input_shape) - 2
        r = _shuffle_factor(self)
        batch, kept = dout.shape[:2]
        sizes = self._input_shape[2:]
        split = np.asarray(dout).reshape(batch, kept, *(s for n in sizes for s in (n, r)))
        order = [0, 1] + [2 + 2 * a + 1 for a in range(dims)] + [2 + 2 * a for a in range(dims)]
        return np.ascontiguousarray(split.transpose(order)).reshape(self._input_shape)


class PixelUnshuffle(Layer):
    """``pixel_unshuffle``: ``(N, C, *(S·r)) → (N, C·r^d, *S)``, the inverse of
    :class:`PixelShuffle` (``F.pixel_unshuffle``'s order); every spatial size must
    divide by ``r``."""

    spec_model = specs.PixelUnshuffle

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        dims = _feature_map(self, x)
        r = _shuffle_factor(self)
        batch, channels, sizes = x.shape[0], x.shape[1], x.shape[2:]
        uneven = [f"{axis}: {n}" for axis, n in zip(axis_names(dims), sizes) if n % r]
        if uneven:
            raise ValueError(f"{self.name}: the sizes must divide by the factor {r} "
                             f"({', '.join(uneven)})")
        split = x.reshape(batch, channels, *(s for n in sizes for s in (n // r, r)))
        order = [0, 1] + [2 + 2 * a + 1 for a in range(dims)] + [2 + 2 * a for a in range(dims)]
        self._input_shape = x.shape
        return np.ascontiguousarray(split.transpose(order)).reshape(
            batch, channels * r ** dims, *(n // r for n in sizes))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dims = len(self._input_shape) - 2
        r = _shuffle_factor(self)
        batch, channels = self._input_shape[:2]
        split = np.asarray(dout).reshape(batch, channels, *(r,) * dims, *dout.shape[2:])
        order = [0, 1] + [axis for a in range(dims) for axis in (2 + dims + a, 2 + a)]
        return np.ascontiguousarray(split.transpose(order)).reshape(self._input_shape)


class Pad(Layer):
    """``pad``: ``(N, C, *S) → (N, C, *(S + pb + pa))`` by ``mode``
    (:func:`engine.padmodes.pad_by_mode`); backward: its adjoint."""

    spec_model = specs.Pad

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        dims = _feature_map(self, x)
        sizes = x.shape[2:]
        ones = (1,) * dims
        self._pads = resolve_padding(self.spec.padding, sizes, ones, ones, ones, self.name)
        check_mode_padding(sizes, self._pads, self.spec.mode, self.name)
        return pad_by_mode(x, self._pads, self.spec.mode, self.spec.value)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return unpad_by_mode(np.asarray(dout), self._pads, self.spec.mode)


class Crop(Layer):
    """``crop``: ``[x (N, C, *S)]`` or ``[x, ref (N, C', *out)]`` → ``(N, C, *out)``:
    ``x[…, o : o + out]`` per axis with ``o = (S − out) // 2`` (``center``) or 0
    (``start``); every ``out ≤ S``.  Backward: ``dy`` in place, zeros around it; the
    reference's gradient is zero."""

    spec_model = specs.Crop
    many_inputs = True

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        x, ref = _with_reference(self, xs)
        sizes = x.shape[2:]
        out = _target(self, x, ref, self.spec.size)
        larger = [f"{axis}: {m} > {n}" for axis, n, m in zip(axis_names(len(sizes)), sizes, out)
                  if m > n]
        if larger:
            raise ValueError(f"{self.name}: the crop is larger than its input "
                             f"({', '.join(larger)})")
        starts = [(n - m) // 2 if self.spec.anchor == "center" else 0
                  for n, m in zip(sizes, out)]
        self._window: Index = (Ellipsis, *(slice(s, s + m) for s, m in zip(starts, out)))
        self._shapes = (x.shape, None if ref is None else ref.shape)
        return x[self._window].copy()

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        x_shape, ref_shape = self._shapes
        dx = np.zeros(x_shape, dout.dtype)
        dx[self._window] = dout
        return [dx] if ref_shape is None else [dx, np.zeros(ref_shape, dout.dtype)]
