"""The service's limits: what one request may ask for, so that no request hurts others.

Pure Python (no FastAPI): the numbers are documented in ``docs/service.rst`` and can be
changed by passing a :class:`Limits` to :func:`convcalc.service.create_app`.

>>> limits = Limits()
>>> limits.max_body_bytes == 1 << 20, limits.max_layers, limits.verify_workers
(True, 2000, 2)
>>> Limits(verify_timeout=0)
Traceback (most recent call last):
...
ValueError: verify_timeout must be > 0 (got 0)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..loading import MAX_SPEC_BYTES
from ..verification import DEFAULT_MAX_MEMORY


@dataclass(frozen=True)
class Limits:
    """Every limit of one service instance.

    - ``max_body_bytes``: a request body larger than this is refused (413) before it is
      parsed; the same 1 MiB the CLI reads from a file.
    - ``max_layers``: a spec that expands (blocks, ``repeat``) to more layers is refused
      (422).  Analysis costs about 0.15 ms a layer, so this bounds a request to ~0.3 s.
    - ``large_body_bytes`` / ``large_parses``: bodies above this size are parsed at most
      ``large_parses`` at a time (a 1 MiB YAML takes seconds of pure-Python parsing; a
      second one meanwhile is answered 503 instead of queueing up).
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
    """

    max_body_bytes: int = MAX_SPEC_BYTES
    max_layers: int = 2000
    large_body_bytes: int = 64 * 1024
    large_parses: int = 1
    verify_max_memory: int = DEFAULT_MAX_MEMORY
    verify_timeout: float = 60.0
    verify_workers: int = 2
    max_batch: int = 64

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value <= 0:
                raise ValueError(f"{item.name} must be > 0 (got {value})")

    def to_dict(self) -> dict[str, float]:
        """The limits as the health check reports them."""
        return {item.name: getattr(self, item.name) for item in fields(self)}
