"""Errors as RFC 9457 problem documents (``application/problem+json``), and the
handlers that answer every exception with one.

Every error the service gives is a problem document whose ``type`` is
:data:`PROBLEM_BASE` followed by a slug (listed in ``docs/service.rst``), or
``about:blank`` for a plain 404 or 405.  Client faults are answered without a traceback
anywhere; an unexpected exception is a 500 problem (its traceback logged once, as a
server fault) that keeps the connection usable.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConvCalcError

#: Problem types are ``PROBLEM_BASE + slug`` (listed in docs/service.rst).
PROBLEM_BASE = "https://convcalc.invalid/problems/"
MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("convcalc.service")


class ProblemError(Exception):
    """Answer with an RFC 9457 problem: ``type`` is ``PROBLEM_BASE + kind``."""

    def __init__(self, status: int, kind: str, title: str, detail: str,
                 problems: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.problems = problems or []
        self.headers = headers or {}


class ClientGone(Exception):
    """The client disconnected before its answer: nothing is sent, one INFO line is
    logged (``what`` says what was going on)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def utf8_json(text: str) -> bytes:
    """JSON ``text`` as UTF-8; where it cannot be — a name or message holding a lone
    surrogate, which a JSON ``\\ud852`` escape in the body can give — the same JSON with
    every non-ASCII character escaped (parsed again only in that rare case)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(json.loads(text), indent=2, ensure_ascii=True) + "\n").encode("ascii")


def problem_response(status: int, kind: str | None, title: str, detail: str,
                     problems: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    """The problem document as a response (``kind`` None: ``about:blank``)."""
    body = {"type": PROBLEM_BASE + kind if kind else "about:blank", "title": title,
            "status": status, "detail": detail, "problems": problems or []}
    text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return Response(utf8_json(text), status_code=status, headers=headers,
                    media_type=MEDIA_TYPE)


def problem_bytes(status: int, kind: str, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer carrying a problem document, closing the connection: for
    the server to write where no request could be read (no ASGI app involved)."""
    body = problem_response(status, kind, title, detail).body
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode("ascii") + body


def item(message: str, field: str | None = None, line: int | None = None) -> dict[str, Any]:
    """One entry of a problem's ``problems`` list (an error not tied to a layer)."""
    return {"layer": None, "severity": "error", "message": message, "field": field,
            "line": line}


def diagnostics(error: ConvCalcError) -> list[dict[str, Any]]:
    """The CLI's JSON problem list for an error (``convcalc check --format json``)."""
    found = getattr(error, "diagnostics", None)
    return [d.to_dict() for d in found] if found else [item(str(error))]


def client_label(scope: Scope) -> str:
    """``host:port`` of the client, for a log line."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "a client"


# --- handlers ------------------------------------------------------------------------------


async def _problem(_request: Request, error: ProblemError) -> Response:
    return problem_response(error.status, error.kind, error.title, error.detail,
                            error.problems, error.headers)


async def _http(_request: Request, error: StarletteHTTPException) -> Response:
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else phrase
    return problem_response(error.status_code, None, phrase, detail,
                            headers=dict(error.headers or {}))


async def _invalid(_request: Request, error: RequestValidationError) -> Response:
    items = [item(str(problem.get("msg", "invalid")),
                  ".".join(str(part) for part in problem.get("loc", ())) or None)
             for problem in error.errors()]
    detail = "; ".join(f"{i['field']}: {i['message']}" if i["field"] else i["message"]
                       for i in items)
    return problem_response(422, "invalid-request", "Invalid request", detail, items)


async def _gone(request: Request, error: ClientGone) -> Response:
    logger.info("%s disconnected %s", client_label(request.scope), error.what)
    # Never delivered (the connection is gone), so never in the access log either.
    return problem_response(400, "client-disconnected", "Client disconnected", error.what)


def install_handlers(app: FastAPI) -> None:
    """Answer the app's own errors, FastAPI's validation errors and Starlette's 404/405
    with problem documents."""
    app.add_exception_handler(ProblemError, _problem)  # type: ignore[arg-type]
    app.add_exception_handler(ClientGone, _gone)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]


class CatchAll:
    """ASGI middleware: an exception no handler answered becomes a 500 problem.

    Starlette's own last-resort handler (``ServerErrorMiddleware``) sends its answer and
    then re-raises, so the server logs the exception again and drops the connection;
    here the traceback is logged once (a server fault) and the answer is an ordinary
    response, after which the connection stays usable.  Once an answer has started
    nothing can be sent, and the exception goes on to the server.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            logger.info("%s disconnected during %s %s", client_label(scope),
                        scope.get("method"), scope.get("path"))
        except Exception as error:
            if started:
                raise
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            response = problem_response(500, "internal-error", "Internal error",
                                        f"the service failed: {type(error).__name__}")
            await response(scope, receive, send)
