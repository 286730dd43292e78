"""Element-wise layers: the shape, the receptive field and everything else unchanged;
no parameters, no MACs.  They differ only in what the engine keeps for backward
(:meth:`~convcalc.kinds.base.Kind.cost`)."""

from __future__ import annotations

from typing import Any

from ..spec import Dropout, Identity, LeakyRelu, ReLU, Sigmoid, Softmax, Tanh
from .base import Context, Cost, Kind, Outcome, State, size_of


class Unchanged(Kind):
    """Base of the kinds whose output is their input's shape and field."""

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        return Outcome(x.shape, x.field)


class Rectifier(Unchanged):
    models = (ReLU, LeakyRelu)

    def cost(self, layer: Any, row: Any) -> Cost:
        """A mask of the positive inputs (1 byte a value); the output or gradient."""
        n = size_of(row.input_shapes[0])
        return Cost(masks=n, transient=n)


class Squashing(Unchanged):
    models = (Sigmoid, Tanh)

    def cost(self, layer: Any, row: Any) -> Cost:
        """The output (kept for backward) and the gradient, computed in place."""
        return Cost(transient=2 * size_of(row.input_shapes[0]))


class SoftmaxKind(Unchanged):
    models = (Softmax,)

    def cost(self, layer: Any, row: Any) -> Cost:
        """The shifted input, its exponentials and the output."""
        return Cost(transient=3 * size_of(row.input_shapes[0]))


class DropoutKind(Unchanged):
    models = (Dropout,)

    def cost(self, layer: Any, row: Any) -> Cost:
        """The scaled mask kept, the random draw's mask, the output."""
        n = size_of(row.input_shapes[0])
        return Cost(kept=n, masks=n, transient=n)


class IdentityKind(Unchanged):
    models = (Identity,)

    def cost(self, layer: Any, row: Any) -> Cost:
        """Its input itself, forward and backward: nothing of its own."""
        return Cost()
