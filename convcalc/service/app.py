"""The calculator as an HTTP service (FastAPI): ``convcalc serve``.

Endpoints (all JSON under ``/api/v1/``; errors are ``application/problem+json``):

- ``POST /api/v1/analyse`` — a spec (JSON, or YAML as ``application/yaml`` /
  ``text/yaml``) → exactly what ``convcalc check --format json`` prints;
- ``POST /api/v1/draw`` — a spec → its graph as ``convcalc draw`` draws it
  (``?format=svg|png|dot&fold=&depth=``: SVG, PNG or DOT), laid out by Graphviz's dot;
- ``POST /api/v1/verify`` — a spec → exactly what ``convcalc verify --format json``
  prints (``?batch=&seed=&gradcheck=&max_memory=``), run in a worker process;
- ``GET /api/v1/schema`` — the spec's JSON Schema (``convcalc schema``);
- ``GET /api/v1/zoo`` — the zoo with totals (``convcalc zoo --format json``);
  ``GET /api/v1/zoo/{name}`` — one model: its text, parsed spec and totals;
  ``GET /api/v1/zoo/{name}/spec.yaml`` — its file as written;
- ``GET /api/v1/health``; ``GET /openapi.json``; ``GET /docs`` (an offline reference);
- ``GET /`` — the design page (``static/``: plain JS, nothing from the network).

This module assembles the app; the parts are :mod:`~convcalc.service.routes` (the
routers), :mod:`~convcalc.service.reading` (a spec from a request),
:mod:`~convcalc.service.problems` (errors as problem documents),
:mod:`~convcalc.service.hosts` (the Host allow-list), :mod:`~convcalc.service.openapi`
and :mod:`~convcalc.service.worker` (verifications in processes).
:mod:`~convcalc.service.server` runs it under uvicorn with its connection limits.

Imported only by ``convcalc serve`` and the tests: ``import convcalc`` never imports
FastAPI (or NumPy: verifications run in :mod:`convcalc.service.worker` processes).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .. import __version__
from . import routes
from .hosts import HostAllowList
from .limits import Limits
from .openapi import install_openapi
from .problems import PROBLEM_BASE, CatchAll, ProblemError, install_handlers
from .reading import BODY_NAME, load_spec, read_body
from .worker import VerifyPool

__all__ = ["BODY_NAME", "PROBLEM_BASE", "ProblemError", "create_app", "load_spec",
           "read_body"]

DESCRIPTION = ("CNN shape, parameter, cost and receptive-field calculator as a "
               "service. The design page is at `/`; errors are RFC 9457 problem "
               "documents (`application/problem+json`).")


def create_app(limits: Limits | None = None, *, warm: bool = True,
               allowed_hosts: Iterable[str] | None = None) -> FastAPI:
    """The service as an ASGI app (``uvicorn.run(create_app())``).

    ``limits``: see :class:`~convcalc.service.limits.Limits`.  ``warm`` starts a
    verification worker when the app starts, so the first ``verify`` is fast.
    ``allowed_hosts``: the ``Host`` names answered (others: 400); None answers any
    (``convcalc serve`` always passes its list: see :mod:`convcalc.service.hosts`).
    """
    limits = limits or Limits()
    pool = VerifyPool(limits.verify_workers, limits.verify_timeout, limits.verify_max_memory)
    app = FastAPI(title="convcalc", version=__version__, description=DESCRIPTION,
                  lifespan=_lifespan(pool, warm),
                  docs_url=None, redoc_url=None)  # both load from a CDN: /docs is ours
    app.state.limits = limits
    app.state.pool = pool
    app.state.large_parses = threading.BoundedSemaphore(limits.large_parses)
    install_handlers(app)
    if allowed_hosts is not None:
        app.add_middleware(HostAllowList, allowed=tuple(allowed_hosts))
    app.add_middleware(CatchAll)  # added last: outermost, around the Host check too
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    app.include_router(routes.pages())
    for router in routes.api_routers(limits):
        app.include_router(router)
    install_openapi(app)
    return app


def _lifespan(pool: VerifyPool, warm: bool):  # type: ignore[no-untyped-def]
    """Open the verification pool with the app (and start a worker if ``warm``); stop
    its workers with it.  An app can be started again after it stopped."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool.open()
        if warm:
            pool.warm()
        try:
            yield
        finally:
            pool.close()

    return lifespan
