"""Rendering a :class:`~convcalc.report.Report`: text table, Markdown, JSON.

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
from typing import Any

from .receptive import ReceptiveField
from .report import Report, Shape


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


def _mark(report: Report, index: int) -> str:
    """✗ for a layer with an error, ! for one with only warnings."""
    prefix = f"layers[{index}]"
    severities = {p.severity for p in report.problems
                  if p.field and (p.field == prefix or p.field.startswith(prefix + "."))}
    return "✗" if "error" in severities else ("!" if severities else "")


_HEADERS = ("layer", "type", "output shape", "params", "MACs", "receptive field")
_RIGHT = {"params", "MACs"}


def _cells(report: Report) -> list[list[str]]:
    rows = []
    for index, row in enumerate(report.layers):
        mark = _mark(report, index)
        rows.append([
            f"{row.name} {mark}" if mark else row.name,
            row.type,
            _shape(row.output_shape),
            _count(row.params),
            _count(row.macs),
            _field(row.receptive_field),
        ])
    return rows


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
    errors, warnings = len(report.errors), len(report.warnings)
    head = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}:"
    return ["", head] + [str(p) for p in report.problems]


def render_table(report: Report) -> str:
    """A plain-text table (what ``convcalc check`` prints by default)."""
    rows = _cells(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADERS)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if h in _RIGHT else c.ljust(w)
                 for c, w, h in zip(cells, widths, _HEADERS)]
        return "  ".join(parts).rstrip()

    out = []
    if report.name:
        out.append(report.name)
    out.append(line(_HEADERS))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(r) for r in rows)
    out.append("")
    out.extend(_summary(report))
    out.extend(_problems(report))
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: Report) -> str:
    """A GitHub-flavoured Markdown table, summary and problem list."""
    out = []
    if report.name:
        out += [f"### {report.name}", ""]
    out.append("| " + " | ".join(_HEADERS) + " |")
    out.append("|" + "|".join("---:" if h in _RIGHT else "---" for h in _HEADERS) + "|")
    for cells in _cells(report):
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
