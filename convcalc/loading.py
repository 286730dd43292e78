"""Reading specs: YAML or JSON text → validated :class:`~convcalc.spec.Spec`.

YAML is loaded with PyYAML's safe loader only (no Python objects).  JSON is read by the
same loader (JSON is YAML's flow style), so both get line numbers.  Every validation
error becomes a :class:`~convcalc.errors.Diagnostic` naming file, line and field, and
all of them are raised at once in one :class:`~convcalc.errors.SpecError` — with the
problems the analysis finds in the layers that do validate (:mod:`convcalc.partial`).

>>> spec = loads("input: [3, 32, 32]\\nlayers:\\n  - {type: conv, filters: 10, kernel: 5}\\n")
>>> spec.layers[0].filters
10
>>> loads("input: [3, 32, 32]\\nlayers:\\n  - {type: conv, filters: 10, kernel: 5, stride: 0}\\n",
...       filename="net.yaml")
Traceback (most recent call last):
...
convcalc.errors.SpecError: net.yaml:3: layers[0].stride: must be ≥ 1 (got 0)

Limits.  Loading takes time and memory in proportion to the file's size, whatever its
aliases: each is checked before the work it bounds, and refused with one line.

- ``MAX_SPEC_BYTES`` (1 MiB): the text, in bytes (in characters for a ``str``).
- ``MAX_NODES`` (200,000): values once aliases are expanded — every scalar, list and
  mapping counts 1 (plain mapping keys do not) — counted on the parsed node graph,
  where an alias *is* the node it names, without building the expansion.
- A recursive alias (``&r [*r]``: a value that contains itself) has no finite
  expansion and is refused, at the line of its anchor.
- ``MAX_INT_DIGITS`` (4,300, Python's int ↔ str limit): digits of an integer as
  written, and of its value in decimal (``0x…`` can be short and large).
- Blocks and ``repeat``: :data:`convcalc.blocks.MAX_LAYERS` and the other limits of
  :mod:`convcalc.blocks`.

>>> loads("input: [3, 8, 8]\\nlayers: [relu]\\nname: &r [*r]\\n", filename="net.yaml")
Traceback (most recent call last):
...
convcalc.errors.SpecError: net.yaml:3: name: recursive alias: this value contains an alias of itself, so it has no end
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import replace
from collections.abc import Mapping
from typing import Any, cast

import yaml
from pydantic import ValidationError

from .errors import ArgumentError, Diagnostic, SpecError
from .blocks import MAX_LAYERS, Expansion, contains_unknown, expand, listing
from .spec import MODEL_BY_TYPE, Spec, show

# libyaml's safe loader when PyYAML was built with it (8× faster; same marks), else the
# pure-Python one.  Both construct plain data only.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Larger files are refused before parsing (a spec is a few kilobytes).
MAX_SPEC_BYTES = 1 << 20
#: Aliases can make a small YAML file expand to a huge tree ("billion laughs"): at most
#: this many values after expanding them (scalars, lists and mappings; not plain keys).
MAX_NODES = 200_000
#: Digits an integer may have (Python refuses to convert longer ones to or from text).
MAX_INT_DIGITS = 4300
_INT_CEILING = 10**MAX_INT_DIGITS  # the smallest integer with more digits

Path = tuple[Any, ...]

_INT_TAG = "tag:yaml.org,2002:int"


class _Place:
    """Where one collection of the document is written: its line, and its children's
    places — by key for a mapping (``key → (line of the key, place of the value)``), by
    index for a sequence.  A scalar's place is just its line (an ``int``).  A node that
    aliases make appear in many places has one place."""

    __slots__ = ("line", "keys", "items")

    def __init__(self, line: int, keys: dict[Any, tuple[int, "_Place | int"]] | None = None,
                 items: list["_Place | int"] | None = None):
        self.line, self.keys, self.items = line, keys, items

    def child(self, part: Any) -> tuple[int, "_Place | int"] | None:
        """The line and place of key or index ``part``, or ``None`` if there is none."""
        if self.keys is not None:
            try:
                return self.keys.get(part)
            except TypeError:  # an unhashable part names no key
                return None
        if self.items is not None and isinstance(part, int) and 0 <= part < len(self.items):
            place = self.items[part]
            return (place if isinstance(place, int) else place.line), place
        return None


class SourceMap:
    """Line numbers (1-based) of every key and item of a parsed document.

    ``line_of(("layers", 0, "stride"))`` is the line of that key; a path that is not in
    the document (a missing key) falls back to its nearest ancestor.  Built by the loader
    from the document's places (one per distinct node, so aliases cost nothing), or from
    an explicit ``lines`` mapping of paths to lines.

    >>> source = SourceMap("net.yaml", {(): 1, ("layers",): 2, ("layers", 0): 3})
    >>> source.line_of(("layers", 0, "stride")), source.line_of(("name",))
    (3, 1)
    """

    def __init__(self, filename: str | None = None, lines: dict[Path, int] | None = None,
                 root: _Place | int | None = None):
        self.filename = filename
        self.lines: dict[Path, int] = lines or {}
        self._root = root

    @property
    def located(self) -> bool:
        """Whether this map knows any line (it came from text)."""
        return bool(self.lines) or self._root is not None

    def line_of(self, path: Path) -> int | None:
        path = tuple(path)
        if self.lines or self._root is None:
            return self._line_from_lines(path)
        root = self._root
        line, place = (root, root) if isinstance(root, int) else (root.line, root)
        for part in path:
            found = place.child(part) if isinstance(place, _Place) else None
            if found is None:
                break
            line, place = found
        return line

    def _line_from_lines(self, path: Path) -> int | None:
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


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


# --- the node graph: one pass, each distinct node once -----------------------------------


class _Visit:
    """A node reached from its parent by ``step`` (a key, an index, or ``_KEY`` for a
    node that is itself a mapping key); the chain of parents spells its path."""

    __slots__ = ("node", "parent", "step")

    def __init__(self, node: yaml.Node, parent: "_Visit | None", step: Any):
        self.node, self.parent, self.step = node, parent, step

    def path(self) -> Path:
        parts: list[Any] = []
        visit: _Visit | None = self
        while visit is not None and visit.parent is not None:
            if visit.step is not _KEY:
                parts.append(visit.step)
            visit = visit.parent
        return tuple(reversed(parts))


_KEY = object()


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _integer_problem(node: yaml.ScalarNode) -> str | None:
    """Why an integer scalar cannot be read, or ``None``: more than ``MAX_INT_DIGITS``
    digits as written, or a value of more than ``MAX_INT_DIGITS`` decimal digits
    (``0x…``, ``0b…``, octal and ``1:30:00`` are converted — in time linear in the
    length, now bounded — and their value measured).  Junk under an explicit ``!!int``
    tag is left to the constructor, which reports it."""
    body = node.value.replace("_", "").lstrip("+-")
    body = body[2:] if body[:2] in ("0x", "0b", "0o") else body
    digits = sum(char.isalnum() for char in body)
    if digits > MAX_INT_DIGITS:
        return f"number too long: {digits} digits (at most {MAX_INT_DIGITS})"
    try:
        value = yaml.constructor.SafeConstructor.construct_yaml_int(_SCALAR_READER, node)
    except (ValueError, IndexError):
        return None
    if abs(value) >= _INT_CEILING:
        return f"number too long: more than {MAX_INT_DIGITS} digits in decimal"
    return None


class _ScalarReader:
    """The one method of a constructor that ``construct_yaml_int`` calls."""

    @staticmethod
    def construct_scalar(node: yaml.ScalarNode) -> str:
        value: str = node.value   # a scalar node's value is its text
        return value


#: Stands for the constructor ``construct_yaml_int`` takes (it calls only construct_scalar).
_SCALAR_READER = cast(yaml.constructor.SafeConstructor, _ScalarReader())


def _index_document(root: yaml.Node, filename: str | None) -> _Place | int:
    """One pass over the composed document that bounds it before it is constructed.

    PyYAML's composer makes an alias the very node its anchor names, so the document is
    a graph of distinct nodes (at most one per few bytes of text).  Walking each distinct
    node once (children taken last first, the order of the former path walk, so that of
    several problems the same one is reported first), this

    - refuses a recursive alias: a node reached again while it is being walked contains
      itself (``&r [*r]``, ``&m {a: *m}``, ``&m {<<: *m}``); constructing it would make a
      Python list that contains itself;
    - counts the values of the expansion without making it:
      ``size(node) = 1 + Σ size(child)`` over values, items and non-scalar keys (a
      scalar's size is 1), each distinct node's size computed once; refuses a size above
      ``MAX_NODES``;
    - refuses duplicate keys and integers of more than ``MAX_INT_DIGITS`` digits;
    - records every node's line: a :class:`_Place` per collection, a line per scalar.

    Time and memory are O(distinct nodes + edges) = O(file size).
    """
    if isinstance(root, yaml.ScalarNode):
        _check_scalar(root, _Visit(root, None, None), _KEY, filename)
        return _line(root)
    places: dict[int, _Place | int] = {}
    sizes: dict[int, int] = {}  # of the collections (a scalar's is 1)
    walking: dict[int, _Visit] = {}  # the collections from the root to the current one
    stack: list[tuple[_Visit, bool]] = [(_Visit(root, None, None), False)]
    while stack:
        visit, leaving = stack.pop()
        key = id(visit.node)
        if leaving:
            del walking[key]
            places[key], sizes[key] = _finish(visit.node, places, sizes, filename)
        elif key in walking:
            raise _recursive_alias(walking[key], filename)
        elif key not in places:
            walking[key] = visit
            stack.append((visit, True))
            stack.extend((child, False) for child in _children(visit, places, filename))
    return places[id(root)]


def _check_scalar(node: yaml.ScalarNode, parent: _Visit, step: Any,
                  filename: str | None) -> None:
    """Refuse an integer too long to read; ``parent`` and ``step`` name where it is."""
    if node.tag == _INT_TAG:
        problem = _integer_problem(node)
        if problem:
            path = parent.path() + ((step,) if step is not _KEY else ())
            raise _error(problem, filename, _line(node), format_path(path) or None)


def _children(visit: _Visit, places: dict[int, _Place | int],
              filename: str | None) -> list[_Visit]:
    """The visits of a collection's children that are collections (keys included); its
    scalars are checked and placed at once.  A duplicate key is refused first."""
    node = visit.node
    steps: list[tuple[Any, yaml.Node]]   # (index, key or _KEY; the child)
    if isinstance(node, yaml.SequenceNode):
        steps = list(enumerate(node.value))
    else:
        steps, seen = [], set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                raise _error(f"duplicate key {key!r}", filename, _line(key_node),
                             format_path(visit.path() + (key,)))
            seen.add(key)
            steps += ((_KEY, key_node), (key, value_node))
    children = []
    for step, child in steps:
        if isinstance(child, yaml.ScalarNode):
            if id(child) not in places:  # an aliased scalar is checked once
                _check_scalar(child, visit, step, filename)
                places[id(child)] = _line(child)
        else:
            children.append(_Visit(child, visit, step))
    return children


def _finish(node: yaml.Node, places: dict[int, _Place | int], sizes: dict[int, int],
            filename: str | None) -> tuple[_Place, int]:
    """A collection's place and size, from its children's (all finished)."""
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(sizes.get(id(item), 1) for item in node.value)
        place = _Place(_line(node), items=[places[id(item)] for item in node.value])
    else:
        size = 1
        keys: dict[Any, tuple[int, _Place | int]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                key = None
                size += sizes[id(key_node)]
            size += sizes.get(id(value_node), 1)
            keys[key] = (_line(key_node), places[id(value_node)])
        place = _Place(_line(node), keys=keys)
    if size > MAX_NODES:
        raise _error(f"document too large: more than {MAX_NODES} nodes after "
                     "expanding aliases", filename)
    return place, size


def _recursive_alias(anchored: _Visit, filename: str | None) -> SpecError:
    return _error("recursive alias: this value contains an alias of itself, so it has no end",
                  filename, _line(anchored.node), format_path(anchored.path()) or None)


# --- constructing ---------------------------------------------------------------------------


class _UnreadableScalar(Exception):
    """A scalar that its (implicit or explicit) tag's constructor cannot read."""

    def __init__(self, node: yaml.Node, what: str):
        super().__init__(f"cannot read {show(node.value)} as {what}")
        self.node = node


class _SpecLoader(_SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, whose scalar constructors report a value they cannot read
    (``2020-13-45``, ``!!int abc``, ``!!bool maybe``) at its line: PyYAML's let
    ValueError, KeyError or AttributeError escape."""


def _reported(construct: Any, what: str) -> Any:
    def construct_or_report(loader: Any, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError,
                OverflowError):
            raise _UnreadableScalar(node, what) from None
    return construct_or_report


for _tag, _what in {"null": "null", "bool": "true or false", "int": "a whole number",
                    "float": "a number", "binary": "base64 data",
                    "timestamp": "a date (YYYY-MM-DD)"}.items():
    _tag = "tag:yaml.org,2002:" + _tag
    _SpecLoader.add_constructor(_tag, _reported(_SpecLoader.yaml_constructors[_tag], _what))

#: A plain number with an exponent that YAML 1.1 reads as text (``1e-5``, ``2E3``,
#: ``1.5e3``: its floats need a dot and a signed exponent) but JSON and YAML 1.2 read as a
#: number, as editors checking the JSON Schema do: the loader reads it as a number too.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT,
                                  list("-+.0123456789"))


def _text_of(text: Any, filename: str | None, function: str) -> str:
    """``text`` as a ``str`` within ``MAX_SPEC_BYTES``: bytes-like input is measured
    in bytes, then decoded as UTF-8 (a byte-order mark is skipped)."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        size = memoryview(text).nbytes
        if size > MAX_SPEC_BYTES:
            raise _error(f"file too large ({size} bytes; a spec may have at most "
                         f"{MAX_SPEC_BYTES})", filename)
        raw = bytes(text)
        try:
            decoded = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise _error(f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})", filename,
                         line) from None
    elif isinstance(text, str):
        decoded = text
    else:
        raise TypeError(f"{function}(text): expected str, bytes, bytearray or memoryview, "
                        f"got {_type_name(text)}")
    if len(decoded) > MAX_SPEC_BYTES:
        raise _error(f"text too large ({len(decoded)} characters; a spec may have at most "
                     f"{MAX_SPEC_BYTES})", filename)
    return decoded


def _unreadable_character(exc: yaml.reader.ReaderError, text: str,
                          filename: str | None) -> SpecError:
    """A character YAML does not allow (a control character), at its line and column."""
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    position = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return _error(f"not valid YAML or JSON: unacceptable character #x{code:04x}: "
                  f"{exc.reason} (column {column})", filename, line)


def _checked_filename(filename: Any, function: str) -> str | None:
    if filename is None or isinstance(filename, str):
        return filename
    if isinstance(filename, os.PathLike):
        name = os.fspath(filename)
        if isinstance(name, str):
            return name
    raise TypeError(f"{function}(filename): expected str, os.PathLike[str] or None, "
                    f"got {_type_name(filename)}")


def parse_text(text: str | bytes, filename: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML or JSON text safely; return the data and its :class:`SourceMap`.

    ``text`` is a ``str`` or UTF-8 bytes (``bytes``, ``bytearray``, ``memoryview``);
    anything else is a ``TypeError``.  Every limit of the module docstring is checked
    before the data is built.
    """
    filename = _checked_filename(filename, "parse_text")
    text = _text_of(text, filename, "parse_text")
    try:
        loader = _SpecLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise _error("empty document: expected a mapping with 'input' and 'layers'",
                             filename)
            source = SourceMap(filename, root=_index_document(root, filename))
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except _UnreadableScalar as exc:
        raise _error(str(exc), filename, _line(exc.node)) from None
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
    except yaml.reader.ReaderError as exc:
        raise _unreadable_character(exc, text, filename) from None
    except yaml.YAMLError as exc:
        raise _error(f"not valid YAML or JSON: {' '.join(str(exc).split())}", filename) from None
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
            message += f"; blocks defined here: {listing(blocks)}"
        out.append(Diagnostic("error", message, file=source.filename, line=source.line_of(path),
                              field=format_path(path) or None, layer=layer_name))
    return out


def _unused_block_diagnostics(expansion: Expansion, source: SourceMap) -> list[Diagnostic]:
    """The validation errors of the layers of blocks no layer uses (expanded once with
    their params' defaults, :attr:`Expansion.unused`), located where they are written;
    an option that a required parameter gives may be right, so it is not checked."""
    if not expansion.unused:
        return []
    from .partial import layer_adapter

    out = []
    for raw, origin in expansion.unused:
        try:
            layer_adapter().validate_python(raw)
            continue
        except ValidationError as exc:
            errors = exc.errors()
        except RecursionError:
            continue
        for error in errors:
            if contains_unknown(error.get("input")):
                continue
            loc = tuple(error["loc"])
            loc = loc[1:] if loc and loc[0] in MODEL_BY_TYPE else loc
            message = _message(error)
            if error["type"] == "extra_forbidden" and len(loc) == 1:
                message += _extra_key_hint(loc[0], raw)
            path = origin + loc
            out.append(Diagnostic("error", message, file=source.filename,
                                  line=source.line_of(path), field=format_path(path) or None))
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


def _checked_max_layers(max_layers: Any, function: str) -> int:
    if not isinstance(max_layers, int) or isinstance(max_layers, bool):
        raise TypeError(f"{function}(max_layers): expected int, got {_type_name(max_layers)}")
    if not 1 <= max_layers <= MAX_LAYERS:
        raise ArgumentError(f"{function}(max_layers): must be from 1 to {MAX_LAYERS} "
                         f"(got {max_layers})")
    return max_layers


def validate(data: Any, *, source: SourceMap | None = None,
             max_layers: int = MAX_LAYERS) -> Spec:
    """Validate already-parsed data (a mapping, or a :class:`Spec` which is returned as
    is): expand blocks and ``repeat``, resolve ``inputs``, check every option.

    A spec that expands to more than ``max_layers`` layers (at most, and by default,
    :data:`~convcalc.blocks.MAX_LAYERS`) is refused before the work of expanding it.
    Any ``data`` but a mapping or a Spec is a ``TypeError``; a mapping that is not a
    valid spec, a :class:`~convcalc.errors.SpecError`.

    >>> validate({"input": [1, 28, 28], "layers": ["flatten", {"type": "dense", "units": 10}]}
    ...          ).layers[1].units
    10
    >>> validate([1, 28, 28])
    Traceback (most recent call last):
    ...
    TypeError: validate(data): expected a mapping or a Spec, got list
    """
    max_layers = _checked_max_layers(max_layers, "validate")
    if source is not None and not isinstance(source, SourceMap):
        raise TypeError(f"validate(source): expected a SourceMap or None, "
                        f"got {_type_name(source)}")
    if isinstance(data, Spec):
        return data
    if not isinstance(data, Mapping):
        raise TypeError(f"validate(data): expected a mapping or a Spec, got {_type_name(data)}")
    return _validate_parsed(data, source or SourceMap(), max_layers)


def _validate_parsed(data: Any, source: SourceMap, max_layers: int) -> Spec:
    """:func:`validate` of whatever a document held (a list or a number is a spec error)."""
    filename = source.filename
    if not isinstance(data, Mapping):
        raise _error(f"expected a mapping with 'input' and 'layers' at the top level "
                     f"(got {type(data).__name__})", filename, 1 if source.located else None)
    expansion = expand(data, max_layers=max_layers)
    diagnostics = [Diagnostic("error", message, file=filename, line=source.line_of(path),
                              field=format_path(path) or None)
                   for path, message in expansion.problems]
    flat = {**data, "layers": expansion.layers} if isinstance(data.get("layers"), list) else data
    errors: list[Any] = []
    try:
        spec = Spec.model_validate(flat)
    except ValidationError as exc:
        errors = exc.errors()
        diagnostics += diagnostics_from_validation(exc, flat, expansion, source)
        spec = None
    except RecursionError:
        raise _error("document nested too deeply", filename) from None
    diagnostics += _unused_block_diagnostics(expansion, source)
    if diagnostics or spec is None:
        from .partial import analyse_valid_part

        raise SpecError(_once_per_place(diagnostics),
                        analysis=analyse_valid_part(flat, expansion, errors, spec, source))
    spec._source = source
    spec._origins = expansion.origins
    spec._groups = expansion.groups
    return spec


def loads(text: str | bytes | Mapping[str, Any], filename: str | None = None, *,
          max_layers: int = MAX_LAYERS) -> Spec:
    """Parse and validate a spec from YAML or JSON text (a mapping validates too).

    ``text`` is a ``str``, UTF-8 bytes (``bytes``, ``bytearray`` or ``memoryview``, all
    read as bytes), or a mapping or :class:`Spec` (as :func:`validate`); ``filename``
    (``str``, path or ``None``) only labels the messages.  Another type is a
    ``TypeError``; text that is not a valid spec, a :class:`~convcalc.errors.SpecError`.

    >>> loads(None)
    Traceback (most recent call last):
    ...
    TypeError: loads(text): expected str, bytes, bytearray, memoryview or a mapping, got None
    """
    filename = _checked_filename(filename, "loads")
    max_layers = _checked_max_layers(max_layers, "loads")
    if isinstance(text, (Mapping, Spec)):
        return validate(text, max_layers=max_layers)
    if not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"loads(text): expected str, bytes, bytearray, memoryview or a "
                        f"mapping, got {_type_name(text)}")
    data, source = parse_text(text, filename)
    return _validate_parsed(data, source, max_layers)


def load(path: str | os.PathLike[str], *, max_layers: int = MAX_LAYERS) -> Spec:
    """Read, parse and validate a spec file (YAML or JSON); ``zoo:NAME`` reads a model
    of :mod:`convcalc.zoo`; an ONNX model (``.onnx``, or a file whose first byte is a
    ModelProto's) is imported (:mod:`convcalc.importers.onnx`, the ``onnx`` extra).

    ``path`` is a ``str`` or an ``os.PathLike`` naming text (a ``bytes`` path is a
    ``TypeError``).  A file that cannot be read (missing, a directory, a name with a NUL
    character) is a :class:`~convcalc.errors.SpecError`.  At most ``MAX_SPEC_BYTES`` + 1
    bytes are read; a FIFO is opened without waiting for a writer (none: an empty file).

    >>> load(b"net.yaml")
    Traceback (most recent call last):
    ...
    TypeError: load(path): expected str or os.PathLike[str], got bytes
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(name, str):
        raise TypeError(f"load(path): expected str or os.PathLike[str], got "
                        f"{_type_name(path if name is None else name)}")
    max_layers = _checked_max_layers(max_layers, "load")
    if name.startswith("zoo:"):
        from . import zoo

        return loads(zoo.path(name).read_bytes(), filename=zoo.label(name),
                     max_layers=max_layers)
    data = _read_file(name)
    from .importers import is_onnx

    if is_onnx(name, data[:1]):   # an ONNX model (by name or first byte): imported
        from .importers.onnx import load_onnx

        return load_onnx(name)
    return loads(data, filename=name, max_layers=max_layers)


def _read_file(name: str) -> bytes:
    """At most ``MAX_SPEC_BYTES`` + 1 bytes of file ``name``.  It is opened non-blocking
    (a FIFO without a writer would block ``open`` forever), then read blocking."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(name, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
        try:
            if nonblocking:
                os.set_blocking(descriptor, True)
            return _read_descriptor(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise _error(f"cannot read: {exc.strerror or exc}", name) from None
    except ValueError as exc:  # a NUL character in the name
        raise _error(f"cannot read: {exc}", name) from None


def _read_descriptor(descriptor: int) -> bytes:
    """Up to ``MAX_SPEC_BYTES`` + 1 bytes, however the reads come (a pipe gives a few
    kilobytes at a time)."""
    chunks: list[bytes] = []
    wanted = MAX_SPEC_BYTES + 1
    while wanted > 0:
        chunk = os.read(descriptor, wanted)
        if not chunk:
            break
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)
