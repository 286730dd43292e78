"""``POST /api/v1/draw``: the picture of a spec's graph, laid out by Graphviz's ``dot``
(:mod:`convcalc.draw`, the same drawing as ``convcalc draw``).

The spec is read and analysed as for analyse (same media types, limits and problems);
the drawing runs in a thread, off the event loop, at most ``draw_workers`` at a time
(503 ``busy`` beyond) and with ``dot`` killed after ``draw_timeout`` seconds (504).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..draw import MEDIA_TYPES, Depth, DrawError, DrawTimeout, GraphvizMissing, TooLargeToDraw, draw
from ..errors import ArgumentError
from ..report import Report
from ..sizes import check as check_sizes
from . import models
from .limits import Limits
from .openapi import problem_responses, spec_body
from .problems import ProblemError, item
from .reading import load_spec, parse_off_loop, read_body

#: ``depth``: auto, all, or a number of block levels drawn open.
DEPTH_PATTERN = r"^(auto|all|[0-9]{1,6})$"

_TEXT = {"type": "string"}
RESPONSE_CONTENT = {
    "image/svg+xml": {"schema": {**_TEXT, "description": "the SVG drawing"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "text/vnd.graphviz": {"schema": {**_TEXT, "description": "the DOT text dot lays out"}},
}
COUNT = {"type": "string", "pattern": "^[0-9]+$"}
RESPONSE_HEADERS = {
    "Convcalc-Errors": {"description": "The network's errors (marked in the drawing).",
                        "schema": COUNT},
    "Convcalc-Warnings": {"description": "The network's warnings (marked in the drawing).",
                          "schema": COUNT},
    "Convcalc-Depth": {"description": "The depth drawn: blocks nested deeper are single "
                                      "nodes; `all`: no block folded by depth.",
                       "schema": {"type": "string", "pattern": "^(all|[0-9]+)$"}},
    "Convcalc-Nodes": {"description": "Nodes drawn (layers, folded blocks, the input).",
                       "schema": COUNT},
}
BUSY_AND_TIMEOUT: dict[int | str, dict[str, Any]] = {
    503: {"model": models.Problem,
          "description": "Every drawing slot is busy (Retry-After), another large body is "
                         "being parsed, or Graphviz is not installed on the service."},
    504: {"model": models.Problem,
          "description": "Graphviz's dot did not finish in time; it was stopped."},
}


def depth_value(text: str) -> Depth:
    """The ``depth`` query as :func:`convcalc.draw.draw` takes it."""
    if text == "auto":
        return "auto"
    return None if text == "all" else int(text)


def fold_names(values: list[str], report: Report) -> tuple[str, ...]:
    """The ``fold`` query: repeated (``fold=a&fold=b``) or comma-separated
    (``fold=a,b``); a value that is itself a block instance's name is taken whole."""
    names = {name for name, _ in report.groups}
    out: list[str] = []
    for value in values:
        if value in names or "," not in value:
            out.append(value)
        else:
            out.extend(part for part in value.split(",") if part)
    return tuple(out)


def draw_work(body: bytes, limits: Limits, fmt: str, fold: list[str],
              depth: str) -> tuple[Any, int, int]:
    """The drawing of a body and the report's error and warning counts (in a thread);
    every refusal as a problem."""
    report = check_sizes(load_spec(body, limits)).report
    try:
        drawing = draw(report, fmt, fold=fold_names(fold, report), depth=depth_value(depth),
                       timeout=limits.draw_timeout)
    except ArgumentError as error:   # a fold that names no block instance
        raise ProblemError(422, "invalid-request", "Invalid request", str(error),
                           [item(str(error), "query.fold")]) from None
    except TooLargeToDraw as error:
        raise ProblemError(422, "too-large-to-draw", "Too large to draw", str(error),
                           [item(str(error))]) from None
    except DrawTimeout:
        raise ProblemError(504, "draw-timeout", "Drawing timed out",
                           f"Graphviz's dot did not finish within {limits.draw_timeout:g} s "
                           "and was stopped; fold blocks (a smaller depth, or fold=NAME)"
                           ) from None
    except GraphvizMissing as error:
        raise ProblemError(503, "no-graphviz", "Graphviz is not installed",
                           f"this service cannot draw: {error}") from None
    except DrawError as error:
        raise ProblemError(500, "draw-failed", "Drawing failed", str(error)) from None
    return drawing, len(report.errors), len(report.warnings)


def drawing(limits: Limits) -> APIRouter:
    """``POST /api/v1/draw`` with ``limits``' drawing slots and time (the router is made
    per app, so are its slots)."""
    router = APIRouter()
    slots = threading.BoundedSemaphore(limits.draw_workers)

    @router.post(
        "/api/v1/draw", summary="Draw a spec's graph", response_model=None,
        response_class=Response,
        responses={200: {"content": RESPONSE_CONTENT, "headers": RESPONSE_HEADERS,
                         "description": "The drawing, exactly as `convcalc draw` makes it: "
                                        "SVG (node groups carry data-layer, data-group, "
                                        "data-folded, data-input; edges data-from and "
                                        "data-to), PNG, or the DOT text. Network errors "
                                        "and warnings are marked in it and counted in "
                                        "the headers."},
                   **problem_responses(400, 408, 413, 415, 422), **BUSY_AND_TIMEOUT},
        openapi_extra=spec_body("The spec to draw, as a file would hold it."))
    async def draw_graph(
        request: Request,
        format: Literal["svg", "png", "dot"] = Query(
            "svg", description="svg (image/svg+xml), png (image/png) or dot "
                               "(text/vnd.graphviz: the DOT text)."),
        fold: list[str] = Query(
            [], description="Block instances drawn as one node each: fold=a,b or "
                        "fold=a&fold=b (a value that is a block's name is taken whole)."),
        depth: str = Query(
            "auto", pattern=DEPTH_PATTERN,
            description="Blocks nested deeper than this are one node each (0: the top "
                        "level's blocks); all: none; auto: all when the drawing has at "
                        "most 200 nodes and is at most 720 pt wide, else the deepest "
                        "level that does."),
    ) -> Response:
        """The graph of the spec: a node per layer (name, type, window, output shape),
        an edge per input (branches, shortcuts, skips), block instances as boxes or, when
        folded, single nodes; layers with errors red, with warnings orange. Laid out by
        Graphviz's dot, at most `draw_workers` at a time (else 503) and `draw_timeout`
        seconds (else 504)."""
        body = await read_body(request, limits)
        if not slots.acquire(blocking=False):
            raise ProblemError(503, "busy", "Busy",
                               f"{limits.draw_workers} drawing(s) are running, the most this "
                               "service runs at once; try again shortly",
                               headers={"Retry-After": "1"})
        try:
            done, errors, warnings = await parse_off_loop(request, draw_work, body, limits,
                                                          format, fold, depth)
        finally:
            slots.release()
        return Response(done.data, media_type=MEDIA_TYPES[format], headers={
            "Convcalc-Errors": str(errors), "Convcalc-Warnings": str(warnings),
            "Convcalc-Depth": "all" if done.depth is None else str(done.depth),
            "Convcalc-Nodes": str(done.nodes)})

    return router
