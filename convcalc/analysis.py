"""Shape, parameter, cost and receptive-field inference, layer by layer.

One rule per layer kind (``RULES``, keyed by the spec's model classes); each takes the
layer and the incoming :class:`_State` and returns the outgoing one, reporting problems
as it goes.  Shapes are channels first: ``(C, *spatial)``, or ``(F,)`` for a flat vector.

>>> from convcalc.loading import validate
>>> report = analyze(validate({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]}))
>>> report.layers[0].output_shape, report.total_params
((10, 32, 32), 760)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any, Callable

from . import geometry
from .errors import Diagnostic
from .fixes import describe_fixes, nearest_fixes
from .loading import SourceMap, format_path
from .receptive import ReceptiveField
from .report import LayerRow, Report, Shape
from .spec import (
    LRN,
    Activation,
    BatchNorm,
    Conv,
    ConvTranspose,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    LayerBase,
    LeakyRelu,
    Merge,
    Pool,
    Spec,
)

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_AXIS_NOUN = {"L": "position", "D": "slice", "H": "row", "W": "column"}


class _Fatal(Exception):
    """This layer's output cannot be computed; later layers are skipped."""


@dataclass(frozen=True)
class _State:
    shape: Shape
    field: ReceptiveField


@dataclass
class _Counts:
    params: int = 0
    buffers: int = 0
    macs: int = 0


class _Context:
    """What a rule needs besides the layer: where it is, the rounding, and a sink for
    problems."""

    def __init__(self, spec: Spec, index: int, layer: LayerBase, source: SourceMap,
                 problems: list[Diagnostic]):
        self.spec = spec
        self.index = index
        self.layer = layer
        self.source = source
        self.problems = problems
        self.counts = _Counts()

    def _report(self, severity: str, message: str, option: str | None,
                details: dict[str, Any] | None) -> None:
        path: tuple[Any, ...] = self.spec.origin(self.index) + ((option,) if option else ())
        self.problems.append(Diagnostic(
            severity, message, file=self.source.filename, line=self.source.line_of(path),
            field=format_path(path), layer=self.layer.name, details=details or {}))  # type: ignore[arg-type]

    def error(self, message: str, option: str | None = None, **details: Any) -> None:
        self._report("error", message, option, details)

    def warn(self, message: str, option: str | None = None, **details: Any) -> None:
        self._report("warning", message, option, details)

    def fatal(self, message: str, option: str | None = None, **details: Any) -> _Fatal:
        self.error(message, option, **details)
        return _Fatal()


# --- per-axis option handling ------------------------------------------------------


def _per_axis(ctx: _Context, option: str, value: Any, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise ctx.fatal(f"has {len(value)} entries but the input has {dims} spatial "
                        f"{'axes' if dims != 1 else 'axis'} ({', '.join(AXIS_NAMES[dims])})",
                        option)
    return tuple(value)


def _paddings(ctx: _Context, padding: Any, sizes: Shape, effs: tuple[int, ...],
              strides: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    dims = len(sizes)
    if padding == "valid":
        return ((0, 0),) * dims
    if padding == "same":
        return tuple(geometry.same_padding(n, e, s) for n, e, s in zip(sizes, effs, strides))
    if padding == "full":
        return tuple(geometry.full_padding(e) for e in effs)
    per_axis = _per_axis(ctx, "padding", padding, dims) if not isinstance(padding, int) \
        else (padding,) * dims
    return tuple(p if isinstance(p, tuple) else (p, p) for p in per_axis)


def _spatial(ctx: _Context, shape: Shape) -> Shape:
    if len(shape) < 2:
        raise ctx.fatal(f"needs a feature map with spatial axes, but its input is a flat "
                        f"vector {list(shape)}")
    return shape[1:]


def _fraction_text(size: int, pb: int, pa: int, eff: int, stride: int, value: Fraction) -> str:
    pads = "" if pb == pa == 0 else (f" + 2·{pb}" if pb == pa else f" + {pb} + {pa}")
    return f"({size}{pads} − {eff}) / {stride} + 1 = {value}"


def _plural(noun: str, count: int) -> str:
    return noun if count == 1 else "/".join(n + "s" for n in noun.split("/"))


def _window_output(ctx: _Context, axes: tuple[str, ...], size: int, pb: int, pa: int,
                   kernel: int, dilation: int, stride: int, ceil_mode: bool,
                   is_pool: bool) -> int:
    """Output size along the axes that share this geometry, reporting any rounding or
    impossibility once for all of them."""
    eff = geometry.effective_kernel(kernel, dilation)
    padded = size + pb + pa
    label = ", ".join(axes)
    details: dict[str, Any] = {"axes": list(axes)}
    window = f"window {eff}" + (f" (kernel {kernel} dilated by {dilation})" if dilation > 1 else "")
    if eff > padded:
        where = f"padded input {size} + {pb + pa} = {padded}" if pb + pa else f"input {size}"
        raise ctx.fatal(f"{label}: {window} is larger than the {where}", "kernel", **details)
    exact = geometry.window_positions(size, pb, pa, eff, stride)
    if exact.denominator == 1:
        return int(exact)
    text = _fraction_text(size, pb, pa, eff, stride, exact)
    details["fraction"] = str(exact)
    mode = "ceil" if ceil_mode else ctx.spec.rounding
    floor = geometry.floor_positions(size, pb, pa, eff, stride)
    noun = "/".join(_AXIS_NOUN[a] for a in axes)
    if mode == "exact":
        # a pool must pad less than its window on each side
        max_padding = 2 * (eff - 1) if is_pool else None
        fixes = nearest_fixes(size, pb + pa, eff, stride, max_padding)
        ctx.error(f"{label}: {text} is not a whole number: the windows do not tile the "
                  f"input. Fix: {describe_fixes(fixes)}; or set rounding: floor|ceil "
                  f"(continuing with floor = {floor})", applied="floor",
                  fixes={k: [list(f) for f in v] for k, v in fixes.items()}, **details)
        return floor
    how = "ceil_mode: true" if ceil_mode else f"rounding: {mode}"
    ceil = geometry.ceil_positions(size, pb, pa, eff, stride)
    option = "ceil_mode" if ceil_mode else None
    if mode == "ceil" and ceil > floor:
        over = geometry.overhang_of_ceil(size, pb, pa, eff, stride)
        ctx.warn(f"{label}: {text} rounded up to {ceil} ({how}): the last window hangs "
                 f"{over} {_plural(noun, over)} past the padded input", option,
                 applied="ceil", overhang=over, **details)
        return ceil
    left, lost = geometry.uncovered_by_floor(size, pb, pa, eff, stride)
    if lost:
        cost = (f"the last {lost} input {_plural(noun, lost)} "
                f"{'is' if lost == 1 else 'are'} never covered")
    else:
        cost = (f"only {left} padding {_plural(noun, left)} at the end "
                f"{'is' if left == 1 else 'are'} unused")
    if mode == "ceil":
        cost += " (ceil would add a window starting in the padding, which is dropped)"
    ctx.warn(f"{label}: {text} rounded down to {floor} ({how}): {cost}", option,
             applied="floor", uncovered=lost, **details)
    return floor


@dataclass(frozen=True)
class _Window:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]

    @property
    def pad_before(self) -> tuple[int, ...]:
        return tuple(before for before, _ in self.padding)


def _window(ctx: _Context, layer: Any, sizes: Shape, stride_value: Any) -> _Window:
    dims = len(sizes)
    kernel = _per_axis(ctx, "kernel", layer.kernel, dims)
    stride = _per_axis(ctx, "stride", stride_value, dims)
    dilation = _per_axis(ctx, "dilation", layer.dilation, dims)
    effs = tuple(geometry.effective_kernel(k, d) for k, d in zip(kernel, dilation))
    padding = _paddings(ctx, layer.padding, sizes, effs, stride)
    return _Window(kernel, stride, dilation, padding)


def _slide(ctx: _Context, state: _State, window: _Window, sizes: Shape,
           ceil_mode: bool = False, is_pool: bool = False) -> tuple[Shape, ReceptiveField]:
    """Output sizes and receptive field of a window layer.  Axes with the same geometry
    are checked together, so a square problem is reported once for "H, W"."""
    geometries = list(zip(sizes, window.padding, window.kernel, window.dilation, window.stride))
    names = AXIS_NAMES[len(sizes)]
    out: dict[Any, int] = {}
    fatal = None
    for geo in dict.fromkeys(geometries):
        axes = tuple(name for name, g in zip(names, geometries) if g == geo)
        n, (pb, pa), k, d, s = geo
        try:
            out[geo] = _window_output(ctx, axes, n, pb, pa, k, d, s, ceil_mode, is_pool)
        except _Fatal as exc:  # check every axis before giving up
            fatal = exc
    if fatal is not None:
        raise fatal
    field = state.field.through_window(window.kernel, window.stride, window.pad_before,
                                       window.dilation)
    return tuple(out[g] for g in geometries), field


# --- rules -----------------------------------------------------------------------------


def _groups(ctx: _Context, groups: Any, channels: int, filters: int) -> int:
    g = channels if groups == "depthwise" else groups
    if channels % g:
        raise ctx.fatal(f"{g} groups do not divide the {channels} input channels", "groups")
    if filters % g:
        raise ctx.fatal(f"{g} groups do not divide the {filters} filters"
                        + (" (depthwise: filters must be a multiple of the input channels)"
                           if groups == "depthwise" else ""), "groups")
    return g


def _conv(layer: Conv, state: _State, ctx: _Context) -> _State:
    channels, sizes = state.shape[0], _spatial(ctx, state.shape)
    groups = _groups(ctx, layer.groups, channels, layer.filters)
    window = _window(ctx, layer, sizes, layer.stride)
    out, field = _slide(ctx, state, window, sizes)
    per_output = channels // groups * prod(window.kernel)
    ctx.counts.params = layer.filters * per_output + (layer.filters if layer.bias else 0)
    ctx.counts.macs = prod(out) * layer.filters * per_output
    return _State((layer.filters, *out), field)


def _conv_transpose(layer: ConvTranspose, state: _State, ctx: _Context) -> _State:
    channels, sizes = state.shape[0], _spatial(ctx, state.shape)
    groups = _groups(ctx, layer.groups, channels, layer.filters)
    if layer.padding in ("same", "full"):
        raise ctx.fatal(f"padding {layer.padding!r} is not defined for conv_transpose; give "
                        "the padding as numbers", "padding")
    window = _window(ctx, layer, sizes, layer.stride)
    out_pad = _per_axis(ctx, "output_padding", layer.output_padding, len(sizes))
    out = []
    for axis, n, k, s, d, (pb, pa), op in zip(AXIS_NAMES[len(sizes)], sizes, window.kernel,
                                             window.stride, window.dilation, window.padding,
                                             out_pad):
        if op >= max(s, d):
            raise ctx.fatal(f"{axis}: output_padding {op} must be smaller than the stride "
                            f"or the dilation", "output_padding")
        size = geometry.transposed_size(n, s, pb, pa, geometry.effective_kernel(k, d), op)
        if size < 1:
            raise ctx.fatal(f"{axis}: padding {pb} + {pa} crops the whole output "
                            f"({size} left)", "padding")
        out.append(size)
    field = state.field.through_transposed(window.kernel, window.stride, window.pad_before,
                                           window.dilation)
    per_input = layer.filters // groups * prod(window.kernel)
    ctx.counts.params = channels * per_input + (layer.filters if layer.bias else 0)
    ctx.counts.macs = prod(sizes) * channels * per_input
    return _State((layer.filters, *out), field)


def _pool(layer: Pool, state: _State, ctx: _Context) -> _State:
    channels, sizes = state.shape[0], _spatial(ctx, state.shape)
    window = _window(ctx, layer, sizes, layer.kernel if layer.stride is None else layer.stride)
    for axis, k, d, (pb, pa) in zip(AXIS_NAMES[len(sizes)], window.kernel, window.dilation,
                                    window.padding):
        eff = geometry.effective_kernel(k, d)
        if max(pb, pa) >= eff:
            raise ctx.fatal(f"{axis}: padding {max(pb, pa)} is not smaller than the window "
                            f"{eff}: some windows would see only padding", "padding")
    out, field = _slide(ctx, state, window, sizes, ceil_mode=layer.ceil_mode, is_pool=True)
    return _State((channels, *out), field)


def _global_pool(layer: GlobalPool, state: _State, ctx: _Context) -> _State:
    sizes = _spatial(ctx, state.shape)
    field = state.field.whole(sizes)
    return _State((state.shape[0],), field)


def _flatten(layer: Flatten, state: _State, ctx: _Context) -> _State:
    field = state.field.whole(state.shape[1:])
    return _State((prod(state.shape),), field)


def _dense(layer: Dense, state: _State, ctx: _Context) -> _State:
    if len(state.shape) != 1:
        raise ctx.fatal(f"needs a flat vector but its input is a feature map "
                        f"{list(state.shape)}; add a flatten (or global pooling) layer before "
                        "it — nothing is flattened implicitly")
    features = state.shape[0]
    ctx.counts.params = features * layer.units + (layer.units if layer.bias else 0)
    ctx.counts.macs = features * layer.units
    return _State((layer.units,), state.field)


def _batchnorm(layer: BatchNorm, state: _State, ctx: _Context) -> _State:
    channels = state.shape[0]
    ctx.counts.params = 2 * channels
    ctx.counts.buffers = 2 * channels
    return state


def _unchanged(layer: LayerBase, state: _State, ctx: _Context) -> _State:
    return state


Rule = Callable[[Any, _State, _Context], _State]

#: The rule for every layer model of :data:`convcalc.spec.LAYER_MODELS`.
RULES: dict[type[LayerBase], Rule] = {
    Conv: _conv,
    ConvTranspose: _conv_transpose,
    Pool: _pool,
    GlobalPool: _global_pool,
    Flatten: _flatten,
    Dense: _dense,
    Activation: _unchanged,
    LeakyRelu: _unchanged,
    Dropout: _unchanged,
    BatchNorm: _batchnorm,
    LRN: _unchanged,
}


def _merge(layer: Merge, states: list[_State], ctx: _Context) -> _State:
    """add: equal shapes → that shape; concat: equal spatial sizes → channels summed."""
    if len(states) < 2:
        raise ctx.fatal(f"{layer.type} needs at least two inputs (got {len(states)})", "inputs")
    shapes = [s.shape for s in states]
    listed = ", ".join(f"{name} {list(shape)}" for name, shape in zip(layer.inputs or [], shapes))
    if layer.type == "add" and len(set(shapes)) > 1:
        raise ctx.fatal(f"add needs inputs of one shape, but got {listed}", "inputs")
    if layer.type == "concat" and len({shape[1:] for shape in shapes}) > 1:
        raise ctx.fatal(f"concat joins channels and needs equal spatial sizes, but got "
                        f"{listed}", "inputs")
    field, misaligned = ReceptiveField.merge([s.field for s in states])
    if misaligned:
        names = AXIS_NAMES.get(len(shapes[0]) - 1, ())
        axes = ", ".join(names[a] for a in misaligned) if names else "the input"
        ctx.warn(f"the receptive fields of {', '.join(layer.inputs or [])} are misaligned "
                 f"along {axes}: their centres differ (or their jumps do), so one output "
                 "combines features of different places of the input", "inputs",
                 axes=[names[a] for a in misaligned] if names else [])
    if layer.type == "add":
        return _State(shapes[0], field)
    return _State((sum(shape[0] for shape in shapes), *shapes[0][1:]), field)


def _duplicate_names(spec: Spec, source: SourceMap, problems: list[Diagnostic]) -> None:
    first: dict[str, int] = {}
    for index, layer in enumerate(spec.layers):
        name = layer.name
        assert name is not None  # every layer is named by Spec validation
        if name in first:
            path = spec.origin(index) + ("name",)
            problems.append(Diagnostic(
                "error", f"duplicate layer name {name!r} (also at "
                f"{format_path(spec.origin(first[name]))})",
                file=source.filename, line=source.line_of(path), field=format_path(path),
                layer=name))
        else:
            first[name] = index


def _unused_outputs(spec: Spec, source: SourceMap, problems: list[Diagnostic]) -> None:
    """A branch whose output nothing reads is a warning (the last layer is the output)."""
    read = {name for layer in spec.layers[1:] for name in layer.inputs or []}
    for index, layer in enumerate(spec.layers[:-1]):
        if layer.name not in read:
            path = spec.origin(index)
            problems.append(Diagnostic(
                "warning", "this layer's output is never used (no layer reads it and it is "
                "not the last layer)", file=source.filename, line=source.line_of(path),
                field=format_path(path), layer=layer.name))


def analyze(spec: Spec | Any) -> Report:
    """Analyse a spec (a :class:`~convcalc.spec.Spec`, or a dict that validates to one).

    Layers are computed in file order, which is a topological order of the graph (a layer
    reads earlier layers only).  Never raises for a problem in the network: every problem
    is in ``report.problems``, and layers downstream of a fatal one have ``None`` shapes.
    Use :meth:`~convcalc.report.Report.raise_for_errors` to turn errors into an exception.
    """
    from .loading import validate

    spec = validate(spec)
    source: SourceMap = spec._source or SourceMap()
    problems: list[Diagnostic] = []
    _duplicate_names(spec, source, problems)
    _unused_outputs(spec, source, problems)
    input_shape = tuple(spec.input)
    states: dict[str, _State | None] = {
        "input": _State(input_shape, ReceptiveField.identity(len(input_shape) - 1))}
    rows = []
    for index, layer in enumerate(spec.layers):
        line = source.line_of(spec.origin(index))
        inputs = tuple(layer.inputs or ())
        group = tuple(name for name, _ in spec.groups(index))
        incoming = [states.get(name) for name in inputs]
        states[layer.name] = None  # type: ignore[index]
        origin = format_path(spec.origin(index))
        skipped = LayerRow(layer.name, layer.type, None, None, line=line,  # type: ignore[arg-type,attr-defined]
                           inputs=inputs, group=group, origin=origin)
        if any(state is None for state in incoming):
            rows.append(skipped)
            continue
        ctx = _Context(spec, index, layer, source, problems)
        try:
            if isinstance(layer, Merge):
                after = _merge(layer, incoming, ctx)  # type: ignore[arg-type]
            elif len(incoming) != 1:
                raise ctx.fatal(f"{layer.type} takes one input (got {len(incoming)}); "
                                "merge branches with an add or concat layer first", "inputs")
            else:
                after = RULES[type(layer)](layer, incoming[0], ctx)
        except _Fatal:
            first = incoming[0].shape if len(incoming) == 1 else None  # type: ignore[union-attr]
            rows.append(LayerRow(layer.name, layer.type, first, None, line=line,  # type: ignore[arg-type,attr-defined]
                                 inputs=inputs, group=group, origin=origin))
            continue
        counts = ctx.counts
        rows.append(LayerRow(
            name=layer.name,  # type: ignore[arg-type]
            type=layer.type,  # type: ignore[attr-defined]
            input_shape=incoming[0].shape if len(incoming) == 1 else None,  # type: ignore[union-attr]
            output_shape=after.shape,
            params=counts.params,
            trainable_params=counts.params if layer.trainable else 0,
            buffers=counts.buffers,
            macs=counts.macs,
            receptive_field=after.field,
            line=line,
            inputs=inputs,
            group=group,
            input_shapes=tuple(state.shape for state in incoming),  # type: ignore[union-attr]
            origin=origin,
        ))
        states[layer.name] = after  # type: ignore[index]
    problems.sort(key=lambda p: (p.line or 0))
    groups = tuple(dict.fromkeys(g for i in range(len(spec.layers)) for g in spec.groups(i)))
    return Report(spec.name, input_shape, tuple(rows), tuple(problems), file=source.filename,
                  groups=groups)
