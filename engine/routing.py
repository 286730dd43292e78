"""Channel routing: shuffle and slice along axis 1 (the channels, or the features of a
flat vector); the other axes unchanged, no parameters.

- :class:`ChannelShuffle` ``(N, C, *s) → (N, C, *s)``: ShuffleNet's shuffle, the view
  ``(N, groups, C/groups, *s)`` with its axes 1 and 2 swapped, flattened back.
- :class:`Slice` ``(N, C, *s) → (N, stop − start, *s)``: channels ``start … stop − 1``.

>>> import numpy as np
>>> from convcalc.spec import ChannelShuffle as ShuffleSpec
>>> shuffle = ChannelShuffle(ShuffleSpec(type="channel_shuffle", name="cs", groups=2),
...                          np.random.default_rng(0), "float64")
>>> shuffle.forward(np.arange(6.0).reshape(1, 6)).tolist()     # (0 1 2)(3 4 5) → 0 3 1 4 2 5
[[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]]
>>> shuffle.backward(np.array([[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]])).tolist()
[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import numpy as np

from convcalc import spec as specs

from .base import Layer


def _require_channels(layer: Layer, x: np.ndarray) -> None:
    if x.ndim < 2:
        raise ValueError(f"{layer.name}: needs (N, C, ...) but its input has shape {x.shape}")


def _interleave(x: np.ndarray, rows: int) -> np.ndarray:
    """The channels of ``x`` as a ``(rows, C/rows)`` matrix, transposed and flattened
    (a new array)."""
    n, channels = x.shape[:2]
    grouped = x.reshape(n, rows, channels // rows, *x.shape[2:])
    return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(x.shape)


class ChannelShuffle(Layer):
    """``y[:, j·g + i] = x[:, i·(C/g) + j]`` for ``g`` groups; backward is the inverse
    permutation (the same interleave with ``C/g`` rows).  ``C`` must divide by ``g``."""

    spec_model = specs.ChannelShuffle

    def forward(self, x: np.ndarray) -> np.ndarray:
        _require_channels(self, x)
        groups = self.spec.groups
        if x.shape[1] % groups:
            raise ValueError(f"{self.name}: {groups} groups do not divide the {x.shape[1]} "
                             "channels")
        self._rows = x.shape[1] // groups
        return _interleave(x, groups)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return _interleave(dout, self._rows)


class Slice(Layer):
    """``y = x[:, start:stop]`` (a copy); backward writes ``dy`` into those channels of a
    zero gradient.  ``stop`` must not pass the input's channels."""

    spec_model = specs.Slice

    def forward(self, x: np.ndarray) -> np.ndarray:
        _require_channels(self, x)
        start, stop = self.spec.channels
        if stop > x.shape[1]:
            raise ValueError(f"{self.name}: channels [{start}, {stop}] reach past the "
                             f"{x.shape[1]} channels of its input")
        self._input_shape = x.shape
        return x[:, start:stop].copy()

    def backward(self, dout: np.ndarray) -> np.ndarray:
        start, stop = self.spec.channels
        dx = np.zeros(self._input_shape, dtype=dout.dtype)
        dx[:, start:stop] = dout
        return dx
