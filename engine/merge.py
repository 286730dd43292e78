"""Layers with several inputs: element-wise sum and product, and channel concatenation.

Their ``forward`` takes a *list* of arrays and their ``backward`` returns a *list* of
gradients, one per input, in the order of the spec's ``inputs`` (:class:`engine.Network`
routes them).  None has parameters.

- :class:`Add`     ``[(N, *s_0), (N, *s_1), ...] → (N, *s)``: ``s`` the shapes broadcast
  as NumPy does, without the batch axis, aligned at the last axis (sizes equal or 1).
- :class:`Mul`     the same shapes, the element-wise product.
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


def _expanded(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each ``(N, *s)`` array as a view of the largest rank, with axes of size 1 inserted
    after the batch axis: NumPy's broadcasting of the shapes without the batch, aligned
    at their last axis."""
    rank = max(x.ndim for x in arrays)
    return [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in arrays]


def _reduced(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` (the output's shape) summed over the axes an input of ``shape`` was
    broadcast along, in that input's shape (``grad`` itself when nothing was)."""
    if grad.shape == shape:
        return grad
    rank = grad.ndim
    padded = shape[:1] + (1,) * (rank - len(shape)) + shape[1:]
    axes = tuple(axis for axis in range(1, rank) if padded[axis] == 1 and grad.shape[axis] != 1)
    reduced: np.ndarray = grad.sum(axis=axes, keepdims=True).reshape(shape)
    return reduced


class Broadcasting(Merge):
    """Base of :class:`Add` and :class:`Mul`: ``[(N, *s_0), (N, *s_1), …] → (N, *s)``
    where ``s`` is NumPy's broadcast of the ``s_i`` aligned at their last axis (the
    batch axes must be equal)."""

    def _mismatch(self, shapes: list[tuple[int, ...]]) -> str:
        return (f"{self.name}: {self.spec.type} needs inputs whose shapes broadcast (sizes "
                f"equal, or 1, axis by axis from the last), but got {_listed(self, shapes)}")

    def _broadcast(self, xs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], tuple[int, ...]]:
        """The inputs as views of one rank, and the output's shape (batch included)."""
        arrays = self._arrays(xs)
        shapes = [x.shape for x in arrays]
        if any(x.ndim < 2 for x in arrays) or len({shape[0] for shape in shapes}) > 1:
            raise ValueError(self._mismatch(shapes))
        expanded = _expanded(arrays)
        try:
            out = np.broadcast_shapes(*(x.shape for x in expanded))
        except ValueError:
            raise ValueError(self._mismatch(shapes)) from None
        self._shapes = shapes
        return expanded, out


class Add(Broadcasting):
    """Element-wise sum ``y = x_0 + x_1 + …``, broadcasting as :class:`Broadcasting`
    says.  Backward: an input of the output's shape gets ``dy`` itself (the same array
    for all; :class:`engine.Network` never writes into it), a broadcast one ``dy``
    summed over the axes it was broadcast along.

    >>> import numpy as np
    >>> from convcalc.spec import Add as AddSpec
    >>> add = Add(AddSpec(type="add", name="add1", inputs=["a", "b"]),
    ...           np.random.default_rng(0), "float64")
    >>> add.forward([np.zeros((1, 4, 2, 2)), np.zeros((1, 4, 3, 3))])
    Traceback (most recent call last):
    ...
    ValueError: add1: add needs inputs of one shape, but got a [4, 2, 2], b [4, 3, 3]
    >>> add.forward([np.ones((1, 2, 1, 1)), np.ones((1, 2, 2, 2))]).shape
    (1, 2, 2, 2)
    >>> [g.shape for g in add.backward(np.ones((1, 2, 2, 2)))]
    [(1, 2, 1, 1), (1, 2, 2, 2)]
    """

    spec_model = specs.Add

    def _mismatch(self, shapes: list[tuple[int, ...]]) -> str:
        return f"{self.name}: add needs inputs of one shape, but got {_listed(self, shapes)}"

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        expanded, out = self._broadcast(xs)
        y = np.empty(out, dtype=np.result_type(*expanded))   # the inputs are never written
        np.add(expanded[0], expanded[1], out=y)
        for x in expanded[2:]:
            np.add(y, x, out=y)
        return y

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return [_reduced(dout, shape) for shape in self._shapes]


class Mul(Broadcasting):
    """Element-wise product ``y = x_0 · x_1 · …``, broadcasting as
    :class:`Broadcasting` says (a ``(N, C, 1, 1)`` gate times ``(N, C, H, W)``).  The
    inputs are kept for backward (references, no copies).  Backward: input ``k`` gets
    ``dy · Π_{j≠k} x_j``, summed over the axes it was broadcast along.

    >>> import numpy as np
    >>> from convcalc.spec import Mul as MulSpec
    >>> mul = Mul(MulSpec(type="mul", name="mul1", inputs=["gate", "x"]),
    ...           np.random.default_rng(0), "float64")
    >>> gate, x = np.array([[[[2.0]], [[3.0]]]]), np.ones((1, 2, 2, 2))
    >>> mul.forward([gate, x])[0, :, 0, 0].tolist()
    [2.0, 3.0]
    >>> dgate, dx = mul.backward(np.ones((1, 2, 2, 2)))
    >>> dgate.ravel().tolist(), dx[0, :, 0, 0].tolist()      # 4 positions of ones; the gate
    ([4.0, 4.0], [2.0, 3.0])
    """

    spec_model = specs.Mul

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        expanded, out = self._broadcast(xs)
        y = np.empty(out, dtype=np.result_type(*expanded))
        np.multiply(expanded[0], expanded[1], out=y)
        for x in expanded[2:]:
            np.multiply(y, x, out=y)
        self._inputs = expanded
        return y

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        grads = []
        for k, shape in enumerate(self._shapes):
            others = [x for j, x in enumerate(self._inputs) if j != k]
            grad = np.multiply(dout, others[0])
            for x in others[1:]:
                np.multiply(grad, x, out=grad)
            grads.append(_reduced(grad, shape))
            del grad
        return grads


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
