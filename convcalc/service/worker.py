"""Verifications run in worker processes that can be killed.

A thread cannot be stopped in Python (and NumPy's loops do not look for a flag), and a
process pool's ``future.result(timeout=...)`` only stops *waiting*: the work goes on.
So each verification runs in a process of its own kind — a warm worker that has already
imported NumPy and the engine — and a verification that overruns its time is stopped
by killing that process; the next request gets a new worker.

- :class:`VerifyPool` holds at most ``size`` workers; :meth:`VerifyPool.reserve` takes
  a slot without waiting (:class:`Busy` when all are taken), :meth:`VerifyPool.run`
  (blocking: call it from a thread) runs one job in the slot and frees it, and
  :meth:`VerifyPool.cancel` (from any thread: when the client has left) kills the
  slot's worker at once, so ``run`` returns (:class:`Cancelled`) and frees the slot.
- A worker limits its own address space (``RLIMIT_AS``) to its size after start-up plus
  the memory budget, and runs NumPy's BLAS on one thread (one verification per core).
- Processes are started with ``spawn``: forking a server that has threads is unsafe.

Pure Python: NumPy is imported only in the workers.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.connection import Connection

#: Seconds a new worker may take to import NumPy and the engine.
START_TIMEOUT = 60.0
#: Address space a worker may map beyond its start-up size and 1.5 × the memory budget.
ADDRESS_SPACE_MARGIN = 256 << 20


class Busy(Exception):
    """Every worker slot is taken."""


class Timeout(Exception):
    """The job overran its time; its worker was killed."""


class WorkerDied(Exception):
    """The worker process ended without answering (killed from outside, or crashed)."""


class Cancelled(Exception):
    """The job was cancelled (:meth:`VerifyPool.cancel`); its worker was killed."""


@dataclass(frozen=True)
class Job:
    """One verification: the spec text as sent, and the options of ``convcalc verify``."""

    text: bytes
    filename: str
    batch: int
    seed: int
    #: False, True (= "directions") or "entries", as :func:`convcalc.verify` takes it
    gradcheck: bool | str
    max_memory: int
    #: the service's layer limit, applied while the spec expands
    max_layers: int = 10_000


def _address_space() -> int | None:
    """This process's mapped size in bytes (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _limit_address_space(budget: int) -> int | None:
    """Cap RLIMIT_AS at the current size + 1.5 × budget + margin; return the cap."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    current = _address_space()
    if current is None:
        return None
    cap = current + budget * 3 // 2 + ADDRESS_SPACE_MARGIN
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        return None
    return cap


def run_job(job: Job) -> tuple[str, Any]:
    """Run one job here; ``("ok", json_text)`` or ``("error", {"error", "detail",
    "problems"})`` for a ConvCalcError (the same diagnostics the CLI prints)."""
    from ..errors import ConvCalcError
    from ..loading import loads
    from ..render import render_verification_json
    from ..verification import verify

    try:
        result = verify(loads(job.text, filename=job.filename, max_layers=job.max_layers),
                        batch=job.batch,
                        seed=job.seed, gradcheck=job.gradcheck, max_memory=job.max_memory)
    except ConvCalcError as error:
        diagnostics = getattr(error, "diagnostics", None)
        problems = [d.to_dict() for d in diagnostics] if diagnostics else [
            {"layer": None, "severity": "error", "message": str(error), "field": None,
             "line": None}]
        return "error", {"error": type(error).__name__, "detail": str(error),
                         "problems": problems}
    return "ok", render_verification_json(result)


def serve_jobs(conn: Any, budget: int) -> None:
    """A worker's main loop: warm up, say ready, then answer jobs until the pipe closes."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    import numpy  # noqa: F401  (warm: the first job should not pay for the imports)

    import engine  # noqa: F401

    from .. import verification  # noqa: F401

    cap = _limit_address_space(budget)
    conn.send(("ready", {"pid": os.getpid(), "address_space_limit": cap}))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = run_job(job)
        except MemoryError:
            answer = ("error", {"error": "MemoryError", "detail":
                                "the verification ran out of its memory budget",
                                "problems": []})
        conn.send(answer)


class Worker:
    """One worker process and the pipe to it."""

    conn: Connection[Job, tuple[str, Any]]   # jobs out, (kind, answer) back

    def __init__(self, budget: int):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve_jobs, args=(child, budget),
                                       name="convcalc-verify", daemon=True)
        self.process.start()
        child.close()
        self.info: dict[str, Any] = {}
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(START_TIMEOUT):
            self.kill()
            raise WorkerDied(f"the verification worker did not start within {START_TIMEOUT:g} s")
        try:
            kind, self.info = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise WorkerDied("the verification worker failed to start") from None
        self.ready = kind == "ready"

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def run(self, job: Job, timeout: float) -> tuple[str, Any]:
        self.wait_ready()
        try:
            self.conn.send(job)
            if not self.conn.poll(timeout):
                raise Timeout()
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise WorkerDied("the verification worker ended without an answer "
                             f"(exit code {self.process.exitcode})") from None

    def kill(self) -> None:
        """Stop the process now (SIGKILL: NumPy does not look for signals) and reap it."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.conn.close()


class Slot:
    """A reserved place in the pool: the right to run one job, and the worker running
    it (so that :meth:`VerifyPool.cancel` can stop it)."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.cancelled = False


class VerifyPool:
    """At most ``size`` worker processes, each running one verification at a time."""

    def __init__(self, size: int, timeout: float, budget: int):
        self.size, self.timeout, self.budget = size, timeout, budget
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._reserved = 0
        self._closed = False
        #: counters for the health check and the tests
        self.stats = {"jobs": 0, "timeouts": 0, "cancelled": 0, "workers_started": 0,
                      "workers_killed": 0, "busy_refusals": 0}

    @property
    def busy(self) -> int:
        return self._reserved

    def reserve(self) -> Slot:
        """Take a slot now, or raise :class:`Busy`."""
        with self._lock:
            if self._closed or self._reserved >= self.size:
                self.stats["busy_refusals"] += 1
                raise Busy()
            self._reserved += 1
        return Slot()

    def _take_worker(self) -> Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
            self.stats["workers_started"] += 1
        return Worker(self.budget)

    def run(self, slot: Slot, job: Job) -> tuple[str, Any]:
        """Run ``job`` in the reserved ``slot`` (blocking), then free the slot.

        Raises :class:`Timeout` (the worker was killed), :class:`Cancelled` (it was
        killed by :meth:`cancel`) or :class:`WorkerDied`.
        """
        worker: Worker | None = None
        healthy = False
        try:
            worker = self._take_worker()
            self._attach(slot, worker)
            worker.wait_ready()
            answer = worker.run(job, self.timeout)
            healthy = True
            return answer
        except Timeout:
            with self._lock:
                self.stats["timeouts"] += 1
            raise
        except WorkerDied:
            if slot.cancelled:
                raise Cancelled() from None
            raise
        finally:
            self._release(slot, worker, healthy)

    def _attach(self, slot: Slot, worker: Worker) -> None:
        """Record the slot's worker, or stop here if the slot was cancelled already."""
        with self._lock:
            slot.worker = worker
            if slot.cancelled:
                raise Cancelled()

    def _release(self, slot: Slot, worker: Worker | None, healthy: bool) -> None:
        """Free the slot; keep a healthy worker for the next job, kill any other."""
        with self._lock:
            self.stats["jobs"] += 1
            self._reserved -= 1
            slot.worker = None
            if slot.cancelled:
                self.stats["cancelled"] += 1
            keep = healthy and not slot.cancelled and not self._closed and worker is not None
            if keep:
                self._idle.append(worker)  # type: ignore[arg-type]
            elif worker is not None:
                self.stats["workers_killed"] += 1
        if worker is not None and not keep:
            worker.kill()

    def cancel(self, slot: Slot) -> None:
        """Stop the slot's job now: its worker process is killed (SIGKILL), so the
        thread in :meth:`run` returns at once with :class:`Cancelled` and frees the
        slot.  Before the job has a worker, :meth:`run` stops as soon as it gets one."""
        with self._lock:
            slot.cancelled = True
            worker = slot.worker
        if worker is not None and worker.alive():
            worker.process.kill()

    def warm(self) -> None:
        """Start one worker ahead of the first request (in the background)."""
        def start() -> None:
            with self._lock:
                if self._closed or self._idle:
                    return
                self.stats["workers_started"] += 1
            worker = Worker(self.budget)
            try:
                worker.wait_ready()
            except WorkerDied:
                return
            with self._lock:
                if self._closed:
                    worker.kill()
                else:
                    self._idle.append(worker)

        threading.Thread(target=start, name="convcalc-verify-warm", daemon=True).start()

    def open(self) -> None:
        """Take jobs again after :meth:`close` (an app's lifespan can start again)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        """Kill every idle worker; running jobs end with their request."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"workers": self.size, "busy": self._reserved, "idle": len(self._idle),
                    "timeout_seconds": self.timeout, **self.stats}
