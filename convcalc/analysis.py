"""Shape, parameter, cost and receptive-field inference, layer by layer.

:func:`analyze` walks the flat layers in file order (a topological order of the graph)
and asks each layer's kind (:mod:`convcalc.kinds`, keyed by the spec's model classes)
for its :class:`~convcalc.kinds.Outcome`; it keeps no counters of its own.  Shapes are
channels first: ``(C, *spatial)``, or ``(F,)`` for a flat vector.

>>> from convcalc.loading import validate
>>> report = analyze(validate({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]}))
>>> report.layers[0].output_shape, report.total_params
((10, 32, 32), 760)
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from . import fixes
from .errors import Diagnostic
from .kinds import REGISTRY, Context, Fatal, Kind, State, UnknownKind
from .loading import SourceMap, format_path
from .receptive import ReceptiveField
from .report import LayerRow, Report
from .spec import Spec


def _duplicate_names(spec: Spec, origins: list[tuple[Any, ...]], source: SourceMap,
                     problems: list[Diagnostic]) -> None:
    first: dict[str, int] = {}
    for index, layer in enumerate(spec.layers):
        name = layer.name
        assert name is not None  # every layer is named by Spec validation
        if name in first:
            path = origins[index] + ("name",)
            problems.append(Diagnostic(
                "error", f"duplicate layer name {name!r} (also at "
                f"{format_path(origins[first[name]])})",
                file=source.filename, line=source.line_of(path), field=format_path(path),
                layer=name))
        else:
            first[name] = index


#: The warning of a branch nothing reads.
UNUSED_OUTPUT = ("this layer's output is never used (no layer reads it and it is not the "
                 "last layer)")


def _unused_outputs(spec: Spec, origins: list[tuple[Any, ...]], source: SourceMap,
                    problems: list[Diagnostic]) -> None:
    """A branch whose output nothing reads is a warning (the last layer is the output)."""
    read = {name for layer in spec.layers for name in layer.inputs or []}
    for index, layer in enumerate(spec.layers[:-1]):
        if layer.name not in read:
            path = origins[index]
            problems.append(Diagnostic(
                "warning", UNUSED_OUTPUT, file=source.filename, line=source.line_of(path),
                field=format_path(path), layer=layer.name))


class _Problems:
    """Where the rules' problems go: each becomes a :class:`Diagnostic` located at the
    layer's place in the file (and the option, when the rule names one).  A rule's
    ``fixes`` are located in the spec (:func:`convcalc.fixes.locate`; with ``probe``,
    a fix of a deep layer's input size becomes the network input that gives it) and
    written at the end of the message."""

    def __init__(self, source: SourceMap, problems: list[Diagnostic], spec: Spec,
                 probe: bool):
        self.source, self.problems, self.spec = source, problems, spec
        self.prober = fixes.Prober(spec) if probe else None

    def sink(self, origin: tuple[Any, ...], layer: str) -> Any:
        def report(severity: str, message: str, option: str | None,
                   details: dict[str, Any]) -> None:
            if "fixes" in details:
                message, details = self.with_fixes(message, details, origin, layer)
            path = origin + ((option,) if option else ())
            self.problems.append(Diagnostic(
                severity, message, file=self.source.filename,  # type: ignore[arg-type]
                line=self.source.line_of(path), field=format_path(path), layer=layer,
                details=details))

        return report

    def with_fixes(self, message: str, details: dict[str, Any], origin: tuple[Any, ...],
                   layer: str) -> tuple[str, dict[str, Any]]:
        reads = next((tuple(x.inputs or ()) for x in self.spec.layers if x.name == layer), ())
        shared = self.spec.origins().count(origin) > 1
        patches = fixes.locate(details["fixes"], layer=layer, origin=origin,
                               network=self.spec.input, reads_input=reads == ("input",),
                               prober=self.prober, shared=shared, axes=details.get("axes", ()))
        if patches:
            message = f"{message}. Fix: {fixes.describe(patches)}"
        return message, {**details, "fixes": patches}


def _open_input(spec: Spec, source: SourceMap, problems: list[Diagnostic]) -> Report:
    """A report with no layer computed: the input has open sizes."""
    from .axes import axis_names

    names = axis_names(len(spec.input) - 1)
    open_names = ", ".join(names[i] for i in spec.open_axes)
    problems.append(Diagnostic(
        "error", f"{open_names} {'is' if len(spec.open_axes) == 1 else 'are'} open (null): "
        "analyse the network at a size (--input, Spec.with_input), or ask which sizes work "
        "(convcalc sizes, convcalc.valid_sizes)", file=source.filename,
        line=source.line_of(("input",)), field="input"))
    rows = tuple(LayerRow(layer.name, layer.type, None, None,  # type: ignore[arg-type,attr-defined]
                          inputs=tuple(layer.inputs or ())) for layer in spec.layers)
    return Report(spec.name, tuple(spec.input), rows, tuple(problems),  # type: ignore[arg-type]
                  file=source.filename)


def _arity_problem(kind: Any, layer: Any, count: int) -> str | None:
    """The message when a layer reads a number of inputs its kind does not take."""
    if count < kind.min_inputs:
        if kind.min_inputs == 1:
            return f"{layer.type} needs an input (got none)"
        return f"{layer.type} needs at least two inputs (got {count})" \
            if kind.min_inputs == 2 else \
            f"{layer.type} needs at least {kind.min_inputs} inputs (got {count})"
    if kind.max_inputs is not None and count > kind.max_inputs:
        if kind.max_inputs == 1:
            return (f"{layer.type} takes one input (got {count}); merge branches with an "
                    "add or concat layer first")
        return f"{layer.type} takes at most {kind.max_inputs} inputs (got {count})"
    return None


class _Step(NamedTuple):
    """What the analysis needs of one layer that does not depend on the input."""

    layer: Any
    name: str
    type: str
    kind: Any
    inputs: tuple[str, ...]
    arity: str | None         # the message when it reads a number of inputs it cannot take
    origin: tuple[Any, ...]
    line: int | None
    written: str
    group: tuple[str, ...]
    static: Any               # the kind's static_problems, or None when it has none


class _Plan(NamedTuple):
    """Every layer's step and the file-level problems (duplicate names, unused
    outputs): the same for every input shape, so kept with the spec."""

    layers: list[Any]
    steps: tuple[_Step, ...]
    problems: tuple[Diagnostic, ...]
    groups: tuple[tuple[str, str], ...]


def _plan(spec: Spec) -> _Plan:
    """The spec's plan, made once per list of layers (copies of a spec on other inputs,
    :meth:`Spec.with_input`, share it)."""
    cached = spec.plan_cache
    if cached is not None and cached.layers is spec.layers and \
            len(cached.steps) == len(spec.layers):
        return cached  # type: ignore[no-any-return]
    source: SourceMap = spec.source or SourceMap()
    origins, layer_groups = spec.origins(), spec.layer_groups()
    problems: list[Diagnostic] = []
    _duplicate_names(spec, origins, source, problems)
    _unused_outputs(spec, origins, source, problems)
    places: dict[tuple[Any, ...], tuple[int | None, str]] = {}
    group_names: dict[tuple[Any, ...], tuple[str, ...]] = {}
    steps = []
    # a kind's model each (named by the validation), or a convcalc.partial stand-in
    layers: list[Any] = spec.layers
    for index, layer in enumerate(layers):
        origin = origins[index]
        place = places.get(origin)
        if place is None:
            place = places[origin] = (source.line_of(origin), format_path(origin))
        groups = layer_groups[index]
        group = group_names.get(groups)
        if group is None:
            group = group_names[groups] = tuple(instance for instance, _ in groups)
        # a layer that did not validate carries its own kind (convcalc.partial)
        kind = REGISTRY.get(type(layer)) or getattr(type(layer), "calculator_kind", None)
        if kind is None:
            raise UnknownKind(f"{layer.name}: the calculator has no kind for "
                              f"{type(layer).__name__}")
        inputs = tuple(layer.inputs or ())
        static = kind.static_problems \
            if type(kind).static_problems is not Kind.static_problems else None
        steps.append(_Step(layer, layer.name, layer.type, kind, inputs,
                           _arity_problem(kind, layer, len(inputs)), origin, *place, group,
                           static))
    groups_in_order = tuple(dict.fromkeys(g for groups in layer_groups for g in groups))
    plan = _Plan(spec.layers, tuple(steps), tuple(problems), groups_in_order)
    spec.plan_cache = plan
    return plan


def analyze(spec: Spec | Any, *, fields: bool = True) -> Report:
    """Analyse a spec (a :class:`~convcalc.spec.Spec`, or a dict that validates to one).

    Layers are computed in file order, which is a topological order of the graph (a layer
    reads earlier layers only).  Never raises for a problem in the network: every problem
    is in ``report.problems``, and layers downstream of a fatal one have ``None`` shapes.
    Use :meth:`~convcalc.report.Report.raise_for_errors` to turn errors into an exception.
    ``fields=False`` skips the receptive fields (every row's is "not tracked") and the
    search for the network inputs that fix a deep layer's size (its fixes name no
    input): faster, for tools that only need shapes and counts (:mod:`convcalc.sizes`).
    """
    from .loading import validate

    return analyze_part(validate(spec), fields=fields)


def analyze_part(spec: Spec, *, fields: bool = True, unknown: frozenset[str] = frozenset(),
                 probe: bool = True) -> Report:
    """:func:`analyze` of a validated spec whose layers named in ``unknown`` (and the
    network input, when ``"input"`` is in it) have unknown outputs: as after a layer
    that failed, the layers that read them are checked only for what does not depend
    on the input's shape (:meth:`~convcalc.kinds.Kind.static_problems`, the number of
    inputs); an ``unknown`` layer itself is checked so too.  :mod:`convcalc.partial`
    analyses the valid part of a spec that does not validate this way.  ``probe=False``
    leaves out the search for network inputs that fix a deep layer's size."""
    source: SourceMap = spec.source or SourceMap()
    plan = _plan(spec)
    problems: list[Diagnostic] = list(plan.problems)
    input_known = "input" not in unknown
    if spec.open_axes and input_known:
        return _open_input(spec, source, problems)
    located = _Problems(source, problems, spec, probe=fields and probe)
    # no size is open here (above); an unknown input is [1] (convcalc.partial)
    input_shape = cast("tuple[int, ...]", tuple(spec.input))
    states: dict[str, State | None] = {"input": State(
        input_shape, ReceptiveField.identity(len(input_shape) - 1) if fields
        else ReceptiveField(None)) if input_known else None}
    rounding = spec.rounding
    rows = []
    for step in plan.steps:
        layer, name = step.layer, step.name
        incoming = [states.get(source_name) for source_name in step.inputs]
        states[name] = None
        known = None not in incoming and (not unknown or name not in unknown)
        if not known and step.static is None and not step.arity:
            rows.append(LayerRow(name, step.type, None, None, line=step.line,
                                 inputs=step.inputs, group=step.group, origin=step.written))
            continue
        ctx = Context.of(layer, rounding, located.sink(step.origin, name))
        if step.arity and (known or name not in unknown):   # an unknown layer's inputs
            ctx.fail(step.arity, "inputs")   # may be in doubt; else shape-independent
        if step.static is not None:
            ctx.dims = len(incoming[0].shape) - 1 if known and incoming else None  # type: ignore[union-attr]
            step.static(layer, ctx)
        if not known:
            rows.append(LayerRow(name, step.type, None, None, line=step.line,
                                 inputs=step.inputs, group=step.group, origin=step.written))
            continue
        single = incoming[0].shape if len(incoming) == 1 else None  # type: ignore[union-attr]
        try:
            if step.arity:
                raise Fatal()
            outcome = step.kind.rule(layer, tuple(incoming), ctx)
            if ctx.failed:   # problems reported with ctx.fail: every one, then the layer fails
                raise Fatal()
        except Fatal:
            rows.append(LayerRow(name, step.type, single, None, line=step.line,
                                 inputs=step.inputs, group=step.group, origin=step.written))
            continue
        rows.append(LayerRow.of_values(
            name, step.type, single, outcome.shape, outcome.params,
            outcome.params if layer.trainable else 0, outcome.buffers, outcome.macs,
            outcome.field, step.line, step.inputs, step.group,
            tuple([state.shape for state in incoming]),  # type: ignore[union-attr]
            step.written, outcome.window))
        states[name] = State(outcome.shape, outcome.field)
    problems.sort(key=lambda p: (p.line or 0))
    return Report(spec.name, input_shape, tuple(rows), tuple(problems), file=source.filename,
                  groups=plan.groups)
