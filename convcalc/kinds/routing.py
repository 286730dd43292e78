"""Channel routing: ``channel_shuffle`` and ``slice``; the spatial axes and the
receptive field unchanged, no parameters, no MACs.

``channel_shuffle`` (ShuffleNet's, PyTorch's ``nn.ChannelShuffle``): the ``C`` channels
seen as ``(groups, C/groups)``, transposed to ``(C/groups, groups)`` and flattened —
output channel ``j·groups + g`` is input channel ``g·(C/groups) + j``; the shape is
unchanged and ``C`` must divide by ``groups``.  ``slice``: channels ``start`` …
``stop − 1``, ``(C, *s) → (stop − start, *s)`` (the features of a flat vector).

>>> import convcalc
>>> report = convcalc.analyze({"input": [6, 4, 4], "layers": [
...     {"type": "channel_shuffle", "groups": 3}, {"type": "slice", "channels": [0, 3]}]})
>>> [row.output_shape for row in report.layers]
[(6, 4, 4), (3, 4, 4)]
"""

from __future__ import annotations

from typing import Any

from ..spec import ChannelShuffle, Slice
from .base import Context, Cost, Kind, Outcome, State, size_of


def _channels_noun(shape: tuple[int, ...]) -> str:
    return "features" if len(shape) == 1 else "channels"


class ChannelShuffleKind(Kind):
    models = (ChannelShuffle,)

    def rule(self, layer: ChannelShuffle, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels = x.shape[0]
        if channels % layer.groups:
            divisors = [g for g in range(2, channels + 1) if channels % g == 0]
            near = sorted(divisors, key=lambda g: (abs(g - layer.groups), g))[:2]
            hint = (f"use groups: {' or '.join(map(str, sorted(near)))} (divisors of "
                    f"{channels})" if near else f"{channels} has no divisor but 1")
            raise ctx.fatal(f"{layer.groups} groups do not divide the {channels} "
                            f"{_channels_noun(x.shape)}; {hint}", "groups")
        return Outcome(x.shape, x.field)

    def cost(self, layer: ChannelShuffle, row: Any) -> Cost:
        """The output is a copy (counted with the activations); backward's ``dx`` is one
        more array of the input's size."""
        return Cost(transient=size_of(row.input_shapes[0]))


class SliceKind(Kind):
    models = (Slice,)

    def rule(self, layer: Slice, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        start, stop = layer.channels
        channels = x.shape[0]
        if stop > channels:
            noun = _channels_noun(x.shape)
            raise ctx.fatal(f"channels [{start}, {stop}] reach past the {channels} {noun} of "
                            f"its input ({noun} 0 … {channels - 1}): stop must be at most "
                            f"{channels}", "channels")
        return Outcome((stop - start, *x.shape[1:]), x.field)

    def cost(self, layer: Slice, row: Any) -> Cost:
        """The output is a copy (counted with the activations); backward's ``dx`` is a
        zero array of the input's size with ``dy`` written into its channels."""
        return Cost(transient=size_of(row.input_shapes[0]))
