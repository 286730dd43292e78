"""Expanding blocks, ``repeat`` and ``inputs`` into the flat list of layers.

The file's ``layers`` may use blocks (by their name as ``type``), ``repeat: N`` and
``inputs:`` naming earlier layers.  :func:`expand` turns that into plain data the spec
models validate: one dict per concrete layer, in file order (which is a topological
order), each with its full name and resolved ``inputs``, plus where it came from in the
file and which block instances it belongs to.

>>> flat = expand({"input": [3, 8, 8], "blocks": {"pair": {"params": {"n": 4}, "layers": [
...     {"type": "conv", "filters": "$n * 2", "kernel": 1}, "relu"]}},
...     "layers": [{"type": "pair", "name": "p", "repeat": 2}]})
>>> [(layer["name"], layer["inputs"]) for layer in flat.layers]
[('p.0.conv1', ['input']), ('p.0.relu1', ['p.0.conv1']), ('p.1.conv1', ['p.0.relu1']), ('p.1.relu1', ['p.1.conv1'])]
>>> flat.layers[0]["filters"], flat.groups[2]
(8, (('p', 'pair ×2'), ('p.1', 'pair')))
"""

from __future__ import annotations

import ast
import difflib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec import MODEL_BY_TYPE

#: A spec may expand to at most this many layers.
MAX_LAYERS = 10_000
#: Keys a block use takes besides the block's own params.
CALL_KEYS = ("type", "name", "inputs", "repeat")

Path = tuple[Any, ...]
Group = tuple[str, str]
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class _TooLarge(Exception):
    pass


@dataclass
class Expansion:
    """The flat layers, and per layer its path in the file and its block instances."""

    layers: list[Any] = field(default_factory=list)
    origins: list[Path] = field(default_factory=list)
    groups: list[tuple[Group, ...]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """``"$name"`` → the param's value; ``"$channels * 4"`` → integer arithmetic
    (+, −, *, //, parentheses) on int params.  Raises ``ValueError`` with a reason.

    >>> evaluate("$c * 4", {"c": 16}), evaluate("$k", {"k": [3, 5]})
    (64, [3, 5])
    """
    whole = _PARAM.fullmatch(text)
    names = _PARAM.findall(text)
    for name in names:
        if name not in env:
            close = difflib.get_close_matches(name, list(env), n=1)
            hint = f" — did you mean ${close[0]}?" if close else ""
            known = ", ".join(f"${p}" for p in env) or "none"
            raise ValueError(f"unknown parameter ${name}{hint} (this block has: {known})")
        if env[name] is None:
            raise ValueError(f"parameter ${name} has no value")
    if whole:
        return env[whole.group(1)]
    for name in names:
        value = env[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"${name} is {value!r}: only whole numbers can be computed with")
    expression = _PARAM.sub(lambda m: str(env[m.group(1)]), text)
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot read the expression {text!r}") from None
    return _arithmetic(tree.body, text)


def _arithmetic(node: ast.AST, text: str) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arithmetic(node.operand, text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult,
                                                          ast.FloorDiv)):
        left, right = _arithmetic(node.left, text), _arithmetic(node.right, text)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            if abs(left) > 1 << 40 or abs(right) > 1 << 40:
                raise ValueError(f"{text!r} is too large")
            return left * right
        if right == 0:
            raise ValueError(f"{text!r} divides by zero")
        return left // right
    raise ValueError(f"{text!r}: only whole numbers, params, + − * // and parentheses "
                     "are allowed")


class _Expander:
    def __init__(self, blocks: Mapping[str, Any], out: Expansion):
        self.blocks = blocks
        self.out = out
        self.work = 0  # copies expanded, to bound repeats of blocks that emit nothing

    def problem(self, path: Path, message: str) -> None:
        self.out.problems.append((path, message))

    def substitute(self, value: Any, env: Mapping[str, Any] | None, path: Path) -> Any:
        if isinstance(value, str) and "$" in value and env is not None:
            try:
                return evaluate(value, env)
            except ValueError as exc:
                self.problem(path, str(exc))
                return value
        if isinstance(value, list):
            return [self.substitute(v, env, path + (i,)) for i, v in enumerate(value)]
        return value

    def scope(self, items: Any, path: Path, prefix: str, scope_input: str,
              env: Mapping[str, Any] | None, stack: tuple[str, ...],
              groups: tuple[Group, ...]) -> str:
        """Expand one list of layers; return the qualified name of its output."""
        if not isinstance(items, list):
            return scope_input  # the models report the wrong type
        later = {item.get("name"): i for i, item in enumerate(items)
                 if isinstance(item, Mapping) and isinstance(item.get("name"), str)}
        names: dict[str, str] = {}
        counts: Counter[str] = Counter()
        previous = scope_input
        for index, raw in enumerate(items):
            item_path = path + (index,)
            item = {"type": raw} if isinstance(raw, str) else raw
            if not isinstance(item, Mapping):
                self.emit(raw, item_path, groups)
                continue
            item = {key: self.substitute(value, env, item_path + (key,))
                    for key, value in item.items()}
            kind = item.get("type")
            counts[kind if isinstance(kind, str) else ""] += 1
            local = item.get("name")
            if local == "input":
                self.problem(item_path + ("name",), "'input' is reserved: it names the "
                             "network's (or a block's) input")
            if not isinstance(local, str) or not local:
                local = f"{kind}{counts[kind]}" if isinstance(kind, str) else f"layer{index + 1}"
            repeat = item.pop("repeat", 1)
            if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
                self.problem(item_path + ("repeat",),
                             f"must be a whole number ≥ 1 (got {repeat!r})")
                repeat = 1
            inputs = self.resolve(item.get("inputs"), item_path, local, names, later, items,
                                  previous, scope_input)
            is_block = isinstance(kind, str) and kind in self.blocks and kind not in MODEL_BY_TYPE
            outer = groups + (((prefix + local, f"{kind} ×{repeat}"),) if repeat > 1 else ())
            for copy in range(repeat):
                self.work += 1
                if self.work > 10 * MAX_LAYERS:
                    raise _TooLarge()
                name = f"{local}.{copy}" if repeat > 1 else local
                if is_block:
                    output = self.call(item, item_path, prefix + name, inputs, stack, outer)
                else:
                    self.emit({**item, "name": prefix + name, "inputs": inputs}, item_path,
                              outer)
                    output = prefix + name
                names[name] = output
                inputs = [output]
            names[local] = previous = inputs[0]
        return previous

    def resolve(self, raw: Any, path: Path, local: str, names: Mapping[str, str],
                later: Mapping[Any, int], items: list[Any], previous: str,
                scope_input: str) -> list[str]:
        if raw is None:
            return [previous]
        entries = [raw] if isinstance(raw, str) else raw
        if not isinstance(entries, list) or not entries:
            self.problem(path + ("inputs",), "must be a layer name or a list of them")
            return [previous]
        resolved = []
        for i, entry in enumerate(entries):
            where = path + ("inputs",) + ((i,) if not isinstance(raw, str) else ())
            if entry == "input":
                resolved.append(scope_input)
            elif isinstance(entry, str) and entry in names:
                resolved.append(names[entry])
            elif isinstance(entry, str) and entry in later:
                cycle = _cycle(entry, local, items)
                self.problem(where, f"cycle: {' → '.join(cycle)}" if cycle else
                             f"{entry!r} is defined later: a layer reads earlier layers only")
            else:
                close = difflib.get_close_matches(str(entry), list(names) + ["input"], n=1)
                hint = f" — did you mean {close[0]!r}?" if close else ""
                self.problem(where, f"unknown layer {entry!r}{hint}")
        return resolved or [previous]

    def call(self, item: Mapping[str, Any], path: Path, instance: str, inputs: list[str],
             stack: tuple[str, ...], groups: tuple[Group, ...]) -> str:
        kind = item["type"]
        block = self.blocks[kind]
        if kind in stack:
            self.problem(path + ("type",), f"block {kind!r} uses itself: "
                         f"{' → '.join(stack + (kind,))}")
            return inputs[0]
        if len(inputs) != 1:
            self.problem(path + ("inputs",), f"a block takes one input (got {len(inputs)})")
        declared = block.get("params") if isinstance(block.get("params"), Mapping) else {}
        env = dict(declared)
        for key, value in item.items():
            if key in CALL_KEYS:
                continue
            if key not in declared:
                close = difflib.get_close_matches(str(key), list(declared), n=1)
                hint = f" — did you mean {close[0]!r}?" if close else ""
                self.problem(path + (key,), f"block {kind!r} has no parameter {key!r}{hint} "
                             f"(it has: {', '.join(declared) or 'none'})")
            env[key] = value
        missing = [p for p, v in env.items() if v is None]
        if missing:
            self.problem(path, f"block {kind!r} needs {', '.join(missing)}")
            return inputs[0]
        return self.scope(block.get("layers"), ("blocks", kind, "layers"), instance + ".",
                          inputs[0], env, stack + (kind,), groups + ((instance, kind),))

    def emit(self, layer: Any, origin: Path, groups: tuple[Group, ...]) -> None:
        if len(self.out.layers) >= MAX_LAYERS:
            raise _TooLarge()
        self.out.layers.append(layer)
        self.out.origins.append(origin)
        self.out.groups.append(groups)


def _cycle(start: str, target: str, items: list[Any]) -> list[str] | None:
    """The path of ``inputs`` from ``start`` back to ``target``, if there is one."""
    reads: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            raw = item.get("inputs")
            reads[item["name"]] = [raw] if isinstance(raw, str) else \
                [r for r in raw if isinstance(r, str)] if isinstance(raw, list) else []
    if start == target:
        return [target, target]
    trail = [target, start]
    seen = {start}
    while True:
        following = [n for n in reads.get(trail[-1], []) if n == target or n not in seen]
        if not following:
            return None
        if target in following:
            return trail + [target]
        trail.append(following[0])
        seen.add(following[0])


def expand(data: Mapping[str, Any]) -> Expansion:
    """Expand ``data["layers"]`` (blocks, repeat, inputs) into flat layer dicts."""
    out = Expansion()
    raw_blocks = data.get("blocks")
    blocks = {name: block for name, block in raw_blocks.items() if isinstance(block, Mapping)} \
        if isinstance(raw_blocks, Mapping) else {}
    for name in blocks:
        if name in MODEL_BY_TYPE:
            out.problems.append((("blocks", name),
                                 f"a block cannot be called {name!r}: that is a layer type"))
    for name, block in blocks.items():
        _check_parameters(block, name, out)
    expander = _Expander(blocks, out)
    try:
        expander.scope(data.get("layers"), ("layers",), "", "input", None, (), ())
    except _TooLarge:
        out.problems.append((("layers",), f"expands to more than {MAX_LAYERS} layers"))
    except RecursionError:
        out.problems.append((("blocks",), "blocks nested too deeply"))
    out.problems = list(dict.fromkeys(out.problems))  # each instance repeats its block's
    return out


def _check_parameters(block: Mapping[str, Any], name: str, out: Expansion) -> None:
    """Every ``$param`` a block's layers use must be declared, whether or not (and however
    often) the block is used."""
    params = block.get("params") if isinstance(block.get("params"), Mapping) else {}

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, str):
            for used in _PARAM.findall(value):
                if used not in params:
                    try:
                        evaluate(value, {p: 0 for p in params})
                    except ValueError as exc:
                        out.problems.append((path, str(exc)))
                    return
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (i,))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, path + (key,))

    walk(block.get("layers"), ("blocks", name, "layers"))
