"""``.. convcalc-zoo::`` — one section per model of :mod:`convcalc.zoo`, generated from
its spec file while the docs are built, so no number on the page is copied by hand.

Each section has the file's header comment (source, published totals, how the file
follows the reference implementation), the totals of convcalc's analysis, its warnings
if any, a table of the top-level layers and block instances (output shape, parameters,
MACs, receptive field; from the :class:`~convcalc.report.Report`), and the spec file
itself.  ``.. convcalc-zoo:: resnet50`` shows one model only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parents[2]

HEADERS = ("layer", "type", "output shape", "params", "MACs", "receptive field")
#: Characters with a meaning inside RST text.
_SPECIAL = re.compile(r"([\\*_|\[\]<>])")


def _escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)


def _header_rst(header: str) -> list[str]:
    """The header comment as RST: `code` becomes ``code``; "- " items stay a list."""
    out: list[str] = []
    in_list = False
    for line in header.splitlines():
        if line.startswith("- "):
            if out and out[-1] and not in_list:
                out.append("")   # RST wants a blank line before a list
            in_list = True
        elif not line.startswith("  "):
            if in_list and line:
                out.append("")   # and after it
            in_list = False
        parts = re.split(r"(`[^`]+`)", line)
        out.append("".join(f"``{p[1:-1]}``" if p.startswith("`") else _escape(p)
                           for p in parts))
    return out


def _shape(shape: Any) -> str:
    return "—" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def _field(field: Any) -> str:
    if field is None or not field.axes:
        return "—"
    data = field.to_dict()

    def axes(values: list[Any]) -> str:
        texts = [str(v) for v in values]
        return texts[0] if len(set(texts)) == 1 else "×".join(texts)

    return f"{axes(data['size'])} / {axes(data['jump'])} / {axes(data['padding'])}"


def top_level_rows(report: Any) -> list[list[str]]:
    """One row per top-level layer or block instance (a ``repeat`` counts as one), in
    file order, with its output shape, totals and receptive field."""
    groups = {g.name: g for g in report.group_summaries}
    rows: list[list[str]] = []
    shown: set[str] = set()
    for row in report.layers:
        if not row.group:
            rows.append([row.name, row.type, _shape(row.output_shape), f"{row.params:,}",
                         f"{row.macs:,}", _field(row.receptive_field)])
            continue
        outer = row.group[0]
        if outer in shown:
            continue
        shown.add(outer)
        group = groups[outer]
        if group.block == "repeat":
            inner = {r.group[1] for r in group.layers if len(r.group) > 1}
            kind = f"{groups[min(inner)].block} ×{len(inner)}" if inner else \
                f"{group.layers[0].type} ×{len(group.layers)}"
        else:
            kind = group.block
        rows.append([group.name, kind, _shape(group.output_shape), f"{group.params:,}",
                     f"{group.macs:,}", _field(group.layers[-1].receptive_field)])
    return rows


def model_rst(name: str) -> list[str]:
    """The RST of one model's section."""
    from convcalc import analyze, load, zoo

    spec = load(zoo.label(name))
    report = analyze(spec)
    title = f"{spec.name or name} (``zoo:{name}``)"
    lines = [f".. _zoo-{name}:", "", title, "-" * len(title), ""]
    lines += _header_rst(zoo.header(name)) + [""]
    frozen = report.total_params - report.trainable_params
    lines += [
        f":input: {_shape(report.input_shape)}",
        f":output: {_shape(report.output_shape)}",
        f":parameters: {report.total_params:,} (trainable {report.trainable_params:,}, "
        f"frozen {frozen:,})",
        f":buffers: {report.total_buffers:,}",
        f":MACs: {report.total_macs:,} per example",
        f":layers: {len(report.layers)} (blocks and ``repeat`` expanded)",
        "",
    ]
    if report.problems:
        notes = len(report.notes)
        lines += [f"``convcalc check zoo:{name}`` reports {len(report.warnings)} warning"
                  f"{'s' if len(report.warnings) != 1 else ''}, {notes} note"
                  f"{'s' if notes != 1 else ''} (declared on their layers) and "
                  f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''}:", ""]
        lines += [f"- {p.severity}: {_escape(p.format(tag=False))}" for p in report.problems]
        lines += [""]
    lines += [
        ".. list-table:: Top-level layers and blocks (receptive field: size / jump / "
        "effective padding, in input pixels)",
        "   :header-rows: 1",
        "",
        "   * - " + "\n     - ".join(HEADERS),
    ]
    for row in top_level_rows(report):
        lines += ["   * - " + "\n     - ".join(f"``{row[0]}``" if i == 0 else _escape(cell)
                                               for i, cell in enumerate(row))]
    lines += ["", f"Every layer: ``convcalc check zoo:{name}``.  The spec file, after the "
              f"header comment above (``convcalc zoo --show {name}`` prints it all):", ""]
    lines += [".. code-block:: yaml", ""]
    body = zoo.text(name).splitlines()
    while body and body[0].startswith("#"):
        body.pop(0)
    lines += ["   " + line if line else "" for line in body]
    lines += [""]
    return [line for chunk in lines for line in chunk.split("\n")]


class ZooDirective(SphinxDirective):
    """``.. convcalc-zoo::`` (every model) or ``.. convcalc-zoo:: NAME``."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from convcalc import zoo

        for path in sorted((ROOT / "convcalc").rglob("*.py")):
            self.env.note_dependency(str(path))
        for path in sorted(zoo.DIRECTORY.glob("*.yaml")):
            self.env.note_dependency(str(path))
        self.env.note_dependency(__file__)
        names = zoo.names()
        if self.arguments:
            if self.arguments[0] not in names:
                raise self.error(f"unknown zoo model {self.arguments[0]!r} "
                                 f"(the zoo has: {', '.join(names)})")
            names = [self.arguments[0]]
        lines: list[str] = []
        for name in names:
            lines += model_rst(name)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="<convcalc-zoo>"),
                                 node, self.content_offset)
        return node.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("convcalc-zoo", ZooDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
