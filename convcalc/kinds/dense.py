"""Flat vectors: ``flatten`` and the fully connected ``dense`` layer.

``flatten``: ``(C, *n) → (C·prod(n),)``.  ``dense``: ``(F,) → (units,)`` with
``F·units`` weights (and MACs) plus ``units`` biases; nothing is flattened implicitly.
"""

from __future__ import annotations

from typing import Any

from ..spec import Dense, Flatten
from .base import Context, Cost, Kind, Outcome, State, size_of


class FlattenKind(Kind):
    models = (Flatten,)

    def rule(self, layer: Flatten, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        return Outcome((size_of(x.shape),), x.field.whole(x.shape[1:]))

    def cost(self, layer: Flatten, row: Any) -> Cost:
        """A view of its input: nothing of its own."""
        return Cost()


class DenseKind(Kind):
    models = (Dense,)

    def rule(self, layer: Dense, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        if len(x.shape) != 1:
            raise ctx.fatal(f"needs a flat vector but its input is a feature map "
                            f"{list(x.shape)}; add a flatten (or global pooling) layer "
                            "before it — nothing is flattened implicitly")
        features = x.shape[0]
        params = features * layer.units + (layer.units if layer.bias else 0)
        return Outcome((layer.units,), x.field, params=params, macs=features * layer.units)

    def cost(self, layer: Dense, row: Any) -> Cost:
        """The input gradient ``dy·Wᵀ`` (the weight gradient is written in place)."""
        return Cost(transient=size_of(row.input_shapes[0]))
