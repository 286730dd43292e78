"""``convcalc layers``: every layer kind's whole description and its options, as plain
text wrapped to a width (the terminal's).

The descriptions are the spec models' docstrings, written in reST for the docs; here
the markup becomes text (:func:`plain`): ````code```` and ```code``` lose their quotes,
``:class:`~convcalc.spec.Conv``` becomes ``Conv``, ``*emphasis*`` and ``**strong**``
lose their stars.  Each option is listed with its type in words (:func:`schema_text`,
from the JSON Schema: the docs' tables use the same words), its default and its
description.

>>> plain("Weights ``(F, C)``; see :class:`~convcalc.spec.Conv` and *why*.")
'Weights (F, C); see Conv and why.'
>>> schema_text({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "array",
...     "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 3}]})
'int ≥ 1 or list (one per axis) of int ≥ 1'
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from typing import Any

from .spec import LAYER_MODELS, MAX_INT, MAX_SPATIAL_AXES, LayerBase, layer_types

#: ``:role:`text <target>```, ``:role:`~a.b.c```, ``:role:`a.b```.
_ROLE = re.compile(r":[\w:.-]+:`([^`<]*?)\s*(?:<[^`>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_STRONG = re.compile(r"(?<![\w*])\*\*(\S(?:.*?\S)?)\*\*(?![\w*])")
_EMPHASIS = re.compile(r"(?<![\w*\\])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
_DEFAULT_ROLE = re.compile(r"(?<![\w`])`([^`]+)`(?![\w`])")

#: The options every layer has, listed once.
COMMON = tuple(LayerBase.model_fields)


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1)
    if text.startswith("~"):
        return text[1:].rsplit(".", 1)[-1]
    return text


def plain(text: str) -> str:
    """reST inline markup as plain text (literals, roles, emphasis; ``\\`` escapes)."""
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _DEFAULT_ROLE.sub(r"\1", text)
    return text.replace("\\ ", "").replace("\\*", "*")


def _bounded(noun: str, schema: dict[str, Any]) -> str:
    """``int ≥ 1``, ``number > 0``, ``0 ≤ number < 1`` (the bound every whole number
    has, :data:`~convcalc.spec.MAX_INT`, is not repeated)."""
    if schema.get("maximum") == MAX_INT:
        schema = {k: v for k, v in schema.items() if k != "maximum"}
    low = next((f"{schema[k]:g} {s} " for k, s in (("minimum", "≤"), ("exclusiveMinimum", "<"))
                if k in schema), "")
    high = next((f" {s} {schema[k]:g}" for k, s in (("maximum", "≤"), ("exclusiveMaximum", "<"))
                 if k in schema), "")
    if low and not high:  # one-sided: the bound reads better after the noun
        bound, symbol = low.split()[0], {"≤": "≥", "<": ">"}[low.split()[1]]
        return f"{noun} {symbol} {bound}"
    return f"{low}{noun}{high}"


def schema_text(schema: dict[str, Any]) -> str:
    """A JSON Schema fragment in words: ``int ≥ 1 or list (one per axis) of int ≥ 1``."""
    for key in ("oneOf", "anyOf"):
        if key in schema:
            alternatives = [s for s in schema[key] if s.get("type") != "null"]
            return " or ".join(schema_text(s) for s in alternatives)
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        return _bounded("int", schema)
    if kind == "number":
        return _bounded("number", schema)
    if kind == "boolean":
        return "bool"
    if kind == "string":
        return "text"
    if kind == "array":
        item = schema_text(schema.get("items", {}))
        low, high = schema.get("minItems"), schema.get("maxItems")
        if low == high == 2:
            return f"[{item}, {item}]"
        if " or " in item:
            item = f"({item})"
        if low == 1 and high == MAX_SPATIAL_AXES:
            return f"list (one per axis) of {item}"
        return f"list of {item}"
    return "any"


def default_text(field: Any) -> str:
    """``required``, or the default as YAML/JSON spells it (``default true``, ``default
    null``)."""
    return "required" if field.is_required() else f"default {json.dumps(field.default)}"


def _paragraphs(doc: str) -> list[str]:
    """Blank-line separated paragraphs; a paragraph whose lines are indented (a
    literal block) keeps its lines."""
    return [p for p in re.split(r"\n\s*\n", inspect.cleandoc(doc)) if p.strip()]


def _wrap(text: str, width: int, indent: str, hanging: str | None = None) -> list[str]:
    """``text`` filled to ``width``: its first line after ``indent``, the rest after
    ``hanging`` (default: ``indent``)."""
    later = indent if hanging is None else hanging
    return textwrap.wrap(" ".join(text.split()), width=max(width, len(later) + 20),
                         initial_indent=indent, subsequent_indent=later,
                         break_on_hyphens=False, break_long_words=False) or [indent.rstrip()]


def description(model: type[LayerBase], width: int, indent: str = "  ") -> list[str]:
    """The model's whole docstring as plain text, paragraph by paragraph (a literal
    block keeps its lines, a list its items)."""
    lines: list[str] = []
    for paragraph in _paragraphs(model.__doc__ or ""):
        if lines:
            lines.append("")
        first = paragraph.splitlines()[0]
        if first.startswith((" ", "\t")):
            lines += [indent + "  " + line.strip() for line in paragraph.splitlines()]
        elif re.match(r"[-*] ", first):
            for item in re.split(r"\n(?=[-*] )", paragraph):
                lines += _wrap(plain(item[2:]), width, indent + "- ", indent + "  ")
        else:
            lines += _wrap(plain(paragraph.replace("::\n", ":\n")), width, indent)
    return lines


def options(model: type[LayerBase], names: list[str], width: int,
            indent: str = "    ") -> list[str]:
    """Each option: its name, type and default, then its description below."""
    properties = model.model_json_schema()["properties"]
    lines = []
    for name in names:
        field = model.model_fields[name]
        head = f"{name}: {schema_text(properties[name])} ({default_text(field)})"
        lines += _wrap(head, width, indent, indent + "      ")
        if field.description:
            lines += _wrap(plain(field.description), width, indent + "    ")
    return lines


def render_layers(width: int = 80) -> str:
    """Every layer kind (in :data:`~convcalc.spec.LAYER_MODELS` order): its type names,
    its description and its own options; the options every layer has come first."""
    out = ["Every layer takes these options (besides its type's own):"]
    out += options(LAYER_MODELS[0], list(COMMON), width, indent="  ")
    for model in LAYER_MODELS:
        own = [name for name in model.model_fields if name not in COMMON and name != "type"]
        out += ["", " | ".join(layer_types(model))]
        out += description(model, width)
        if own:
            out += ["", "  options:"] + options(model, own, width)
        else:
            out += ["", "  options: none of its own"]
    return "\n".join(out)
