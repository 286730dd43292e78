"""The service's routes, one router per concern, and the work behind them.

- :func:`pages` — the design page ``/`` and the offline reference ``/docs``;
- :func:`meta` — ``GET /api/v1/health``;
- :func:`analysis` — ``POST /api/v1/analyse``;
- :func:`~convcalc.service.drawing.drawing` — ``POST /api/v1/draw`` (in its own module);
- :func:`verification` — ``POST /api/v1/verify`` (its query bounds come from the limits);
- :func:`reference` — the spec's JSON Schema and the zoo.

Routes read the app's state (``request.app.state``): ``limits``, ``pool`` (the
verification workers) and ``large_parses`` (see :func:`convcalc.service.app.create_app`).
The parsing and analysing run in threads, off the event loop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import __version__, zoo
from ..analysis import analyze
from ..catalog import summary
from ..errors import ResourceError, SpecError
from ..memory import check_memory, estimate_memory, parse_bytes
from ..render import render_json, sizes_to_dict
from ..sizes import SizesTooComplex, valid_sizes
from ..sizes import check as check_sizes
from ..schema import spec_json_schema
from ..training_memory import Dtype, Optimizer, footprint
from ..units import format_bytes
from . import models
from ..blocks import MAX_LAYERS
from .drawing import drawing
from .limits import Limits
from .openapi import problem_responses, render_reference, spec_body, upload_body
from .problems import ClientGone, ProblemError, diagnostics, item, utf8_json
from .reading import (BODY_NAME, import_answer, load_spec, parse_off_loop, read_body,
                      spec_text)
from .worker import Busy, Cancelled, Job, Slot, Timeout, VerifyPool, WorkerDied

STATIC = Path(__file__).resolve().parent / "static"
#: Seconds a client is told to wait when every verification worker is busy.
RETRY_AFTER = 5
#: The design page may load nothing but its own files.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class SchemaResponse(JSONResponse):
    media_type = "application/schema+json"


class YAMLResponse(PlainTextResponse):
    media_type = "application/yaml"


def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits   # set by the app (app.state holds anything)
    return limits


# --- the design page and the reference ---------------------------------------------------------


def pages() -> APIRouter:
    """``/``: the design page (its files are mounted at ``/static``); ``/docs``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def page() -> HTMLResponse:
        text = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})

    @router.get("/docs")
    async def reference(request: Request) -> HTMLResponse:
        return HTMLResponse(render_reference(request.app.openapi()),
                            headers={"Content-Security-Policy": PAGE_POLICY})

    return router


# --- health ----------------------------------------------------------------------------------------


def meta() -> APIRouter:
    """``GET /api/v1/health``."""
    router = APIRouter()

    @router.get("/api/v1/health", response_model=models.HealthOut, summary="Health check")
    async def health(request: Request) -> dict[str, Any]:
        """The service is up; its version, its limits and the verification workers."""
        return {"status": "ok", "version": __version__,
                "limits": _limits(request).to_dict(),
                "verify": request.app.state.pool.to_dict()}

    return router


# --- analyse ---------------------------------------------------------------------------------------


def analyse_text(body: bytes, limits: Limits, batch: int = 1, dtype: str = "float32",
                 optimizer: str = "sgd") -> tuple[bytes, int, int]:
    """The report of a body as ``convcalc check --format json`` prints it, and its
    error and warning counts (run in a thread): open sizes analysed at the smallest
    valid size (with ``sizes``), a failing input with its nearest valid sizes; its
    memory at ``batch``, ``dtype`` and ``optimizer``."""
    spec = load_spec(body, limits)
    checked = check_sizes(spec)
    report = checked.report
    memory = footprint(report, batch, dtype, optimizer)
    if checked.sizes is None:
        text = render_json(report, memory=memory)
    else:
        data = report.to_dict(memory)
        data["sizes"] = sizes_to_dict(None, spec.input, checked.sizes)["axes"]
        text = json.dumps(data, indent=2, ensure_ascii=False)
    return utf8_json(text + "\n"), len(report.errors), len(report.warnings)


def sizes_text(body: bytes, limits: Limits, near: int | None) -> bytes:
    """``convcalc sizes --format json`` of a body (run in a thread)."""
    spec = load_spec(body, limits)
    try:
        answers = valid_sizes(spec)
    except SizesTooComplex as error:
        raise ProblemError(422, "sizes-too-complex", "Sizes too complex",
                           f"which input sizes work could not be worked out: {error}",
                           [item(str(error))]) from None
    data = sizes_to_dict(spec.name, spec.input, answers, near)
    return utf8_json(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def sizes() -> APIRouter:
    """``POST /api/v1/sizes``."""
    router = APIRouter()

    @router.post(
        "/api/v1/sizes", summary="Which input sizes a spec accepts", response_model=None,
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}},
                         "description": "Exactly what `convcalc sizes --format json` "
                                        "prints: per spatial axis the valid sizes (period, "
                                        "residues, threshold, exceptions, smallest, a "
                                        "description and the output size as a formula)."},
                   **problem_responses(400, 408, 413, 415, 422, 503)},
        openapi_extra=spec_body("The spec; its input may leave sizes open (null)."))
    async def valid_input_sizes(
        request: Request,
        near: int | None = Query(None, ge=1, le=2**53 - 1,
                                 description="Also the valid sizes just below and above."),
    ) -> Response:
        """The exact set of input sizes the network accepts, per spatial axis (as
        `convcalc sizes`)."""
        limits = _limits(request)
        body = await read_body(request, limits)
        text = await parse_off_loop(request, sizes_text, body, limits, near)
        return Response(text, media_type="application/json")

    return router


def analysis() -> APIRouter:
    """``POST /api/v1/analyse``."""
    router = APIRouter()

    @router.post(
        "/api/v1/analyse", summary="Analyse a spec", response_model=None,
        responses={200: {"model": models.ReportOut,
                         "description": "The report, exactly as `convcalc check --format "
                                        "json` prints it; `problems` lists the network's "
                                        "errors and warnings (the headers count them)."},
                   **problem_responses(400, 408, 413, 415, 422, 503)},
        openapi_extra=spec_body("The spec, as a file would hold it."))
    async def analyse(
        request: Request,
        batch: int = Query(1, ge=1, le=2**31 - 1,
                           description="Examples per training step, for `memory` (as "
                                       "`convcalc check --batch`)."),
        dtype: Dtype = Query(
            "float32", description="The element type of `memory` (as --dtype)."),
        optimizer: Optimizer = Query(
            "sgd", description="Whose state `memory` counts (as --optimizer): sgd none, "
                               "momentum one value per trainable parameter, adam two."),
    ) -> Response:
        """Shapes, parameters, MACs, receptive fields and memory of every layer, and
        every problem. A spec that validates is answered 200 even when its network has
        errors (as the CLI prints its JSON report): they are in `problems`, and counted
        in the `Convcalc-Errors` / `Convcalc-Warnings` headers. A spec that does not
        validate is a 422 problem with the same diagnostics (line and field)."""
        limits = _limits(request)
        body = await read_body(request, limits)
        text, errors, warnings = await parse_off_loop(request, analyse_text, body, limits,
                                                      batch, dtype, optimizer)
        return Response(text, media_type="application/json",
                        headers={"Convcalc-Errors": str(errors),
                                 "Convcalc-Warnings": str(warnings)})

    return router


# --- verify ----------------------------------------------------------------------------------------


def memory_option(text: str | None, limits: Limits) -> int:
    """The ``max_memory`` query in bytes: the ceiling when absent, 422 above it."""
    ceiling = limits.verify_max_memory
    if text is None:
        return ceiling
    try:
        value = parse_bytes(text)
    except ValueError as error:
        raise ProblemError(422, "invalid-request", "Invalid request", f"max_memory: {error}",
                           [item(str(error), "query.max_memory")]) from None
    if value > ceiling:
        message = (f"{format_bytes(value)} is above this service's ceiling of "
                   f"{format_bytes(ceiling)}")
        raise ProblemError(422, "invalid-request", "Invalid request", f"max_memory: {message}",
                           [item(message, "query.max_memory")])
    return value


#: ``?gradcheck=``: a boolean as pydantic spells one, or a method of the check
GRADCHECK_PATTERN = r"(?i)^(true|false|1|0|yes|no|on|off|t|f|y|n|directions|entries)$"


def gradcheck_option(text: str) -> bool | str:
    """``?gradcheck=`` as :func:`convcalc.verify` takes it: ``False``, ``True`` (the
    directional check) or ``"entries"``.

    >>> gradcheck_option("true"), gradcheck_option("Entries"), gradcheck_option("0")
    (True, 'entries', False)
    """
    text = text.lower()
    if text in ("directions", "entries"):
        return "directions" if text == "directions" else "entries"
    return text in ("true", "1", "yes", "on", "t", "y")


def check_runnable(body: bytes, limits: Limits, batch: int, gradcheck: bool | str,
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
            check_memory(estimate_memory(spec, batch, gradcheck=gradcheck, report=report),
                         max_memory, "the float64 gradient check")
    except ResourceError as error:
        ceiling = format_bytes(limits.verify_max_memory)
        message = (f"{error} Use a smaller batch (this service verifies at most {ceiling}; "
                   "the CLI's --max-memory has no such ceiling).")
        raise ProblemError(422, "over-memory", "Over the memory ceiling", message,
                           [item(message)]) from None


def reserve(pool: VerifyPool, limits: Limits) -> Slot:
    """A verification slot now, or 503 with ``Retry-After``."""
    try:
        return pool.reserve()
    except Busy:
        raise ProblemError(503, "busy", "Busy",
                           f"{limits.verify_workers} verification(s) are running, the "
                           "most this service runs at once; try again shortly",
                           headers={"Retry-After": str(RETRY_AFTER)}) from None


async def _until_disconnect(request: Request) -> None:
    """Return when the client has gone (the body has been read: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_watched(request: Request, pool: VerifyPool, slot: Slot,
                      job: Job) -> tuple[str, Any]:
    """``pool.run(slot, job)`` in a thread while watching the connection: if the client
    disconnects first, the job is cancelled — its worker killed, its slot freed at
    once — and :class:`ClientGone` raised."""
    outcome: list[tuple[str, Any] | Exception] = []

    async def run(scope: anyio.CancelScope) -> None:
        try:
            outcome.append(await run_in_threadpool(pool.run, slot, job))
        except Exception as error:  # raised below, outside the task group
            outcome.append(error)
        scope.cancel()  # stop watching

    async with anyio.create_task_group() as group:
        group.start_soon(run, group.cancel_scope)
        await _until_disconnect(request)
        pool.cancel(slot)  # reached only if the client left first
    result = outcome[0]
    if isinstance(result, Cancelled):
        raise ClientGone("during its verification, which was stopped (its worker "
                         "process killed, its slot freed)")
    if isinstance(result, Exception):
        raise result
    return result


def verify_answer(kind: str, answer: Any) -> Response:
    """The worker's answer as a response: the verification, or its refusal (422)."""
    if kind == "ok":
        return Response(utf8_json(answer + "\n"), media_type="application/json")
    kinds = {"SpecError": ("invalid-spec", "Invalid spec"),
             "ShapeError": ("network-errors", "The network has errors"),
             "ResourceError": ("over-memory", "Over the memory ceiling"),
             "MemoryError": ("over-memory", "Over the memory ceiling")}
    slug, title = kinds.get(answer["error"], ("verify-failed", "Verification failed"))
    raise ProblemError(422, slug, title, answer["detail"], answer["problems"])


async def run_verification(request: Request, job: Job) -> Response:
    """Run a job in a worker: 503 when busy or when the worker died, 504 on timeout."""
    limits, pool = _limits(request), request.app.state.pool
    slot = reserve(pool, limits)
    try:
        kind, answer = await run_watched(request, pool, slot, job)
    except Timeout:
        raise ProblemError(
            504, "verify-timeout", "Verification timed out",
            f"the verification did not finish within {limits.verify_timeout:g} s and "
            "was stopped (its worker process killed); try a smaller batch, no "
            "gradcheck (or gradcheck=true rather than entries), or a smaller "
            "network") from None
    except WorkerDied as error:
        raise ProblemError(503, "worker-failed", "Verification worker failed",
                           str(error), headers={"Retry-After": "1"}) from None
    return verify_answer(kind, answer)


def verification(limits: Limits) -> APIRouter:
    """``POST /api/v1/verify``; its query's bounds are ``limits``'."""
    router = APIRouter()

    @router.post(
        "/api/v1/verify", summary="Verify a spec on the reference engine", response_model=None,
        responses={200: {"model": models.VerificationOut,
                         "description": "The verification, exactly as `convcalc verify "
                                        "--format json` prints it (`ok` false: a mismatch)."},
                   **problem_responses(400, 408, 413, 415, 422, 503, 504)},
        openapi_extra=spec_body("The spec to build and run."))
    async def verify(
        request: Request,
        batch: int = Query(2, ge=1, le=limits.max_batch,
                           description="Examples in the random batch (as --batch)."),
        seed: int = Query(0, ge=0, le=2**32 - 1, description="Seed (as --seed)."),
        gradcheck: str = Query(
            "false", pattern=GRADCHECK_PATTERN,
            description="Also compare the gradients with centred differences in float64: "
                        "`true` (or `directions`, as --gradcheck), along one random "
                        "direction per tensor (two forward passes of its layer each, four "
                        "of the whole network); `entries` (as --gradcheck-entries), entry "
                        "by entry (slow: small networks only); `false`, no check (also "
                        "`1`/`0`, `yes`/`no`, `on`/`off`)."),
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
        memory = memory_option(max_memory, limits)
        method = gradcheck_option(gradcheck)
        body = await read_body(request, limits)
        body = await parse_off_loop(request, spec_text, body, limits)   # ONNX: its YAML
        await parse_off_loop(request, check_runnable, body, limits, batch, method, memory)
        return await run_verification(
            request, Job(body, BODY_NAME, batch, seed, method, memory,
                         min(limits.max_layers, MAX_LAYERS)))

    return router


# --- the schema and the zoo -------------------------------------------------------------------------


_ZOO_CACHE: dict[str, list[dict[str, Any]]] = {}


def zoo_summaries() -> list[dict[str, Any]]:
    """Every zoo model's totals (computed once)."""
    if "list" not in _ZOO_CACHE:
        _ZOO_CACHE["list"] = [summary(name).to_dict() for name in zoo.names()]
    return _ZOO_CACHE["list"]


def zoo_text(name: str) -> str:
    """A zoo model's file as written, or 404."""
    try:
        return zoo.text(name)
    except SpecError as error:
        raise ProblemError(404, "unknown-zoo-model", "No such zoo model", str(error),
                           diagnostics(error)) from None


def zoo_entry(name: str) -> dict[str, Any]:
    """One zoo model: its file, the file parsed, and its totals."""
    text = zoo_text(name)
    totals = next(s for s in zoo_summaries() if s["name"] == name.removeprefix(zoo.PREFIX))
    return {"name": totals["name"], "title": totals["title"], "header": zoo.header(name),
            "text": text, "spec": yaml.safe_load(text), "summary": totals}


def reference() -> APIRouter:
    """``GET /api/v1/schema`` and the zoo: what the service knows, not what it computes
    from a request."""
    router = APIRouter()

    @router.get("/api/v1/schema", response_class=SchemaResponse,
                summary="The spec's JSON Schema",
                responses={200: {"content": {"application/schema+json": {
                    "schema": {"type": "object"}}}}})
    async def schema() -> SchemaResponse:
        """The JSON Schema of the spec language (what `convcalc schema` prints)."""
        return SchemaResponse(spec_json_schema())

    @router.get("/api/v1/zoo", response_model=list[models.ZooSummaryOut],
                summary="The model zoo with totals")
    async def zoo_list() -> Response:
        """Every zoo model with its totals (`convcalc zoo --format json`)."""
        return JSONResponse(await run_in_threadpool(zoo_summaries))

    @router.get("/api/v1/zoo/{name}", response_model=models.ZooModelOut,
                responses=problem_responses(404), summary="One zoo model")
    async def zoo_model(name: str) -> Response:
        """One model: its file as written, the file parsed, and its totals."""
        return JSONResponse(await run_in_threadpool(zoo_entry, name))

    @router.get("/api/v1/zoo/{name}/spec.yaml", response_class=YAMLResponse,
                responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}}}},
                           **problem_responses(404)},
                summary="One zoo model's file")
    async def zoo_file(name: str) -> YAMLResponse:
        """The model's spec file as written (`convcalc zoo --show NAME`)."""
        return YAMLResponse(zoo_text(name))

    return router


def importing() -> APIRouter:
    """``POST /api/v1/import``: what the design page opens a file with."""
    router = APIRouter()

    @router.post(
        "/api/v1/import", summary="Import a model (ONNX) as spec text", response_model=None,
        responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}}},
                         "description": "The spec's YAML, exactly as `convcalc import` "
                                        "writes it (a spec file's text comes back as it "
                                        "is); `Convcalc-Warnings` counts the import's "
                                        "warnings, each a comment above its layer."},
                   **problem_responses(400, 408, 413, 415, 422, 503)},
        openapi_extra=upload_body("An ONNX model, or a spec file."))
    async def import_model(request: Request) -> Response:
        """Turn an uploaded ONNX model into spec text (as `convcalc import`), for an
        editor to open; analyse it with `/api/v1/analyse`."""
        limits = _limits(request)
        body = await read_body(request, limits)
        text, warnings = await parse_off_loop(request, import_answer, body, limits)
        return Response(text, media_type="application/yaml",
                        headers={"Convcalc-Warnings": str(warnings)})

    return router


def api_routers(limits: Limits) -> list[APIRouter]:
    """The API's routers, in the order of the OpenAPI document."""
    return [meta(), analysis(), sizes(), importing(), drawing(limits), verification(limits),
            reference()]
