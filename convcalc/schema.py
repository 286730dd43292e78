"""The JSON Schema of the spec language, derived from the pydantic models.

Editors (VS Code's YAML extension, JetBrains) use it for completion and checking:
``convcalc schema > convcalc.schema.json``.

It accepts what the loader accepts and refuses what it refuses
(``tests/test_schema_loader.py`` holds the two to each other over every spec of the
project and generated ones), except where a JSON Schema cannot follow: whether a name
in ``inputs`` (or a block use's ``type``, or a block use's parameter) refers to
something the file defines, and what a ``$param`` stands for.  The file's own rules
are added to the models': bare layer names, ``repeat``, ``inputs`` as one name, the
reserved name ``input``, block uses (only where ``blocks:`` defines some), and the
layers inside block definitions — checked as the loader checks them, except that a
``$param`` may stand for any value (and then a rule between options of that layer is
not checked: it depends on the value).

>>> schema = spec_json_schema()
>>> schema["properties"]["layers"]["items"]["anyOf"][0]["enum"][:3]
['global_avgpool', 'global_maxpool', 'flatten']
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError

from .spec import LAYER_MODELS, MAX_INT, MODEL_BY_TYPE, Spec, layer_types

SCHEMA_ID = "https://convcalc.invalid/spec.schema.json"


def bare_layer_types() -> list[str]:
    """Layer types that need no option, so ``- relu`` alone is a layer (not
    ``upsample``: it needs a scale, a size or a reference)."""
    return [tag for model in LAYER_MODELS for tag in layer_types(model)
            if _valid_alone(model, tag)]


def _valid_alone(model: Any, tag: str) -> bool:
    try:
        model.model_validate({"type": tag})
    except ValidationError:
        return False
    return True


_REPEAT = {"type": "integer", "minimum": 1,
           "description": "N identical copies in a row, named NAME.0 … NAME.{N−1}."}
#: A layer's name: not ``input``, which names the network's (or a block's) input.
_NAME = {"anyOf": [{"type": "string", "minLength": 1, "not": {"const": "input"}},
                   {"type": "null"}],
         "description": "Unique layer name; default: type + running index (conv1, relu2, ...)."}
#: A ``$param`` (or an expression of them) inside a block definition.
_PARAM = {"type": "string", "pattern": "\\$[A-Za-z_]",
          "description": "A $param of the block (or an expression: \"$channels * 4\")."}
_HOLDS_PARAM = {"anyOf": [_PARAM, {"type": "array", "contains": {
    "anyOf": [_PARAM, {"type": "array", "contains": _PARAM}]}}]}


_NOT_REPEATED_WITH_INPUTS = {"not": {"required": ["repeat", "inputs"], "properties": {
    "repeat": {"type": "integer", "minimum": 2},
    "inputs": {"type": "array", "minItems": 2}}}}


def _with_params(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` of a value, where the value and every list entry in it may also be a
    ``$param`` (the loader substitutes them in lists too)."""
    return {"anyOf": [_params_inside(schema), _PARAM]}


def _params_inside(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    if isinstance(out.get("items"), dict):
        out["items"] = _with_params(out["items"])
    if isinstance(out.get("prefixItems"), list):
        out["prefixItems"] = [_with_params(item) for item in out["prefixItems"]]
    for key in ("anyOf", "oneOf"):
        if key in out:
            out[key] = [_params_inside(part) for part in out[key]]
    return out


def _in_block(model_schema: dict[str, Any]) -> dict[str, Any]:
    """A layer model's schema for a layer inside a block definition: every option may be
    a ``$param``; the model's rules between options hold unless one is."""
    out = copy.deepcopy(model_schema)
    properties = out["properties"]
    for key, value in list(properties.items()):
        if key != "type":
            properties[key] = _with_params(value)
    rules = out.pop("allOf", None)
    if rules:
        parametrised = {"anyOf": [{"required": [key], "properties": {key: _HOLDS_PARAM}}
                                  for key in properties if key != "type"]}
        out["allOf"] = [{"anyOf": [{"allOf": rules}, parametrised]}]
    return out


def _block_use(name: dict[str, Any], inputs: dict[str, Any],
               repeat: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A use of a block defined under `blocks`, with its params as options.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "not": {"enum": list(MODEL_BY_TYPE)}},
            "name": name,
            "inputs": inputs,
            "repeat": repeat,
        },
    }


def spec_json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12): bare layer names, ``repeat``, and block
    uses (a mapping whose ``type`` is not a layer type) included; a block's layers are
    checked as any layer, ``$params`` allowed."""
    schema = Spec.model_json_schema()
    defs = schema["$defs"]
    for model in LAYER_MODELS:
        model_schema = defs[model.__name__]
        model_schema["properties"]["repeat"] = _REPEAT
        model_schema["properties"]["name"] = _NAME
        if '"inputs"' in json.dumps(model_schema.get("allOf", [])):
            # the copies after the first read the one before: the rule about its inputs
            # cannot hold for a first copy with two and the others with one
            model_schema["allOf"].append(_NOT_REPEATED_WITH_INPUTS)
    inputs = defs["Conv"]["properties"]["inputs"]
    bare = {"type": "string", "enum": bare_layer_types()}
    # a bare name that is no layer type is a use of a block (when there are blocks)
    bare_block = {"type": "string", "not": {"enum": list(MODEL_BY_TYPE)}}
    items = schema["properties"]["layers"]["items"]
    schema["properties"]["layers"]["items"] = {
        "anyOf": [bare, items, _block_use(_NAME, inputs, _REPEAT), bare_block]}
    # without blocks, an unknown type is a typo, not a block use
    schema["if"] = {"not": {"required": ["blocks"],
                            "properties": {"blocks": {"minProperties": 1}}}}
    schema["then"] = {"properties": {"layers": {"items": {"anyOf": [bare, items]}}}}
    # the channels cannot be open
    schema["properties"]["input"]["prefixItems"] = [
        {"type": "integer", "minimum": 1, "maximum": MAX_INT}]
    schema["properties"]["blocks"]["propertyNames"] = {"not": {"enum": list(MODEL_BY_TYPE)}}
    for model in LAYER_MODELS:
        defs[f"{model.__name__}InBlock"] = _in_block(defs[model.__name__])
    in_block = [{"$ref": f"#/$defs/{model.__name__}InBlock"} for model in LAYER_MODELS]
    defs["Block"]["properties"]["layers"]["items"] = {"anyOf": [
        {"type": "string", "not": {"enum": sorted(set(MODEL_BY_TYPE) - set(bare["enum"]))}},
        {"type": "object", "required": ["type"], "properties": {"type": _PARAM}},
        {"oneOf": in_block},
        _block_use(_with_params(_NAME), _with_params(inputs), _with_params(_REPEAT)),
    ]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
