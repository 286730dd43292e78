"""The JSON Schema of the spec language, derived from the pydantic models.

Editors (VS Code's YAML extension, JetBrains) use it for completion and checking:
``convcalc schema > convcalc.schema.json``.

>>> schema = spec_json_schema()
>>> schema["properties"]["layers"]["items"]["anyOf"][0]["enum"][:3]
['global_avgpool', 'global_maxpool', 'flatten']
"""

from __future__ import annotations

from typing import Any

from .spec import LAYER_MODELS, Spec, layer_types

SCHEMA_ID = "https://convcalc.invalid/spec.schema.json"


def bare_layer_types() -> list[str]:
    """Layer types that need no option, so ``- relu`` alone is a layer."""
    return [
        tag
        for model in LAYER_MODELS
        if all(not f.is_required() for n, f in model.model_fields.items() if n != "type")
        for tag in layer_types(model)
    ]


def spec_json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12), bare layer names included."""
    schema = Spec.model_json_schema()
    items = schema["properties"]["layers"]["items"]
    schema["properties"]["layers"]["items"] = {
        "anyOf": [{"type": "string", "enum": bare_layer_types()}, items]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
