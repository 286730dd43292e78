"""The service's OpenAPI document and the offline API reference page built from it.

The document has the spec's JSON Schema as components ``spec.Spec``, ``spec.Conv``, …
(so a client generator gets the request body right), and every 4xx/5xx answer declared
as a problem document.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import FastAPI

from ..schema import spec_json_schema
from . import models

#: What each error status of an operation means (``responses=problem_responses(...)``).
PROBLEM_DESCRIPTIONS = {
    400: "The request is malformed (Content-Length).",
    404: "No such zoo model.",
    408: "The body did not arrive in time; the connection is closed.",
    413: "The body is larger than the limit (1 MiB).",
    415: "The Content-Type is not JSON, YAML (UTF-8), ONNX or a multipart form — or "
         "ONNX, and this service has no onnx package.",
    422: "The spec (or a query parameter) is invalid, the network has errors, it has "
         "too many layers, or its run would need more memory than the ceiling.",
    503: "Every verification worker is busy (Retry-After), or a worker failed.",
    504: "The verification did not finish in time; it was stopped.",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation for these error statuses."""
    return {code: {"model": models.Problem, "description": PROBLEM_DESCRIPTIONS[code]}
            for code in codes}


def spec_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of analyse/verify: the spec as JSON or YAML text."""
    text = {"type": "string", "description": "the spec file's YAML (or JSON) text"}
    model = {"type": "string", "format": "binary",
             "description": "an ONNX model (a serialized ModelProto), imported as "
                            "`convcalc import` does; needs the service's onnx extra"}
    form = {"type": "object", "required": ["file"], "properties": {"file": {
        "type": "string", "format": "binary",
        "description": "a spec file (YAML or JSON) or an ONNX model, told apart by its "
                       "first byte"}}}
    return {"requestBody": {"required": True, "description": description + " The body "
                            "limits hold for every form: an ONNX model must fit them (a "
                            "graph without its weights does).", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/spec.Spec"}},
        "application/yaml": {"schema": text},
        "text/yaml": {"schema": text},
        "application/onnx": {"schema": model},
        "multipart/form-data": {"schema": form},
    }}}


def upload_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of import: a model or a spec file, as an upload."""
    body = spec_body(description)
    content = body["requestBody"]["content"]
    body["requestBody"]["content"] = {key: content[key] for key in
                                      ("application/onnx", "multipart/form-data",
                                       "application/yaml")}
    return body


def spec_components() -> dict[str, Any]:
    """The spec's JSON Schema as OpenAPI components ``spec.Spec``, ``spec.Conv``, …"""
    schema = spec_json_schema()
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/spec.')
    schema = json.loads(text)
    defs = schema.pop("$defs")
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    return {"spec.Spec": schema, **{f"spec.{name}": value for name, value in defs.items()}}


def build_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of ``app``, with the spec components and every error answer
    a problem document."""
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(title=app.title, version=app.version,
                           description=app.description, routes=app.routes)
    document.setdefault("components", {}).setdefault("schemas", {}).update(spec_components())
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] in "45":
                    response["content"] = {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}}
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_document` (built once) as ``/openapi.json``."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render_reference(document: dict[str, Any]) -> str:
    """A plain HTML page listing every operation of the OpenAPI document (FastAPI's
    Swagger UI would load its scripts from a CDN)."""
    info = document["info"]
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
           f"<title>{html.escape(info['title'])} API</title>"
           "<link rel=stylesheet href=/static/style.css></head><body class=reference>",
           f"<h1>{html.escape(info['title'])} API {html.escape(info['version'])}</h1>",
           "<p>The machine-readable document: <a href=/openapi.json>/openapi.json</a>. "
           "Errors are <code>application/problem+json</code>. The design page: "
           "<a href=/>/</a>.</p>"]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            out.extend(_operation(path, method, operation))
    out.append("</body></html>")
    return "\n".join(out)


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """The reference page's lines for one operation."""
    out = [f"<h2><code>{method.upper()} {html.escape(path)}</code> — "
           f"{html.escape(operation.get('summary', ''))}</h2>"]
    if operation.get("description"):
        out.append(f"<p>{html.escape(operation['description'])}</p>")
    params = operation.get("parameters", [])
    if params:
        out.append("<ul>")
        out.extend(f"<li><code>{html.escape(param['name'])}</code> "
                   f"({html.escape(param['in'])}): "
                   f"{html.escape(param.get('description', ''))}</li>" for param in params)
        out.append("</ul>")
    body = operation.get("requestBody", {}).get("content")
    if body:
        out.append("<p>Body: " + ", ".join(f"<code>{html.escape(t)}</code>"
                                           for t in body) + "</p>")
    out.append("<p>Answers: " + "; ".join(
        f"<b>{html.escape(code)}</b> {html.escape(r.get('description', ''))}"
        for code, r in operation.get("responses", {}).items()) + "</p>")
    return out
