"""The calculator as an HTTP service (FastAPI): ``convcalc serve``.

Endpoints (all JSON under ``/api/v1/``; errors are ``application/problem+json``):

- ``POST /api/v1/analyse`` — a spec (JSON, or YAML as ``application/yaml`` /
  ``text/yaml``) → exactly what ``convcalc check --format json`` prints;
- ``POST /api/v1/verify`` — a spec → exactly what ``convcalc verify --format json``
  prints (``?batch=&seed=&gradcheck=&max_memory=``), run in a worker process;
- ``GET /api/v1/schema`` — the spec's JSON Schema (``convcalc schema``);
- ``GET /api/v1/zoo`` — the zoo with totals (``convcalc zoo --format json``);
  ``GET /api/v1/zoo/{name}`` — one model: its text, parsed spec and totals;
  ``GET /api/v1/zoo/{name}/spec.yaml`` — its file as written;
- ``GET /api/v1/health``; ``GET /openapi.json``; ``GET /docs`` (an offline reference);
- ``GET /`` — the design page (``static/``: plain JS, nothing from the network).

Imported only by ``convcalc serve`` and the tests: ``import convcalc`` never imports
FastAPI (or NumPy: verifications run in :mod:`convcalc.service.worker` processes).
"""

from __future__ import annotations

import html
import json
import threading
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any, AsyncIterator

import yaml
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, zoo
from ..analysis import analyze
from ..errors import ConvCalcError, Diagnostic, ResourceError, SpecError
from ..loading import loads
from ..memory import check_memory, estimate_memory, format_bytes, parse_bytes
from ..render import render_json
from ..schema import spec_json_schema
from ..spec import Spec
from . import models
from .limits import Limits
from .worker import Busy, Job, Timeout, VerifyPool, WorkerDied

STATIC = Path(__file__).resolve().parent / "static"
#: Problem types are ``PROBLEM_BASE + slug`` (listed in docs/service.rst).
PROBLEM_BASE = "https://convcalc.invalid/problems/"
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml")
#: The file name diagnostics give a request body (as ``<stdin>`` for the CLI).
BODY_NAME = "<request>"
#: Seconds a client is told to wait when every verification worker is busy.
RETRY_AFTER = 5
#: The design page may load nothing but its own files.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class ProblemError(Exception):
    """Answer with an RFC 9457 problem: ``type`` is ``PROBLEM_BASE + kind``."""

    def __init__(self, status: int, kind: str, title: str, detail: str,
                 problems: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.problems = problems or []
        self.headers = headers or {}


def utf8_json(text: str, data: Any) -> bytes:
    """``text`` (JSON of ``data``) as UTF-8; where it cannot be — a name or message
    holding a lone surrogate, which a JSON ``\\ud852`` escape in the body can give — the
    same JSON with every non-ASCII character escaped."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(data, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def problem_response(status: int, kind: str | None, title: str, detail: str,
                     problems: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    body = {"type": PROBLEM_BASE + kind if kind else "about:blank", "title": title,
            "status": status, "detail": detail, "problems": problems or []}
    text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return Response(utf8_json(text, body), status_code=status, headers=headers,
                    media_type="application/problem+json")


def _item(message: str, field: str | None = None, line: int | None = None) -> dict[str, Any]:
    return {"layer": None, "severity": "error", "message": message, "field": field,
            "line": line}


def _diagnostics(error: ConvCalcError) -> list[dict[str, Any]]:
    """The CLI's JSON problem list for an error (``convcalc check --format json``)."""
    diagnostics = getattr(error, "diagnostics", None)
    return [d.to_dict() for d in diagnostics] if diagnostics else [_item(str(error))]


# --- reading a spec from a request ---------------------------------------------------------


def _media_type(request: Request) -> str:
    header = request.headers.get("content-type")
    if not header:
        raise ProblemError(415, "unsupported-media-type", "Unsupported media type",
                           "no Content-Type: send the spec as application/json or "
                           "application/yaml (text/yaml)")
    media, *params = (part.strip().lower() for part in header.split(";"))
    if media not in JSON_TYPES + YAML_TYPES:
        raise ProblemError(415, "unsupported-media-type", "Unsupported media type",
                           f"Content-Type {media!r} is not accepted: send the spec as "
                           "application/json or application/yaml (text/yaml)")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            raise ProblemError(415, "unsupported-media-type", "Unsupported media type",
                               f"charset {value.strip()!r} is not accepted: specs are UTF-8")
    return media


def _too_large(size: str, limit: int) -> ProblemError:
    return ProblemError(413, "body-too-large", "Request body too large",
                        f"the body has {size} bytes; a spec may have at most {limit} "
                        f"({format_bytes(limit)})")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit``."""
    _media_type(request)
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise ProblemError(400, "bad-request", "Bad request",
                               f"Content-Length {length!r} is not a number")
        if int(length) > limit:
            raise _too_large(length.strip(), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(f"more than {limit}", limit)
    return bytes(body)


def load_spec(body: bytes, limits: Limits) -> Spec:
    """Parse and validate a body as the CLI reads a file; refuse too many layers."""
    try:
        spec = loads(body, filename=BODY_NAME)
    except SpecError as error:
        raise ProblemError(422, "invalid-spec", "Invalid spec", str(error),
                           _diagnostics(error)) from None
    count = len(spec.layers)
    if count > limits.max_layers:
        line = spec._source.line_of(("layers",)) if getattr(spec, "_source", None) else None
        message = (f"the spec expands to {count} layers; this service analyses at most "
                   f"{limits.max_layers} (the CLI has no such limit)")
        diagnostic = Diagnostic("error", message, file=BODY_NAME, line=line, field="layers")
        raise ProblemError(422, "too-many-layers", "Too many layers", str(diagnostic),
                           [diagnostic.to_dict()])
    return spec


# --- the app ---------------------------------------------------------------------------------


def _problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "The request is malformed (Content-Length).",
        404: "No such zoo model.",
        413: "The body is larger than the limit (1 MiB).",
        415: "The Content-Type is not JSON or YAML (or not UTF-8).",
        422: "The spec (or a query parameter) is invalid, the network has errors, it has "
             "too many layers, or its run would need more memory than the ceiling.",
        503: "Every verification worker is busy (Retry-After), or a worker failed.",
        504: "The verification did not finish in time; it was stopped.",
    }
    return {code: {"model": models.Problem, "description": descriptions[code]}
            for code in codes}


def _spec_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of analyse/verify: the spec as JSON or YAML text."""
    text = {"type": "string", "description": "the spec file's YAML (or JSON) text"}
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/spec.Spec"}},
        "application/yaml": {"schema": text},
        "text/yaml": {"schema": text},
    }}}


def _spec_components() -> dict[str, Any]:
    """The spec's JSON Schema as OpenAPI components ``spec.Spec``, ``spec.Conv``, …"""
    schema = spec_json_schema()
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/spec.')
    schema = json.loads(text)
    defs = schema.pop("$defs")
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    return {"spec.Spec": schema, **{f"spec.{name}": value for name, value in defs.items()}}


class SchemaResponse(JSONResponse):
    media_type = "application/schema+json"


class YAMLResponse(PlainTextResponse):
    media_type = "application/yaml"


def create_app(limits: Limits | None = None, *, warm: bool = True) -> FastAPI:
    """The service as an ASGI app (``uvicorn.run(create_app())``).

    ``limits``: see :class:`~convcalc.service.limits.Limits`.  ``warm`` starts a
    verification worker when the app starts, so the first ``verify`` is fast.
    """
    limits = limits or Limits()
    pool = VerifyPool(limits.verify_workers, limits.verify_timeout, limits.verify_max_memory)
    large_parses = threading.BoundedSemaphore(limits.large_parses)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm:
            pool.warm()
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="convcalc", version=__version__, lifespan=lifespan,
        description="CNN shape, parameter, cost and receptive-field calculator as a "
                    "service. The design page is at `/`; errors are RFC 9457 problem "
                    "documents (`application/problem+json`).",
        docs_url=None, redoc_url=None)  # Swagger UI and ReDoc load from a CDN: /docs is ours
    app.state.limits = limits
    app.state.pool = pool
    app.state.large_parses = large_parses

    async def parse_off_loop(work: Any, body: bytes, *args: Any) -> Any:
        """``work(body, *args)`` in a thread; bodies over ``large_body_bytes`` one at a
        time (503 while another runs), so a few huge specs cannot hold every thread."""
        large = len(body) > limits.large_body_bytes
        if large and not large_parses.acquire(blocking=False):
            raise ProblemError(503, "busy", "Busy",
                               f"another large spec (over {format_bytes(limits.large_body_bytes)})"
                               " is being parsed; try again shortly",
                               headers={"Retry-After": "1"})
        try:
            return await run_in_threadpool(work, body, *args)
        finally:
            if large:
                large_parses.release()

    # -- errors as problem documents --

    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, error: ProblemError) -> Response:
        return problem_response(error.status, error.kind, error.title, error.detail,
                                error.problems, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> Response:
        phrase = HTTPStatus(error.status_code).phrase
        detail = error.detail if isinstance(error.detail, str) else phrase
        return problem_response(error.status_code, None, phrase, detail,
                                headers=dict(error.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> Response:
        items = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem.get("loc", ()))
            items.append(_item(str(problem.get("msg", "invalid")), where or None))
        detail = "; ".join(f"{i['field']}: {i['message']}" if i["field"] else i["message"]
                           for i in items)
        return problem_response(422, "invalid-request", "Invalid request", detail, items)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, error: Exception) -> Response:
        return problem_response(500, "internal-error", "Internal error",
                                f"the service failed: {type(error).__name__}")

    # -- the design page and its files --

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        text = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/docs", include_in_schema=False)
    async def reference() -> HTMLResponse:
        return HTMLResponse(render_reference(app.openapi()),
                            headers={"Content-Security-Policy": PAGE_POLICY})

    # -- the API --

    @app.get("/api/v1/health", response_model=models.HealthOut, summary="Health check")
    async def health() -> dict[str, Any]:
        """The service is up; its version, its limits and the verification workers."""
        return {"status": "ok", "version": __version__, "limits": limits.to_dict(),
                "verify": pool.to_dict()}

    @app.post(
        "/api/v1/analyse", summary="Analyse a spec", response_model=None,
        responses={200: {"model": models.ReportOut,
                         "description": "The report, exactly as `convcalc check --format "
                                        "json` prints it; `problems` lists the network's "
                                        "errors and warnings (the headers count them)."},
                   **_problem_responses(400, 413, 415, 422, 503)},
        openapi_extra=_spec_body("The spec, as a file would hold it."))
    async def analyse(request: Request) -> Response:
        """Shapes, parameters, MACs and receptive fields of every layer, and every
        problem. A spec that validates is answered 200 even when its network has errors
        (as the CLI prints its JSON report): they are in `problems`, and counted in the
        `Convcalc-Errors` / `Convcalc-Warnings` headers. A spec that does not validate
        is a 422 problem with the same diagnostics (line and field)."""
        body = await read_body(request, limits.max_body_bytes)
        text, errors, warnings = await parse_off_loop(_analyse, body, limits)
        return Response(text, media_type="application/json",
                        headers={"Convcalc-Errors": str(errors),
                                 "Convcalc-Warnings": str(warnings)})

    @app.post(
        "/api/v1/verify", summary="Verify a spec on the reference engine", response_model=None,
        responses={200: {"model": models.VerificationOut,
                         "description": "The verification, exactly as `convcalc verify "
                                        "--format json` prints it (`ok` false: a mismatch)."},
                   **_problem_responses(400, 413, 415, 422, 503, 504)},
        openapi_extra=_spec_body("The spec to build and run."))
    async def verify(
        request: Request,
        batch: int = Query(2, ge=1, le=limits.max_batch,
                           description="Examples in the random batch (as --batch)."),
        seed: int = Query(0, ge=0, le=2**32 - 1, description="Seed (as --seed)."),
        gradcheck: bool = Query(False, description="Also compare gradients with centred "
                                                   "differences in float64 (slow)."),
        max_memory: str | None = Query(
            None, max_length=32,
            description="Refuse a run whose estimated peak memory is larger (as "
                        f"--max-memory, e.g. 512MiB); at most and by default the "
                        f"service's ceiling ({format_bytes(limits.verify_max_memory)})."),
    ) -> Response:
        """Build the network with the NumPy reference engine in a worker process, run a
        random batch forward and backward, and compare every prediction. Runs at most
        `verify_workers` at a time (else 503 with Retry-After) and at most
        `verify_timeout` seconds (else 504: the worker is killed)."""
        memory = _memory_option(max_memory, limits)
        body = await read_body(request, limits.max_body_bytes)
        await parse_off_loop(_check_runnable, body, limits, batch, gradcheck, memory)
        try:
            slot = pool.reserve()
        except Busy:
            raise ProblemError(503, "busy", "Busy",
                               f"{limits.verify_workers} verification(s) are running, the "
                               "most this service runs at once; try again shortly",
                               headers={"Retry-After": str(RETRY_AFTER)}) from None
        job = Job(body, BODY_NAME, batch, seed, gradcheck, memory)
        try:
            kind, answer = await run_in_threadpool(pool.run, slot, job)
        except Timeout:
            raise ProblemError(
                504, "verify-timeout", "Verification timed out",
                f"the verification did not finish within {limits.verify_timeout:g} s and "
                "was stopped (its worker process killed); try a smaller batch, no "
                "gradcheck, or a smaller network") from None
        except WorkerDied as error:
            raise ProblemError(503, "worker-failed", "Verification worker failed",
                               str(error), headers={"Retry-After": "1"}) from None
        if kind == "ok":
            return Response(utf8_json(answer + "\n", json.loads(answer)),
                            media_type="application/json")
        raise _worker_error(answer)

    @app.get("/api/v1/schema", response_class=SchemaResponse, summary="The spec's JSON Schema",
             responses={200: {"content": {"application/schema+json": {
                 "schema": {"type": "object"}}}}})
    async def schema() -> SchemaResponse:
        """The JSON Schema of the spec language (what `convcalc schema` prints)."""
        return SchemaResponse(spec_json_schema())

    @app.get("/api/v1/zoo", response_model=list[models.ZooSummaryOut],
             summary="The model zoo with totals")
    async def zoo_list() -> Response:
        """Every zoo model with its totals (`convcalc zoo --format json`)."""
        return JSONResponse(await run_in_threadpool(_zoo_summaries))

    @app.get("/api/v1/zoo/{name}", response_model=models.ZooModelOut,
             responses=_problem_responses(404), summary="One zoo model")
    async def zoo_model(name: str) -> Response:
        """One model: its file as written, the file parsed, and its totals."""
        return JSONResponse(await run_in_threadpool(_zoo_model, name))

    @app.get("/api/v1/zoo/{name}/spec.yaml", response_class=YAMLResponse,
             responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}}}},
                        **_problem_responses(404)},
             summary="One zoo model's file")
    async def zoo_file(name: str) -> YAMLResponse:
        """The model's spec file as written (`convcalc zoo --show NAME`)."""
        return YAMLResponse(_zoo_text(name))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(title=app.title, version=app.version,
                                   description=app.description, routes=app.routes)
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                _spec_components())
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    for code, response in operation.get("responses", {}).items():
                        if code[0] in "45":  # every error is a problem document
                            response["content"] = {"application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}}}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# --- the work behind the endpoints (run in threads) ------------------------------------------


def _analyse(body: bytes, limits: Limits) -> tuple[bytes, int, int]:
    report = analyze(load_spec(body, limits))
    text = utf8_json(render_json(report) + "\n", report.to_dict())
    return text, len(report.errors), len(report.warnings)


def _memory_option(text: str | None, limits: Limits) -> int:
    ceiling = limits.verify_max_memory
    if text is None:
        return ceiling
    try:
        value = parse_bytes(text)
    except ValueError as error:
        raise ProblemError(422, "invalid-request", "Invalid request", f"max_memory: {error}",
                           [_item(str(error), "query.max_memory")]) from None
    if value > ceiling:
        message = (f"{format_bytes(value)} is above this service's ceiling of "
                   f"{format_bytes(ceiling)}")
        raise ProblemError(422, "invalid-request", "Invalid request", f"max_memory: {message}",
                           [_item(message, "query.max_memory")])
    return value


def _check_runnable(body: bytes, limits: Limits, batch: int, gradcheck: bool,
                    max_memory: int) -> None:
    """Everything verify refuses before running, answered here without a worker."""
    spec = load_spec(body, limits)
    report = analyze(spec)
    if report.errors:
        errors = [d.to_dict() for d in report.errors]
        detail = "not verified: the spec has errors\n" + "\n".join(
            str(d) for d in report.errors)
        raise ProblemError(422, "network-errors", "The network has errors", detail, errors)
    try:
        check_memory(estimate_memory(spec, batch, report=report), max_memory,
                     "running this network")
        if gradcheck:
            check_memory(estimate_memory(spec, batch, gradcheck=True, report=report),
                         max_memory, "the float64 gradient check")
    except ResourceError as error:
        ceiling = format_bytes(limits.verify_max_memory)
        message = (f"{error} Use a smaller batch (this service verifies at most {ceiling}; "
                   "the CLI's --max-memory has no such ceiling).")
        raise ProblemError(422, "over-memory", "Over the memory ceiling", message,
                           [_item(message)]) from None


def _worker_error(answer: dict[str, Any]) -> ProblemError:
    kinds = {"SpecError": ("invalid-spec", "Invalid spec"),
             "ShapeError": ("network-errors", "The network has errors"),
             "ResourceError": ("over-memory", "Over the memory ceiling"),
             "MemoryError": ("over-memory", "Over the memory ceiling")}
    kind, title = kinds.get(answer["error"], ("verify-failed", "Verification failed"))
    return ProblemError(422, kind, title, answer["detail"], answer["problems"])


_ZOO_CACHE: dict[str, Any] = {}


def _zoo_summaries() -> list[dict[str, Any]]:
    if "list" not in _ZOO_CACHE:
        _ZOO_CACHE["list"] = [zoo.summary(name).to_dict() for name in zoo.names()]
    return _ZOO_CACHE["list"]


def _zoo_text(name: str) -> str:
    try:
        return zoo.text(name)
    except SpecError as error:
        raise ProblemError(404, "unknown-zoo-model", "No such zoo model", str(error),
                           _diagnostics(error)) from None


def _zoo_model(name: str) -> dict[str, Any]:
    text = _zoo_text(name)
    summary = next(s for s in _zoo_summaries() if s["name"] == name.removeprefix(zoo.PREFIX))
    return {"name": summary["name"], "title": summary["title"], "header": zoo.header(name),
            "text": text, "spec": yaml.safe_load(text), "summary": summary}


# --- /docs: the API reference, offline --------------------------------------------------------


def render_reference(document: dict[str, Any]) -> str:
    """A plain HTML page listing every operation of the OpenAPI document (FastAPI's
    Swagger UI would load its scripts from a CDN)."""
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
           f"<title>{html.escape(document['info']['title'])} API</title>"
           "<link rel=stylesheet href=/static/style.css></head><body class=reference>",
           f"<h1>{html.escape(document['info']['title'])} API "
           f"{html.escape(document['info']['version'])}</h1>",
           "<p>The machine-readable document: <a href=/openapi.json>/openapi.json</a>. "
           "Errors are <code>application/problem+json</code>. The design page: "
           "<a href=/>/</a>.</p>"]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            out.append(f"<h2><code>{method.upper()} {html.escape(path)}</code> — "
                       f"{html.escape(operation.get('summary', ''))}</h2>")
            if operation.get("description"):
                out.append(f"<p>{html.escape(operation['description'])}</p>")
            params = operation.get("parameters", [])
            if params:
                out.append("<ul>")
                for param in params:
                    out.append(f"<li><code>{html.escape(param['name'])}</code> "
                               f"({html.escape(param['in'])}): "
                               f"{html.escape(param.get('description', ''))}</li>")
                out.append("</ul>")
            body = operation.get("requestBody", {}).get("content")
            if body:
                out.append("<p>Body: " + ", ".join(f"<code>{html.escape(t)}</code>"
                                                   for t in body) + "</p>")
            out.append("<p>Answers: " + "; ".join(
                f"<b>{html.escape(code)}</b> {html.escape(r.get('description', ''))}"
                for code, r in operation.get("responses", {}).items()) + "</p>")
    out.append("</body></html>")
    return "\n".join(out)
