"""Load on the service: a bounded burst of analyse requests against ``convcalc serve``.

Starts ``convcalc serve --no-access-log`` in a second process on a free loopback port,
waits for its health check, sends ``--requests`` (default 2,000) ``POST /api/v1/analyse``
requests with ``--concurrency`` (default 32) in flight at once (httpx's async client, one
connection per slot), and prints throughput, p50/p90/p99/max latency and the failures
(any answer but 200 with the expected total; there must be none).  Every answer is
checked, not only its status.  Then it stops the server.

    python benchmarks/load_service.py [--requests 2000] [--concurrency 32]
        [--spec examples/vgg16.yaml] [--warmup 50]

Only loopback is ever contacted; the burst is bounded in count and by ``--deadline``
seconds (default 300), after which the remaining requests are not sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(port: int, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from convcalc.cli import main; main()", "serve",
         "--host", HOST, "--port", str(port), "--no-access-log"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"convcalc serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("convcalc serve did not become healthy")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def burst(url: str, body: bytes, expected_params: int, requests: int,
                concurrency: int, deadline: float) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    failures: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(requests):
        queue.put_nowait(number)
    # A connection idle in the pool for uvicorn's keep-alive timeout (5 s) is closed by
    # the server; httpx's default expiry is also 5 s, so a request can race that close
    # and fail with ReadError (seen here about one run in three).  Expire first.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                          keepalive_expiry=2.0)
    headers = {"Content-Type": "application/yaml"}
    stop_at = time.monotonic() + deadline

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def worker() -> None:
            while time.monotonic() < stop_at:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                try:
                    response = await client.post("/api/v1/analyse", content=body,
                                                 headers=headers)
                    ok = (response.status_code == 200
                          and response.json()["total_params"] == expected_params)
                    if not ok:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as error:
                    failures.append(f"{type(error).__name__}: {error!r} (cause "
                                    f"{error.__cause__!r})")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, failures, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--spec", type=Path, default=ROOT / "examples" / "vgg16.yaml")
    parser.add_argument("--warmup", type=int, default=50,
                        help="requests sent (one at a time) before the measured burst")
    parser.add_argument("--deadline", type=float, default=300.0,
                        help="seconds after which the remaining requests are not sent")
    args = parser.parse_args()

    import convcalc

    body = args.spec.read_bytes()
    expected = convcalc.analyze(convcalc.loads(body)).total_params
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = tempfile.TemporaryFile()
    server = start_server(port, log)
    try:
        wait_healthy(url, server)
        with httpx.Client(base_url=url) as client:
            for _ in range(args.warmup):
                client.post("/api/v1/analyse", content=body,
                            headers={"Content-Type": "application/yaml"})
        latencies, failures, elapsed = asyncio.run(
            burst(url, body, expected, args.requests, args.concurrency, args.deadline))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    latencies.sort()
    ms = [value * 1000 for value in latencies]
    print(f"convcalc serve: {len(latencies)} × POST /api/v1/analyse "
          f"({args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec}, "
          f"{len(body):,} bytes), concurrency {args.concurrency}")
    print(f"machine: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; client and server on this machine (loopback)")
    print(f"time {elapsed:.2f} s; throughput {len(latencies) / elapsed:.0f} requests/s")
    print(f"latency ms: p50 {percentile(ms, 0.50):.1f}, p90 {percentile(ms, 0.90):.1f}, "
          f"p99 {percentile(ms, 0.99):.1f}, max {ms[-1]:.1f}, mean {statistics.fmean(ms):.1f}")
    print(f"failures: {len(failures)}" + (f" (first: {failures[0]})" if failures else ""))
    if failures:   # what the server said, to tell a server error from a dropped connection
        log.seek(0)
        print("server log (last lines):")
        print("\n".join(log.read().decode(errors="replace").splitlines()[-20:]))
    not_sent = args.requests - len(latencies)
    if not_sent:
        print(f"not sent (deadline): {not_sent}")
    return 1 if failures or not_sent else 0


if __name__ == "__main__":
    sys.exit(main())
