"""Reading a spec from a request: its media type, its body (bounded in size and in
time), and the spec parsed and validated as the CLI reads a file.

A body is a spec's YAML or JSON text, an ONNX model (``application/onnx``; imported as
``convcalc import`` does, :mod:`convcalc.importers.onnx`, when the service has the
``onnx`` extra), or a ``multipart/form-data`` form whose ``file`` field holds either
(told apart by the first byte, as the CLI does) — all within the same body limits.

Each step refuses with a :class:`~convcalc.service.problems.ProblemError` (415, 400,
413, 408, 422, 503) before any costlier step runs.
"""

from __future__ import annotations

import threading
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Callable

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..blocks import MAX_LAYERS
from ..errors import Diagnostic, SpecError
from ..importers import is_onnx
from ..loading import loads
from ..units import format_bytes
from ..spec import Spec
from .limits import Limits
from .problems import ClientGone, ProblemError, diagnostics, item

if TYPE_CHECKING:  # pragma: no cover
    from ..importers.onnx import Imported

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml")
ONNX_TYPES = ("application/onnx",)
FORM_TYPE = "multipart/form-data"
#: The form field a multipart upload carries the file in.
FORM_FIELD = "file"
ACCEPTED = ("application/json, application/yaml (text/yaml), application/onnx or "
            "multipart/form-data with a file field")
#: The file name diagnostics give a request body (as ``<stdin>`` for the CLI).
BODY_NAME = "<request>"


def _unsupported(detail: str) -> ProblemError:
    return ProblemError(415, "unsupported-media-type", "Unsupported media type", detail)


def media_type(request: Request) -> str:
    """The body's media type, refused (415) unless JSON or YAML in UTF-8."""
    header = request.headers.get("content-type")
    if not header:
        raise _unsupported(f"no Content-Type: send the spec as {ACCEPTED}")
    media, *params = (part.strip().lower() for part in header.split(";"))
    if media not in JSON_TYPES + YAML_TYPES + ONNX_TYPES + (FORM_TYPE,):
        raise _unsupported(f"Content-Type {media!r} is not accepted: send the spec as "
                           f"{ACCEPTED}")
    if media == FORM_TYPE and not any(p.partition("=")[0].strip() == "boundary"
                                      for p in params):
        raise _unsupported("multipart/form-data without a boundary")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            raise _unsupported(f"charset {value.strip()!r} is not accepted: specs are UTF-8")
    return media


def _too_large(size: str, limit: int) -> ProblemError:
    return ProblemError(413, "body-too-large", "Request body too large",
                        f"the body has {size} bytes; a spec may have at most {limit} "
                        f"({format_bytes(limit)})")


def declared_length(request: Request, limit: int) -> int | None:
    """The body's ``Content-Length``: refused (400) if not a number, (413) if over
    ``limit``; None for a chunked body."""
    length = request.headers.get("content-length")
    if length is None:
        return None
    if not length.strip().isdigit():
        raise ProblemError(400, "bad-request", "Bad request",
                           f"Content-Length {length!r} is not a number")
    if int(length) > limit:
        raise _too_large(length.strip(), limit)
    return int(length)


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, refused as soon as it is known to exceed ``max_body_bytes``
    (413), or unless it arrives whole within ``body_timeout`` seconds (408, and the
    connection is closed: the rest of the body is never read).  A client that leaves
    meanwhile raises :class:`ClientGone`."""
    media_type(request)
    declared = declared_length(request, limits.max_body_bytes)
    body = bytearray()
    try:
        with anyio.fail_after(limits.body_timeout):
            async with aclosing(request.stream()) as chunks:
                async for chunk in chunks:
                    body += chunk
                    if len(body) > limits.max_body_bytes:
                        raise _too_large(f"more than {limits.max_body_bytes}",
                                         limits.max_body_bytes)
    except TimeoutError:
        expected = "" if declared is None else f" of {declared}"
        raise ProblemError(
            408, "body-timeout", "Request body too slow",
            f"the body did not arrive within {limits.body_timeout:g} s (got "
            f"{len(body)}{expected} bytes); the connection is closed",
            headers={"Connection": "close"}) from None
    except ClientDisconnect:
        raise ClientGone(f"while sending its body ({len(body)} bytes received)") from None
    media = media_type(request)
    if media == FORM_TYPE:
        return form_file(request.headers["content-type"], bytes(body))
    if media in ONNX_TYPES and not is_onnx("", bytes(body[:1])):
        raise ProblemError(422, "invalid-spec", "Invalid spec",
                           f"{BODY_NAME}: not an ONNX model: a serialized ModelProto starts "
                           "with byte 0x08", [item("not an ONNX model: a serialized "
                                                   "ModelProto starts with byte 0x08")])
    return bytes(body)


def form_file(content_type: str, body: bytes) -> bytes:
    """The bytes of the ``file`` field of a ``multipart/form-data`` body (400 when the
    form is malformed or has none)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    try:
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
    except Exception:  # noqa: BLE001  (any malformed form is the client's)
        parts = []
    for part in parts:
        if part.get_param("name", header="content-disposition") == FORM_FIELD:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
    raise ProblemError(400, "bad-request", "Bad request",
                       f"a multipart/form-data upload carries the spec (YAML, JSON or ONNX) "
                       f"in a field named {FORM_FIELD!r}; none was found")


def load_spec(body: bytes, limits: Limits) -> Spec:
    """Parse and validate a body as the CLI reads a file; refuse too many layers —
    before expanding them (blocks and ``repeat`` stop at the service's limit)."""
    cap = min(limits.max_layers, MAX_LAYERS)
    if is_onnx("", body[:1]):
        return _imported(body, cap, limits).spec()
    try:
        spec = loads(body, filename=BODY_NAME, max_layers=cap)
    except SpecError as error:
        over = [d for d in error.diagnostics if d.field == "layers"
                and d.message == f"expands to more than {cap} layers"]
        if over and cap < MAX_LAYERS:
            raise _too_many_layers(f"more than {cap}", over[0].line, limits) from None
        raise ProblemError(422, "invalid-spec", "Invalid spec", str(error),
                           diagnostics(error)) from None
    return spec


def _imported(body: bytes, cap: int, limits: Limits) -> Imported:
    """The ONNX model in ``body`` imported (415 when the service has no onnx package,
    422 when it cannot be read or expressed)."""
    from ..export.onnx import OnnxUnavailable, require_onnx

    try:
        require_onnx()
    except OnnxUnavailable as error:
        raise _unsupported(f"this service cannot read ONNX: {error}") from None
    from ..importers.onnx import import_onnx

    try:
        imported = import_onnx(body, BODY_NAME)
        if len(imported.data["layers"]) > cap:
            raise _too_many_layers(str(len(imported.data["layers"])), None, limits)
        imported.spec()
    except SpecError as error:
        raise ProblemError(422, "invalid-spec", "Invalid spec", str(error),
                           diagnostics(error)) from None
    return imported


def spec_text(body: bytes, limits: Limits) -> bytes:
    """A body as spec text: an ONNX model imported to its YAML (for the verify worker,
    which reads text), anything else as it is."""
    if not is_onnx("", body[:1]):
        return body
    return _imported(body, min(limits.max_layers, MAX_LAYERS), limits).text.encode("utf-8")


def import_answer(body: bytes, limits: Limits) -> tuple[bytes, int]:
    """``POST /api/v1/import``: the spec text of a body — an ONNX model's imported
    YAML (as ``convcalc import`` writes it), a spec's text as it is (once it
    validates) — and the import's warning count."""
    if not is_onnx("", body[:1]):
        load_spec(body, limits)
        return body, 0
    imported = _imported(body, min(limits.max_layers, MAX_LAYERS), limits)
    return imported.text.encode("utf-8"), len(imported.warnings)


def _too_many_layers(count: str, line: int | None, limits: Limits) -> ProblemError:
    message = (f"the spec expands to {count} layers; this service analyses at most "
               f"{limits.max_layers} (the CLI and the library at most {MAX_LAYERS:,})")
    diagnostic = Diagnostic("error", message, file=BODY_NAME, line=line, field="layers")
    return ProblemError(422, "too-many-layers", "Too many layers", str(diagnostic),
                        [diagnostic.to_dict()])


async def parse_off_loop(request: Request, work: Callable[..., Any], body: bytes,
                         *args: Any) -> Any:
    """``work(body, *args)`` in a thread; bodies over ``large_body_bytes`` one at a
    time (503 while another runs), so a few huge specs cannot hold every thread."""
    limits: Limits = request.app.state.limits
    gate: threading.BoundedSemaphore = request.app.state.large_parses
    large = len(body) > limits.large_body_bytes
    if large and not gate.acquire(blocking=False):
        raise ProblemError(503, "busy", "Busy",
                           f"another large spec (over {format_bytes(limits.large_body_bytes)})"
                           " is being parsed; try again shortly",
                           headers={"Retry-After": "1"})
    try:
        return await run_in_threadpool(work, body, *args)
    finally:
        if large:
            gate.release()
