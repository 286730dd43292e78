"""Normalisations that keep the shape.

``batchnorm``: ``2·C`` parameters (gamma, beta) and ``2·C`` buffers (running mean and
variance), ``C`` the channels (axis 0; the features of a flat vector).  ``lrn``: none.
"""

from __future__ import annotations

from typing import Any

from ..spec import LRN, BatchNorm
from .base import Context, Cost, Kind, Outcome, State, size_of


class BatchNormKind(Kind):
    models = (BatchNorm,)

    def rule(self, layer: BatchNorm, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels = x.shape[0]
        return Outcome(x.shape, x.field, params=2 * channels, buffers=2 * channels)

    def cost(self, layer: BatchNorm, row: Any) -> Cost:
        """The normalised input kept; centred input, output and backward's temporaries."""
        n = size_of(row.input_shapes[0])
        return Cost(kept=n, transient=4 * n)


class LRNKind(Kind):
    models = (LRN,)

    def rule(self, layer: LRN, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        return Outcome(x.shape, x.field)

    def cost(self, layer: LRN, row: Any) -> Cost:
        """The scale kept; squares, padded window sums and backward's temporaries."""
        n = size_of(row.input_shapes[0])
        return Cost(kept=n, transient=5 * n)
