"""The Host allow-list: a request whose ``Host`` header names another host is refused.

A page on another site cannot read this service's answers (no CORS), unless its
address is made to resolve to the service's (DNS rebinding): then the browser sends the
other site's name as ``Host``.  Answering only the service's own names stops that.

>>> host_name("LocalHost:8000"), host_name("[::1]:80"), host_name("::1")
('localhost', '[::1]', '[::1]')
>>> default_allowed_hosts("127.0.0.1"), default_allowed_hosts("192.168.1.5")
(('127.0.0.1', 'localhost', '[::1]'), ('192.168.1.5',))
>>> default_allowed_hosts("0.0.0.0") is None
True
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import problem_response

#: The names of this machine's loopback interface, any of which a local client may use.
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
#: Bind addresses that listen on every interface: no name to derive an allow-list from.
EVERY_INTERFACE = ("0.0.0.0", "[::]", "")
#: In an allow-list: accept any ``Host``.
ANY = "*"


def host_name(value: str) -> str:
    """A ``Host`` header's (or a ``--host``'s) host name: lower case, without the port
    or a final dot, an IPv6 address in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[:end + 1] if end > 0 else value
    if value.count(":") > 1:  # a bare IPv6 address (as --host takes it)
        return f"[{value}]"
    return value.partition(":")[0].rstrip(".")


def default_allowed_hosts(bind: str) -> tuple[str, ...] | None:
    """The names a server bound to ``bind`` answers to: the loopback names for a
    loopback address, the address itself otherwise; None for every interface (the
    names clients use cannot be known: ``--allowed-host`` must say)."""
    name = host_name(bind)
    if name in EVERY_INTERFACE:
        return None
    if name in LOOPBACK:
        return LOOPBACK
    return (name,)


class HostAllowList:
    """ASGI middleware: a request whose ``Host`` is not in ``allowed`` (names, or
    :data:`ANY`) is answered 400 (``host-not-allowed``) before anything else runs."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]):
        self.app = app
        names = [host_name(name) if name != ANY else ANY for name in allowed]
        self.names = tuple(dict.fromkeys(names))  # in the order given, for the message
        self.allowed = frozenset(self.names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ANY not in self.allowed:
            header = dict(scope["headers"]).get(b"host")
            host = header.decode("latin-1") if header is not None else None
            if host is None or host_name(host) not in self.allowed:
                await self._refuse(host)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refuse(self, host: str | None) -> ASGIApp:
        names = ", ".join(self.names)
        said = f"Host {host!r} is" if host is not None else "a request without Host is"
        return problem_response(
            400, "host-not-allowed", "Host not allowed",
            f"{said} not answered here: this service answers to {names} (a page from "
            "another site must not reach it under its own name; to add a name, start "
            "the service with --allowed-host NAME)")
