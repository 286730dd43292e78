"""Layers that read two or more inputs: ``add`` (element-wise sum, all shapes equal)
and ``concat`` (joined along the channel axis, spatial sizes equal).

The receptive field is the union of the paths' fields; paths whose fields are not
aligned (different jumps, or centres that differ output by output) are a warning.
"""

from __future__ import annotations

from typing import Any

from ..axes import AXIS_NAMES
from ..receptive import ReceptiveField
from ..spec import Add, Concat
from .base import Context, Cost, Kind, Outcome, State


class MergeKind(Kind):
    """Base of the merges: the inputs' fields joined, misalignment reported."""

    min_inputs = 2
    max_inputs = None

    @staticmethod
    def listed(layer: Any, inputs: tuple[State, ...]) -> str:
        """``"conv2 [8, 4, 4], input [4, 8, 8]"``: each input's name and shape."""
        return ", ".join(f"{name} {list(x.shape)}"
                         for name, x in zip(layer.inputs or [], inputs))

    @staticmethod
    def field(layer: Any, inputs: tuple[State, ...], ctx: Context) -> ReceptiveField:
        field, misaligned = ReceptiveField.merge([x.field for x in inputs])
        if misaligned:
            names = AXIS_NAMES.get(len(inputs[0].shape) - 1, ())
            axes = ", ".join(names[a] for a in misaligned) if names else "the input"
            ctx.warn(f"the receptive fields of {', '.join(layer.inputs or [])} are "
                     f"misaligned along {axes}: their centres differ (or their jumps do), "
                     "so one output combines features of different places of the input",
                     "inputs", axes=[names[a] for a in misaligned] if names else [])
        return field

    def cost(self, layer: Any, row: Any) -> Cost:
        """The output only (counted with the activations); gradients are views of dy."""
        return Cost()


class AddKind(MergeKind):
    models = (Add,)

    def rule(self, layer: Add, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        shapes = {x.shape for x in inputs}
        if len(shapes) > 1:
            raise ctx.fatal(f"add needs inputs of one shape, but got "
                            f"{self.listed(layer, inputs)}", "inputs")
        return Outcome(inputs[0].shape, self.field(layer, inputs, ctx))


class ConcatKind(MergeKind):
    models = (Concat,)

    def rule(self, layer: Concat, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        if len({x.shape[1:] for x in inputs}) > 1:
            raise ctx.fatal(f"concat joins channels and needs equal spatial sizes, but got "
                            f"{self.listed(layer, inputs)}", "inputs")
        channels = sum(x.shape[0] for x in inputs)
        return Outcome((channels, *inputs[0].shape[1:]), self.field(layer, inputs, ctx))
