"""Convolution and transposed convolution layers, forward and backward, via im2col.

Convolution here is cross-correlation (the kernel is not flipped), as in every
deep-learning framework.  Shapes, with ``g`` groups and ``K = kh·kw`` kernel offsets:

* :class:`Conv`: ``x (N, C, *n) → y (N, F, *out)``, weight ``(F, C/g, *kernel)``, bias
  ``(F,)``.  ``y[n, f] = b[f] + Σ_{c in f's group} Σ_offsets W[f, c, offset] ·
  x_pad[n, c, out·stride + offset·dilation]``.  Per group it is one matrix product
  ``(F/g, C/g·K) @ (C/g·K, OH·OW)`` on the columns of :func:`engine.im2col.unfold`,
  batched over the images and the groups with ``np.matmul`` — or, for small images
  with a long reduction, one product over the whole batch (:class:`_Layout`).
* :class:`ConvTranspose`: ``x (N, C, *n) → y (N, F, *out)``, weight
  ``(C, F/g, *kernel)``, bias ``(F,)``: the adjoint of a convolution.  Each input
  element scatters ``W[c]`` times itself into an uncropped output of size
  ``(n − 1)·s + e + output_padding`` per axis (col2im), which is then cropped by the
  padding: ``out = (n − 1)·s − pb − pa + e + output_padding``.

Dense 3×3 stride-1 convolutions with enough channels skip the columns: they run
Winograd F(4×4, 3×3) (:mod:`engine.winograd`, same numbers up to rounding).

Backward of :class:`Conv`: ``dWᵀ = Σ_n cols_n @ dy_nᵀ``, ``db = Σ dy``, and
``dx = col2im(Wᵀ @ dy)`` — or, for stride 1, ``dx`` = ``dy`` (padded by ``e − 1 − p``)
correlated with the flipped kernel, which skips col2im.  For :class:`ConvTranspose` the
roles swap (``dx = W @ im2col(dy)``).  Big column buffers are kept on the layer and
reused between calls (they never leave it; outputs are fresh arrays).

Output sizes are read off the arrays numpy builds (the sliding-window view of the
padded input), never computed from an output-size formula.

>>> import numpy as np
>>> from convcalc.spec import Conv as ConvSpec
>>> spec = ConvSpec(type="conv", name="conv1", filters=10, kernel=5, padding=2)
>>> layer = Conv(spec, np.random.default_rng(0), np.float32)
>>> layer.forward(np.zeros((2, 3, 32, 32), np.float32)).shape   # BRIEF example 1
(2, 10, 32, 32)
>>> layer.params["weight"].shape, layer.params["bias"].shape
((10, 3, 5, 5), (10,))
>>> layer.backward(np.ones((2, 10, 32, 32), np.float32)).shape
(2, 3, 32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from math import prod
from typing import Any

import numpy as np

from convcalc import spec as specs
from engine import winograd
from engine.base import Layer
from engine.im2col import Index, crop, fold, pad, unfold, windows
from engine.padding import Window, axis_names, per_axis, resolve_padding, resolve_window
from engine.padmodes import check_mode_padding, pad_by_mode, unpad_by_mode

__all__ = ["Conv", "ConvTranspose"]


def _spatial_dims(layer: str, x: np.ndarray) -> int:
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{layer}: needs a feature map (N, C, *spatial) with 1–3 spatial "
                         f"axes (got shape {x.shape})")
    return x.ndim - 2


def _check_groups(layer: str, groups: int, channels: int, filters: int,
                  depthwise: bool = False) -> None:
    if channels % groups:
        raise ValueError(f"{layer}: {groups} groups do not divide the {channels} input channels")
    if filters % groups:
        raise ValueError(f"{layer}: {groups} groups do not divide the {filters} filters"
                         + (" (depthwise: filters must be a multiple of the input channels)"
                            if depthwise else ""))


def _allocate_weights(layer: Layer, channels: int, shape: tuple[int, ...]) -> None:
    """He-normal weights of ``shape`` (fan_in = ``prod(shape[1:])``) and zero biases, on
    the first call; later calls check that the input still fits them."""
    if "weight" in layer.params:
        if layer.params["weight"].shape != shape:
            raise ValueError(f"{layer.name}: weights {layer.params['weight'].shape} do not "
                             f"fit an input with {channels} channels (need {shape})")
        return
    layer.params["weight"] = _he_normal(layer.rng, shape, prod(shape[1:]), layer.dtype)
    if layer.spec.bias:
        layer.params["bias"] = np.zeros(layer.spec.filters, layer.dtype)
    layer.zero_grads()


def _he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int,
               dtype: np.dtype) -> np.ndarray:
    """He-normal initialisation: ``N(0, 2 / fan_in)``."""
    weights: np.ndarray = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    return weights


def _channel_sum(dy: np.ndarray) -> np.ndarray:
    """``Σ`` over batch and spatial axes: ``(N, F, *out) → (F,)`` (the bias gradient)."""
    sums: np.ndarray = dy.sum(axis=(0, *range(2, dy.ndim)))
    return sums


def _workspace(layer: Layer, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A scratch array kept on the layer and reused while shape and dtype stay the same.

    Big column buffers cost as much to page in as to fill; reusing last call's buffer
    skips that.  Scratch arrays never leave the layer (outputs are fresh arrays).
    """
    spaces: dict[str, np.ndarray] = layer.__dict__.setdefault("_workspaces", {})
    buffer = spaces.get(name)
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        buffer = spaces[name] = np.empty(shape, dtype)
    return buffer


def _padded(layer: Layer, name: str, a: np.ndarray, pads: tuple[tuple[int, int], ...]
            ) -> np.ndarray:
    """``pad(a, pads)`` (zeros) written into the layer's workspace ``name``."""
    if not any(pb or pa for pb, pa in pads):
        return a
    shape = a.shape[:2] + tuple(n + pb + pa for n, (pb, pa) in zip(a.shape[2:], pads))
    return pad(a, pads, out=_workspace(layer, name, shape, a.dtype))


@dataclass(frozen=True)
class _Layout:
    """Where the batch axis sits in the column matrices of one convolution.

    Columns and gradients are handled as 4-D stacks ``(B, g, rows, Q)`` of per-group
    matrices, multiplied with one ``np.matmul``:

    * ``batch_last=False``: ``B = N``, ``Q = P`` (positions per image) — a batched
      matmul, one product per image; the result is already batch-first.
    * ``batch_last=True``: ``B = 1``, ``Q = N·P`` — one product over the whole batch
      (columns ``(C, *k, N, *out)``), which BLAS runs faster when each image's product
      would be small; results need one transpose back to batch-first.
    """

    batch_last: bool
    batch: int
    groups: int

    @staticmethod
    def choose(batch: int, positions: int, per_group: int, groups: int) -> "_Layout":
        """One product over the batch when images are small (P < 1024 output positions)
        and the reduction is long (C/g·K ≥ 128); else one product per image."""
        return _Layout(batch > 1 and positions < 1024 and per_group >= 128, batch, groups)

    def stack(self, cols: np.ndarray, per_group: int, positions: int) -> np.ndarray:
        """Columns from :func:`unfold` (with ``batch_last`` as here) → ``(B, g, C/g·K, Q)``."""
        if self.batch_last:
            return cols.reshape(1, self.groups, per_group, self.batch * positions)
        return cols.reshape(self.batch, self.groups, per_group, positions)

    def rows(self, a: np.ndarray, positions: int) -> np.ndarray:
        """``(N, F, *out)`` → ``(B, g, Q, F/g)`` (a view, or a copy for ``batch_last``, N > 1)."""
        per_image = a.reshape(self.batch, self.groups, a.shape[1] // self.groups,
                              positions).transpose(0, 1, 3, 2)
        if not self.batch_last:
            return per_image
        return per_image.transpose(1, 0, 2, 3).reshape(
            1, self.groups, self.batch * positions, per_image.shape[3])

    def matrices(self, a: np.ndarray, positions: int) -> np.ndarray:
        """``(N, F, *out)`` → ``(B, g, F/g, Q)`` (a view, or a copy for ``batch_last``, N > 1)."""
        per_image = a.reshape(self.batch, self.groups, a.shape[1] // self.groups, positions)
        if not self.batch_last:
            return per_image
        return per_image.transpose(1, 2, 0, 3).reshape(
            1, self.groups, per_image.shape[2], self.batch * positions)

    def images(self, a: np.ndarray, channels: int, spatial: tuple[int, ...],
               bias: np.ndarray | None = None) -> np.ndarray:
        """Products ``(B, g, channels/g, Q)`` → a fresh ``(N, channels, *spatial)`` array,
        plus ``bias[c]`` if given."""
        if not self.batch_last:
            y = a.reshape(self.batch, channels, *spatial)
            if bias is not None:
                y += _per_channel(bias, len(spatial))
            return y
        view = np.moveaxis(a.reshape(channels, self.batch, *spatial), 1, 0)
        if bias is None:
            return np.ascontiguousarray(view)
        y = np.empty(view.shape, dtype=np.result_type(a, bias))
        np.add(view, _per_channel(bias, len(spatial)), out=y)
        return y

    def windows_of(self, a: np.ndarray, channels: int, kernel: tuple[int, ...],
                   out: tuple[int, ...]) -> np.ndarray:
        """Column gradient ``(B, g, C/g·K, Q)`` → ``(N, C, *kernel, *out)`` (a view) for fold."""
        if not self.batch_last:
            return a.reshape(self.batch, channels, *kernel, *out)
        return np.moveaxis(a.reshape(channels, *kernel, self.batch, *out), 1 + len(kernel), 0)


def _per_channel(v: np.ndarray, dims: int) -> np.ndarray:
    """``(F,)`` → ``(F, 1, …, 1)`` so it broadcasts over ``(N, F, *spatial)``."""
    return v.reshape(v.shape[0], *(1,) * dims)


class Conv(Layer):
    """Convolution layer from a :class:`convcalc.spec.Conv` model.

    ``rounding`` is the spec-level rounding (the layer's own ``rounding`` overrides it):
    ``"floor"`` and ``"exact"`` keep only windows that fit; ``"ceil"`` adds one more
    window per axis where the last one would hang past the padded input (implicit zero
    padding at the end), unless it would start in the right padding or beyond
    (PyTorch's rule).  ``groups: "depthwise"`` means one group per input channel.
    Parameters are allocated on the first :meth:`forward`.

    ``padding_mode`` other than ``zeros`` (PyTorch's Conv): the input is first padded by
    that mode (:func:`engine.padmodes.pad_by_mode`, into the workspace ``"xm"``), then
    convolved without padding — only the ceil overhang, if any, stays zeros; backward
    ends with the mode's adjoint.  The zeros path takes no extra step.
    """

    spec_model = specs.Conv

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, *,
                 rounding: str = "floor"):
        super().__init__(spec, rng, dtype, rounding=rounding)
        self._cache: tuple[Any, ...] | None = None
        #: the padding ``padding_mode`` applied before convolving (None: zeros path)
        self._mode_pads: tuple[tuple[int, int], ...] | None = None

    def groups(self, channels: int) -> int:
        """Number of channel groups for an input with ``channels`` channels."""
        groups = channels if self.spec.groups == "depthwise" else self.spec.groups
        _check_groups(self.name, groups, channels, self.spec.filters,
                      self.spec.groups == "depthwise")
        return groups

    def window(self, x_shape: tuple[int, ...]) -> Window:
        """Kernel, stride, dilation and padding (ceil overhang included) for this input."""
        return resolve_window(x_shape[2:], self.spec.kernel, self.spec.stride,
                              self.spec.padding, self.spec.dilation,
                              self.spec.rounding or self.rounding, self.name)

    def _allocate(self, channels: int, groups: int, kernel: tuple[int, ...]) -> None:
        _allocate_weights(self, channels, (self.spec.filters, channels // groups, *kernel))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, *n) → (N, F, *out)``.

        Columns from :func:`engine.im2col.unfold`, then per group the product
        ``(F/g, C/g·K) @ (C/g·K, positions)`` — per image, or once over the whole batch
        when that is faster (:class:`_Layout`).
        """
        x = np.asarray(x)
        dims = _spatial_dims(self.name, x)
        batch, channels = x.shape[:2]
        groups = self.groups(channels)
        window = self.window(x.shape)
        self._allocate(channels, groups, window.kernel)
        self._mode_pads = None
        if self.spec.padding_mode != "zeros" and any(pb or pa for pb, pa in window.padding):
            x, window = self._pad_by_mode(x, window)
        weight = self.params["weight"]
        filters = weight.shape[0]
        xp = _padded(self, "xp", x, window.total_padding)
        if self.uses_winograd(dims, window, groups, channels):
            y, saved = winograd.forward(xp, weight, self.params.get("bias"),
                                        partial(_workspace, self))
            self._cache = ("winograd", x.shape, window, saved)
            return y
        # The output grid is the grid of the window view numpy builds over xp.
        out = windows(xp, window.kernel, window.stride, window.dilation).shape[2:2 + dims]
        per_group = channels // groups * prod(window.kernel)
        layout = _Layout.choose(batch, prod(out), per_group, groups)
        shape = (channels, *window.kernel, batch, *out) if layout.batch_last else \
            (batch, channels, *window.kernel, *out)
        cols = unfold(xp, window.kernel, window.stride, window.dilation,
                      batch_last=layout.batch_last,
                      out=_workspace(self, "cols", shape, xp.dtype))
        cols_g = layout.stack(cols, per_group, prod(out))               # (B, g, C/g·K, Q)
        w_g = weight.reshape(groups, filters // groups, per_group)      # (g, F/g, C/g·K)
        y = layout.images(np.matmul(w_g, cols_g), filters, out,
                          self.params["bias"] if self.spec.bias else None)
        self._cache = ("im2col", x.shape, xp.shape, window, cols_g, out, layout)
        return y

    def _pad_by_mode(self, x: np.ndarray, window: Window) -> tuple[np.ndarray, Window]:
        """``x`` padded by ``padding_mode`` (workspace ``"xm"``) and the window that
        convolves it without padding (the ceil overhang kept)."""
        check_mode_padding(x.shape[2:], window.padding, self.spec.padding_mode, self.name)
        shape = x.shape[:2] + tuple(n + pb + pa for n, (pb, pa) in
                                    zip(x.shape[2:], window.padding))
        xm = pad_by_mode(x, window.padding, self.spec.padding_mode,
                         out=_workspace(self, "xm", shape, x.dtype))
        self._mode_pads = window.padding
        return xm, replace(window, padding=((0, 0),) * len(window.padding))

    #: ``"im2col"`` or ``"winograd"`` forces how :meth:`forward` convolves; ``None`` takes
    #: Winograd F(4×4, 3×3) where it applies and pays (:func:`engine.winograd.suits`).
    algorithm: str | None = None

    def uses_winograd(self, dims: int, window: Window, groups: int, channels: int) -> bool:
        """Whether :meth:`forward` takes the Winograd path (:mod:`engine.winograd`)."""
        geometry = (dims, window.kernel, window.stride, window.dilation, groups)
        if self.algorithm == "im2col":
            return False
        if self.algorithm != "winograd":
            return winograd.suits(*geometry, channels, self.spec.filters)
        if not winograd.applies(*geometry):
            raise ValueError(f"{self.name}: Winograd F(4×4, 3×3) needs a 2-D 3×3 "
                             "convolution with stride 1, no dilation and one group")
        return True

    #: ``"correlation"`` or ``"col2im"`` forces how :meth:`backward` computes ``dx``;
    #: ``None`` picks the faster one (see :meth:`uses_correlation_for_dx`).
    input_gradient_method: str | None = None

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dy (N, F, *out) → dx (N, C, *n)``; fills ``grads["weight"]``, ``grads["bias"]``.

        ``dWᵀ = cols @ dyᵀ`` per group (this orientation runs BLAS fastest), ``db = Σ dy``,
        and ``dx`` by correlation with the flipped kernel (stride 1) or by col2im.
        """
        dx = self._backward(dout)
        if self._mode_pads is None:
            return dx
        return unpad_by_mode(dx, self._mode_pads, self.spec.padding_mode)

    def _backward(self, dout: np.ndarray) -> np.ndarray:
        """:meth:`backward` up to the gradient of the array convolved (the mode-padded
        input, for a ``padding_mode`` other than zeros)."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        dout = np.asarray(dout)
        weight = self.params["weight"]
        if self._cache[0] == "winograd":
            _, x_shape, window, saved = self._cache
            dxp, dw, db = winograd.backward(dout, weight, saved, partial(_workspace, self))
            self.grads["weight"] = dw.astype(weight.dtype, copy=False)
            if self.spec.bias:
                self.grads["bias"] = db.astype(weight.dtype, copy=False)
            return crop(dxp, window.total_padding)
        _, x_shape, padded_shape, window, cols_g, out, layout = self._cache
        dw_t = np.matmul(cols_g, layout.rows(dout, prod(out))).sum(axis=0)  # (g, C/g·K, F/g)
        self.grads["weight"] = dw_t.transpose(0, 2, 1).reshape(weight.shape).astype(
            weight.dtype)
        if self.spec.bias:
            self.grads["bias"] = _channel_sum(dout).astype(weight.dtype, copy=False)
        method = self.input_gradient_method or (
            "correlation" if self.uses_correlation_for_dx(x_shape, window, dout.shape)
            else "col2im")
        if method == "correlation":
            return self._dx_by_correlation(dout, x_shape, window, layout)
        return self._dx_by_col2im(dout, x_shape, padded_shape, window, layout)

    def uses_correlation_for_dx(self, x_shape: tuple[int, ...], window: Window,
                                dout_shape: tuple[int, ...]) -> bool:
        """Whether :meth:`backward` gets ``dx`` by correlating ``dy`` with the flipped
        kernel (stride 1 on every axis, and ``dy``'s columns no bigger than the column
        gradient) rather than by col2im of the column gradient.  Same numbers, less
        memory traffic: no col2im pass re-reading a ``K``-times-larger array."""
        return all(s == 1 for s in window.stride) and \
            dout_shape[1] * prod(x_shape[2:]) <= x_shape[1] * prod(dout_shape[2:])

    def _dx_by_col2im(self, dout: np.ndarray, x_shape: tuple[int, ...],
                      padded_shape: tuple[int, ...], window: Window,
                      layout: _Layout) -> np.ndarray:
        """``dx = col2im(Wᵀ @ dy)``: the column gradient, scattered back and cropped."""
        weight = self.params["weight"]
        out = dout.shape[2:]
        groups = layout.groups
        w_g = weight.reshape(groups, weight.shape[0] // groups,
                             weight.shape[1] * prod(window.kernel))     # (g, F/g, C/g·K)
        dy_g = layout.matrices(dout, prod(out))                         # (B, g, F/g, Q)
        dcols = np.matmul(w_g.transpose(0, 2, 1), dy_g,                 # (B, g, C/g·K, Q)
                          out=_workspace(self, "dcols", (*dy_g.shape[:2], w_g.shape[2],
                                                         dy_g.shape[3]),
                                         np.result_type(w_g, dy_g)))
        dxp = fold(layout.windows_of(dcols, x_shape[1], window.kernel, out), padded_shape,
                   window.stride, window.dilation)
        return np.ascontiguousarray(crop(dxp, window.total_padding))

    def _dx_by_correlation(self, dout: np.ndarray, x_shape: tuple[int, ...], window: Window,
                           layout: _Layout) -> np.ndarray:
        """Stride 1: ``dx`` is ``dy`` padded by ``e − 1 − p`` on each side (negative: cropped),
        correlated with the kernel flipped on every spatial axis and with its filter and
        channel axes swapped — a convolution, done as unfold + one matmul."""
        weight = self.params["weight"]
        dims = len(window.kernel)
        filters, per_group = weight.shape[:2]
        groups = layout.groups
        grow = tuple((e - 1 - pb, e - 1 - pa)
                     for e, (pb, pa) in zip(window.extent, window.total_padding))
        dyp = crop(_padded(self, "dyp", dout, tuple((max(b, 0), max(a, 0)) for b, a in grow)),
                   tuple((max(-b, 0), max(-a, 0)) for b, a in grow))
        batch = dout.shape[0]
        count = tuple(x_shape[2:])
        shape = (filters, *window.kernel, batch, *count) if layout.batch_last else \
            (batch, filters, *window.kernel, *count)
        cols = unfold(dyp, window.kernel, window.stride, window.dilation, count=count,
                      batch_last=layout.batch_last,
                      out=_workspace(self, "dcols", shape, dyp.dtype))
        reversed_kernel: Index = (Ellipsis, *(slice(None, None, -1),) * dims)
        flipped = weight[reversed_kernel]
        w_t = np.ascontiguousarray(   # (g, C/g, F/g·K); contiguous: matmul is slow on strides
            flipped.reshape(groups, filters // groups, per_group, -1).transpose(0, 2, 1, 3)
            .reshape(groups, per_group, -1))
        cols_g = layout.stack(cols, w_t.shape[2], prod(count))           # (B, g, F/g·K, Q)
        return layout.images(np.matmul(w_t, cols_g), x_shape[1], count)


class ConvTranspose(Layer):
    """Transposed convolution layer from a :class:`convcalc.spec.ConvTranspose` model.

    Per axis the uncropped output has ``(n − 1)·s + e + output_padding`` entries (the
    reach of the last window, plus ``output_padding`` zeros at the end); ``padding``
    crops ``(before, after)`` from it.  ``output_padding`` must be smaller than the
    stride or the dilation, and ``"same"``/``"full"`` padding is not defined (as in the
    calculator).
    """

    spec_model = specs.ConvTranspose

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, *,
                 rounding: str = "floor"):
        super().__init__(spec, rng, dtype, rounding=rounding)
        self._cache: tuple[Any, ...] | None = None

    def geometry(self, x_shape: tuple[int, ...]) -> tuple[Window, tuple[int, ...]]:
        """The window and the uncropped output size per spatial axis for this input."""
        sizes = tuple(x_shape[2:])
        dims = len(sizes)
        if isinstance(self.spec.padding, str) and self.spec.padding != "valid":
            raise ValueError(f"{self.name}: padding {self.spec.padding!r} is not defined for "
                             "conv_transpose; give the padding as numbers")
        kernel = per_axis(self.spec.kernel, dims, "kernel", self.name)
        stride = per_axis(self.spec.stride, dims, "stride", self.name)
        dilation = per_axis(self.spec.dilation, dims, "dilation", self.name)
        extra = per_axis(self.spec.output_padding, dims, "output_padding", self.name, 0)
        pads = resolve_padding(self.spec.padding, sizes, kernel, stride, dilation, self.name)
        window = Window(kernel, stride, dilation, pads, (0,) * dims)
        full = []
        for axis, n, s, d, e, o, (pb, pa) in zip(axis_names(dims), sizes, stride, dilation,
                                                 window.extent, extra, pads):
            if o >= max(s, d):
                raise ValueError(f"{self.name}: {axis}: output_padding {o} must be smaller "
                                 f"than the stride {s} or the dilation {d}")
            reach = (n - 1) * s + e + o     # last window start + its extent, + output_padding
            if pb + pa >= reach:
                raise ValueError(f"{self.name}: {axis}: padding {pb} + {pa} crops the whole "
                                 f"uncropped output of {reach}")
            full.append(reach)
        return window, tuple(full)

    def _allocate(self, channels: int, groups: int, kernel: tuple[int, ...]) -> None:
        # fan_in as PyTorch and Keras count it for a transposed conv: weight.shape[1]·K.
        _allocate_weights(self, channels, (channels, self.spec.filters // groups, *kernel))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, *n) → (N, F, *out)``."""
        x = np.asarray(x)
        dims = _spatial_dims(self.name, x)
        batch, channels = x.shape[:2]
        groups = self.spec.groups
        _check_groups(self.name, groups, channels, self.spec.filters)
        window, full = self.geometry(x.shape)
        self._allocate(channels, groups, window.kernel)
        weight = self.params["weight"]
        filters = self.spec.filters
        per_group = filters // groups * prod(window.kernel)
        w_g = weight.reshape(groups, channels // groups, per_group)        # (g, C/g, F/g·K)
        x_g = x.reshape(batch, groups, channels // groups, prod(x.shape[2:]))  # (N, g, C/g, P)
        cols = np.matmul(w_g.transpose(0, 2, 1), x_g)                      # (N, g, F/g·K, P)
        cols = cols.reshape(batch, filters, *window.kernel, *x.shape[2:])
        y = np.ascontiguousarray(crop(fold(cols, (batch, filters, *full), window.stride,
                                           window.dilation), window.padding))
        if self.spec.bias:
            y += _per_channel(self.params["bias"], dims)
        self._cache = (x, window)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dy (N, F, *out) → dx (N, C, *n)``; fills ``grads["weight"]``, ``grads["bias"]``."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x, window = self._cache
        dout = np.asarray(dout)
        weight = self.params["weight"]
        batch, channels = x.shape[:2]
        groups = self.spec.groups
        # Put dy back into the uncropped output and read the windows every input fed.
        cols = unfold(pad(dout, window.padding), window.kernel, window.stride,
                      window.dilation, count=x.shape[2:])                  # (N, F, *k, *n)
        per_group, positions = weight.shape[1] * prod(window.kernel), prod(x.shape[2:])
        cols_g = cols.reshape(batch, groups, per_group, positions)        # (N, g, F/g·K, P)
        x_g = x.reshape(batch, groups, channels // groups, positions)     # (N, g, C/g, P)
        w_g = weight.reshape(groups, channels // groups, per_group)        # (g, C/g, F/g·K)
        self.grads["weight"] = np.matmul(x_g, cols_g.transpose(0, 1, 3, 2)).sum(
            axis=0).reshape(weight.shape).astype(weight.dtype, copy=False)
        if self.spec.bias:
            self.grads["bias"] = _channel_sum(dout).astype(weight.dtype, copy=False)
        dx: np.ndarray = np.matmul(w_g, cols_g).reshape(x.shape)
        return dx
