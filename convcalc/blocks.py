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

Limits, each checked *before* the work it bounds: the copies of a ``repeat`` all cost
what the first one cost (same item, same parameters), so after the first copy the cost
of the rest is known — ``(repeat − 1) × (cost of one copy)`` in layers, copies and
values — and a ``repeat`` that would pass a limit stops there, whatever its nesting.

- ``MAX_LAYERS`` (10,000; a caller may ask for fewer): layers after expansion.
- ``MAX_COPIES`` (10 × the layer limit): copies made, counting block uses that emit
  no layer (a block that uses itself); reported as too many layers, as a layer bomb.
- ``MAX_LAYER_VALUES`` (500,000): values (options, list entries) of the expanded layers
  in all — a block with a long list, used many times.
- ``MAX_EXPRESSION_LENGTH`` (200 characters) and ``EXPRESSION_BOUND`` (2**40): the text
  of a ``$`` expression, and every number it reads or computes.
- ``MAX_HINT_EFFORT`` (200,000 comparisons): the "did you mean" suggestions and cycle
  traces of one spec's messages; past it, a message leaves its suggestion out.

>>> expand({"input": [4], "layers": [{"type": "relu", "repeat": 10**9}]}).problems
[(('layers',), 'expands to more than 10000 layers')]
"""

from __future__ import annotations

import ast
import difflib
import itertools
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec import MODEL_BY_TYPE, show

#: A spec may expand to at most this many layers.
MAX_LAYERS = 10_000
#: Copies a spec may make, per allowed layer (so block uses that emit nothing are bounded).
COPIES_PER_LAYER = 10
MAX_COPIES = COPIES_PER_LAYER * MAX_LAYERS
#: Values (options and list entries, counted as :func:`count_values` does) of all the
#: expanded layers together.
MAX_LAYER_VALUES = 500_000
#: Characters of a ``$`` expression (``"$channels * 4"``).
MAX_EXPRESSION_LENGTH = 200
#: Every number an expression reads or computes lies within ± this (about 10**12).
EXPRESSION_BOUND = 1 << 40
#: Candidate comparisons for suggestions and cycle traces in one spec's messages.
MAX_HINT_EFFORT = 200_000
#: Names listed in one message at most.
MAX_LISTED = 20
#: Keys a block use takes besides the block's own params.
CALL_KEYS = ("type", "name", "inputs", "repeat")

Path = tuple[Any, ...]
Group = tuple[str, str]
Suggest = Callable[[str, Collection[Any]], "str | None"]
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class _Unknown:
    """The value of a required parameter while a block no layer uses is checked (see
    :func:`expand`): whatever the option, it may be right."""

    def __repr__(self) -> str:
        return "<a required parameter>"


#: The value of a required parameter in a block no layer uses.
UNKNOWN = _Unknown()


def contains_unknown(value: Any) -> bool:
    """Whether ``value`` is, or holds, :data:`UNKNOWN`."""
    if value is UNKNOWN:
        return True
    if isinstance(value, (list, tuple)):
        return any(contains_unknown(item) for item in value)
    if isinstance(value, Mapping):
        return any(contains_unknown(item) for item in value.values())
    return False


class _TooLarge(Exception):
    """The expansion passes a limit; the message says which."""


@dataclass
class Expansion:
    """The flat layers, and per layer its path in the file and its block instances.

    For a spec with problems, what :mod:`convcalc.partial` needs to analyse the rest:
    per layer the paths of the block uses it comes from (``calls``, outermost first: a
    problem at one of them leaves the layer in doubt), and the name each layer that is
    not a mapping stands under and the layer it would read (``stand_ins``, by index:
    the next layer reads it).  A
    block use that makes no layers (a block that uses itself, a missing parameter) is
    read by the layers after it under its instance name, which no layer has: their
    input is unknown, not the block's input.
    """

    layers: list[Any] = field(default_factory=list)
    origins: list[Path] = field(default_factory=list)
    groups: list[tuple[Group, ...]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    calls: list[tuple[Path, ...]] = field(default_factory=list, repr=False)
    stand_ins: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)
    #: The layers of the blocks no layer uses, expanded once each with their params'
    #: defaults (a required one :data:`UNKNOWN`), and where each is written: the
    #: loader validates them, so a mistake in a block is found before it is used.
    unused: list[tuple[Any, Path]] = field(default_factory=list, repr=False)


def listing(names: Collection[Any], limit: int = MAX_LISTED, prefix: str = "") -> str:
    """``"a, b"``; past ``limit`` names ``"a, b, … (and 5 more)"``: a message listing a
    file's names stays short, and costs ``limit`` names, however many it has.

    >>> listing(["a", "b"]), listing("abcd", limit=2, prefix="$")
    ('a, b', '$a, $b (and 2 more)')
    """
    shown = ", ".join(f"{prefix}{name}" for name in itertools.islice(names, limit))
    return shown if len(names) <= limit else f"{shown} (and {len(names) - limit} more)"


def suggest(word: str, candidates: Collection[Any]) -> str | None:
    """The closest candidate (as text) to a misspelt ``word`` (difflib's), or ``None``."""
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1)
    return close[0] if close else None


class HintBudget:
    """:func:`suggest` within ``effort`` comparisons in all: one spec with thousands of
    misspelt names among thousands of names costs at most ``effort`` comparisons, not
    their product; past it, no suggestion.

    >>> budget = HintBudget(effort=3)
    >>> budget.suggest("conv", ["conv1", "relu1"]), budget.suggest("conv", ["conv1", "relu1"])
    ('conv1', None)
    """

    def __init__(self, effort: int = MAX_HINT_EFFORT):
        self.effort = effort

    def spend(self, amount: int) -> bool:
        """Take ``amount`` from the budget if it has that much left."""
        if amount > self.effort:
            return False
        self.effort -= amount
        return True

    def suggest(self, word: str, candidates: Collection[Any]) -> str | None:
        """:func:`suggest`, if the budget has ``len(candidates)`` comparisons left
        (checked before the candidates are looked at)."""
        return suggest(word, candidates) if self.spend(len(candidates)) else None


def evaluate(text: str, env: Mapping[str, Any], *, hints: Suggest = suggest) -> Any:
    """``"$name"`` → the param's value; ``"$channels * 4"`` → integer arithmetic
    (+, −, *, //, parentheses) on int params.  Raises ``ValueError`` with a reason.

    ``text`` has at most ``MAX_EXPRESSION_LENGTH`` characters, and every number the
    arithmetic reads (constants and params) or computes lies within
    ±``EXPRESSION_BOUND``; each param's value is put in parentheses, so ``"$a$b"`` is
    refused rather than read as digits run together.

    >>> evaluate("$c * 4", {"c": 16}), evaluate("$k", {"k": [3, 5]})
    (64, [3, 5])
    >>> evaluate("$c * $c", {"c": 1 << 21})
    Traceback (most recent call last):
    ...
    ValueError: '$c * $c' is too large
    """
    if not isinstance(text, str):
        raise TypeError(f"evaluate(text): expected str, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expression too long: {len(text)} characters "
                         f"(at most {MAX_EXPRESSION_LENGTH})")
    whole = _PARAM.fullmatch(text)
    names = _PARAM.findall(text)
    for name in names:
        if name not in env:
            close = hints(name, env)
            hint = f" — did you mean ${close}?" if close else ""
            known = listing(env, prefix="$") or "none"
            raise ValueError(f"unknown parameter ${name}{hint} (this block has: {known})")
        if env[name] is None:
            raise ValueError(f"parameter ${name} has no value")
    if any(env[name] is UNKNOWN for name in names):
        return UNKNOWN
    if whole:
        return env[whole.group(1)]
    for name in names:
        value = env[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"${name} is {value!r}: only whole numbers can be computed with")
        if abs(value) > EXPRESSION_BOUND:
            raise ValueError(f"{text!r} is too large")
    expression = _PARAM.sub(lambda m: f"({env[m.group(1)]})", text)
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise ValueError(f"cannot read the expression {text!r}") from None
    return _arithmetic(tree.body, text)


def _bounded(value: int, text: str) -> int:
    if abs(value) > EXPRESSION_BOUND:
        raise ValueError(f"{text!r} is too large")
    return value


def _arithmetic(node: ast.AST, text: str) -> int:
    """The value of an expression tree of whole numbers, unary −, + − * // (each number
    read or computed within ±``EXPRESSION_BOUND``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) \
            and not isinstance(node.value, bool):
        return _bounded(node.value, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arithmetic(node.operand, text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult,
                                                          ast.FloorDiv)):
        left, right = _arithmetic(node.left, text), _arithmetic(node.right, text)
        if isinstance(node.op, ast.Add):
            return _bounded(left + right, text)
        if isinstance(node.op, ast.Sub):
            return _bounded(left - right, text)
        if isinstance(node.op, ast.Mult):
            return _bounded(left * right, text)
        if right == 0:
            raise ValueError(f"{text!r} divides by zero")
        return _bounded(left // right, text)
    raise ValueError(f"{text!r}: only whole numbers, params, + − * // and parentheses "
                     "are allowed")


def count_values(value: Any) -> int:
    """Values in ``value``: 1, plus those of each list entry and mapping value (keys are
    not counted) — what validating it walks.

    >>> count_values({"type": "conv", "kernel": [3, 3], "filters": 8})
    6
    """
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        count += 1
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, Mapping):
            pending.extend(item.values())
    return count


@dataclass(frozen=True)
class _Tally:
    """What an expansion has made so far."""

    layers: int
    copies: int
    values: int


class _Expander:
    def __init__(self, blocks: Mapping[str, Any], out: Expansion, max_layers: int,
                 hints: HintBudget):
        self.blocks = blocks
        self.out = out
        self.max_layers = max_layers
        self.max_copies = COPIES_PER_LAYER * max_layers
        self.hints = hints
        self.copies = 0  # copies expanded, to bound repeats of blocks that emit nothing
        self.values = 0  # values of the emitted layers
        self.unknown_params = False  # required params are UNKNOWN (checking unused blocks)
        self._reads: dict[int, dict[str, list[str]]] = {}

    def problem(self, path: Path, message: str) -> None:
        self.out.problems.append((path, message))

    def too_many_layers(self) -> _TooLarge:
        return _TooLarge(f"expands to more than {self.max_layers} layers")

    def tally(self) -> _Tally:
        return _Tally(len(self.out.layers), self.copies, self.values)

    def reserve(self, more: int, before: _Tally) -> None:
        """Refuse ``more`` copies of what was made since ``before`` if they would pass a
        limit — before making any of them."""
        now = self.tally()
        if now.layers + more * (now.layers - before.layers) > self.max_layers \
                or now.copies + more * (now.copies - before.copies) > self.max_copies:
            raise self.too_many_layers()
        if now.values + more * (now.values - before.values) > MAX_LAYER_VALUES:
            raise _TooLarge(f"expands to more than {MAX_LAYER_VALUES} values (options "
                            "and list entries of its layers)")

    def substitute(self, value: Any, env: Mapping[str, Any] | None, path: Path) -> Any:
        if isinstance(value, str) and "$" in value and env is not None:
            try:
                return evaluate(value, env, hints=self.hints.suggest)
            except ValueError as exc:
                self.problem(path, str(exc))
                return UNKNOWN if self.unknown_params else value  # reported once
        if isinstance(value, list):
            return [self.substitute(v, env, path + (i,)) for i, v in enumerate(value)]
        return value

    def scope(self, items: Any, path: Path, prefix: str, scope_input: str,
              env: Mapping[str, Any] | None, stack: tuple[str, ...],
              groups: tuple[Group, ...], calls: tuple[Path, ...] = ()) -> str:
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
                self.emit(raw, item_path, groups, calls=calls)
                stand_in = f"{prefix}layer{index + 1}"
                self.out.stand_ins[len(self.out.layers) - 1] = (stand_in, previous)
                previous = stand_in
                continue
            item = {key: self.substitute(value, env, item_path + (key,))
                    for key, value in item.items()}
            kind = item.get("type")
            counts[kind if isinstance(kind, str) else ""] += 1
            local = item.get("name")
            if local == "input":
                self.problem(item_path + ("name",), "'input' is reserved: it names the "
                             "network's (or a block's) input")
            if local is not None and local is not UNKNOWN and (
                    not isinstance(local, str) or not local):
                self.problem(item_path + ("name",), "must not be empty" if local == "" else
                             f"must be text (got {show(local)})")
            if not isinstance(local, str) or not local:
                local = f"{kind}{counts[kind]}" if isinstance(kind, str) else f"layer{index + 1}"
                while local in later and isinstance(kind, str):   # a name given explicitly
                    counts[kind] += 1                              # is never also made up
                    local = f"{kind}{counts[kind]}"
            repeat = item.pop("repeat", 1)
            if repeat is UNKNOWN:
                repeat = 1
            if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
                self.problem(item_path + ("repeat",),
                             f"must be a whole number ≥ 1 (got {repeat!r})")
                repeat = 1
            inputs = self.resolve(item.get("inputs"), item_path, local, names, later, items,
                                  previous, scope_input, prefix)
            is_block = isinstance(kind, str) and kind in self.blocks and kind not in MODEL_BY_TYPE
            outer = groups + (((prefix + local, f"{kind} ×{repeat}"),) if repeat > 1 else ())
            values = 0 if is_block else count_values(item)  # the same for every copy
            before = self.tally()
            for copy in range(repeat):
                if copy == 1:
                    self.reserve(repeat - 1, before)
                self.count_copy()
                name = f"{local}.{copy}" if repeat > 1 else local
                if is_block:
                    output = self.call(item, item_path, prefix + name, inputs, stack, outer,
                                       calls)
                else:
                    self.emit({**item, "name": prefix + name, "inputs": inputs}, item_path,
                              outer, values, calls)
                    output = prefix + name
                names[name] = output
                inputs = [output]
            names[local] = previous = inputs[0]
        return previous

    def count_copy(self) -> None:
        self.copies += 1
        if self.copies > self.max_copies:
            raise self.too_many_layers()

    def resolve(self, raw: Any, path: Path, local: str, names: Mapping[str, str],
                later: Mapping[Any, int], items: list[Any], previous: str,
                scope_input: str, prefix: str = "") -> list[str]:
        """The qualified names ``raw`` (a name or a list of them) reads.  A name that
        does not resolve is a problem, and is kept qualified (``prefix + name``): the
        spec does not validate, and its partial analysis (:mod:`convcalc.partial`)
        reads an unknown input there, not the previous layer's."""
        if raw is None or contains_unknown(raw):
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
                cycle = _cycle(entry, local, self.reads(items), self.hints)
                self.problem(where, f"cycle: {' → '.join(cycle)}" if cycle else
                             f"{entry!r} is defined later: a layer reads earlier layers only")
                resolved.append(prefix + entry)
            else:
                close = self.hints.suggest(str(entry), _Names(names, "input"))
                hint = f" — did you mean {close!r}?" if close else ""
                self.problem(where, f"unknown layer {entry!r}{hint}")
                if isinstance(entry, str) and entry:
                    resolved.append(prefix + entry)
        return resolved or [previous]

    def reads(self, items: list[Any]) -> dict[str, list[str]]:
        """Per named item of one list of layers, the names its ``inputs`` give (built
        once per list, not once per problem)."""
        key = id(items)
        if key not in self._reads:
            self._reads[key] = _reads(items)
        return self._reads[key]

    def call(self, item: Mapping[str, Any], path: Path, instance: str, inputs: list[str],
             stack: tuple[str, ...], groups: tuple[Group, ...],
             calls: tuple[Path, ...] = ()) -> str:
        kind = item["type"]
        block = self.blocks[kind]
        if kind in stack:
            self.problem(path + ("type",), f"block {kind!r} uses itself: "
                         f"{' → '.join(stack + (kind,))}")
            return instance
        if len(inputs) != 1:
            self.problem(path + ("inputs",), f"a block takes one input (got {len(inputs)})")
        declared = block.get("params") if isinstance(block.get("params"), Mapping) else {}
        env = {key: UNKNOWN if value is None and self.unknown_params else value
               for key, value in declared.items()}
        for key, value in item.items():
            if key in CALL_KEYS:
                continue
            if key not in declared:
                close = self.hints.suggest(str(key), declared)
                hint = f" — did you mean {close!r}?" if close else ""
                self.problem(path + (key,), f"block {kind!r} has no parameter {key!r}{hint} "
                             f"(it has: {listing(declared) or 'none'})")
            env[key] = value
        missing = [p for p, v in env.items() if v is None]
        if missing:
            self.problem(path, f"block {kind!r} needs {listing(missing)}")
            return instance
        return self.scope(block.get("layers"), ("blocks", kind, "layers"), instance + ".",
                          inputs[0], env, stack + (kind,), groups + ((instance, kind),),
                          calls + (path,))

    def emit(self, layer: Any, origin: Path, groups: tuple[Group, ...],
             values: int | None = None, calls: tuple[Path, ...] = ()) -> None:
        if len(self.out.layers) >= self.max_layers:
            raise self.too_many_layers()
        self.values += count_values(layer) if values is None else values
        if self.values > MAX_LAYER_VALUES:
            raise _TooLarge(f"expands to more than {MAX_LAYER_VALUES} values (options "
                            "and list entries of its layers)")
        self.out.layers.append(layer)
        self.out.origins.append(origin)
        self.out.groups.append(groups)
        self.out.calls.append(calls)


class _Names(Collection[str]):
    """A scope's names and one more, sized without copying them."""

    def __init__(self, names: Mapping[str, str], extra: str):
        self.names, self.extra = names, extra

    def __len__(self) -> int:
        return len(self.names) + 1

    def __iter__(self) -> Any:
        yield from self.names
        yield self.extra

    def __contains__(self, name: object) -> bool:
        return name == self.extra or name in self.names


def _reads(items: list[Any]) -> dict[str, list[str]]:
    reads: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            raw = item.get("inputs")
            reads[item["name"]] = [raw] if isinstance(raw, str) else \
                [r for r in raw if isinstance(r, str)] if isinstance(raw, list) else []
    return reads


def _cycle(start: str, target: str, reads: Mapping[str, list[str]],
           hints: HintBudget | None = None) -> list[str] | None:
    """The path of ``inputs`` from ``start`` back to ``target``, if there is one (each
    step spends the names it looks at from ``hints``; an exhausted budget finds none)."""
    if start == target:
        return [target, target]
    trail = [target, start]
    seen = {start}
    while True:
        options = reads.get(trail[-1], [])
        if hints is not None and not hints.spend(len(options) + 1):
            return None
        following = [n for n in options if n == target or n not in seen]
        if not following:
            return None
        if target in following:
            return trail + [target]
        trail.append(following[0])
        seen.add(following[0])


def expand(data: Mapping[str, Any], *, max_layers: int = MAX_LAYERS) -> Expansion:
    """Expand ``data["layers"]`` (blocks, repeat, inputs) into flat layer dicts.

    Stops, with the problem ``expands to more than N layers`` (or values), before the
    work of a ``repeat`` that would pass ``max_layers`` (at most ``MAX_LAYERS``) or
    another limit of this module.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"expand(data): expected a mapping, got {type(data).__name__}")
    if not isinstance(max_layers, int) or isinstance(max_layers, bool) \
            or not 1 <= max_layers <= MAX_LAYERS:
        raise ValueError(f"expand(max_layers): must be from 1 to {MAX_LAYERS} "
                         f"(got {max_layers!r})")
    out = Expansion()
    hints = HintBudget()
    raw_blocks = data.get("blocks")
    blocks = {name: block for name, block in raw_blocks.items() if isinstance(block, Mapping)} \
        if isinstance(raw_blocks, Mapping) else {}
    for name in blocks:
        if name in MODEL_BY_TYPE:
            out.problems.append((("blocks", name),
                                 f"a block cannot be called {name!r}: that is a layer type"))
    for name, block in blocks.items():
        _check_parameters(block, name, out, hints)
    expander = _Expander(blocks, out, max_layers, hints)
    try:
        expander.scope(data.get("layers"), ("layers",), "", "input", None, (), ())
    except _TooLarge as exc:
        out.problems.append((("layers",), str(exc)))
    except RecursionError:
        out.problems.append((("blocks",), "blocks nested too deeply"))
    used = {block for groups in out.groups for _, block in groups}
    unused = [name for name in blocks if name not in used and name not in MODEL_BY_TYPE]
    stopped = any(path in (("layers",), ("blocks",)) for path, _ in out.problems)
    if unused and not stopped:
        _expand_unused(blocks, unused, out, max_layers, hints)
    out.problems = list(dict.fromkeys(out.problems))  # each instance repeats its block's
    return out


def _expand_unused(blocks: Mapping[str, Any], unused: list[str], out: Expansion,
                   max_layers: int, hints: HintBudget) -> None:
    """Expand each block no layer uses once, as a use with its params' defaults would
    (a required param :data:`UNKNOWN`), into ``out.unused`` and ``out.problems``: its
    mistakes are found before it is used.  Within the limits of one more spec; past
    them, the rest is not checked."""
    scratch = Expansion()
    checker = _Expander(blocks, scratch, max_layers, hints)
    checker.unknown_params = True
    for name in unused:
        try:
            checker.call({"type": name}, ("blocks", name), name, ["input"], (), ())
        except (_TooLarge, RecursionError):
            break
    reported = {path for path, _ in out.problems}   # (a $param its block lacks, …)
    out.problems += [problem for problem in scratch.problems if problem[0] not in reported]
    out.unused = list(zip(scratch.layers, scratch.origins))


def _check_parameters(block: Mapping[str, Any], name: str, out: Expansion,
                      hints: HintBudget) -> None:
    """Every ``$param`` a block's layers use must be declared, whether or not (and however
    often) the block is used."""
    given = block.get("params")
    params: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    zeros = {p: 0 for p in params}

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, str):
            for used in _PARAM.findall(value):
                if used not in params:
                    try:
                        evaluate(value, zeros, hints=hints.suggest)
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
