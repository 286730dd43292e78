"""Normalisations that keep the shape.

``batchnorm``: ``2·C`` parameters (gamma, beta) and ``2·C`` buffers (running mean and
variance), ``C`` the channels (axis 0; the features of a flat vector).  ``lrn``: none.
``layernorm`` (over the channels at each position), ``groupnorm`` (over a group of
channels and every position) and ``instancenorm`` (over each channel's positions):
``2·C`` parameters when ``affine``, no buffers (no running statistics), no MACs.

A norm whose statistics span the spatial axes makes every output depend on every
position: its receptive field is the input's union, the same for every output (jump 0:
:meth:`~convcalc.receptive.Field1D.spread`).

>>> import convcalc
>>> report = convcalc.analyze({"input": [8, 5, 5], "layers": [
...     {"type": "conv", "filters": 8, "kernel": 3, "padding": 1},
...     {"type": "groupnorm", "groups": 4}]})
>>> report.layers[1].params, report.layers[1].receptive_field.to_dict()
(16, {'size': [7, 7], 'jump': [0, 0], 'padding': [1, 1]})
"""

from __future__ import annotations

from typing import Any

from ..receptive import ReceptiveField
from ..spec import LRN, BatchNorm, GroupNorm, InstanceNorm, LayerNorm
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


def _affine(layer: Any, channels: int) -> int:
    """``gamma`` and ``beta``, one each per channel, when the layer is ``affine``."""
    return 2 * channels if layer.affine else 0


def _standardising_cost(layer: Any, row: Any, statistics: int) -> Cost:
    """What ``engine.normalization._ChannelNorm`` keeps and uses, with ``statistics``
    values of ``1/σ`` per example.  Kept: ``x̂`` (when not affine it *is* the output,
    counted with the activations) and ``1/σ``.  Forward's temporaries: the squared
    deviations, the mean and the variance; backward's: ``dx`` and two means (of ``dx̂``
    and of ``dx̂·x̂``), and ``dx̂ = gamma·dy`` when affine — or, when not, ``dy`` itself,
    which cannot take the output's place: the output is still kept as ``x̂``."""
    n = size_of(row.input_shapes[0])
    return Cost(kept=(n if layer.affine else 0) + statistics, transient=2 * n + 2 * statistics)


def _reads_nothing(x: State) -> ReceptiveField:
    """The field of outputs that depend on no input position (a standardised single
    value is 0 whatever it was)."""
    return x.field.through_reads([(lambda o: (), 1, 1)] * len(x.field.axes or ()))


class LayerNormKind(Kind):
    """``layernorm``: shape and receptive field unchanged (the statistics are over the
    channels at one position); ``2·C`` parameters when affine.  Over a single channel
    every output is ``beta`` whatever the input: a warning, and the field of outputs
    that read nothing."""

    models = (LayerNorm,)

    def rule(self, layer: LayerNorm, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        params = _affine(layer, x.shape[0])
        if x.shape[0] > 1:
            return Outcome(x.shape, x.field, params=params)
        what = "feature" if len(x.shape) == 1 else "channel"
        ctx.warn(f"layernorm over 1 {what} makes every output {'beta' if layer.affine else 0} "
                 f"whatever its input (x − mean is 0): its input needs more than one {what}, "
                 "or the layer can go")
        return Outcome(x.shape, _reads_nothing(x), params=params)

    def cost(self, layer: LayerNorm, row: Any) -> Cost:
        """Statistics per position (:func:`_standardising_cost`)."""
        in_shape = row.input_shapes[0]
        return _standardising_cost(layer, row, size_of(in_shape) // in_shape[0])


class GroupNormKind(Kind):
    """``groupnorm``: shape unchanged; ``2·C`` parameters when affine; ``C`` must divide
    by ``groups``.  Each output is normalised with statistics of its group over every
    spatial position, so it sees every position: its receptive field is the union of
    the input's over the whole map, the same for every output
    (:meth:`~convcalc.receptive.ReceptiveField.spread`)."""

    models = (GroupNorm,)

    def rule(self, layer: GroupNorm, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels = x.shape[0]
        if channels % layer.groups:
            lower = max(g for g in range(1, min(layer.groups, channels) + 1)
                        if channels % g == 0)
            upper = next((g for g in range(layer.groups + 1, channels + 1)
                          if channels % g == 0), None)
            fixes = f"{lower}" + (f" or {upper}" if upper else "")
            raise ctx.fatal(f"{layer.groups} groups do not divide the {channels} channels; "
                            f"use groups: {fixes} (the nearest divisors of {channels})",
                            "groups")
        params = _affine(layer, channels)
        if channels // layer.groups * size_of(x.shape[1:]) == 1:
            ctx.warn(f"groupnorm with {layer.groups} groups of 1 channel at a single position "
                     f"makes every output {'beta' if layer.affine else 0} whatever its input "
                     "(each group holds one value, and x − mean is 0): use fewer groups, or "
                     "normalise before the map is pooled to 1", "groups")
            return Outcome(x.shape, _reads_nothing(x), params=params)
        return Outcome(x.shape, x.field.spread(x.shape[1:]), params=params)

    def cost(self, layer: GroupNorm, row: Any) -> Cost:
        """Statistics per group (:func:`_standardising_cost`)."""
        return _standardising_cost(layer, row, layer.groups)


class InstanceNormKind(Kind):
    """``instancenorm``: shape unchanged; ``2·C`` parameters when affine.  Each channel
    is normalised over its own spatial positions, so the input needs more than one of
    them (PyTorch refuses one in training; it has no running statistics to fall back
    on); every output sees every position (as ``groupnorm``)."""

    models = (InstanceNorm,)

    def rule(self, layer: InstanceNorm, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        sizes = x.shape[1:]
        if not sizes:
            raise ctx.fatal(f"instancenorm normalises each channel over its spatial "
                            f"positions, but its input is a flat vector {list(x.shape)}; "
                            "use layernorm (or batchnorm) for features")
        if size_of(sizes) == 1:
            raise ctx.fatal(f"instancenorm needs more than one spatial position per channel "
                            f"to estimate a variance, but its input {list(x.shape)} has one; "
                            "normalise before the map is pooled to 1, or use layernorm")
        return Outcome(x.shape, x.field.spread(sizes), params=_affine(layer, x.shape[0]))

    def cost(self, layer: InstanceNorm, row: Any) -> Cost:
        """Statistics per channel (:func:`_standardising_cost`)."""
        return _standardising_cost(layer, row, row.input_shapes[0][0])
