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


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """``convcalc serve`` in a second process on a free loopback port; its base URL."""
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from convcalc.cli import main; main()", "serve",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"convcalc serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
