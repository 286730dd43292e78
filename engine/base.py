"""The protocol every engine layer follows.

A layer is built from its spec model (:mod:`convcalc.spec`), a random generator and a
dtype.  It allocates its parameters on its first :meth:`Layer.forward`, from the shape
of the array it is given — the engine never computes a size with a formula; it reads
sizes off the arrays it builds.  :func:`engine.build` materialises every parameter by
running one forward pass on an *empty* batch (``N = 0``), which costs nothing.

Arrays are channels first with a leading batch axis: ``(N, C, *spatial)`` for feature
maps, ``(N, F)`` for flat vectors.

Layers never modify their arguments; ``forward`` keeps what ``backward`` needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Layer:
    """Base class: ``forward(x) → y``, ``backward(dy) → dx``; gradients beside parameters.

    ``params``  — learnable arrays by name (``"weight"``, ``"bias"``, ``"gamma"``, ...);
    ``grads``   — arrays of the same names and shapes, filled by :meth:`backward`;
    ``buffers`` — state that is not learned (batchnorm running statistics).
    """

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: np.dtype):
        self.spec = spec
        self.name: str = spec.name
        self.rng = rng
        self.dtype = np.dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def zero_grads(self) -> None:
        for key, value in self.params.items():
            self.grads[key] = np.zeros_like(value)
