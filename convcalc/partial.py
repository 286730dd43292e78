"""What can be analysed of a spec that does not validate, so that one round reports
every problem.

When some layers do not validate, :func:`convcalc.loading.validate` still raises
:class:`~convcalc.errors.SpecError`, and the error also carries what the analysis finds
in the rest (:attr:`SpecError.analysis <convcalc.errors.SpecError>`):

- each flat layer (after :func:`convcalc.blocks.expand`) that did not validate becomes
  an :class:`Unvalidated` stand-in: its name and inputs, so the graph stays whole
  (duplicate names, unread outputs), and an unknown output;
- a layer that validates but that a problem of the expansion leaves in doubt — a
  problem inside it, at a block use it comes from (its ``inputs``, ``repeat``, a
  parameter), or in its block's definition — is kept with an unknown output;
- the layers that read an unknown output are checked only for what does not depend on
  their input's shape (:meth:`convcalc.kinds.Kind.static_problems`, the number of
  inputs), as after a layer that failed; so are all layers when the input shape or the
  rounding does not validate (or the input leaves sizes open);
- when an ``inputs`` entry does not resolve, no branch is said to be unused (the
  broken reference may be its reader).

Nothing is analysed when the layers cannot be listed at all (``layers`` is not a
list, or the expansion stopped at a limit).

>>> import convcalc
>>> try:
...     convcalc.loads("input: [3, 8, 8]\\nlayers:\\n  - {type: conv, filters: 0, kernel: 3}\\n"
...                    "  - {type: conv, filters: 30, kernel: 3, groups: 4}\\n"
...                    "  - {type: maxpool, kernel: 3, stride: 2}\\n")
... except convcalc.SpecError as error:
...     print(error)
3: layers[0].filters: must be ≥ 1 (got 0)
4: layers[1].groups (conv2): 4 groups do not divide the 30 filters
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .blocks import Expansion
from .errors import Diagnostic
from .kinds import Context, Fatal, Kind, Outcome, State
from .spec import Layer, LayerBase, Spec

Path = tuple[Any, ...]


class _UnvalidatedKind(Kind):
    """The kind of a stand-in: any number of inputs, no checks, no output."""

    min_inputs, max_inputs = 0, None

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        raise Fatal()   # its problems are the validation's


class Unvalidated:
    """A flat layer that did not validate: the name it stands under and the layers it
    reads (what the rest of the graph needs of it); its output is unknown."""

    calculator_kind = _UnvalidatedKind()
    trainable = False

    __slots__ = ("name", "type", "inputs")

    def __init__(self, name: str, type: str, inputs: list[str]):
        self.name, self.type, self.inputs = name, type, inputs

    @classmethod
    def of(cls, raw: Any, stand_in: tuple[str, str] | None, index: int) -> "Unvalidated":
        """The stand-in of flat layer ``raw``: a mapping from the expansion has its name
        and resolved inputs; anything else stands under the name and reads the layer
        of ``stand_in`` (:attr:`convcalc.blocks.Expansion.stand_ins`)."""
        name, reads = stand_in or (f"layer{index + 1}", "input")
        if not isinstance(raw, Mapping):
            return cls(name, "?", [reads])
        given, kind, inputs = raw.get("name"), raw.get("type"), raw.get("inputs")
        return cls(given if isinstance(given, str) and given else name,
                   kind if isinstance(kind, str) else "?",
                   [i for i in inputs if isinstance(i, str)] if isinstance(inputs, list) else [])


@lru_cache(maxsize=1)
def layer_adapter() -> TypeAdapter[Any]:
    """Validates one layer (of any kind) on its own."""
    return TypeAdapter(Layer)


def _prefixes(paths: list[Path]) -> set[Path]:
    """Every path and each of its ancestors (a place is in doubt when a problem lies
    at it or inside it)."""
    out: set[Path] = set()
    for path in paths:
        for end in range(1, len(path) + 1):
            out.add(path[:end])
    return out


def _doubtful(expansion: Expansion, problems: set[Path], bad_blocks: set[Any]) -> set[int]:
    """Indices of the flat layers a problem of the expansion (or of a block's
    definition) leaves in doubt."""
    out = set()
    calls = expansion.calls or [()] * len(expansion.layers)
    for index, (origin, called, groups) in enumerate(zip(expansion.origins, calls,
                                                           expansion.groups)):
        if origin in problems or any(place in problems for place in called) \
                or any(block in bad_blocks for _, block in groups):
            out.add(index)
    return out


def analyse_valid_part(flat: Mapping[str, Any], expansion: Expansion,
                       errors: list[Any], spec: Spec | None, source: Any) -> list[Diagnostic]:
    """The analysis' problems of the part of an invalid spec that can be analysed.

    ``flat`` is the document with its layers expanded, ``errors`` pydantic's errors on
    it (``ValidationError.errors()``; none when only the expansion had problems),
    ``spec`` the spec when it validated anyway, ``source`` its :class:`SourceMap`.
    """
    from .analysis import UNUSED_OUTPUT, analyze_part

    stopped = {("layers",), ("blocks",)}
    if not isinstance(flat.get("layers"), list) or not expansion.layers \
            or any(path in stopped for path, _ in expansion.problems) \
            or any(tuple(e["loc"]) == ("layers",) for e in errors):
        return []
    bad: set[int] = set()
    bad_blocks: set[Any] = set()
    input_known = "input" in flat
    for error in errors:
        loc = tuple(error["loc"])
        if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
            bad.add(loc[1])
        elif len(loc) >= 2 and loc[0] == "blocks":
            bad_blocks.add(loc[1])
        elif not loc or loc[0] in ("input", "rounding"):
            input_known = False
    doubtful = _doubtful(expansion, _prefixes([p for p, _ in expansion.problems]), bad_blocks)
    layers: list[Any] = []
    unknown: set[str] = set()
    for index, raw in enumerate(expansion.layers):
        layer: LayerBase | Unvalidated | None = \
            spec.layers[index] if spec is not None else None
        if layer is None and index not in bad:
            try:
                layer = layer_adapter().validate_python(raw)
            except (ValidationError, RecursionError):
                layer = None
        if layer is None:
            layer = Unvalidated.of(raw, expansion.stand_ins.get(index), index)
        elif index in doubtful and layer.name is not None:  # (None would name nothing)
            unknown.add(layer.name)
        layers.append(layer)
    shape = flat["input"] if input_known else [1]
    if not input_known or None in shape:
        unknown.add("input")
        shape = [1]
    part = Spec.model_construct(
        name=None, input=list(shape), layers=layers, blocks={},
        rounding=flat.get("rounding", "exact") if input_known else "exact")
    part._source, part._origins, part._groups = source, expansion.origins, expansion.groups
    problems = analyze_part(part, unknown=frozenset(unknown), probe=False).problems
    if any("inputs" in path for path, _ in expansion.problems):
        # a layer whose inputs do not resolve may be the reader a branch misses
        problems = tuple(p for p in problems if p.message != UNUSED_OUTPUT)
    return list(problems)
