"""``convcalc serve``: the app under uvicorn, with deadlines on reading requests.

uvicorn's h11 server has a keep-alive timeout between requests but no deadline for a
request's headers or body, and none before a connection's first request: a client
sending one header line every few seconds holds its connection for ever.
:class:`DeadlineProtocol` (uvicorn's ``H11Protocol`` with a few hooks) adds them:

- a connection silent for ``keep_alive_timeout`` — before its first request, or between
  two — is closed (uvicorn arms that timer only after a response);
- a request's line and headers must arrive within ``header_timeout`` of their first
  byte, else 408 and the connection is closed;
- its body must arrive within ``body_timeout`` of the end of its headers: the app
  answers 408 when it reads the body (:func:`convcalc.service.reading.read_body`); a
  body nothing reads (a request refused on its headers) is cut off a second later;
- a request arriving while the process already serves ``max_connections`` connections
  is answered 503 (``Retry-After: 1``) and its connection closed — uvicorn's
  ``limit_concurrency``, answered with a problem document instead of plain text;
- a request that is not HTTP/1.1, or whose headers exceed ``max_header_bytes``
  (h11's limit), is answered 400 or 431 with a problem document and closed.

:func:`run` serves with those limits on one process, or on ``workers`` processes
(uvicorn's own supervisor, which pickles this module's :class:`ServiceConfig` to
each: the app is built there from the limits and Host allow-list it carries; on Linux
each worker listens on a socket of its own, :class:`ReusePortListener`).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import socket
import sys
from collections.abc import Sequence
from typing import Any

import h11
import uvicorn
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from .app import create_app
from .limits import Limits
from .problems import client_label, problem_bytes, problem_response

#: Seconds after ``body_timeout`` that the server cuts off a body the app did not read
#: (the app's own deadline, which answers 408, comes first when it reads the body).
BODY_GRACE = 1.0
logger = logging.getLogger("convcalc.service")
uvicorn_logger = logging.getLogger("uvicorn.error")


class ServiceConfig(uvicorn.Config):
    """uvicorn's configuration of the service: the app factory with its limits and
    Host allow-list, :class:`DeadlineProtocol`, and the limits uvicorn applies itself
    (keep-alive, header size, connections, shutdown)."""

    def __init__(self, limits: Limits, allowed_hosts: Sequence[str] | None, *,
                 host: str, port: int, workers: int = 1, access_log: bool = True,
                 warm: bool = True, **options: Any):
        self.limits = limits
        app = functools.partial(create_app, limits, warm=warm, allowed_hosts=allowed_hosts)
        super().__init__(
            app, factory=True, host=host, port=port, workers=workers,
            access_log=access_log, http=DeadlineProtocol, log_config=log_config(),
            timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=limits.max_header_bytes,
            limit_concurrency=limits.max_connections,
            timeout_graceful_shutdown=limits.shutdown_timeout,  # type: ignore[arg-type]
            **options)


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with the service's own lines (``convcalc.service``) beside its."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["convcalc.service"] = {"handlers": ["default"], "level": "INFO",
                                             "propagate": False}
    return config


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines on reading requests (module docstring)."""

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None):
        super().__init__(config, server_state, app_state, _loop)
        limits = getattr(config, "limits", None) or Limits()
        self.header_timeout = limits.header_timeout
        self.body_deadline = limits.body_timeout + BODY_GRACE
        self.max_header_bytes = config.h11_max_incomplete_event_size or limits.max_header_bytes
        # uvicorn's own check answers in plain text: this class answers instead.
        self.max_connections, self.limit_concurrency = self.limit_concurrency, None
        self.service, self.app = self.app, self.app_unless_full
        self.phase = "idle"
        self.deadline: asyncio.TimerHandle | None = None

    # -- the connection's life --

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_deadline()
        super().connection_lost(exc)

    # -- the read deadlines --

    def reading(self) -> str:
        """What the connection waits for: ``idle`` (a request), ``headers`` (the rest
        of a request's head), ``body``, or ``done`` (nothing: the app is answering)."""
        if self.transport.is_closing():
            return "closed"
        state = self.conn.their_state
        if state is h11.IDLE:
            return "headers" if self.conn.trailing_data[0] else "idle"
        return "body" if state is h11.SEND_BODY else "done"

    def follow(self) -> None:
        """Arm the deadline of what the connection now waits for."""
        phase = self.reading()
        if phase == self.phase:
            return
        self.phase = phase
        self.cancel_deadline()
        if phase == "headers":
            self.deadline = self.loop.call_later(self.header_timeout, self.headers_overdue)
        elif phase == "body":
            self.deadline = self.loop.call_later(self.body_deadline, self.body_overdue)

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def headers_overdue(self) -> None:
        """408 and close: the request's head did not arrive in time."""
        if self.reading() != "headers":
            return
        logger.info("%s: closed: request headers not complete within %g s",
                    self.client_text(), self.header_timeout)
        self.close_with(408, "header-timeout", "Request headers too slow",
                        f"the request line and headers did not arrive within "
                        f"{self.header_timeout:g} s of their first byte; the connection "
                        "is closed")

    def body_overdue(self) -> None:
        """Close: a body nothing read did not arrive in time."""
        if self.reading() != "body":
            return
        logger.info("%s: closed: request body not complete within %g s",
                    self.client_text(), self.body_deadline - BODY_GRACE)
        self.transport.close()

    # -- answers without the app --

    def client_text(self) -> str:
        return client_label({"client": self.client})

    def close_with(self, status: int, kind: str, title: str, detail: str) -> None:
        """Write a problem answer (unless another answer is under way) and close."""
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(problem_bytes(status, kind, title, detail))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """h11 refused the request (not HTTP/1.1, or headers too large): a problem."""
        if len(self.conn.trailing_data[0]) > self.max_header_bytes:
            self.close_with(431, "headers-too-large", "Request header fields too large",
                            f"the request line and headers exceed {self.max_header_bytes} "
                            "bytes")
        else:
            self.close_with(400, "bad-request", "Bad request",
                            "the request is not valid HTTP/1.1 (request line, headers or "
                            "framing)")

    async def app_unless_full(self, scope: Any, receive: Any, send: Any) -> None:
        """The app, or 503 (closing the connection) when over ``max_connections``."""
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            logger.info("%s: 503: more than %d connections", client_label(scope),
                        self.max_connections)
            response = problem_response(
                503, "too-many-connections", "Too many connections",
                f"this server process serves at most {self.max_connections} connections "
                "at once; try again shortly",
                headers={"Retry-After": "1", "Connection": "close"})
            await response(scope, receive, send)
            return
        await self.service(scope, receive, send)


class ReusePortListener:
    """Stands for the listening socket in the list uvicorn's supervisor hands each
    worker process.  Pickled to a worker (``spawn``), it becomes a socket of that
    worker's own, bound to the same address with ``SO_REUSEPORT``: each worker then has
    its own accept queue and Linux spreads new connections over them.  (One shared
    socket lets whichever process wakes first accept a whole burst of connections:
    measured, 32 connections opened at once went 32 to one worker and 0 to the other.)"""

    def __init__(self, family: socket.AddressFamily, address: tuple[Any, ...]):
        self.family, self.address = family, address

    def __reduce__(self) -> tuple[Any, ...]:
        return (reuse_port_socket, (self.family, self.address))


def reuse_port_socket(family: socket.AddressFamily, address: tuple[Any, ...]) -> socket.socket:
    """A TCP socket bound to ``address`` with ``SO_REUSEPORT`` (not yet listening)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def balanced_listeners(config: uvicorn.Config) -> tuple[socket.socket, list[Any]] | None:
    """On Linux: a socket that holds the address (bound with ``SO_REUSEPORT``, never
    listening, so it gets no connections), and the listener each worker binds for
    itself; elsewhere (no balancing ``SO_REUSEPORT``) None: one shared socket."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return None
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        holder = reuse_port_socket(family, (config.host, config.port))
    except OSError as error:
        uvicorn_logger.error(error)
        sys.exit(STARTUP_FAILURE)
    host, port = holder.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    uvicorn_logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port)
    return holder, [ReusePortListener(family, holder.getsockname())]


def run_workers(config: uvicorn.Config) -> None:
    """uvicorn's supervisor over ``config.workers`` processes, each with its own
    listening socket where the system balances them (:class:`ReusePortListener`)."""
    balanced = balanced_listeners(config)
    if balanced is None:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    holder, listeners = balanced
    try:
        Multiprocess(config, sockets=listeners).run()
    finally:
        holder.close()


def run(limits: Limits | None = None, *, host: str = "127.0.0.1", port: int = 8000,
        allowed_hosts: Sequence[str] | None = None, workers: int = 1,
        access_log: bool = True) -> None:
    """Serve until interrupted: one process, or ``workers`` processes sharing the
    socket (each with :meth:`Limits.per_process` of ``limits``)."""
    limits = limits or Limits()
    if workers > 1:
        limits = limits.per_process(workers)
    config = ServiceConfig(limits, allowed_hosts, host=host, port=port, workers=workers,
                           access_log=access_log, log_level="info")
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            run_workers(config)
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)
