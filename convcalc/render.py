"""Every rendering: the report (text table, Markdown, JSON), the verification result
and the zoo's list, all text tables drawn by one helper (:func:`table`).

Renderers return strings; only the CLI prints.

>>> import convcalc
>>> report = convcalc.analyze({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]})
>>> print(render_table(report))
layer  type  output shape  params     MACs  receptive field
-----  ----  ------------  ------  -------  ---------------
conv1  conv  [10, 32, 32]     760  768,000  5 / 1 / 2
<BLANKLINE>
input [3, 32, 32] → output [10, 32, 32]
params: 760 (trainable 760, frozen 0); buffers: 0; MACs: 768,000
receptive field: size / jump / effective padding, in input pixels
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import printable
from .receptive import ReceptiveField
from .report import LayerRow, Report, Shape

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
    return "—" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _axes(values: Sequence[Any]) -> str:
    texts = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "×".join(texts)


def _field(field: ReceptiveField | None) -> str:
    if field is None or not field.axes:
        return "—"
    data = field.to_dict()
    return f"{_axes(data['size'])} / {_axes(data['jump'])} / {_axes(data['padding'])}"


def _mark(report: Report, row: LayerRow) -> str:
    """✗ for a layer with an error, ! for one with warnings (a note is no mark)."""
    severities = {p.severity for p in report.problems
                  if p.layer == row.name and (p.field or "").startswith(row.origin)}
    return "✗" if "error" in severities else ("!" if "warning" in severities else "")


_RIGHT = {"params", "MACs"}


def _relative(name: str, scope: str) -> str:
    """``layer1.0.conv1`` inside ``layer1.0`` is shown as ``conv1``."""
    return name[len(scope) + 1:] if scope and name.startswith(scope + ".") else name


def _headers(report: Report) -> tuple[str, ...]:
    middle = ("from",) if report.branching else ()
    return ("layer", "type", *middle, "output shape", "params", "MACs", "receptive field")


def _cells(report: Report, depth: int | None = None) -> list[list[str]]:
    """One row per layer, plus one per block instance (its totals) before its layers;
    layers in more than ``depth`` groups are folded into their group's row."""
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
                _count(group.params),
                _count(group.macs),
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
            _count(row.params),
            _count(row.macs),
            _field(row.receptive_field),
        ])
    return rows


def _inputs_text(names: list[str]) -> str:
    """``a, b, c`` — or the first few and how many more."""
    if len(names) <= MAX_LISTED_INPUTS:
        return ", ".join(names)
    return ", ".join(names[:MAX_LISTED_INPUTS - 1]) + f", … (+{len(names) - MAX_LISTED_INPUTS + 1})"


def _summary(report: Report) -> list[str]:
    frozen = report.total_params - report.trainable_params
    lines = [
        f"input {_shape(report.input_shape)} → output {_shape(report.output_shape)}",
        f"params: {report.total_params:,} (trainable {report.trainable_params:,}, "
        f"frozen {frozen:,}); buffers: {report.total_buffers:,}; MACs: {report.total_macs:,}",
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


def render_table(report: Report, depth: int | None = None) -> str:
    """A plain-text table (what ``convcalc check`` prints by default).

    Block instances get a row with their totals above their layers (indented); with
    ``depth`` set, deeper layers are folded into their block's row (``depth=0`` shows
    top-level layers and blocks only).  A "from" column names each layer's inputs when
    the network branches.
    """
    out = [printable(report.name)] if report.name else []
    out += table(_headers(report), _cells(report, depth), _RIGHT)
    out.append("")
    out.extend(_summary(report))
    out.extend(_problems(report))
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return printable(text).replace("|", "\\|")


def render_markdown(report: Report) -> str:
    """A GitHub-flavoured Markdown table, summary and problem list."""
    out = []
    if report.name:
        out += [f"### {_md_escape(report.name)}", ""]
    headers = _headers(report)
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---:" if h in _RIGHT else "---" for h in headers) + "|")
    for cells in _cells(report):
        name = cells[0].lstrip(" ")
        cells[0] = "\u00a0" * (len(cells[0]) - len(name)) + name  # keep the indentation
        out.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    out.append("")
    out.extend(f"{line}  " for line in _summary(report))
    if report.problems:
        out += ["", "**Problems**", ""]
        out += [f"- **{p.severity}** {_md_escape(p.format(tag=False))}" for p in report.problems]
    return "\n".join(out)


def render_json(report: Report, indent: int | None = 2) -> str:
    """The JSON contract (:meth:`Report.to_dict`) as text."""
    return json.dumps(report.to_dict(), indent=indent, ensure_ascii=False)


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}


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
    from .memory import format_bytes

    headers = ["layer", "type", "output shape", "params", "gradients"]
    if result.gradcheck:
        headers.append("gradcheck")
    rows = [_check_cells(row, result.gradcheck) for row in result.layers]
    out = table(headers, rows, {"params"})
    out.append("")
    timings = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in result.seconds.items())
    out.append(f"engine run: batch {result.batch}, {result.dtype}, seed {result.seed}"
               + (f"; {timings}" if timings else ""))
    out.append(f"estimated peak memory: {format_bytes(result.memory.total)} "
               f"(limit {format_bytes(result.max_memory)})")
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
