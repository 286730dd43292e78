"""The service's limits: what one request or connection may ask for, so that no client
hurts the others.

Pure Python (no FastAPI): the numbers are documented in ``docs/service.rst`` and can be
changed by passing a :class:`Limits` to :func:`convcalc.service.create_app` (the
request limits) or :func:`convcalc.service.server.run` (all of them).

>>> limits = Limits()
>>> limits.max_body_bytes == 1 << 20, limits.max_layers, limits.verify_workers
(True, 2000, 2)
>>> limits.keep_alive_timeout, limits.header_timeout, limits.body_timeout
(5.0, 10.0, 20.0)
>>> Limits(verify_timeout=0)
Traceback (most recent call last):
...
ValueError: verify_timeout must be > 0 (got 0)
>>> Limits().per_process(2).verify_workers, Limits().per_process(3).verify_workers
(1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..loading import MAX_SPEC_BYTES
from ..verification import DEFAULT_MAX_MEMORY


@dataclass(frozen=True)
class Limits:
    """Every limit of one service instance.

    What one request may ask for (applied by the app, whatever server runs it):

    - ``max_body_bytes``: a request body larger than this is refused (413) before it is
      parsed; the same 1 MiB the CLI reads from a file.
    - ``max_layers``: a spec that expands (blocks, ``repeat``) to more layers is refused
      (422).  Analysis costs about 0.15 ms a layer, so this bounds a request to ~0.3 s.
    - ``large_body_bytes`` / ``large_parses``: bodies above this size are parsed at most
      ``large_parses`` at a time (a 1 MiB YAML takes seconds of pure-Python parsing; a
      second one meanwhile is answered 503 instead of queueing up).
    - ``body_timeout``: seconds the whole body may take to arrive once the app starts
      reading it; then 408 and the connection is closed.
    - ``verify_max_memory``: the ceiling of a verification's estimated peak memory
      (:func:`convcalc.verify`'s estimate; above it: 422 with the estimate and the
      largest batch that fits).  The worker process also gets an address-space limit
      of its start-up size + 1.5 × this + 256 MiB, so an estimate that is wrong fails
      that run with a MemoryError instead of swapping the machine.  The default is the
      CLI's (2 GiB: VGG-16 fits at batch 1).
    - ``verify_timeout``: seconds a verification may run; then its worker process is
      killed (504) and a new one started for the next request.
    - ``verify_workers``: verifications running at once (one process each); another
      request meanwhile is answered 503 with ``Retry-After``.
    - ``max_batch``: the largest ``batch`` a verification may ask for.
    - ``draw_timeout``: seconds Graphviz's ``dot`` may run for one drawing; then it is
      killed (504).
    - ``draw_workers``: drawings running at once (one ``dot`` process each); another
      request meanwhile is answered 503 with ``Retry-After``.

    What one connection may hold (applied by ``convcalc serve``'s server,
    :mod:`convcalc.service.server`):

    - ``keep_alive_timeout``: seconds a connection may stay silent — before its first
      request or between two — before it is closed (uvicorn's ``timeout_keep_alive``).
    - ``header_timeout``: seconds from a request's first byte to the end of its headers;
      then 408 and the connection is closed.
    - ``max_header_bytes``: the request line and headers together (h11's limit); more is
      431 and the connection is closed.
    - ``max_connections``: connections one server process serves at once; a request on
      one more is answered 503 (``Retry-After``) and its connection closed.
    - ``shutdown_timeout``: seconds a stopping server waits for running requests.
    """

    max_body_bytes: int = MAX_SPEC_BYTES
    max_layers: int = 2000
    large_body_bytes: int = 64 * 1024
    large_parses: int = 1
    body_timeout: float = 20.0
    verify_max_memory: int = DEFAULT_MAX_MEMORY
    verify_timeout: float = 60.0
    verify_workers: int = 2
    max_batch: int = 64
    draw_timeout: float = 20.0
    draw_workers: int = 2
    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_connections: int = 100
    shutdown_timeout: float = 10.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value <= 0:
                raise ValueError(f"{item.name} must be > 0 (got {value})")

    def to_dict(self) -> dict[str, float]:
        """The limits as the health check reports them."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def per_process(self, processes: int) -> Limits:
        """The limits of one of ``processes`` server processes: the verification slots
        shared out (at least one each), so the machine runs about ``verify_workers``
        verifications at once however many processes serve."""
        return replace(self, verify_workers=max(1, self.verify_workers // processes))
