"""Fixtures of the service tests: apps with their limits, and a real server process.

Everything here needs the ``service`` extra (FastAPI, uvicorn) and httpx: where they are
missing, the folder is not collected (the README's test command installs them).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if not all(importlib.util.find_spec(name) for name in ("fastapi", "uvicorn", "httpx")):
    collect_ignore_glob = ["test_*.py"]



def pytest_configure(config: pytest.Config) -> None:
    # Starlette ≥ 1.0 prefers the httpx2 package for its TestClient and warns when it
    # falls back on httpx, which works the same for these tests.
    config.addinivalue_line(
        "filterwarnings", "ignore:Using `httpx` with `starlette.testclient` is deprecated")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
YAML = {"Content-Type": "application/yaml"}


def client_for(limits: Any = None) -> Any:
    """A TestClient of a new app (use it in a ``with``: that runs start-up and shutdown,
    which stops the app's worker processes)."""
    from fastapi.testclient import TestClient

    from convcalc.service.app import create_app

    return TestClient(create_app(limits, warm=False), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def make_client() -> Any:
    """``make_client(Limits(...))``: a TestClient of a new app with those limits."""
    return client_for


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One app with the default limits for a whole test module."""
    with client_for() as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process on a loopback port: its base URL, port and log file."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path):
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, seconds: float = 10) -> str:
        """The log once it holds ``text`` (failing after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while text not in self.log_text():
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not log {text!r}:\n{self.log_text()}")
            time.sleep(0.05)
        return self.log_text()

    def health(self) -> dict[str, Any]:
        import httpx

        return httpx.get(self.url + "/api/v1/health", timeout=10).json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(log: Path, args: tuple[str, ...] = (), *, code: str | None = None) -> Server:
    """``convcalc serve --host 127.0.0.1 --port P --no-access-log ARGS`` in a second
    process, or ``code`` (Python, with ``PORT`` replaced by the port); once healthy."""
    import httpx

    port = free_port()
    command = ([sys.executable, "-c", code.replace("PORT", str(port))] if code else
               [sys.executable, "-c", "from convcalc.cli import main; main()", "serve",
                "--host", "127.0.0.1", "--port", str(port), "--no-access-log", *args])
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ})
    server = Server(process, port, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(server.url + "/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"the server did not start:\n{server.log_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Server]:
    """``convcalc serve`` with its defaults, for the whole session."""
    server = start_server(tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_server(served: Server) -> str:
    """The base URL of :func:`served`."""
    return served.url


@pytest.fixture(scope="session")
def server_process() -> Any:
    """``server_process(log_path, args=(), code=None)``: :func:`start_server`; stop the
    :class:`Server` it returns when done."""
    return start_server
