"""Reading specs: YAML or JSON text → validated :class:`~convcalc.spec.Spec`.

YAML is loaded with PyYAML's safe loader only (no Python objects).  JSON is read by the
same loader (JSON is YAML's flow style), so both get line numbers.  Every validation
error becomes a :class:`~convcalc.errors.Diagnostic` naming file, line and field, and
all of them are raised at once in one :class:`~convcalc.errors.SpecError`.

>>> spec = loads("input: [3, 32, 32]\\nlayers:\\n  - {type: conv, filters: 10, kernel: 5}\\n")
>>> spec.layers[0].filters
10
>>> loads("input: [3, 32, 32]\\nlayers:\\n  - {type: conv, filters: 10, kernel: 5, stride: 0}\\n",
...       filename="net.yaml")
Traceback (most recent call last):
...
convcalc.errors.SpecError: net.yaml:3: layers[0].stride: must be ≥ 1 (got 0)
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import Diagnostic, SpecError
from .blocks import Expansion, expand
from .spec import MODEL_BY_TYPE, Spec, show

# libyaml's safe loader when PyYAML was built with it (8× faster; same marks), else the
# pure-Python one.  Both construct plain data only.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Larger files are refused before parsing (a spec is a few kilobytes).
MAX_SPEC_BYTES = 1 << 20
#: Aliases can make a small YAML file expand to a huge tree ("billion laughs").
MAX_NODES = 200_000

Path = tuple[Any, ...]


class SourceMap:
    """Line numbers (1-based) of every key and item of a parsed document.

    ``line_of(("layers", 0, "stride"))`` is the line of that key; a path that is not in
    the document (a missing key) falls back to its nearest ancestor.
    """

    def __init__(self, filename: str | None = None, lines: dict[Path, int] | None = None):
        self.filename = filename
        self.lines: dict[Path, int] = lines or {}

    def line_of(self, path: Path) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def format_path(path: Path) -> str:
    """``("layers", 0, "stride")`` → ``"layers[0].stride"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _error(message: str, filename: str | None, line: int | None = None,
           field: str | None = None) -> SpecError:
    return SpecError([Diagnostic("error", message, file=filename, line=line, field=field)])


def _map_lines(root: yaml.Node, filename: str | None) -> SourceMap:
    """Walk the composed node tree, recording each path's line; reject duplicate keys."""
    lines: dict[Path, int] = {}
    stack: list[tuple[yaml.Node, Path]] = [(root, ())]
    visited = 0
    while stack:
        node, path = stack.pop()
        visited += 1
        if visited > MAX_NODES:
            raise _error(f"document too large: more than {MAX_NODES} nodes after "
                         "expanding aliases", filename)
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key in seen:
                    raise _error(f"duplicate key {key!r}", filename,
                                 key_node.start_mark.line + 1, format_path(path + (key,)))
                seen.add(key)
                lines[path + (key,)] = key_node.start_mark.line + 1
                stack.append((value_node, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, path + (index,)))
    return SourceMap(filename, lines)


def parse_text(text: str | bytes, filename: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML or JSON text safely; return the data and its :class:`SourceMap`."""
    if isinstance(text, bytes):
        if len(text) > MAX_SPEC_BYTES:
            raise _error(f"file too large ({len(text)} bytes; a spec may have at most "
                         f"{MAX_SPEC_BYTES})", filename)
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = text.count(b"\n", 0, exc.start) + 1
            raise _error(f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})", filename,
                         line) from None
    if len(text) > MAX_SPEC_BYTES:
        raise _error(f"text too large ({len(text)} characters; a spec may have at most "
                     f"{MAX_SPEC_BYTES})", filename)
    try:
        loader = _SAFE_LOADER(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise _error("empty document: expected a mapping with 'input' and 'layers'",
                             filename)
            source = _map_lines(root, filename)
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _error(f"refused: {exc.problem} (a spec holds plain data only: no YAML tags)",
                     filename, mark.line + 1 if mark else None) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        column = f" (column {mark.column + 1})" if mark else ""
        raise _error(f"not valid YAML or JSON: {problem}{column}", filename, line) from None
    except yaml.YAMLError as exc:
        raise _error(f"not valid YAML or JSON: {exc}", filename) from None
    except RecursionError:
        raise _error("document nested too deeply", filename) from None
    return data, source


def _message(error: Mapping[str, Any]) -> str:
    """A short human message for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        symbol, bound = {
            "greater_than_equal": ("≥", "ge"),
            "greater_than": (">", "gt"),
            "less_than_equal": ("≤", "le"),
            "less_than": ("<", "lt"),
        }[kind]
        return f"must be {symbol} {ctx[bound]} (got {show(got)})"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number (got {show(got)})"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number (got {show(got)})"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false (got {show(got)})"
    if kind in ("string_type",):
        return f"must be text (got {show(got)})"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list (got {show(got)})"
    if kind == "too_short" and "min_length" in ctx:
        return f"must have at least {ctx['min_length']} entries (got {ctx.get('actual_length')})"
    if kind == "too_long" and "max_length" in ctx:
        return f"must have at most {ctx['max_length']} entries (got {ctx.get('actual_length')})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {show(got)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of options or a layer type name (got {show(got)})"
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        close = difflib.get_close_matches(str(tag), MODEL_BY_TYPE, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        return f"unknown layer type {tag!r}{hint} (known: {', '.join(MODEL_BY_TYPE)})"
    if kind == "union_tag_not_found":
        return f"missing 'type' (one of: {', '.join(MODEL_BY_TYPE)})"
    return str(error["msg"])


def _clean_loc(loc: tuple[Any, ...]) -> Path:
    """Drop the discriminator tag pydantic inserts after a layer's index."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        if i == 2 and loc[0] == "layers" and isinstance(part, str) and part in MODEL_BY_TYPE:
            continue
        out.append(part)
    return tuple(out)


def _extra_key_hint(key: Any, layer: Any) -> str:
    """For an unknown key in a layer, suggest the closest allowed option."""
    try:
        model = MODEL_BY_TYPE[layer["type"]]
    except (TypeError, KeyError):
        return ""
    allowed = [f for f in model.model_fields if f != "type"]
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    return f"{hint} (allowed: {', '.join(allowed)})"


def diagnostics_from_validation(exc: ValidationError, flat: Mapping[str, Any],
                                expansion: Expansion, source: SourceMap | None) -> list[Diagnostic]:
    """Translate every pydantic error on the flat spec into a :class:`Diagnostic` located
    where the layer is written (in ``layers`` or in a block)."""
    source = source or SourceMap()
    out = []
    for error in exc.errors():
        path = _clean_loc(error["loc"])
        message = _message(error)
        layer_name = None
        if len(path) >= 2 and path[0] == "layers" and isinstance(path[1], int) \
                and path[1] < len(expansion.origins):
            layer = flat["layers"][path[1]]
            if error["type"] == "extra_forbidden" and len(path) == 3:
                message += _extra_key_hint(path[2], layer)
            if expansion.groups[path[1]] and isinstance(layer, Mapping):
                layer_name = layer.get("name")
            path = expansion.origins[path[1]] + path[2:]
        blocks = flat.get("blocks")
        if error["type"] == "union_tag_invalid" and isinstance(blocks, Mapping) and blocks:
            message += f"; blocks defined here: {', '.join(map(str, blocks))}"
        out.append(Diagnostic("error", message, file=source.filename, line=source.line_of(path),
                              field=format_path(path) or None, layer=layer_name))
    return out


def _once_per_place(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Sorted by line; a problem that every instance of a block (or every copy of a
    ``repeat``) repeats is reported once, naming how many more instances share it."""
    first: dict[tuple[Any, ...], Diagnostic] = {}
    more: dict[tuple[Any, ...], int] = {}
    for diagnostic in diagnostics:
        key = (diagnostic.line, diagnostic.field, diagnostic.message)
        if key in first:
            more[key] = more.get(key, 0) + 1
        else:
            first[key] = diagnostic
    out = []
    for key, diagnostic in first.items():
        if key in more:
            n = more[key]
            diagnostic = replace(diagnostic, message=f"{diagnostic.message} (and in {n} more "
                                 f"instance{'s' if n != 1 else ''})")
        out.append(diagnostic)
    return sorted(out, key=lambda d: d.line or 0)


def validate(data: Any, *, source: SourceMap | None = None) -> Spec:
    """Validate already-parsed data (a dict, or a :class:`Spec` which is returned as is):
    expand blocks and ``repeat``, resolve ``inputs``, check every option.

    >>> validate({"input": [1, 28, 28], "layers": ["flatten", {"type": "dense", "units": 10}]}
    ...          ).layers[1].units
    10
    """
    if isinstance(data, Spec):
        return data
    source = source or SourceMap()
    filename = source.filename
    if not isinstance(data, Mapping):
        raise _error(f"expected a mapping with 'input' and 'layers' at the top level "
                     f"(got {type(data).__name__})", filename, 1 if source.lines else None)
    expansion = expand(data)
    diagnostics = [Diagnostic("error", message, file=filename, line=source.line_of(path),
                              field=format_path(path) or None)
                   for path, message in expansion.problems]
    flat = {**data, "layers": expansion.layers} if isinstance(data.get("layers"), list) else data
    try:
        spec = Spec.model_validate(flat)
    except ValidationError as exc:
        diagnostics += diagnostics_from_validation(exc, flat, expansion, source)
        spec = None
    except RecursionError:
        raise _error("document nested too deeply", filename) from None
    if diagnostics or spec is None:
        raise SpecError(_once_per_place(diagnostics))
    spec._source = source
    spec._origins = expansion.origins
    spec._groups = expansion.groups
    return spec


def loads(text: str | bytes | Mapping[str, Any], filename: str | None = None) -> Spec:
    """Parse and validate a spec from YAML or JSON text (a dict validates too)."""
    if isinstance(text, (Mapping, Spec)):
        return validate(text)
    data, source = parse_text(text, filename)
    return validate(data, source=source)


def load(path: str | os.PathLike[str]) -> Spec:
    """Read, parse and validate a spec file (YAML or JSON); ``zoo:NAME`` reads a model
    of :mod:`convcalc.zoo`."""
    name = os.fspath(path)
    if name.startswith("zoo:"):
        from . import zoo

        return loads(zoo.path(name).read_bytes(), filename=zoo.label(name))
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise _error(f"cannot read: {exc.strerror or exc}", name) from None
    return loads(raw, filename=name)
