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

from typing import Any

from .errors import Diagnostic
from .kinds import REGISTRY, Context, Fatal, State, UnknownKind
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


def _unused_outputs(spec: Spec, origins: list[tuple[Any, ...]], source: SourceMap,
                    problems: list[Diagnostic]) -> None:
    """A branch whose output nothing reads is a warning (the last layer is the output)."""
    read = {name for layer in spec.layers[1:] for name in layer.inputs or []}
    for index, layer in enumerate(spec.layers[:-1]):
        if layer.name not in read:
            path = origins[index]
            problems.append(Diagnostic(
                "warning", "this layer's output is never used (no layer reads it and it is "
                "not the last layer)", file=source.filename, line=source.line_of(path),
                field=format_path(path), layer=layer.name))


class _Problems:
    """Where the rules' problems go: each becomes a :class:`Diagnostic` located at the
    layer's place in the file (and the option, when the rule names one)."""

    def __init__(self, source: SourceMap, problems: list[Diagnostic]):
        self.source, self.problems = source, problems

    def sink(self, origin: tuple[Any, ...], layer: str) -> Any:
        def report(severity: str, message: str, option: str | None,
                   details: dict[str, Any]) -> None:
            path = origin + ((option,) if option else ())
            self.problems.append(Diagnostic(
                severity, message, file=self.source.filename,  # type: ignore[arg-type]
                line=self.source.line_of(path), field=format_path(path), layer=layer,
                details=details))

        return report


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


def analyze(spec: Spec | Any) -> Report:
    """Analyse a spec (a :class:`~convcalc.spec.Spec`, or a dict that validates to one).

    Layers are computed in file order, which is a topological order of the graph (a layer
    reads earlier layers only).  Never raises for a problem in the network: every problem
    is in ``report.problems``, and layers downstream of a fatal one have ``None`` shapes.
    Use :meth:`~convcalc.report.Report.raise_for_errors` to turn errors into an exception.
    """
    from .loading import validate

    spec = validate(spec)
    source: SourceMap = spec.source or SourceMap()
    origins, layer_groups = spec.origins(), spec.layer_groups()
    problems: list[Diagnostic] = []
    _duplicate_names(spec, origins, source, problems)
    _unused_outputs(spec, origins, source, problems)
    located = _Problems(source, problems)
    input_shape = tuple(spec.input)
    states: dict[str, State | None] = {
        "input": State(input_shape, ReceptiveField.identity(len(input_shape) - 1))}
    places: dict[tuple[Any, ...], tuple[int | None, str]] = {}
    group_names: dict[tuple[Any, ...], tuple[str, ...]] = {}
    rows = []
    for index, layer in enumerate(spec.layers):
        name, kind_name = layer.name, layer.type  # type: ignore[attr-defined]
        origin = origins[index]
        place = places.get(origin)
        if place is None:
            place = places[origin] = (source.line_of(origin), format_path(origin))
        line, written = place
        groups = layer_groups[index]
        group = group_names.get(groups)
        if group is None:
            group = group_names[groups] = tuple(instance for instance, _ in groups)
        inputs = tuple(layer.inputs or ())
        incoming = [states.get(source_name) for source_name in inputs]
        states[name] = None  # type: ignore[index]
        kind = REGISTRY.get(type(layer))
        if kind is None:
            raise UnknownKind(f"{name}: the calculator has no kind for "
                              f"{type(layer).__name__}")
        if any(state is None for state in incoming):
            rows.append(LayerRow(name, kind_name, None, None, line=line, inputs=inputs,
                                 group=group, origin=written))
            continue
        ctx = Context(spec.rounding, located.sink(origin, name))  # type: ignore[arg-type]
        single = incoming[0].shape if len(incoming) == 1 else None  # type: ignore[union-attr]
        try:
            arity = _arity_problem(kind, layer, len(incoming))
            if arity:
                raise ctx.fatal(arity, "inputs")
            outcome = kind.rule(layer, tuple(incoming), ctx)  # type: ignore[arg-type]
        except Fatal:
            rows.append(LayerRow(name, kind_name, single, None, line=line, inputs=inputs,
                                 group=group, origin=written))
            continue
        rows.append(LayerRow(
            name, kind_name, single, outcome.shape, outcome.params,
            outcome.params if layer.trainable else 0, outcome.buffers, outcome.macs,
            outcome.field, line, inputs, group,
            tuple(state.shape for state in incoming),  # type: ignore[union-attr]
            written, outcome.window))
        states[name] = State(outcome.shape, outcome.field)  # type: ignore[index]
    problems.sort(key=lambda p: (p.line or 0))
    groups_in_order = tuple(dict.fromkeys(g for groups in layer_groups for g in groups))
    return Report(spec.name, input_shape, tuple(rows), tuple(problems), file=source.filename,
                  groups=groups_in_order)
