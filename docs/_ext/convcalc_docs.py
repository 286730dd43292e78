"""Sphinx directives that derive the docs from the code instead of repeating it.

``.. convcalc-layers::``
    One subsection per model of :data:`convcalc.spec.LAYER_MODELS`: its ``type`` tags,
    its docstring and a table of its own options (name, type, default, description),
    all read from the model (``model_fields`` and the model's JSON Schema).  The options
    every layer shares are rendered once by ``.. convcalc-layers:: common``.

``.. convcalc-layer-models::``
    An ``autoclass`` entry for every model of ``LAYER_MODELS`` (the API page).

``.. convcalc-export-table:: pytorch``
    The kind → PyTorch mapping of ``convcalc export`` (one row per spec model), from
    the exporter's own registry (``convcalc.export.pytorch.mapping_rows()``).

``.. convcalc-import-table:: onnx``
    The ONNX operator → layer table of ``convcalc import``, from the importer's own
    handlers (``convcalc.importers.onnx.mapping_rows()``).

``.. convcalc-command:: convcalc check net.yaml``
    Runs the command in-process (click's test runner) while the docs are built and shows
    it with its real output as a console block.  The command runs in the repository root,
    or, when the directive has content, in a scratch directory holding that content as
    the file named by ``:file:`` (shown first with ``$ cat``, unless ``:hide-file:``).  ``:exit:`` is the expected
    exit status (default 0) and ``:head: N`` shows only the first N lines (then ``...``).
    A different exit status is a build error, so the page cannot show a stale claim.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)


def _depend_on_code(directive: SphinxDirective) -> None:
    """Rebuild the page when convcalc's code (or this extension) changes."""
    for path in sorted((ROOT / "convcalc").glob("*.py")):
        directive.env.note_dependency(str(path))
    directive.env.note_dependency(__file__)


# --- layer reference ---------------------------------------------------------------


# the option types in words: the same as `convcalc layers` prints
from convcalc.layer_help import schema_text  # noqa: E402


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    return f"``{json.dumps(field.default)}``"  # YAML/JSON spelling: true, false, null


def _options_table(model: Any, names: list[str]) -> list[str]:
    properties = model.model_json_schema()["properties"]
    rows = []
    for name in names:
        field = model.model_fields[name]
        rows.append([
            f"``{name}``",
            f"``{schema_text(properties[name])}``",
            _default_text(field),
            (field.description or "").replace("\n", " "),
        ])
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 15 35 12 38", "",
             "   * - option", "     - type", "     - default", "     - description"]
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" if cell else "     -" for cell in row[1:])
    return lines + [""]


def _example_yaml(spec: dict[str, Any]) -> str:
    """A spec as a short YAML file: one layer per line, in flow style."""
    import yaml

    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False,
                              width=10_000).strip()

    lines = [f"input: {flow(spec['input'])}", "layers:"]
    lines += [f"  - {flow(layer)}" for layer in spec["layers"]]
    return "\n".join(lines)


def _example_block(model: Any) -> list[str]:
    """The model's first example as a file, and what ``convcalc check`` prints for it
    (computed now, while the docs are built)."""
    import convcalc

    if not model.examples:
        return []
    example = model.examples[0]
    text = _example_yaml(example.spec())
    output = convcalc.render_table(convcalc.analyze(example.spec()))
    shown = ["$ cat example.yaml", *text.split("\n"), "$ convcalc check example.yaml",
             *output.split("\n")]
    return ["Example (run while these docs were built):", "", ".. code-block:: console", ""] + \
        [f"   {line}" if line else "" for line in shown] + [""]


class LayersDirective(SphinxDirective):
    """``.. convcalc-layers::`` (every layer kind) or ``.. convcalc-layers:: common``."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from convcalc import spec as spec_module
        from convcalc.spec import LAYER_MODELS, LayerBase, layer_types

        _depend_on_code(self)
        common = list(LayerBase.model_fields)
        lines: list[str] = []
        if self.arguments and self.arguments[0] == "common":
            lines += _options_table(LayerBase, common)
        elif self.arguments:
            raise self.error(f"unknown argument {self.arguments[0]!r} (expected 'common')")
        else:
            for model in LAYER_MODELS:
                tags = layer_types(model)
                title = " · ".join(f"``{tag}``" for tag in tags)
                lines += [f".. _layer-{tags[0]}:", "", title, "~" * len(title), ""]
                lines += inspect.cleandoc(model.__doc__ or "").splitlines() + [""]
                own = [n for n in model.model_fields if n not in common and n != "type"]
                if own:
                    lines += _options_table(model, own)
                else:
                    lines += ["No options besides ``name`` and ``trainable``; "
                              f"``- {tags[0]}`` alone is a layer.", ""]
                lines += _example_block(model)
        node = nodes.section() if not self.arguments else nodes.container()
        node.document = self.state.document
        content = StringList(lines, source=f"<convcalc-layers from {spec_module.__file__}>")
        nested_parse_with_titles(self.state, content, node, self.content_offset)
        return node.children


class LayerModelsDirective(SphinxDirective):
    """``.. convcalc-layer-models::``: autoclass for every model of LAYER_MODELS."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from convcalc.spec import LAYER_MODELS

        _depend_on_code(self)
        lines: list[str] = []
        for model in LAYER_MODELS:
            lines += [f".. autoclass:: {model.__module__}.{model.__qualname__}", ""]
        node = nodes.container()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source="<convcalc-layer-models>"),
                                self.content_offset, node)
        return node.children


# --- commands with their real output ------------------------------------------------


class CommandDirective(SphinxDirective):
    """``.. convcalc-command:: convcalc check net.yaml`` — see the module docstring."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = {
        "file": directives.unchanged_required,
        "exit": directives.nonnegative_int,
        "head": directives.positive_int,
        "language": directives.unchanged_required,
        "hide-file": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        from click.testing import CliRunner

        from convcalc.cli import main

        _depend_on_code(self)
        command = self.arguments[0]
        argv = shlex.split(command)
        if argv[:1] != ["convcalc"]:
            raise self.error(f"not a convcalc command: {command!r}")
        expected = self.options.get("exit", 0)
        shown: list[str] = []
        result_nodes: list[nodes.Node] = []
        with tempfile.TemporaryDirectory() as scratch:
            cwd = ROOT
            if self.content:
                name = self.options.get("file")
                if not name:
                    raise self.error("content needs :file: (the name to save it under)")
                text = "\n".join(self.content) + "\n"
                Path(scratch, name).write_text(text, encoding="utf-8")
                cwd = Path(scratch)
                if "hide-file" not in self.options:
                    shown += [f"$ cat {name}", *text.rstrip("\n").split("\n")]
            before = os.getcwd()
            os.chdir(cwd)
            try:
                result = CliRunner().invoke(main, argv[1:], prog_name="convcalc")
            finally:
                os.chdir(before)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise self.error(f"{command!r} raised {result.exception!r}")
        if result.exit_code != expected:
            logger.warning("%r exited with %d, expected %d:\n%s", command, result.exit_code,
                           expected, result.output, location=self.get_location())
        output = result.output.rstrip("\n").split("\n")
        head = self.options.get("head")
        if head and len(output) > head:
            output = output[:head] + ["..."]
        shown += [f"$ {command}", *output]
        if expected:
            shown += ["$ echo $?", str(result.exit_code)]
        block = nodes.literal_block("\n".join(shown), "\n".join(shown))
        block["language"] = self.options.get("language", "console")
        self.set_source_info(block)
        result_nodes.append(block)
        return result_nodes


# --- export mappings ----------------------------------------------------------------


class ExportTableDirective(SphinxDirective):
    """``.. convcalc-export-table:: pytorch``: the kind → framework table of an exporter,
    one row per spec model, from ``convcalc.export.<target>.mapping_rows()`` (rows of
    the layer types, then what the exporter makes of them: for ``pytorch`` the modules
    and a note)."""

    required_arguments = 1
    has_content = False
    HEADERS = {"pytorch": ("type", "PyTorch", "notes"), "onnx": ("type", "ONNX operators")}

    def run(self) -> list[nodes.Node]:
        from importlib import import_module

        target = self.arguments[0]
        if target not in self.HEADERS:
            raise self.error(f"unknown export target {target!r} (expected "
                             f"{' or '.join(self.HEADERS)})")
        _depend_on_code(self)
        module = import_module(f"convcalc.export.{target}")
        self.env.note_dependency(module.__file__)
        headers = self.HEADERS[target]
        lines = [".. list-table::", "   :header-rows: 1", ""]
        for row in [headers, *module.mapping_rows()]:
            cells = [cell if index or row is headers else f"``{cell}``"
                     for index, cell in enumerate(row)]
            lines.append(f"   * - {cells[0]}")
            lines += [f"     - {cell}" if cell else "     -" for cell in cells[1:]]
        node = nodes.container()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source=f"<convcalc-export-table {target}>"),
                                self.content_offset, node)
        return node.children


class ImportTableDirective(SphinxDirective):
    """``.. convcalc-import-table:: onnx``: the operator → layer table of an importer,
    from ``convcalc.importers.<source>.mapping_rows()`` (the operators, the convcalc
    layer they become, and how)."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from importlib import import_module

        source = self.arguments[0]
        if source != "onnx":
            raise self.error(f"unknown import source {source!r} (expected onnx)")
        _depend_on_code(self)
        module = import_module(f"convcalc.importers.{source}")
        self.env.note_dependency(module.__file__)
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 25 25 50", "",
                 "   * - ONNX operators", "     - convcalc layer", "     - how"]
        for ops, layer, how in module.mapping_rows():
            lines += [f"   * - {ops}", f"     - {layer}" if layer else "     -",
                      f"     - {how}" if how else "     -"]
        node = nodes.container()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source=f"<convcalc-import-table {source}>"),
                                self.content_offset, node)
        return node.children


# --- API signatures ------------------------------------------------------------------


def _model_signature(app, what, name, obj, options, signature, return_annotation):
    """Pydantic models' generated signatures spell out every validator; show the
    options the spec accepts instead (their types are on the spec page)."""
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover
        return None
    if what == "class" and isinstance(obj, type) and issubclass(obj, BaseModel):
        parts = [name if field.is_required()
                 else f"{name}={field.get_default(call_default_factory=True)!r}"
                 for name, field in obj.model_fields.items()]
        return f"(*, {', '.join(parts)})", None
    return None


def setup(app):
    app.add_directive("convcalc-layers", LayersDirective)
    app.add_directive("convcalc-layer-models", LayerModelsDirective)
    app.add_directive("convcalc-command", CommandDirective)
    app.add_directive("convcalc-export-table", ExportTableDirective)
    app.add_directive("convcalc-import-table", ImportTableDirective)
    app.connect("autodoc-process-signature", _model_signature)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
