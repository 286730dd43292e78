"""Schema = loader (issue 14, point 5): every document the loader accepts validates
against ``convcalc schema``, and every document the schema accepts loads — over the
examples, the zoo, every spec in the docs (code blocks, included files, the specs the
doctests load or analyse), every kind's examples, and hypothesis-generated specs (plain
layers, graphs, blocks with ``$params``, ``repeat``; mostly valid, with the odd invalid
key, value or type).

What a JSON Schema cannot express is left out of the second direction, and only that:
references between names (an ``inputs`` entry that names no earlier layer, a cycle, a
block use with a parameter its block does not declare, a ``$param`` its block does not
declare) and the expansion's limits.  A document is read as an editor reads it: YAML
as the loader parses it (whose floats are YAML 1.2's: ``1e-5`` is a number).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import zoo
from convcalc.loading import parse_text
from convcalc.schema import spec_json_schema
from convcalc.spec import LAYER_MODELS, MODEL_BY_TYPE

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: Loader messages about what a JSON Schema cannot say: names that must refer to
#: something elsewhere in the document, and the expansion's limits.
INEXPRESSIBLE = re.compile(
    r"unknown layer |cycle: |'.*' is defined later|unknown parameter \$|block '.*' has no "
    r"parameter|block '.*' needs |block '.*' uses itself|a block takes one input|parameter "
    r"\$.* has no value|only whole numbers can be computed with|is too large|divides by "
    r"zero|cannot read the expression|only whole numbers, params|expands to more than|"
    r"blocks nested too deeply|expression too long|"
    # relations between numbers, and a type that names no block
    r"start must be smaller than stop|blocks defined here")
_BLOCK_LAYER = re.compile(r"blocks\.(.+)\.layers\[(\d+)\]")


def _holds_param(value: Any) -> bool:
    if isinstance(value, str):
        return "$" in value
    if isinstance(value, list):
        return any(_holds_param(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_param(item) for item in value.values())
    return False


def _param_dependent(document: Any, field: str | None) -> bool:
    """Whether a loader problem at ``field`` is in a block's layer that holds a
    ``$param``: what the layer's options are depends on the param's values, which the
    schema cannot know (it takes a ``$param`` for any value)."""
    match = _BLOCK_LAYER.match(field or "")
    if not match or not isinstance(document, dict):
        return False
    try:
        layer = document["blocks"][match.group(1)]["layers"][int(match.group(2))]
    except (KeyError, IndexError, TypeError):
        return False
    return _holds_param(layer)


def validator() -> Any:
    return jsonschema.Draft202012Validator(spec_json_schema())


VALIDATOR = validator()


def agree(check: Any, document: Any) -> str | None:
    """``None`` when the loader and the schema agree on ``document`` (parsed data),
    else what each said."""
    try:
        convcalc.validate(document)
        loaded, reasons = True, []
    except convcalc.SpecError as error:
        loaded, reasons = False, [d.message for d in error.validation
                                  if not _param_dependent(document, d.field)]
    except TypeError as error:             # not a mapping at all
        loaded, reasons = False, [str(error)]
    errors = sorted(check.iter_errors(document), key=lambda e: list(e.absolute_path))
    if loaded and errors:
        first = errors[0]
        return (f"the loader accepts, the schema rejects at {list(first.absolute_path)}: "
                f"{first.message[:300]}")
    if not loaded and not errors and not all(INEXPRESSIBLE.search(r) for r in reasons):
        return f"the schema accepts, the loader rejects: {reasons}"
    return None


# --- the documents of the project ---------------------------------------------------------


def _spec_like(data: Any) -> bool:
    return isinstance(data, dict) and "layers" in data


def _parsed(text: str) -> Any:
    try:
        return parse_text(text)[0]
    except convcalc.SpecError:
        return None


def literal_blocks(text: str) -> Iterator[str]:
    """The body of every reST block introduced by ``::`` (literal blocks and
    directives: code-block, convcalc-drawing, …), options and indentation removed."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body, j = [], i + 1
        indent = len(line) - len(line.lstrip())
        while j < len(lines) and (not lines[j].strip() or
                                  len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        kept = [b for b in body if not re.match(r"\s+:[\w-]+:", b)] if line.lstrip() \
            .startswith("..") else body
        yield textwrap.dedent("\n".join(kept)).strip("\n") + "\n"


def doctest_sources(text: str) -> Iterator[str]:
    """The Python source of every ``>>>`` example (with its ``...`` lines)."""
    source: list[str] = []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith(">>> "):
            if source:
                yield "\n".join(source)
            source = [stripped[4:]]
        elif stripped.startswith("...") and source:
            source.append(stripped[4:])
        elif source:
            yield "\n".join(source)
            source = []


def doctest_specs(text: str) -> Iterator[Any]:
    """Specs written inside doctests: dict literals and strings (YAML) passed to
    convcalc, and the files ``convcalc.load`` reads."""
    for source in doctest_sources(text):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                try:
                    value = ast.literal_eval(node)
                except ValueError:
                    continue
                if _spec_like(value):
                    yield value
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.endswith((".yaml", ".json")) and (ROOT / node.value).is_file():
                    yield _parsed((ROOT / node.value).read_text(encoding="utf-8"))
                elif "layers" in node.value:
                    data = _parsed(node.value)
                    if _spec_like(data):
                        yield data


def docs_documents() -> Iterator[tuple[str, Any]]:
    for page in sorted(DOCS.glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        for n, block in enumerate(literal_blocks(text)):
            data = _parsed(block)
            if _spec_like(data):
                yield f"{page.name} block {n}", data
        for n, data in enumerate(doctest_specs(text)):
            if _spec_like(data):
                yield f"{page.name} doctest spec {n}", data
        for n, included in enumerate(re.findall(r"\.\. literalinclude:: (\S+)", text)):
            path = (page.parent / included).resolve()
            if path.suffix in (".yaml", ".json") and path.is_file():
                yield f"{page.name} {included}", _parsed(path.read_text(encoding="utf-8"))


def documents_of_the_project() -> Iterator[tuple[str, Any]]:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        yield f"examples/{path.name}", _parsed(path.read_text(encoding="utf-8"))
    for name in zoo.names():
        yield f"zoo:{name}", _parsed(zoo.text(name))
    yield from docs_documents()
    for model in LAYER_MODELS:
        for n, example in enumerate(model.examples):
            yield f"{model.__name__} example {n}", example.spec()


PROJECT = list(documents_of_the_project())


def test_the_documents_are_found() -> None:
    labels = [label for label, _ in PROJECT]
    assert sum(label.startswith("zoo:") for label in labels) == len(zoo.names())
    assert sum(label.startswith("examples/") for label in labels) >= 5
    docs = [label for label in labels if label.split()[0].endswith(".rst")]
    assert len(docs) >= 15
    assert any("inception-3a" in label for label in docs)     # inputs: input, a string
    assert any("block" in label for label in docs)
    assert all(doc is not None for _, doc in PROJECT)


@pytest.mark.parametrize("label, document", PROJECT, ids=[label for label, _ in PROJECT])
def test_the_schema_and_the_loader_agree_on_every_document_of_the_project(
        label: str, document: Any) -> None:
    """(Some docs show a spec with a mistake: both must refuse it.)"""
    assert agree(VALIDATOR, document) is None


def test_inputs_may_be_one_name() -> None:
    document = {"input": [3, 8, 8], "layers": [
        {"name": "a", "type": "conv", "filters": 2, "kernel": 1},
        {"type": "conv", "filters": 2, "kernel": 1, "inputs": "input"},
        {"type": "add", "inputs": ["a", "conv2"]}]}
    assert VALIDATOR.is_valid(document)
    convcalc.validate(document)


@pytest.mark.parametrize("document", [
    {"input": [3, 8, 8], "layers": [{"type": "relu", "inputs": []}]},
    {"input": [3, 8, 8], "layers": [{"type": "relu", "name": "input"}]},
    {"input": [None, 8, 8], "layers": ["relu"]},
    {"input": [3, 8, 8], "layers": [{"type": "maxpool", "kernel": 2, "ceil_mode": True,
                                     "rounding": "floor"}]},
    {"input": [3, 8, 8], "layers": [{"type": "upsample"}]},
    {"input": [3, 8, 8], "layers": [{"type": "upsample", "scale": 2, "size": 4}]},
    {"input": [3, 8, 8], "layers": [{"type": "upsample", "scale": 2,
                                     "inputs": ["input", "input"]}]},
    {"input": [3, 8, 8], "layers": [{"type": "upsample", "scale": 2, "align_corners": True}]},
    {"input": [3, 8, 8], "layers": [{"type": "crop"}]},
    {"input": [3, 8, 8], "layers": [{"type": "relu", "repeat": 0}]},
    {"input": [3, 8, 8], "blocks": {"relu": {"layers": ["relu"]}}, "layers": ["relu"]},
    {"input": [3, 8, 8], "blocks": {"b": {"layers": [{"type": "conv", "kernel": 1}]}},
     "layers": [{"type": "b"}]},
    {"input": [3, 8, 8], "blocks": {"b": {"layers": [{"type": "conv", "filters": 0,
                                                       "kernel": 1}]}},
     "layers": [{"type": "b"}]},
    {"input": [3, 8, 8], "blocks": {"b": {"layers": [{"type": "relu", "name": "input"}]}},
     "layers": [{"type": "b"}]},
    {"input": [3, 8, 8], "layers": [{"type": "batchnorm", "eps": "0.1"}]},
], ids=lambda d: str(d)[:70])
def test_both_reject(document: Any) -> None:
    """Each was accepted by one side only before they were made to agree."""
    assert not VALIDATOR.is_valid(document)
    with pytest.raises(convcalc.SpecError):
        convcalc.validate(document)


def test_a_plain_exponent_is_a_number_and_a_quoted_one_text() -> None:
    spec = convcalc.loads("input: [3]\nlayers: [{type: batchnorm, eps: 1e-3}]\n")
    assert spec.layers[0].eps == 0.001
    with pytest.raises(convcalc.SpecError, match="must be a number"):
        convcalc.loads("input: [3]\nlayers: [{type: batchnorm, eps: '1e-3'}]\n")


# --- hypothesis: generated documents -----------------------------------------------------

from test_fuzz import VALID_VALUES, from_schema, spec as fuzz_spec  # noqa: E402

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_value(model: Any, key: str) -> st.SearchStrategy[Any]:
    schema = model.model_json_schema()["properties"][key]
    return VALID_VALUES.get(key, from_schema(schema)) if key not in ("name", "inputs") \
        else from_schema(schema)


@st.composite
def valid_layer(draw: Any, names: list[str], params: dict[str, Any] | None = None) -> Any:
    """A layer of any kind whose every option is a valid value (reading earlier
    layers by name); in a block some values are ``$params`` with that value as default."""
    kind = draw(st.sampled_from(sorted(MODEL_BY_TYPE)))
    model = MODEL_BY_TYPE[kind]
    fields = model.model_fields
    required = [k for k, f in fields.items() if f.is_required() and k != "type"]
    if not required and draw(st.integers(0, 4)) == 0:
        return kind                                   # a bare type name
    layer: dict[str, Any] = {"type": kind}
    for key, info in fields.items():
        if key in ("type", "name", "inputs") or not (info.is_required() or draw(st.booleans())):
            continue
        value = draw(_valid_value(model, key))
        if params is not None and draw(st.integers(0, 2)) == 0:
            param = f"p{len(params)}"
            params[param] = value
            value = f"${param}"
        layer[key] = value
    if draw(st.booleans()):
        layer["inputs"] = draw(st.one_of(st.sampled_from(names),
                                         st.lists(st.sampled_from(names), min_size=1,
                                                  max_size=3)))
    if draw(st.integers(0, 3)) == 0:
        layer["repeat"] = draw(st.integers(1, 3))
    return layer


@st.composite
def named_layers(draw: Any, scope: str, params: dict[str, Any] | None,
                 blocks: list[str]) -> list[Any]:
    names = ["input"]
    out: list[Any] = []
    for i in range(draw(st.integers(1, 5))):
        if blocks and draw(st.integers(0, 3)) == 0:
            layer: Any = {"type": draw(st.sampled_from(blocks))}
        else:
            layer = draw(valid_layer(names, params))
        if isinstance(layer, dict) and draw(st.booleans()):
            layer["name"] = f"{scope}{i}"
            if layer.get("repeat", 1) == 1:
                names.append(layer["name"])
        out.append(layer)
    return out


@st.composite
def valid_document(draw: Any) -> dict[str, Any]:
    """Every option valid, names resolved; blocks with ``$params``, uses of blocks,
    ``repeat``: what the loader validates (the analysis may still find errors)."""
    document: dict[str, Any] = {"input": draw(st.lists(st.integers(1, 12), min_size=1,
                                                       max_size=4))}
    blocks: dict[str, Any] = {}
    for b in range(draw(st.integers(0, 2))):
        params: dict[str, Any] = {}
        block_layers = draw(named_layers(f"b{b}l", params, list(blocks)))
        blocks[f"block{b}"] = {"layers": block_layers, **({"params": params} if params else {})}
    document["layers"] = draw(named_layers("l", None, list(blocks)))
    if blocks:
        document["blocks"] = blocks
    if draw(st.booleans()):
        document["rounding"] = draw(st.sampled_from(["exact", "floor", "ceil"]))
    if draw(st.booleans()):
        document["name"] = draw(st.text(min_size=0, max_size=5))
    return document


@SETTINGS
@given(valid_document())
def test_generated_valid_documents(document: dict[str, Any]) -> None:
    event("blocks" if "blocks" in document else "no blocks")
    problem = agree(VALIDATOR, document)
    assert problem is None, problem


@SETTINGS
@given(fuzz_spec())
def test_generated_documents_with_mistakes(document: dict[str, Any]) -> None:
    """test_fuzz's specs: mostly valid layers with the odd invalid key, value or type."""
    problem = agree(VALIDATOR, document)
    assert problem is None, problem


@st.composite
def mutated_document(draw: Any) -> Any:
    """A valid document with one value replaced by a value valid for another option
    (or removed): the mistakes near the boundary of what either side accepts."""
    document = draw(valid_document())
    paths: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (i,))

    walk(document, ())
    path = draw(st.sampled_from(paths[1:]))
    keys = sorted({k for m in LAYER_MODELS for k in m.model_fields} - {"type"})
    replacement = draw(st.one_of(
        st.none(), st.just("$"), st.sampled_from(keys).flatmap(
            lambda key: _valid_value(next(m for m in LAYER_MODELS if key in m.model_fields),
                                     key)),
        st.integers(-2, 3), st.sampled_from(["same", "input", "relu", "", [], {}])))
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    if replacement is None and isinstance(target, dict) and draw(st.booleans()):
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return document


@SETTINGS
@given(mutated_document())
def test_generated_documents_with_one_mistake(document: Any) -> None:
    problem = agree(VALIDATOR, document)
    assert problem is None, problem
