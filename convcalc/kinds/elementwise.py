"""Element-wise layers: the shape and the receptive field unchanged (but for a
log_softmax over one channel, constant 0, whose outputs read nothing), no MACs (only
conv, conv_transpose and dense weights count).  No parameters either, but ``prelu``'s slopes
(1, or ``C`` per channel) and ``scale``'s multipliers (``C``, ``2·C`` with ``bias``),
``C`` being the channels (axis 0; the features of a flat vector).  They differ mostly
in what the engine keeps for backward (:meth:`~convcalc.kinds.base.Kind.cost`).

>>> from convcalc import analyze
>>> report = analyze({"input": [8, 4, 4], "layers": [{"type": "prelu", "per_channel": True},
...                   {"type": "scale", "bias": True}, "hardswish"]})
>>> [(row.output_shape, row.params) for row in report.layers]
[((8, 4, 4), 8), ((8, 4, 4), 16), ((8, 4, 4), 0)]
"""

from __future__ import annotations

from typing import Any

from ..spec import (ELU, GELU, SELU, DropPath, Dropout, Hardsigmoid, Hardswish, Identity,
                    LeakyRelu, LogSoftmax, Mish, PReLU, ReLU, ReLU6, Scale, Sigmoid, SiLU,
                    Softmax, Softplus, Tanh)
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


# --- the activations of modern CNNs, stochastic depth, prelu and scale -----------------
# Costs restate engine/activations.py.  A verify run holds every layer's input and output
# anyway (the activations part of the estimate), so what a layer keeps of them is free;
# ``transient`` counts dx and the layer's other temporaries beside dy, which takes the
# place of the output when the layer does not keep it (the output's when it does).


class Clipped(Unchanged):
    """``relu6`` (``min(max(x, 0), 6)``) and ``hardsigmoid`` (``relu6(x + 3)/6``): the
    slope is 1 (1/6) strictly inside the clipping range, 0 outside and at its ends."""

    models = (ReLU6, Hardsigmoid)

    def cost(self, layer: Any, row: Any) -> Cost:
        """The mask of the inputs inside the range kept (1 byte a value); the gradient."""
        n = size_of(row.input_shapes[0])
        return Cost(masks=n, transient=n)


class HardswishKind(Unchanged):
    """``hardswish``: ``x·relu6(x + 3)/6``; slope 0 up to −3, ``x/3 + 1/2`` between, 1
    from 3 on (PyTorch's choice at the kinks)."""

    models = (Hardswish,)

    def cost(self, layer: Any, row: Any) -> Cost:
        """Its input kept; backward: the gradient, and one comparison mask with ±3 at a
        time (1 byte a value)."""
        n = size_of(row.input_shapes[0])
        return Cost(masks=n, transient=n)


class Gated(Unchanged):
    """``silu`` (``x·sigmoid(x)``), ``mish`` (``x·tanh(softplus(x))``) and ``gelu``
    (``x·Φ(x)``, or its tanh approximation): smooth, the input times a gate of itself."""

    models = (SiLU, Mish, GELU)

    def cost(self, layer: Any, row: Any) -> Cost:
        """Their input kept; backward: the gradient and one array of the gate (silu's
        sigmoid, mish's tanh(softplus), the tanh gelu's tanh) — the exact gelu adds its
        normal CDF into the gradient block by block (2,048 values), so only the
        gradient."""
        n = size_of(row.input_shapes[0])
        exact_gelu = isinstance(layer, GELU) and layer.approximate == "none"
        return Cost(transient=n if exact_gelu else 2 * n)


class ExponentialLinear(Unchanged):
    """``elu`` (``alpha·(e^x − 1)`` for ``x ≤ 0``), ``selu`` (λ times that with PyTorch's
    α, λ) and ``softplus`` (``log(1 + e^(βx))/β``, ``x`` above the threshold)."""

    models = (ELU, SELU, Softplus)

    def cost(self, layer: Any, row: Any) -> Cost:
        """Their input and the mask of one branch (``x ≤ 0``; ``βx > threshold``) kept
        (1 byte a value); the gradient."""
        n = size_of(row.input_shapes[0])
        return Cost(masks=n, transient=n)


class LogSoftmaxKind(Unchanged):
    """``x_c − log Σ_c' e^(x_c')`` over the channels at every position: each output reads
    its own position, all channels (the field is the input's).  Over a single channel
    it is 0 whatever the input: a warning, and the field of an output that reads
    nothing."""

    models = (LogSoftmax,)

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        if x.shape[0] != 1:
            return Outcome(x.shape, x.field)
        what = "feature" if len(x.shape) == 1 else "channel"
        ctx.warn(f"log_softmax over 1 {what} is 0 whatever its input (the log of a softmax "
                 f"over one value): its input needs more than one {what}, or the layer "
                 "can go")
        reads_nothing = [(lambda o: (), 1, 1)] * (len(x.shape) - 1)
        return Outcome(x.shape, x.field.through_reads(reads_nothing))

    def cost(self, layer: Any, row: Any) -> Cost:
        """The output kept; backward: the gradient, ``e^y`` in it, and ``Σ_c dy`` (one
        value per position, ``prod(spatial)``); forward's maximum and sum are as big."""
        shape = row.input_shapes[0]
        n = size_of(shape)
        return Cost(transient=2 * n + n // shape[0])


class DropPathKind(Unchanged):
    """Stochastic depth: each example's whole tensor zeroed with probability ``rate`` in
    training, the rest scaled by ``1/(1 − rate)``; the identity in evaluation."""

    models = (DropPath,)

    def cost(self, layer: Any, row: Any) -> Cost:
        """One factor per example (nothing per value); the gradient.  With ``rate`` 0 the
        layer passes its input and ``dy`` through."""
        return Cost(transient=size_of(row.input_shapes[0]) if layer.rate else 0)


class PReLUKind(Unchanged):
    """``max(x, 0) + a·min(x, 0)``: one learned slope, or one per channel (``C`` the
    channels, axis 0, or the features of a flat vector)."""

    models = (PReLU,)

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        return Outcome(x.shape, x.field, params=x.shape[0] if layer.per_channel else 1)

    def cost(self, layer: Any, row: Any) -> Cost:
        """Its input and the mask ``x > 0`` kept (1 byte a value); backward: one array,
        ``x·dy`` for the slopes' gradient and then the input gradient."""
        n = size_of(row.input_shapes[0])
        return Cost(masks=n, transient=n)


class ScaleKind(Unchanged):
    """``w_c·x (+ b_c)``: ``C`` parameters, ``2·C`` with ``bias`` (``C`` the channels,
    axis 0, or the features of a flat vector).  No MACs: only conv, conv_transpose and
    dense weights count."""

    models = (Scale,)

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels = x.shape[0]
        return Outcome(x.shape, x.field, params=2 * channels if layer.bias else channels)

    def cost(self, layer: Any, row: Any) -> Cost:
        """Its input kept; backward: one array, ``x·dy`` for the weight's gradient and
        then the input gradient."""
        return Cost(transient=size_of(row.input_shapes[0]))
