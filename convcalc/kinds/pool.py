"""Pooling: windows (``maxpool``, ``avgpool``, ``minpool``) and global pooling.

Window pools: ``(C, *n) → (C, *out)``, ``out`` as a convolution's (stride defaults to
the kernel; ``ceil_mode`` rounds up whatever the spec's rounding); padding must be
smaller than the window on each side, else some windows would see only padding.
Global pools: ``(C, *n) → (C,)``.  No parameters, no MACs.
"""

from __future__ import annotations

from math import prod
from typing import Any

from ..engine_rules import keeps_padded_input
from ..spec import GlobalPool, Pool
from .base import Context, Cost, Fatal, Kind, Outcome, State, size_of, spatial
from .conv import WINDOW_OPTIONS, padded_sizes
from .sliding import slide
from .static import axis_labels, entries, per_axis_dims


class PoolKind(Kind):
    models = (Pool,)

    def static_problems(self, layer: Pool, ctx: Context) -> None:
        """The per-axis lists agree, and the padding is smaller than the window on each
        side (the first axis where it is not; ``same`` and ``full`` always are)."""
        consistent, dims = per_axis_dims(ctx, layer, WINDOW_OPTIONS)
        if not consistent or isinstance(layer.padding, str):
            return
        for label, k, d, pad in zip(axis_labels(dims), entries(layer.kernel, dims),
                                    entries(layer.dilation, dims), entries(layer.padding, dims)):
            e, widest = d * (k - 1) + 1, max(pad) if isinstance(pad, tuple) else pad
            if widest >= e:
                ctx.fail(f"{label}padding {widest} is not smaller than the window {e}: some "
                         "windows would see only padding", "padding")
                break

    def rule(self, layer: Pool, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels, sizes = x.shape[0], spatial(ctx, x.shape)
        window = ctx.window(layer, sizes, layer.kernel if layer.stride is None else layer.stride)
        if "padding" in ctx.flagged:
            raise Fatal()    # padding as wide as the window (static_problems)
        out = slide(ctx, window, sizes, ceil_mode=layer.ceil_mode, is_pool=True,
                    padding=layer.padding)
        field = x.field.through_window(window.kernel, window.stride, window.pad_before,
                                       window.dilation)
        return Outcome((channels, *out), field, window=window)

    def cost(self, layer: Pool, row: Any) -> Cost:
        """Masks of the winners (max/min: 2 bytes a value of the output), the padded input
        kept when padding grows it, and the padded input, its gradient and the output
        gradient routed through one more output-sized array when windows overlap."""
        in_shape, out_shape, window = row.input_shapes[0], row.output_shape, row.window
        padded = padded_sizes(window, in_shape, out_shape)
        padded_values = in_shape[0] * prod(padded)
        grown = keeps_padded_input(padded, in_shape)
        n_in, n_out = size_of(in_shape), size_of(out_shape)
        overlapping = any(s < e for s, e in zip(window.stride, window.extent))
        routed = n_out if layer.type != "avgpool" and overlapping else 0
        return Cost(kept=padded_values if grown else 0, masks=2 * n_out,
                    transient=padded_values + (n_in if grown else 0) + n_out + routed)


class GlobalPoolKind(Kind):
    models = (GlobalPool,)

    def rule(self, layer: GlobalPool, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        sizes = spatial(ctx, x.shape)
        return Outcome((x.shape[0],), x.field.whole(sizes))

    def cost(self, layer: GlobalPool, row: Any) -> Cost:
        """The arg-max (or the input shape) per channel kept; the spread gradient."""
        in_shape = row.input_shapes[0]
        return Cost(kept=2 * in_shape[0], transient=size_of(in_shape))
