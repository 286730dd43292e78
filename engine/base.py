"""The protocol every engine layer follows.

A layer is built from its spec model (:mod:`convcalc.spec`), a random generator and a
dtype.  It allocates its parameters on its first :meth:`Layer.forward`, from the shape
of the array it is given — the engine never computes a size with a formula; it reads
sizes off the arrays it builds.  :func:`engine.build` materialises every parameter by
running one forward pass on an *empty* batch (``N = 0``), which costs nothing.

Arrays are channels first with a leading batch axis: ``(N, C, *spatial)`` for feature
maps, ``(N, F)`` for flat vectors.

Layers never modify their arguments; ``forward`` keeps what ``backward`` needs.

The engine's registry: every layer class names the spec model it implements
(``spec_model``) and is registered under it in :data:`LAYERS` when its module is
imported; :func:`engine.build` looks layers up there.  What differs between layers is
declared, not probed: ``many_inputs`` (forward takes a list, backward returns one;
:func:`takes_many` tells a type checker so).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Sequence, TypeGuard

import numpy as np


class Layer:
    """Base class: ``forward(x) → y``, ``backward(dy) → dx``; gradients beside parameters.

    ``params``  — learnable arrays by name (``"weight"``, ``"bias"``, ``"gamma"``, ...);
    ``grads``   — arrays of the same names and shapes, filled by :meth:`backward`;
    ``buffers`` — state that is not learned (batchnorm running statistics).

    Every layer is built the same way, ``cls(spec, rng, dtype, rounding=...)``:
    ``rounding`` is the spec's (``"floor"``, ``"exact"`` or ``"ceil"``); only windowed
    layers use it.
    """

    #: the spec model (:mod:`convcalc.spec`) this class implements; set by subclasses
    spec_model: ClassVar[type | None] = None
    #: ``forward`` takes a list of arrays (one per spec input), ``backward`` returns one
    many_inputs: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("spec_model")
        if model is not None:
            if model in LAYERS:
                raise TypeError(f"{model.__name__} has two engine layers: "
                                f"{LAYERS[model].__name__} and {cls.__name__}")
            LAYERS[model] = cls

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, *,
                 rounding: str = "floor"):
        self.spec = spec
        self.name: str = spec.name
        self.rng = rng
        self.dtype = np.dtype(dtype)
        self.rounding = rounding
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


class ManyInputs(Protocol):
    """What a layer that declares ``many_inputs`` is: ``forward`` takes a list of arrays
    (one per spec input), ``backward`` returns one (a gradient per input)."""

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray: ...

    def backward(self, dout: np.ndarray) -> list[np.ndarray]: ...


def takes_many(layer: Layer) -> TypeGuard[ManyInputs]:
    """Whether ``layer`` declares ``many_inputs`` (so that it is a :class:`ManyInputs`)."""
    return layer.many_inputs


#: spec model class → the engine layer class that implements it.
LAYERS: dict[type, type[Layer]] = {}
