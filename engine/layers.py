"""Global pooling, flatten, the dense (affine) layer, dropout and identity.

Shapes (``N`` the batch):

- :class:`GlobalPool`  ``(N, C, *spatial) → (N, C)``: mean or max over all positions.
- :class:`Flatten`     ``(N, C, *spatial) → (N, C·prod(spatial))``, C order; ``(N, F)``
  passes through.
- :class:`Dense`       ``(N, F) → (N, units)``: ``y = x @ W + b`` with ``W`` of shape
  ``(F, units)`` — the "Deep Learning from Scratch" layout (PyTorch stores the transpose).
- :class:`Dropout`     any shape, unchanged.
- :class:`Identity`    any shape, the array itself.

Sizes come from the arrays: ``Dense`` reads ``F`` off its first input.

>>> import numpy as np
>>> from convcalc.spec import Flatten as FlattenSpec
>>> flatten = Flatten(FlattenSpec(type="flatten", name="flatten1"), np.random.default_rng(0),
...                   "float32")
>>> flatten.forward(np.zeros((2, 30, 12, 12), np.float32)).shape
(2, 4320)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcalc import spec as specs

from .base import Layer


def _require_feature_map(layer: Layer, x: np.ndarray) -> None:
    if x.ndim < 3:
        raise ValueError(f"{layer.name}: needs a feature map (N, C, *spatial) but its input "
                         f"has shape {x.shape}")


class GlobalPool(Layer):
    """``global_avgpool`` / ``global_maxpool``: ``(N, C, *spatial) → (N, C)``.

    Average: ``y[n, c] = mean(x[n, c])``; backward spreads ``dy / P`` evenly over the
    ``P`` positions.  Max: ``y[n, c] = max(x[n, c])``; backward routes ``dy`` to the first
    position holding the maximum.

    >>> import numpy as np
    >>> from convcalc.spec import GlobalPool as GlobalPoolSpec
    >>> layer = GlobalPool(GlobalPoolSpec(type="global_maxpool", name="gmp"),
    ...                    np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[[1.0, 4.0, 2.0]]]))
    array([[4.]])
    >>> layer.backward(np.array([[10.0]]))
    array([[[ 0., 10.,  0.]]])
    """

    spec_model = specs.GlobalPool

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.kind = {"global_avgpool": "avg", "global_maxpool": "max"}[spec.type]

    def forward(self, x: np.ndarray) -> np.ndarray:
        _require_feature_map(self, x)
        self._input_shape = x.shape
        positions = int(np.prod(x.shape[2:]))
        flat = x.reshape(x.shape[0], x.shape[1], positions)  # (N, C, P); no -1: N may be 0
        if self.kind == "avg":
            means: np.ndarray = flat.mean(axis=2)
            return means
        self._argmax = flat.argmax(axis=2)
        return np.take_along_axis(flat, self._argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c = self._input_shape[:2]
        positions = int(np.prod(self._input_shape[2:]))
        if self.kind == "avg":
            dflat = np.repeat(dout[:, :, None] / positions, positions, axis=2)
        else:
            dflat = np.zeros((n, c, positions), dtype=dout.dtype)
            np.put_along_axis(dflat, self._argmax[:, :, None], dout[:, :, None], axis=2)
        return dflat.reshape(self._input_shape)


class Flatten(Layer):
    """``(N, C, *spatial) → (N, C·prod(spatial))`` in C (row-major) order; backward
    reshapes the gradient back.  A flat ``(N, F)`` input passes through unchanged."""

    spec_model = specs.Flatten

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"{self.name}: needs a batch of arrays (N, ...) but its input "
                             f"has shape {x.shape}")
        self._input_shape = x.shape
        # The size comes from the array's own shape; reshape(N, -1) fails when N = 0.
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self._input_shape)


class Dense(Layer):
    """Fully connected (affine) layer: ``(N, F) → (N, units)``, ``y = x @ W + b``.

    ``W`` has shape ``(F, units)`` (in features first, as in "Deep Learning from
    Scratch"; PyTorch's ``Linear.weight`` is its transpose) and is He-normal initialised,
    ``N(0, 2/F)``; ``b`` has shape ``(units,)``, zeros, and exists only when ``bias``.
    ``F`` is ``in_features`` when the spec states it, else read off the first input;
    an input of another width is refused.  Backward: ``dW = xᵀ·dy``, ``db = Σ_n dy``,
    ``dx = dy·Wᵀ``.

    >>> import numpy as np
    >>> from convcalc.spec import Dense as DenseSpec
    >>> layer = Dense(DenseSpec(type="dense", name="fc1", units=100),
    ...               np.random.default_rng(0), "float32")
    >>> layer.forward(np.zeros((0, 4320), np.float32)).shape
    (0, 100)
    >>> {key: value.shape for key, value in layer.params.items()}
    {'weight': (4320, 100), 'bias': (100,)}
    """

    spec_model = specs.Dense

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.units = spec.units
        self.use_bias = spec.bias

    def _allocate(self, features: int) -> None:
        weight = self.rng.standard_normal((features, self.units), dtype=self.dtype)
        weight *= self.dtype.type(np.sqrt(2.0 / features))
        self.params["weight"] = weight
        if self.use_bias:
            self.params["bias"] = np.zeros(self.units, dtype=self.dtype)
        self.zero_grads()

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2:
            raise ValueError(f"{self.name}: needs a flat vector (N, F) but its input has shape "
                             f"{x.shape}; add a flatten (or global pooling) layer before it")
        if not self.params:
            stated = self.spec.in_features
            self._allocate(x.shape[1] if stated is None else stated)
        expected = self.params["weight"].shape[0]
        if x.shape[1] != expected:
            raise ValueError(f"{self.name}: built for {expected} input features, got "
                             f"{x.shape[1]}")
        self._x = x
        y: np.ndarray = x @ self.params["weight"]
        if self.use_bias:
            y += self.params["bias"]  # y is a fresh array
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        # Written into the gradient arrays: no weight-sized temporary (fc6 of VGG: 411 MB).
        np.matmul(self._x.T, dout, out=self.grads["weight"])
        if self.use_bias:
            np.sum(dout, axis=0, out=self.grads["bias"])
        dx: np.ndarray = dout @ self.params["weight"].T
        return dx


class Dropout(Layer):
    """Inverted dropout: in training ``y = x · m / (1 − rate)`` with ``m`` a fresh 0/1 mask
    (``P(m = 0) = rate``) drawn from the layer's generator; backward multiplies by the same
    scaled mask.  In eval mode ``y = x`` and ``dx = dy`` (the arrays themselves, unchanged).

    >>> import numpy as np
    >>> from convcalc.spec import Dropout as DropoutSpec
    >>> layer = Dropout(DropoutSpec(type="dropout", name="drop", rate=0.5),
    ...                 np.random.default_rng(0), "float64")
    >>> y = layer.forward(np.ones((1, 8)))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> layer.training = False
    >>> layer.forward(np.ones((1, 3)))
    array([[1., 1., 1.]])
    """

    spec_model = specs.Dropout

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.rate = float(spec.rate)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=self.dtype) >= self.rate
        mask: np.ndarray = keep * self.dtype.type(1.0 / (1.0 - self.rate))
        self._mask = mask
        y: np.ndarray = x * mask
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._mask is None:
            return dout
        dx: np.ndarray = dout * self._mask
        return dx


class Identity(Layer):
    """``y = x`` and ``dx = dy``: the arrays themselves, any shape."""

    spec_model = specs.Identity

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout
