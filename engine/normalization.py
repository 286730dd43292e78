"""Batch, layer, group and instance normalisation and local response normalisation; all
keep the input shape.

:class:`BatchNorm` normalises each channel over the batch and spatial axes of
``(N, C, *spatial)`` (each feature over the batch of ``(N, F)``).  :class:`LRN` is
PyTorch's ``LocalResponseNorm``: each value divided by a power of the summed squares of
its neighbouring channels.  :class:`LayerNorm` (over the channels at each position),
:class:`GroupNorm` (over groups of channels and every position) and
:class:`InstanceNorm` (over each channel's positions) standardise each example on its
own, with an optional per-channel affine map, and keep no running statistics.

>>> import numpy as np
>>> from convcalc.spec import BatchNorm as BatchNormSpec
>>> bn = BatchNorm(BatchNormSpec(type="batchnorm", name="bn1"), np.random.default_rng(0),
...                "float64")
>>> y = bn.forward(np.array([[1.0], [3.0]]))          # batch mean 2, biased variance 1
>>> np.round(y, 4)
array([[-1.],
       [ 1.]])
>>> bn.buffers["running_mean"], bn.buffers["running_var"]   # 0.9·0 + 0.1·2, 0.9·1 + 0.1·2
(array([0.2]), array([1.1]))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcalc import spec as specs

from .base import Layer


class BatchNorm(Layer):
    """Per-channel batch normalisation.

    Channel axis 1; statistics over every other axis (``m = N·prod(spatial)`` values per
    channel).  Parameters ``gamma`` (ones) and ``beta`` (zeros), buffers ``running_mean``
    (zeros) and ``running_var`` (ones), all of shape ``(C,)`` with ``C`` read off the
    first input.

    Training: ``x̂ = (x − μ_B) / sqrt(σ²_B + eps)`` with the batch mean and the *biased*
    batch variance; ``y = gamma·x̂ + beta``; the buffers are updated in place with
    PyTorch's rule ``running = (1 − momentum)·running + momentum·batch``, using the
    *unbiased* variance ``σ²_B · m/(m − 1)``.  An empty batch (``m = 0``) gives an empty
    output and leaves the buffers alone; ``m = 1`` raises ``ValueError`` (as PyTorch does).
    Eval: ``x̂ = (x − running_mean) / sqrt(running_var + eps)``.

    Backward (training): ``dx = (gamma / (m·sqrt(σ²_B + eps))) · (m·dy − Σdy − x̂·Σ(dy·x̂))``,
    ``dgamma = Σ dy·x̂``, ``dbeta = Σ dy`` (sums over the statistics axes).
    """

    spec_model = specs.BatchNorm

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.eps = float(spec.eps)
        self.momentum = float(spec.momentum)

    def _allocate(self, channels: int) -> None:
        self.params["gamma"] = np.ones(channels, dtype=self.dtype)
        self.params["beta"] = np.zeros(channels, dtype=self.dtype)
        self.buffers["running_mean"] = np.zeros(channels, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(channels, dtype=self.dtype)
        self.zero_grads()

    def _per_channel(self, values: np.ndarray, ndim: int) -> np.ndarray:
        """``(C,)`` → ``(1, C, 1, ...)``, broadcastable against the input."""
        return values.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"{self.name}: needs (N, C, ...) but its input has shape {x.shape}")
        if not self.params:
            self._allocate(x.shape[1])
        channels = self.params["gamma"].shape[0]
        if x.shape[1] != channels:
            raise ValueError(f"{self.name}: built for {channels} channels, got {x.shape[1]}")
        axes = (0,) + tuple(range(2, x.ndim))
        count = x.size // channels
        self._axes, self._count = axes, count
        gamma = self._per_channel(self.params["gamma"], x.ndim)
        beta = self._per_channel(self.params["beta"], x.ndim)
        if self.training:
            if count == 0:
                self._xhat = np.zeros_like(x)
                self._inv_std = np.ones((1, channels) + (1,) * (x.ndim - 2), dtype=x.dtype)
                return np.zeros_like(x)
            if count == 1:
                raise ValueError(f"{self.name}: training needs more than one value per channel "
                                 f"to estimate a variance (input shape {x.shape}); use a "
                                 "batch of 2 or more, or eval mode")
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
            self._update_running(mean.reshape(-1), var.reshape(-1), count)
        else:
            mean = self._per_channel(self.buffers["running_mean"], x.ndim)
            var = self._per_channel(self.buffers["running_var"], x.ndim)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._xhat = (x - mean) * self._inv_std
        y: np.ndarray = gamma * self._xhat + beta
        return y

    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        momentum = self.momentum
        unbiased = var * (count / (count - 1))
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1.0 - momentum  # in place: callers hold these very arrays
        running_mean += momentum * mean
        running_var *= 1.0 - momentum
        running_var += momentum * unbiased

    def backward(self, dout: np.ndarray) -> np.ndarray:
        axes, xhat = self._axes, self._xhat
        self.grads["gamma"][...] = (dout * xhat).sum(axis=axes)
        self.grads["beta"][...] = dout.sum(axis=axes)
        gamma = self._per_channel(self.params["gamma"], dout.ndim)
        if not self.training:
            dx: np.ndarray = dout * (gamma * self._inv_std)
            return dx
        if self._count == 0:
            return np.zeros_like(dout)
        m = self._count
        dxhat = dout * gamma
        dx = (self._inv_std / m) * (
            m * dxhat
            - dxhat.sum(axis=axes, keepdims=True)
            - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True)
        )
        return dx


def _channel_window_sum(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[:, c] = Σ values[:, c − before : c + after + 1]`` (zero outside the channels).

    >>> _channel_window_sum(np.array([[1.0, 2.0, 3.0, 4.0]]), 1, 0)
    array([[1., 3., 5., 7.]])
    """
    pad = [(0, 0)] * values.ndim
    pad[1] = (before, after)
    padded = np.pad(values, pad)
    windows = np.lib.stride_tricks.sliding_window_view(padded, before + after + 1, axis=1)
    sums: np.ndarray = windows.sum(axis=-1)
    return sums


class LRN(Layer):
    """Local response normalisation across channels (PyTorch ``LocalResponseNorm``).

    ``y_c = x_c / s_c^beta`` with ``s_c = k + (alpha/size) · Σ_{c'} x_{c'}²`` over the
    window ``c − size//2 ≤ c' ≤ c + (size − 1)//2`` (channels outside are zeros).  Works on
    ``(N, C, *spatial)`` and ``(N, C)``.

    Backward: ``dx_j = dy_j·s_j^(−beta) − (2·alpha·beta/size) · x_j · Σ_{c ∋ j} dy_c·x_c·
    s_c^(−beta−1)``, the last sum over the windows that contain channel ``j``.

    >>> import numpy as np
    >>> from convcalc.spec import LRN as LRNSpec
    >>> lrn = LRN(LRNSpec(type="lrn", name="lrn1", size=2, alpha=1.0, beta=1.0, k=1.0),
    ...           np.random.default_rng(0), "float64")
    >>> lrn.forward(np.array([[1.0, 2.0]]))   # s = 1 + (1/2)·(1, 1 + 4) = (1.5, 3.5)
    array([[0.66666667, 0.57142857]])
    """

    spec_model = specs.LRN

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.size, self.alpha, self.beta, self.k = spec.size, spec.alpha, spec.beta, spec.k

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"{self.name}: needs (N, C, ...) but its input has shape {x.shape}")
        self._x = x
        sums = _channel_window_sum(x * x, self.size // 2, (self.size - 1) // 2)
        self._scale = self.k + (self.alpha / self.size) * sums
        y: np.ndarray = x * self._scale ** -self.beta
        self._y = y
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, scale = self._x, self._scale
        through_windows = _channel_window_sum(dout * self._y / scale,
                                              (self.size - 1) // 2, self.size // 2)
        dx: np.ndarray = dout * scale ** -self.beta \
            - (2.0 * self.alpha * self.beta / self.size) * x * through_windows
        return dx


def _standardise(x: np.ndarray, axes: tuple[int, ...], eps: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``x̂ = (x − mean) / sqrt(var + eps)`` over ``axes`` (the biased variance), and
    ``1/sqrt(var + eps)`` (``x``'s shape with ``axes`` of size 1).  ``x̂`` is one new
    array, the squared deviations one temporary."""
    mean = x.mean(axis=axes, keepdims=True)
    xhat = np.subtract(x, mean)
    squares = np.square(xhat)
    var = squares.mean(axis=axes, keepdims=True)
    del squares
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    return xhat, inv_std


def _standardise_backward(dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray,
                          axes: tuple[int, ...]) -> np.ndarray:
    """``dx = (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) / σ``, the means over ``axes``: the
    gradient through :func:`_standardise`.  One new array (``dx``)."""
    mean = dxhat.mean(axis=axes, keepdims=True)
    dx: np.ndarray = np.multiply(dxhat, xhat)
    projection = dx.mean(axis=axes, keepdims=True)
    np.multiply(xhat, projection, out=dx)
    np.subtract(dxhat, dx, out=dx)
    dx -= mean
    dx *= inv_std
    return dx


class _ChannelNorm(Layer):
    """Base of :class:`LayerNorm`, :class:`GroupNorm` and :class:`InstanceNorm`: the
    input ``(N, C, *spatial)`` (or ``(N, C)``) seen as ``grouped(x)``, standardised over
    ``axes`` of that view, then ``y = gamma_c · x̂ + beta_c`` per channel when ``affine``
    (``gamma`` ones, ``beta`` zeros, shape ``(C,)`` read off the first input).  No
    buffers, and training and evaluation alike (no running statistics).

    Backward: ``dgamma = Σ dy·x̂``, ``dbeta = Σ dy`` (over every axis but the channels),
    ``dx̂ = gamma_c · dy``, and ``dx`` by :func:`_standardise_backward`.  Keeps ``x̂``
    (which is the output itself when not affine) and ``1/σ``.
    """

    #: the axes of :meth:`grouped`'s view that the statistics run over
    axes: tuple[int, ...] = ()

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.eps = float(spec.eps)
        self.affine = bool(spec.affine)

    def grouped(self, x: np.ndarray) -> np.ndarray:
        """The view of ``x`` (or of ``dy``) the statistics are taken on."""
        return x

    def check(self, x: np.ndarray) -> None:
        """Raise ``ValueError`` for an input this norm cannot take."""
        if x.ndim < 2:
            raise ValueError(f"{self.name}: needs (N, C, ...) but its input has shape {x.shape}")

    def _per_channel(self, values: np.ndarray, ndim: int) -> np.ndarray:
        return values.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check(x)
        if self.affine and not self.params:
            self.params["gamma"] = np.ones(x.shape[1], dtype=self.dtype)
            self.params["beta"] = np.zeros(x.shape[1], dtype=self.dtype)
            self.zero_grads()
        xhat, self._inv_std = _standardise(self.grouped(x), self.axes, self.eps)
        self._xhat = xhat.reshape(x.shape)
        if not self.affine:
            return self._xhat
        y: np.ndarray = np.multiply(self._xhat, self._per_channel(self.params["gamma"], x.ndim))
        y += self._per_channel(self.params["beta"], x.ndim)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        xhat = self._xhat
        dxhat = dout
        if self.affine:
            others = (0,) + tuple(range(2, dout.ndim))
            product = np.multiply(dout, xhat)
            self.grads["gamma"][...] = product.sum(axis=others)
            del product
            self.grads["beta"][...] = dout.sum(axis=others)
            dxhat = np.multiply(dout, self._per_channel(self.params["gamma"], dout.ndim))
        dx = _standardise_backward(self.grouped(dxhat), self.grouped(xhat), self._inv_std,
                                   self.axes)
        return dx.reshape(dout.shape)


class LayerNorm(_ChannelNorm):
    """Layer normalisation over the channels at every position (ConvNeXt's LayerNorm2d,
    PyTorch's ``LayerNorm((C,))`` on the channels-last input): ``(N, C, *spatial)`` or
    ``(N, C)``, statistics over axis 1 alone.

    >>> import numpy as np
    >>> from convcalc.spec import LayerNorm as LayerNormSpec
    >>> norm = LayerNorm(LayerNormSpec(type="layernorm", name="ln", eps=1e-12),
    ...                  np.random.default_rng(0), "float64")
    >>> np.round(norm.forward(np.array([[[1.0, 5.0], [3.0, 5.0]]])), 6)   # per column
    array([[[-1.,  0.],
            [ 1.,  0.]]])
    """

    spec_model = specs.LayerNorm
    axes = (1,)


class GroupNorm(_ChannelNorm):
    """Group normalisation: the ``C`` channels in ``groups`` groups of ``C/groups``,
    each example's group standardised over its channels and every position (the view
    ``(N, groups, C/groups · prod(spatial))``, statistics over axis 2).  ``C`` must
    divide by ``groups``.

    >>> import numpy as np
    >>> from convcalc.spec import GroupNorm as GroupNormSpec
    >>> norm = GroupNorm(GroupNormSpec(type="groupnorm", name="gn", groups=2, eps=1e-12),
    ...                  np.random.default_rng(0), "float64")
    >>> np.round(norm.forward(np.array([[1.0, 3.0, 10.0, 30.0]])), 6)
    array([[-1.,  1., -1.,  1.]])
    """

    spec_model = specs.GroupNorm
    axes = (2,)

    def check(self, x: np.ndarray) -> None:
        super().check(x)
        if x.shape[1] % self.spec.groups:
            raise ValueError(f"{self.name}: {self.spec.groups} groups do not divide the "
                             f"{x.shape[1]} channels")

    def grouped(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], self.spec.groups,
                         int(np.prod(x.shape[1:])) // self.spec.groups)


class InstanceNorm(_ChannelNorm):
    """Instance normalisation: each example's channels standardised over their own
    positions (the view ``(N, C, prod(spatial))``, statistics over axis 2); PyTorch's
    ``InstanceNorm`` without running statistics, the same in training and evaluation.
    Needs a feature map with more than one position (PyTorch refuses one).

    >>> import numpy as np
    >>> from convcalc.spec import InstanceNorm as InstanceNormSpec
    >>> norm = InstanceNorm(InstanceNormSpec(type="instancenorm", name="in", eps=1e-12),
    ...                     np.random.default_rng(0), "float64")
    >>> np.round(norm.forward(np.array([[[1.0, 3.0], [0.0, 4.0]]])), 6)
    array([[[-1.,  1.],
            [-1.,  1.]]])
    """

    spec_model = specs.InstanceNorm
    axes = (2,)

    def check(self, x: np.ndarray) -> None:
        if x.ndim < 3:
            raise ValueError(f"{self.name}: instancenorm needs a feature map (N, C, *spatial) "
                             f"but its input has shape {x.shape}")
        if int(np.prod(x.shape[2:])) == 1:
            raise ValueError(f"{self.name}: instancenorm needs more than one spatial "
                             f"position per channel (input shape {x.shape})")

    def grouped(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:])))
