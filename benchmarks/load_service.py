"""Load on the service: a bounded burst of analyse requests against ``convcalc serve``.

Starts ``convcalc serve --no-access-log [--workers N]`` in a second process on a free
loopback port, waits until every server process has started, warms it up, sends
``--requests`` (default 2,000) ``POST /api/v1/analyse`` requests with ``--concurrency``
(default 32) in flight at once (one keep-alive connection per slot, on asyncio's
streams: a lean client, so that on a small machine the server is what is measured), and
prints throughput, p50/p90/p99/max latency and the failures (any answer but 200 with the
expected total; there must be none).  Every answer is checked, not only its status.
Then it stops the server.

``--compare N`` runs the single-process server and then the ``--workers N`` server in
the same run and prints them side by side, with each throughput as a ratio of the
single-process one.  The machine line gives NumPy's float32 matmul rate, to place the
figures on this machine.

    python benchmarks/load_service.py [--requests 2000] [--concurrency 32]
        [--spec examples/vgg16.yaml] [--warmup 100]
        [--workers N | --compare N [--rounds R]]

Only loopback is ever contacted; each burst is bounded in count and by ``--deadline``
seconds (default 300), after which the remaining requests are not sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
YAML = {"Content-Type": "application/yaml"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """NumPy's float32 ``size × size`` matmul rate (its default threads), best of
    ``repeats``, in GFLOP/s."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def start_server(port: int, workers: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    more = ["--workers", str(workers)] if workers > 1 else []
    return subprocess.Popen(
        [sys.executable, "-c", "from convcalc.cli import main; main()", "serve",
         "--host", HOST, "--port", str(port), "--no-access-log", *more],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def log_text(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def wait_started(url: str, process: subprocess.Popen[bytes], workers: int, log: IO[bytes],
                 seconds: float = 60) -> None:
    """Until the health check answers and every server process has started its app."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"convcalc serve exited with {process.returncode}:\n"
                             f"{log_text(log)}")
        try:
            healthy = httpx.get(url + "/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and log_text(log).count("Application startup complete.") >= workers:
            return
        time.sleep(0.1)
    raise SystemExit("convcalc serve did not start")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


@dataclass
class Burst:
    """What one burst measured."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    requests: int = 0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def ms(self, fraction: float) -> float:
        values = sorted(self.latencies)
        return percentile(values, fraction) * 1000 if values else float("nan")


class Connection:
    """One keep-alive HTTP/1.1 connection to the server, sending one prepared request
    at a time.  Lean on purpose: httpx's client costs ~3 ms of CPU a request, as much
    as the server's work, and on a small machine the client would be what is measured."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Status and body of the answer to ``request`` (reconnecting if needed)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:-2])
            headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
            body = await self.reader.readexactly(int(headers[b"content-length"]))
        except BaseException:
            await self.close()
            raise
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return int(head[9:12]), body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


def analyse_request(body: bytes) -> bytes:
    """The bytes of one ``POST /api/v1/analyse`` of ``body``."""
    return (f"POST /api/v1/analyse HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/yaml\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("ascii") + body


async def burst(port: int, body: bytes, expected_params: int, requests: int,
                concurrency: int, deadline: float) -> Burst:
    """``requests`` analyses, ``concurrency`` at a time (one connection each); every
    answer checked: 200 and the expected total."""
    result = Burst(requests=requests)
    remaining = [requests]
    request = analyse_request(body)
    stop_at = time.monotonic() + deadline

    async def worker() -> None:
        connection = Connection(port)
        try:
            while remaining[0] > 0 and time.monotonic() < stop_at:
                remaining[0] -= 1
                started = time.perf_counter()
                try:
                    status, answer = await connection.send(request)
                    if status != 200 or json.loads(answer)["total_params"] != expected_params:
                        result.failures.append(f"{status}: {answer[:200]!r}")
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ValueError, KeyError) as error:
                    result.failures.append(f"{type(error).__name__}: {error!r}")
                result.latencies.append(time.perf_counter() - started)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


def measure(workers: int, body: bytes, expected: int, args: argparse.Namespace) -> Burst:
    """One server (``workers`` processes): warm-up, then the measured burst."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    with tempfile.TemporaryFile() as log:
        server = start_server(port, workers, log)
        try:
            wait_started(url, server, workers, log)
            asyncio.run(burst(port, body, expected, args.warmup, args.concurrency,
                              args.deadline))
            result = asyncio.run(burst(port, body, expected, args.requests, args.concurrency,
                                       args.deadline))
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if result.failures:   # what the server said: a server error or a dropped connection
            print(f"server log ({workers} worker(s), last lines):")
            print("\n".join(log_text(log).splitlines()[-20:]))
    return result


def label(workers: int, round_: int, rounds: int) -> str:
    name = "1 process" if workers == 1 else f"{workers} workers"
    return f"{name}, round {round_}" if rounds > 1 else name


def report(results: list[tuple[str, Burst]]) -> None:
    """The figures of each server side by side; each throughput as a ratio of the
    single-process one measured just before it (the first row of its round)."""
    width = max(len(name) for name, _ in results)
    print(f"{'server':<{width}} {'requests/s':>10} {'ratio':>7} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'mean ms':>8} {'failures':>8}")
    base = results[0][1].throughput
    for name, result in results:
        if name.startswith("1 process"):
            base = result.throughput
        ms = sorted(value * 1000 for value in result.latencies)
        print(f"{name:<{width}} {result.throughput:>10.1f} "
              f"{result.throughput / base:>6.2f}× {result.ms(0.50):>8.1f} "
              f"{result.ms(0.90):>8.1f} {result.ms(0.99):>8.1f} {ms[-1]:>8.1f} "
              f"{statistics.fmean(ms):>8.1f} {len(result.failures):>8}")
    for name, result in results:
        if result.failures:
            print(f"{name}: first failure: {result.failures[0]}")
        not_sent = result.requests - len(result.latencies)
        if not_sent:
            print(f"{name}: not sent (deadline): {not_sent}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--spec", type=Path, default=ROOT / "examples" / "vgg16.yaml")
    parser.add_argument("--warmup", type=int, default=100,
                        help="requests sent (at the same concurrency) before each burst")
    parser.add_argument("--deadline", type=float, default=300.0,
                        help="seconds after which the remaining requests are not sent")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--workers", type=int, default=1,
                       help="server processes (convcalc serve --workers N)")
    which.add_argument("--compare", type=int, metavar="N",
                       help="run 1 process, then N workers, and compare them")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --compare: measure the pair this many times, "
                             "alternating (a busy machine drifts)")
    args = parser.parse_args(argv)

    import convcalc

    body = args.spec.read_bytes()
    expected = convcalc.analyze(convcalc.loads(body)).total_params
    spec = args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec
    print(f"convcalc serve: {args.requests} × POST /api/v1/analyse ({spec}, "
          f"{len(body):,} bytes), concurrency {args.concurrency}")
    print(f"machine: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, NumPy float32 matmul {matmul_gflops():.0f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.2f}; client and server on this machine "
          "(loopback)")
    sides = [1, args.compare] if args.compare else [args.workers]
    rounds = args.rounds if args.compare else 1
    results = [(label(workers, round_, rounds), measure(workers, body, expected, args))
               for round_ in range(1, rounds + 1) for workers in sides]
    report(results)
    bad = any(r.failures or r.requests != len(r.latencies) for _, r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
