"""Every rendering: the report (text table, Markdown, JSON), the verification result
and the zoo's list, all text tables drawn by one helper (:func:`table`).

Renderers return strings; only the CLI prints.

>>> import convcalc
>>> report = convcalc.analyze({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]})
>>> print(render_table(report))
layer  type  output shape  params      MACs  activations  receptive field
-----  ----  ------------  ------  --------  -----------  ---------------
conv1  conv  [10, 32, 32]     760  768.00 K    40.00 KiB  5 / 1 / 2
<BLANKLINE>
input [3, 32, 32] → output [10, 32, 32]
params: 760 (trainable 760, frozen 0); buffers: 0; MACs: 768,000 ≈ 768.00 K
memory at batch 1, float32: input 12.00 KiB, activations 40.00 KiB forward + 40.00 KiB backward, params 2.97 KiB, buffers 0 B
training with sgd: gradients 2.97 KiB, optimizer state 0 B; estimated total 97.94 KiB
receptive field: size / jump / effective padding, in input pixels
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import printable
from .receptive import ReceptiveField
from .report import LayerRow, Report, Shape
from .training_memory import Footprint, footprint
from .units import format_bytes, format_count

#: The "from" column lists at most this many inputs of one layer (a concat of thousands
#: would set every row's width: the table would grow with the square of the inputs).
MAX_LISTED_INPUTS = 4

if TYPE_CHECKING:  # pragma: no cover
    from .catalog import Summary
    from .verification import LayerCheck, VerificationResult


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          right: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Lines of a plain-text table: the header, a rule of dashes, then the rows; each
    column as wide as its widest cell, the ``right`` columns right-aligned, trailing
    spaces stripped.

    >>> print("\\n".join(table(["name", "count"], [["a", "1"], ["bb", "22"]], {"count"})))
    name  count
    ----  -----
    a         1
    bb       22
    """
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if h in right else c.ljust(w)
                         for c, w, h in zip(cells, widths, headers)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _shape(shape: Shape | None) -> str:
    """``[3, 224, 224]``; an open size (an input's) as ``null``, as the spec writes it."""
    if shape is None:
        return "—"
    return "[" + ", ".join("null" if s is None else str(s) for s in shape) + "]"


def _count(value: int | None, units: bool = False) -> str:
    """``25,557,032``, or with ``units`` ``25.56 M``; ``—`` for an unknown count."""
    if value is None:
        return "—"
    return format_count(value) if units else f"{value:,}"


def _bytes(value: int | None, units: bool = False) -> str:
    """``1.50 MiB``, or without ``units`` the exact ``1,572,864 B``."""
    if value is None:
        return "—"
    return format_bytes(value) if units else f"{value:,} B"


def _axes(values: Sequence[Any]) -> str:
    texts = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def _field(field: ReceptiveField | None) -> str:
    if field is None or not field.axes:
        return "—"
    data = field.to_dict()
    if data is None:
        return "—"
    return f"{_axes(data['size'])} / {_axes(data['jump'])} / {_axes(data['padding'])}"


def _mark(report: Report, row: LayerRow) -> str:
    """✗ for a layer with an error, ! for one with warnings (a note is no mark)."""
    severities = {p.severity for p in report.problems
                  if p.layer == row.name and (p.field or "").startswith(row.origin)}
    return "✗" if "error" in severities else ("!" if "warning" in severities else "")


_RIGHT = {"params", "MACs", "activations"}


def _relative(name: str, scope: str) -> str:
    """``layer1.0.conv1`` inside ``layer1.0`` is shown as ``conv1``."""
    return name[len(scope) + 1:] if scope and name.startswith(scope + ".") else name


def _headers(report: Report) -> tuple[str, ...]:
    middle = ("from",) if report.branching else ()
    return ("layer", "type", *middle, "output shape", "params", "MACs", "activations",
            "receptive field")


def _cells(report: Report, depth: int | None, units: bool,
           memory: Footprint) -> list[list[str]]:
    """One row per layer, plus one per block instance (its totals) before its layers;
    layers in more than ``depth`` groups are folded into their group's row.  The
    activations column is each output's bytes at ``memory``'s batch and dtype (a
    block's: its layers' together)."""
    size_of = {id(row): size for row, size in zip(report.layers, memory.layers)}   # (names
    # may repeat in a file with errors)
    branching = report.branching
    summaries = {g.name: g for g in report.group_summaries}
    # a block's output is shown by the block's name where it is read from outside
    output_of: dict[str, list[str]] = {}
    for group in report.group_summaries:
        output_of.setdefault(group.layers[-1].name, []).append(group.name)

    def source(name: str, row: LayerRow, scope: str) -> str:
        outer = [g for g in output_of.get(name, []) if g not in row.group]
        return _relative(min(outer, key=len) if outer else name, scope)

    rows: list[list[str]] = []
    open_groups: tuple[str, ...] = ()
    for row in report.layers:
        common = 0
        while (common < min(len(open_groups), len(row.group))
               and open_groups[common] == row.group[common]):
            common += 1
        for level in range(common, len(row.group)):
            if depth is not None and level > depth:
                break
            group = summaries[row.group[level]]
            parent = row.group[level - 1] if level else ""
            last = group.layers[-1]
            rows.append([
                "  " * level + _relative(group.name, parent),
                group.block,
                *([""] if branching else []),
                _shape(group.output_shape),
                _count(group.params, units),
                _count(group.macs, units),
                _bytes(_known_sum(size_of[id(layer)] for layer in group.layers), units),
                _field(last.receptive_field),
            ])
        open_groups = row.group
        if depth is not None and len(row.group) > depth:
            continue
        scope = row.group[-1] if row.group else ""
        mark = _mark(report, row)
        name = "  " * len(row.group) + _relative(row.name, scope)
        rows.append([
            f"{name} {mark}" if mark else name,
            row.type,
            *([_inputs_text([source(n, row, scope) for n in row.inputs])] if branching else []),
            _shape(row.output_shape),
            _count(row.params, units),
            _count(row.macs, units),
            _bytes(size_of[id(row)], units),
            _field(row.receptive_field),
        ])
    return rows


def _known_sum(values: Iterable[int | None]) -> int | None:
    """The sum, or ``None`` if any value is unknown."""
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _inputs_text(names: list[str]) -> str:
    """``a, b, c`` — or the first few and how many more."""
    if len(names) <= MAX_LISTED_INPUTS:
        return ", ".join(names)
    return ", ".join(names[:MAX_LISTED_INPUTS - 1]) + f", … (+{len(names) - MAX_LISTED_INPUTS + 1})"


def _summary(report: Report, units: bool, memory: Footprint) -> list[str]:
    frozen = report.total_params - report.trainable_params

    def count(value: int) -> str:   # exact, and with units also rounded
        rounded = format_count(value)
        return f"{value:,} ≈ {rounded}" if units and value >= 1000 else f"{value:,}"

    def size(value: int | None) -> str:
        return _bytes(value, units)

    lines = [
        f"input {_shape(report.input_shape)} → output {_shape(report.output_shape)}",
        f"params: {count(report.total_params)} (trainable {report.trainable_params:,}, "
        f"frozen {frozen:,}); buffers: {report.total_buffers:,}; "
        f"MACs: {count(report.total_macs)}",
        f"memory at batch {memory.batch}, {memory.dtype}: input {size(memory.input)}, "
        f"activations {size(memory.forward)} forward + {size(memory.backward)} backward, "
        f"params {size(memory.params)}, buffers {size(memory.buffers)}",
        f"training with {memory.optimizer}: gradients {size(memory.gradients)}, optimizer "
        f"state {size(memory.optimizer_state)}; estimated total {size(memory.total)}",
    ]
    if any(row.receptive_field and row.receptive_field.axes for row in report.layers):
        lines.append("receptive field: size / jump / effective padding, in input pixels")
    return lines


def _problems(report: Report) -> list[str]:
    if not report.problems:
        return []
    errors, warnings, notes = len(report.errors), len(report.warnings), len(report.notes)
    head = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    head += f", {notes} note{'s' if notes != 1 else ''}:" if notes else ":"
    return ["", head] + [str(p) for p in report.problems]


def render_table(report: Report, depth: int | None = None, units: bool = True,
                 memory: Footprint | None = None) -> str:
    """A plain-text table (what ``convcalc check`` prints by default).

    Block instances get a row with their totals above their layers (indented); with
    ``depth`` set, deeper layers are folded into their block's row (``depth=0`` shows
    top-level layers and blocks only).  A "from" column names each layer's inputs when
    the network branches.  ``units``: counts as 25.56 M and sizes as MiB (``False``:
    exact digits); ``memory``: the :func:`~convcalc.training_memory.footprint` whose batch,
    dtype and optimizer the activations column and the memory lines use (default batch
    1, float32, sgd).
    """
    memory = memory or footprint(report)
    out = [printable(report.name)] if report.name else []
    out += table(_headers(report), _cells(report, depth, units, memory), _RIGHT)
    out.append("")
    out.extend(_summary(report, units, memory))
    out.extend(_problems(report))
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return printable(text).replace("|", "\\|")


def render_markdown(report: Report, units: bool = True,
                    memory: Footprint | None = None) -> str:
    """A GitHub-flavoured Markdown table, summary and problem list (``units`` and
    ``memory`` as for :func:`render_table`)."""
    memory = memory or footprint(report)
    out = []
    if report.name:
        out += [f"### {_md_escape(report.name)}", ""]
    headers = _headers(report)
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---:" if h in _RIGHT else "---" for h in headers) + "|")
    for cells in _cells(report, None, units, memory):
        name = cells[0].lstrip(" ")
        cells[0] = "\u00a0" * (len(cells[0]) - len(name)) + name  # keep the indentation
        out.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    out.append("")
    out.extend(f"{line}  " for line in _summary(report, units, memory))
    if report.problems:
        out += ["", "**Problems**", ""]
        out += [f"- **{p.severity}** {_md_escape(p.format(tag=False))}" for p in report.problems]
    return "\n".join(out)


def render_json(report: Report, indent: int | None = 2,
                memory: Footprint | None = None) -> str:
    """The JSON contract (:meth:`Report.to_dict`) as text: exact integers."""
    return json.dumps(report.to_dict(memory), indent=indent, ensure_ascii=False)


CSV_COLUMNS = ("layer", "type", "inputs", "group", "input_shape", "output_shape", "params",
               "trainable_params", "buffers", "macs", "activations", "activation_bytes",
               "rf_size", "rf_jump", "rf_padding", "problems")


def render_csv(report: Report, memory: Footprint | None = None) -> str:
    """One row per layer for a spreadsheet, every number exact (``activations``: values
    per example; ``activation_bytes``: at ``memory``'s batch and dtype); shapes and
    per-axis receptive fields as ``30x24x24``; a layer's problems in one cell.

    >>> import convcalc
    >>> report = convcalc.analyze({"input": [3, 8, 8], "layers": [
    ...     {"type": "conv", "filters": 4, "kernel": 3}]})
    >>> print(render_csv(report).splitlines()[1])
    conv1,conv,input,,3x8x8,4x6x6,112,112,0,3888,144,576,3x3,1x1,0x0,
    """
    memory = memory or footprint(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row, size in zip(report.layers, memory.layers):
        field = row.receptive_field.to_dict() if row.receptive_field else None
        problems = [p.format(tag=False) for p in report.problems if p.layer == row.name]

        def axes(key: str) -> str:
            return "" if field is None else "x".join(_axes([v]) for v in field[key])

        writer.writerow([
            printable(row.name), row.type, " ".join(printable(n) for n in row.inputs),
            " ".join(printable(g) for g in row.group), _csv_shape(row.input_shape),
            _csv_shape(row.output_shape), *("" if v is None else v for v in (
                row.params, row.trainable_params, row.buffers, row.macs, row.activations,
                size)),
            axes("size"), axes("jump"), axes("padding"), " | ".join(problems)])
    return out.getvalue().rstrip("\n")


def _csv_shape(shape: Shape | None) -> str:
    return "" if shape is None else "x".join(str(s) for s in shape)


#: ``--format``'s choices
RENDERERS: dict[str, Callable[..., str]] = {
    "table": render_table, "markdown": render_markdown, "json": render_json,
    "csv": render_csv}


# --- the verification result --------------------------------------------------------------


def _check_cells(row: "LayerCheck", gradcheck: bool) -> list[str]:
    if row.shape_ok:
        shape = f"{_shape(row.predicted_shape)} ✓"
    else:
        shape = f"{_shape(row.predicted_shape)} ≠ {_shape(row.observed_shape)} ✗"
    if row.params_ok:
        params = f"{_count(row.predicted_params)} ✓"
    else:
        params = f"{_count(row.predicted_params)} ≠ {_count(row.observed_params)} ✗"
        if row.predicted_buffers != row.observed_buffers:
            params += (f" (buffers {_count(row.predicted_buffers)} ≠ "
                       f"{_count(row.observed_buffers)})")
    if row.gradient_problems:
        grads = "✗ " + "; ".join(row.gradient_problems)
    else:
        grads = "✓" if row.observed_params else "—"
    cells = [row.name, row.type, shape, params, grads]
    if gradcheck:
        if row.gradcheck_error is None:
            cells.append("—")
        else:
            mark = "✓" if row.gradcheck_ok else "✗"
            error = row.gradcheck_error
            cells.append(("not a number" if error != error else f"{error:.1e}") + f" {mark}")
    return cells


def render_verification(result: "VerificationResult") -> str:
    """The text table of :func:`convcalc.verify`: one row per layer with ✓/✗ marks,
    then the run and the verdict.

    Columns: output shape (predicted; ``predicted ≠ observed`` when they differ),
    parameters (likewise), gradients (shapes match the parameters), and with a gradient
    check its largest relative error; then the gradient check's end-to-end errors and
    the kinks it met.
    """
    from .memory import RUNTIME_BYTES

    headers = ["layer", "type", "output shape", "params", "gradients"]
    if result.gradcheck:
        headers.append("gradcheck")
    rows = [_check_cells(row, result.gradcheck) for row in result.layers]
    out = table(headers, rows, {"params"})
    out.append("")
    timings = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in result.seconds.items())
    out.append(f"engine run: batch {result.batch}, {result.dtype}, seed {result.seed}"
               + (f"; {timings}" if timings else ""))
    arrays = result.memory.total - RUNTIME_BYTES
    measured = ("" if result.measured_peak is None else
                f"; measured {format_bytes(result.measured_peak)} of arrays "
                f"({result.measured_peak / arrays:.0%} of their estimate)")
    out.append(f"peak memory: estimated {format_bytes(result.memory.total)} (arrays "
               f"{format_bytes(arrays)}, interpreter {format_bytes(RUNTIME_BYTES)}; limit "
               f"{format_bytes(result.max_memory)}){measured}")
    if result.engine_error:
        out.append(f"✗ the engine run failed: {result.engine_error}")
    if not result.input_gradient_ok:
        out.append("✗ the input gradient's shape differs from the input's")
    out.extend(_end_to_end_lines(result))
    failing = result.failing
    if result.ok:
        who = f"all {len(result.layers)} layers agree" if len(result.layers) > 1 \
            else "the layer agrees"
        out.append(f"✓ verified: {who} on output shapes, parameter counts and gradient shapes")
        if result.gradcheck:     # (ok: every error is a number below the tolerance)
            worst = max([row.gradcheck_error or 0.0 for row in result.layers]
                        + [check.error for check in result.gradcheck_end_to_end])
            how = ("one random direction per tensor" if result.gradcheck_method == "directions"
                   else "sampled entries")
            kinks = sum(row.gradcheck_kinks for row in result.layers)
            out.append(f"✓ gradients match centred differences (float64, {how}): largest "
                       f"relative error {worst:.1e} < {result.tolerance:g}"
                       + (f"; {kinks} kink{'s' if kinks != 1 else ''} met" if kinks else ""))
    elif failing:
        out.append(f"✗ {len(failing)} of {len(result.layers)} layers disagree: "
                   + ", ".join(row.name for row in failing))
    return "\n".join(out)


def _end_to_end_lines(result: "VerificationResult") -> list[str]:
    """The directional gradient check's whole-network errors, one line."""
    if not result.gradcheck_end_to_end:
        return []
    parts = [("all parameters" if check.tensor == "parameters" else "the input")
             + " " + ("not a number" if check.error != check.error else f"{check.error:.1e}")
             + ("" if check.ok else " ✗") for check in result.gradcheck_end_to_end]
    ok = all(check.ok for check in result.gradcheck_end_to_end)
    return [f"{'✓' if ok else '✗'} gradient check end to end (one direction each, the whole "
            f"network): " + ", ".join(parts)]


def render_verification_json(result: "VerificationResult", indent: int | None = 2) -> str:
    """:meth:`VerificationResult.to_dict` as text (``convcalc verify --format json``)."""
    return json.dumps(result.to_dict(), indent=indent, ensure_ascii=False)


# --- the zoo ---------------------------------------------------------------------------------

_ZOO_HEADERS = ("name", "model", "params", "trainable", "MACs", "input", "output", "layers")


def render_zoo(summaries: "Sequence[Summary]") -> str:
    """The text table ``convcalc zoo`` prints: every model with its totals."""
    rows = [[s.name, s.title, f"{s.params:,}", f"{s.trainable_params:,}", f"{s.macs:,}",
             _shape(s.input_shape), _shape(s.output_shape), str(s.layers)]
            for s in summaries]
    out = table(_ZOO_HEADERS, rows, {"params", "trainable", "MACs", "layers"})
    out += ["", "layers: after expanding blocks and repeat.  "
            "Analyse one with: convcalc check zoo:NAME"]
    return "\n".join(out)


# --- valid input sizes ---------------------------------------------------------------------


def sizes_to_dict(name: str | None, input_shape: Sequence[Any], answers: Sequence[Any],
                  near: int | None = None) -> dict[str, Any]:
    """The JSON of ``convcalc sizes``: per axis the set (period, residues, threshold,
    exceptions, smallest, description, output formula, assumed other sizes) and, with
    ``near``, the valid sizes just below and above it."""
    from .sizes import near as near_of

    axes = []
    for answer in answers:
        item = answer.to_dict()
        if near is not None:
            item["near"] = near_of(answer, near)
        axes.append(item)
    return {"name": name, "input_shape": list(input_shape), "axes": axes}


def _sizes_lines(answers: Sequence[Any], near: int | None) -> list[list[str]]:
    rows = []
    for answer in answers:
        smallest = answer.smallest
        output = answer.output_formula() or ("—" if answer.empty else "(flat)")
        cells = [answer.axis, answer.describe(), "—" if smallest is None else str(smallest),
                 output]
        if near is not None:
            below, above = answer.nearest(near)
            shown = []
            for m in (below, above):
                if m is not None:
                    out = answer.output(m)
                    shown.append(f"{m}" + (f" (→ {out})" if out is not None else ""))
            mark = "✓ " if answer.contains(near) else ""
            cells.append(mark + (" / ".join(shown) or "—"))
        rows.append(cells)
    return rows


def _assumptions(answers: Sequence[Any]) -> list[str]:
    """Where an axis's set assumes the other axes' sizes, say so."""
    notes = []
    for answer in answers:
        if answer.assumed:
            others = ", ".join(f"{k} = {v}" for k, v in answer.assumed.items())
            notes.append(f"{answer.axis} assumes {others}")
    return notes


def render_sizes(name: str | None, input_shape: Sequence[Any], answers: Sequence[Any],
                 near: int | None = None) -> str:
    """The text ``convcalc sizes`` prints: per spatial axis the valid sizes, the
    smallest, the output size as a formula (and, with ``near``, the valid sizes just
    below and above it)."""
    headers = ["axis", "valid sizes", "smallest", "output"]
    if near is not None:
        headers.append(f"near {near}")
    out = [name] if name else []
    if not answers:
        return "\n".join(out + ["the input is a flat vector: it has no spatial sizes"])
    out += table(headers, _sizes_lines(answers, near))
    out.append("")
    shape = "[" + ", ".join("null" if n is None else str(n) for n in input_shape) + "]"
    out.append(f"input {shape}; sizes that analyse without an error"
               + (", under the rounding of the spec and of its layers" if answers else ""))
    notes = _assumptions(answers)
    if notes:
        out.append("each axis's sizes assume a valid size on the others: " + "; ".join(notes))
    return "\n".join(out)


def render_sizes_markdown(name: str | None, input_shape: Sequence[Any], answers: Sequence[Any],
                          near: int | None = None) -> str:
    headers = ["axis", "valid sizes", "smallest", "output"] + \
        ([f"near {near}"] if near is not None else [])
    out = [f"### {name}", ""] if name else []
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---" for _ in headers) + "|")
    for cells in _sizes_lines(answers, near):
        out.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    notes = _assumptions(answers)
    if notes:
        out += ["", "Each axis's sizes assume a valid size on the others: " + "; ".join(notes)]
    return "\n".join(out)
