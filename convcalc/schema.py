"""The JSON Schema of the spec language, derived from the pydantic models.

Editors (VS Code's YAML extension, JetBrains) use it for completion and checking:
``convcalc schema > convcalc.schema.json``.

>>> schema = spec_json_schema()
>>> schema["properties"]["layers"]["items"]["anyOf"][0]["enum"][:3]
['global_avgpool', 'global_maxpool', 'flatten']
"""

from __future__ import annotations

from typing import Any

from .spec import LAYER_MODELS, MODEL_BY_TYPE, Spec, layer_types

SCHEMA_ID = "https://convcalc.invalid/spec.schema.json"


def bare_layer_types() -> list[str]:
    """Layer types that need no option, so ``- relu`` alone is a layer."""
    return [
        tag
        for model in LAYER_MODELS
        if all(not f.is_required() for n, f in model.model_fields.items() if n != "type")
        for tag in layer_types(model)
    ]


_REPEAT = {"type": "integer", "minimum": 1,
           "description": "N identical copies in a row, named NAME.0 … NAME.{N−1}."}


def spec_json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12): bare layer names, ``repeat``, and block
    uses (a mapping whose ``type`` is not a layer type) included.  Layers inside block
    definitions are only checked for a ``type``: their options may be ``$params``."""
    schema = Spec.model_json_schema()
    defs = schema["$defs"]
    for model in LAYER_MODELS:
        defs[model.__name__]["properties"]["repeat"] = _REPEAT
    block_use = {
        "type": "object",
        "description": "A use of a block defined under `blocks`, with its params as options.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "not": {"enum": list(MODEL_BY_TYPE)}},
            "name": {"type": "string", "minLength": 1},
            "inputs": defs["Conv"]["properties"]["inputs"],
            "repeat": _REPEAT,
        },
    }
    bare = {"type": "string", "enum": bare_layer_types()}
    items = schema["properties"]["layers"]["items"]
    schema["properties"]["layers"]["items"] = {"anyOf": [bare, items, block_use]}
    # without blocks, an unknown type is a typo, not a block use
    schema["if"] = {"not": {"required": ["blocks"]}}
    schema["then"] = {"properties": {"layers": {"items": {"anyOf": [bare, items]}}}}
    defs["Block"]["properties"]["layers"]["items"] = {
        "anyOf": [{"type": "string"}, {"type": "object", "required": ["type"]}]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
