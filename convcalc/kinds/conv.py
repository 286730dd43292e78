"""Convolution and transposed convolution.

``conv``: ``(C, *n) → (F, *out)`` with ``out = (n + pb + pa − e) / s + 1`` per axis
(``e = d·(k − 1) + 1``); weights ``F · C/g · prod(k)`` plus ``F`` biases; MACs
``prod(out) · F · C/g · prod(k)``.  ``padding_mode`` (PyTorch's Conv) says what the
padding holds: zeros, or the input reflected (padding < n), replicated, or wrapped
around (circular: padding ≤ n); the sizes, the MACs and the receptive field are the
same whatever it holds (padded positions count as outside the input).

``conv_transpose``: ``(C, *n) → (F, *out)`` with ``out = (n − 1)·s − pb − pa + e +
output_padding``; weights ``C · F/g · prod(k)`` plus ``F`` biases; MACs
``prod(n) · C · F/g · prod(k)`` (every input value times every tap it scatters to).
"""

from __future__ import annotations

from math import prod
from typing import Any

from .. import geometry
from ..axes import AXIS_NAMES, AxisCountError, Window, per_axis
from ..engine_rules import (
    dx_by_correlation,
    keeps_padded_input,
    padded_output_gradient,
    pads_by_mode,
    takes_winograd,
)
from ..spec import Conv, ConvTranspose
from .base import Context, Cost, Fatal, Kind, Outcome, State, size_of, spatial
from .resize import check_mode_padding, mode_padding_transient
from .sliding import slide
from .static import axis_labels, entries, groups_problem, per_axis_dims


def resolve_groups(ctx: Context, groups: Any, channels: int, filters: int) -> int:
    """The number of channel groups (``depthwise``: one per input channel); both the
    channels and the filters must divide by it (a number of groups and the filters:
    :func:`~convcalc.kinds.static.groups_problem`, whatever the input).  Each problem
    fails the layer (:meth:`Context.fail`); the rule goes on checking."""
    g = channels if groups == "depthwise" else groups
    if channels % g:
        ctx.fail(f"{g} groups do not divide the {channels} input channels", "groups")
    if groups == "depthwise" and filters % g:
        ctx.fail(f"{g} groups do not divide the {filters} filters (depthwise: filters "
                 "must be a multiple of the input channels)", "groups")
    return g


#: The per-axis options of a window.
WINDOW_OPTIONS = ("kernel", "stride", "dilation", "padding")


def padded_sizes(window: Window, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
                 ) -> list[int]:
    """Per spatial axis, the size of the padded input the windows run over, the ceil
    overhang included: ``max(n + pb + pa, (out − 1)·s + e)``."""
    return [max(n + pb + pa, (o - 1) * s + e) for n, (pb, pa), o, s, e in
            zip(in_shape[1:], window.padding, out_shape[1:], window.stride, window.extent)]


class ConvKind(Kind):
    models = (Conv,)

    def static_problems(self, layer: Conv, ctx: Context) -> None:
        """``groups`` must divide ``filters``; the per-axis lists agree."""
        groups_problem(ctx, layer)
        per_axis_dims(ctx, layer, WINDOW_OPTIONS)

    def rule(self, layer: Conv, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels, sizes = x.shape[0], spatial(ctx, x.shape)
        groups = resolve_groups(ctx, layer.groups, channels, layer.filters)
        window = ctx.window(layer, sizes, layer.stride)
        check_mode_padding(ctx, layer.padding_mode, sizes, window.padding, "padding")
        out = slide(ctx, window, sizes, padding=layer.padding, padding_mode=layer.padding_mode)
        field = x.field.through_window(window.kernel, window.stride, window.pad_before,
                                       window.dilation)
        per_output = channels // groups * prod(window.kernel)
        params = layer.filters * per_output + (layer.filters if layer.bias else 0)
        return Outcome((layer.filters, *out), field, params=params,
                       macs=prod(out) * layer.filters * per_output, window=window)

    def cost(self, layer: Conv, row: Any) -> Cost:
        """Either path keeps the padded input as a workspace; the rest is the path's.
        A ``padding_mode`` other than zeros first pads by mode into a workspace of its own
        and convolves that without padding (:func:`_mode_cost`)."""
        window = row.window
        if pads_by_mode(layer.padding_mode, window):
            return _mode_cost(layer, row)
        return _path_cost(layer, row, row.input_shapes[0], window)


def _path_cost(layer: Conv, row: Any, in_shape: tuple[int, ...], window: Window) -> Cost:
    """The cost of convolving an input of ``in_shape`` (channels first) with ``window``:
    the padded input it keeps when padding grows it, and the path's own."""
    out_shape = row.output_shape
    padded = padded_sizes(window, in_shape, out_shape)
    grown = keeps_padded_input(padded, in_shape)
    padded_values = in_shape[0] * prod(padded)
    channels = in_shape[0]
    groups = channels if layer.groups == "depthwise" else layer.groups
    if takes_winograd(window, groups, channels, layer.filters):
        cost = _winograd_cost(in_shape, out_shape)
    else:
        cost = _im2col_cost(layer, row, in_shape, window, padded, padded_values, grown)
    return Cost(kept=cost.kept + (padded_values if grown else 0), columns=cost.columns,
                transient=cost.transient, transformed=cost.transformed)


def _mode_cost(layer: Conv, row: Any) -> Cost:
    """``padding_mode`` reflect, replicate or circular: the mode-padded copy ``C·prod(n +
    pb + pa)`` kept as a workspace, the convolution of it without padding (only a ceil
    overhang left), forward's border slabs and backward's adjoint of the padding, which
    starts from the gradient of the copy (:func:`~convcalc.kinds.resize.mode_padding_transient`)."""
    in_shape, window = row.input_shapes[0], row.window
    copied = (in_shape[0], *(n + pb + pa for n, (pb, pa) in zip(in_shape[1:], window.padding)))
    unpadded = Window(window.kernel, window.stride, window.dilation,
                      ((0, 0),) * len(window.padding))
    cost = _path_cost(layer, row, copied, unpadded)
    slabs, adjoint = mode_padding_transient(in_shape, window.padding, incoming=size_of(copied))
    return Cost(kept=cost.kept + size_of(copied), columns=cost.columns,
                transient=max(cost.transient, slabs, adjoint), transformed=cost.transformed)


def _im2col_cost(layer: Conv, row: Any, in_shape: tuple[int, ...], window: Window,
                 padded: list[int], padded_values: int, grown: bool) -> Cost:
    """Workspaces the layer keeps: columns ``C·K·P``, their gradient and (by correlation)
    the padded output gradient.  Backward's temporaries: the weight product per example,
    and the input gradient — by correlation its product and the batch-first copy; by
    col2im ``dy`` laid out twice (as rows for the weight product: matmul copies a
    strided view; as matrices), the padded input gradient and its cropped copy."""
    out_shape = row.output_shape
    n_in, n_out = size_of(in_shape), size_of(out_shape)
    columns = in_shape[0] * prod(window.kernel) * prod(out_shape[1:])
    weights = row.params - (layer.filters if layer.bias else 0)
    if dx_by_correlation(window, in_shape, out_shape):
        return Cost(kept=2 * columns + padded_output_gradient(window, in_shape, out_shape,
                                                              padded),
                    columns=2 * columns, transient=weights + 2 * n_in)
    return Cost(kept=2 * columns, columns=2 * columns,
                transient=weights + 2 * n_out + padded_values + (n_in if grown else 0))


def _winograd_cost(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Cost:
    """Values per example of the Winograd path, with ``T`` 4×4 output tiles per example:
    kept — the tile workspaces ``36·T`` per input channel (tiles, transformed tiles, their
    gradient) and ``(2·36 + 2·16)·T`` per filter (products and their gradient, output
    tiles and output-gradient tiles); transient — the padded input grown to whole tiles,
    the uncropped output (or grown output gradient), the output, and the input gradient
    before cropping (one tile row and column more); fixed — the transformed filters
    ``36·F·C``."""
    channels, filters = in_shape[0], out_shape[0]
    rows, cols = (-(-n // 4) for n in out_shape[1:])
    tiles = rows * cols
    kept = (3 * 36 * channels + (2 * 36 + 2 * 16) * filters) * tiles
    transient = (channels * (4 * rows + 2) * (4 * cols + 2) + 16 * filters * tiles
                 + size_of(out_shape) + channels * 16 * (rows + 1) * (cols + 1))
    return Cost(kept=kept, columns=kept, transient=transient,
                transformed=36 * filters * channels)


class ConvTransposeKind(Kind):
    models = (ConvTranspose,)

    def static_problems(self, layer: ConvTranspose, ctx: Context) -> None:
        """``groups`` must divide ``filters``; the padding is numbers; the per-axis
        lists agree; ``output_padding`` is smaller than the stride or the dilation
        (the first axis where it is not)."""
        groups_problem(ctx, layer)
        if layer.padding in ("same", "full"):
            ctx.fail(f"padding {layer.padding!r} is not defined for conv_transpose; give "
                     "the padding as numbers", "padding")
        consistent, dims = per_axis_dims(ctx, layer, WINDOW_OPTIONS + ("output_padding",))
        if not consistent:
            return
        for label, op, s, d in zip(axis_labels(dims), entries(layer.output_padding, dims),
                                   entries(layer.stride, dims), entries(layer.dilation, dims)):
            if op >= max(s, d):
                ctx.fail(f"{label}output_padding {op} must be smaller than the stride or "
                         "the dilation", "output_padding")
                break

    def rule(self, layer: ConvTranspose, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        channels, sizes = x.shape[0], spatial(ctx, x.shape)
        groups = resolve_groups(ctx, layer.groups, channels, layer.filters)
        if "padding" in ctx.flagged or "output_padding" in ctx.flagged:
            raise Fatal()    # reported: no output size to work out
        window = ctx.window(layer, sizes, layer.stride)
        try:
            out_pad = per_axis(layer.output_padding, len(sizes), "output_padding")
        except AxisCountError as error:
            raise ctx.fatal(str(error), error.option) from None
        out = []
        cropped: dict[str, list[str]] = {}
        for axis, n, s, e, (pb, pa), op in zip(AXIS_NAMES[len(sizes)], sizes, window.stride,
                                               window.extent, window.padding, out_pad):
            size = geometry.transposed_size(n, s, pb, pa, e, op)
            if size < 1:
                cropped.setdefault(f"padding {pb} + {pa} crops the whole output "
                                   f"({size} left)", []).append(axis)
            out.append(size)
        for message, axes in cropped.items():
            ctx.fail(f"{', '.join(axes)}: {message}", "padding")
        ctx.stop()
        field = x.field.through_transposed(window.kernel, window.stride, window.pad_before,
                                           window.dilation)
        per_input = layer.filters // groups * prod(window.kernel)
        params = channels * per_input + (layer.filters if layer.bias else 0)
        return Outcome((layer.filters, *out), field, params=params,
                       macs=prod(sizes) * channels * per_input, window=window)

    def cost(self, layer: ConvTranspose, row: Any) -> Cost:
        """Transient only: the columns ``F·K·prod(n)``, the uncropped output and the
        output (forward), or the uncropped output gradient, its columns, the weight
        product and the input gradient (backward)."""
        in_shape, out_shape, window = row.input_shapes[0], row.output_shape, row.window
        columns = layer.filters * prod(window.kernel) * prod(in_shape[1:])
        full = [o + pb + pa for o, (pb, pa) in zip(out_shape[1:], window.padding)]
        n_out = size_of(out_shape)
        uncropped = n_out + out_shape[0] * (prod(full) - prod(out_shape[1:]))
        weights = row.params - (layer.filters if layer.bias else 0)
        return Cost(transient=max(columns + uncropped + n_out,
                                  uncropped + columns + weights + size_of(in_shape)))
