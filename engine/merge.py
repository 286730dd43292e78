"""Layers with several inputs: element-wise sum and channel concatenation.

Their ``forward`` takes a *list* of arrays and their ``backward`` returns a *list* of
gradients, one per input, in the order of the spec's ``inputs`` (:class:`engine.Network`
routes them).  Neither has parameters.

- :class:`Add`     ``[(N, *s), (N, *s), ...] → (N, *s)``: every input of one shape.
- :class:`Concat`  ``[(N, C_i, *s), ...] → (N, ΣC_i, *s)``: joined along axis 1 (the
  channels), spatial sizes equal; flat vectors ``(N, F_i)`` give ``(N, ΣF_i)``.

A ResNet shortcut and an inception-style join:

>>> import numpy as np
>>> from convcalc.spec import Add as AddSpec, Concat as ConcatSpec
>>> rng = np.random.default_rng(0)
>>> add = Add(AddSpec(type="add", name="add1", inputs=["bn2", "input"]), rng, "float64")
>>> a, b = np.ones((2, 3, 4, 4)), np.full((2, 3, 4, 4), 2.0)
>>> add.forward([a, b])[0, 0, 0].tolist()
[3.0, 3.0, 3.0, 3.0]
>>> cat = Concat(ConcatSpec(type="concat", name="cat", inputs=["x", "y"]), rng, "float64")
>>> y = cat.forward([np.zeros((2, 3, 4, 4)), np.ones((2, 5, 4, 4))])
>>> y.shape
(2, 8, 4, 4)
>>> [g.shape for g in cat.backward(np.ones_like(y))]
[(2, 3, 4, 4), (2, 5, 4, 4)]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from convcalc import spec as specs

from .base import Layer


def _listed(layer: Layer, shapes: Sequence[tuple[int, ...]]) -> str:
    """``"bn2 [8, 4, 4], input [4, 8, 8]"``: each input's name and shape without the batch."""
    names = list(layer.spec.inputs or []) + [f"input {i}" for i in range(len(shapes))]
    return ", ".join(f"{name} {list(shape[1:])}" for name, shape in zip(names, shapes))


class Merge(Layer):
    """Base class of the layers that read several arrays: ``forward(list) → array``,
    ``backward(dout) → list`` (they declare ``many_inputs``)."""

    many_inputs = True

    def _arrays(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if isinstance(xs, np.ndarray) or not isinstance(xs, (list, tuple)):
            raise ValueError(f"{self.name}: {self.spec.type} takes a list of arrays")
        arrays = [np.asarray(x) for x in xs]
        if len(arrays) < 2:
            raise ValueError(f"{self.name}: {self.spec.type} needs at least two inputs "
                             f"(got {len(arrays)})")
        return arrays

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        raise NotImplementedError


class Add(Merge):
    """Element-wise sum ``y = x_0 + x_1 + …``; every input must have the same shape
    (batch included) — no broadcasting.  Backward: each input's gradient is ``dy``
    itself (the same array for all; :class:`engine.Network` never writes into it).

    >>> import numpy as np
    >>> from convcalc.spec import Add as AddSpec
    >>> add = Add(AddSpec(type="add", name="add1", inputs=["a", "b"]),
    ...           np.random.default_rng(0), "float64")
    >>> add.forward([np.zeros((1, 4, 2, 2)), np.zeros((1, 4, 3, 3))])
    Traceback (most recent call last):
    ...
    ValueError: add1: add needs inputs of one shape, but got a [4, 2, 2], b [4, 3, 3]
    """

    spec_model = specs.Add

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        arrays = self._arrays(xs)
        shapes = [x.shape for x in arrays]
        if len(set(shapes)) > 1:
            raise ValueError(f"{self.name}: add needs inputs of one shape, but got "
                             f"{_listed(self, shapes)}")
        self._count = len(arrays)
        y = arrays[0] + arrays[1]          # a new array: the inputs are never written
        for x in arrays[2:]:
            y += x
        return y

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return [dout] * self._count


class Concat(Merge):
    """Join along axis 1: ``(N, C_i, *s) → (N, ΣC_i, *s)``, or ``(N, F_i) → (N, ΣF_i)``.

    The inputs must agree on every axis but the channels (the same number of spatial
    axes, equal sizes).  Backward splits ``dy`` along axis 1 back into the inputs'
    channel counts (views of ``dy``).

    >>> import numpy as np
    >>> from convcalc.spec import Concat as ConcatSpec
    >>> cat = Concat(ConcatSpec(type="concat", name="cat", inputs=["a", "b"]),
    ...              np.random.default_rng(0), "float64")
    >>> cat.forward([np.array([[1.0, 2.0]]), np.array([[3.0]])])     # flat vectors
    array([[1., 2., 3.]])
    >>> cat.forward([np.zeros((1, 2, 5)), np.zeros((1, 2, 4))])
    Traceback (most recent call last):
    ...
    ValueError: cat: concat joins channels and needs equal spatial sizes, but got a [2, 5], b [2, 4]
    """

    spec_model = specs.Concat

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        arrays = self._arrays(xs)
        shapes = [x.shape for x in arrays]
        if any(len(shape) < 2 for shape in shapes) or \
                len({(shape[0],) + shape[2:] for shape in shapes}) > 1:
            raise ValueError(f"{self.name}: concat joins channels and needs equal spatial "
                             f"sizes, but got {_listed(self, shapes)}")
        self._splits = np.cumsum([shape[1] for shape in shapes])[:-1].tolist()
        return np.concatenate(arrays, axis=1)

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return np.split(dout, self._splits, axis=1)
