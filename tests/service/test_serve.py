"""``convcalc serve`` as a real process, and the imports it must not cost anyone else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_serve_answers_over_http(live_server):
    health = httpx.get(live_server + "/api/v1/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    text = (ROOT / "examples" / "simple-convnet.yaml").read_bytes()
    report = httpx.post(live_server + "/api/v1/analyse", content=text, timeout=10,
                        headers={"Content-Type": "text/yaml"})
    assert report.status_code == 200 and report.json()["total_params"] == 433_890
    page = httpx.get(live_server + "/", timeout=10)
    assert page.status_code == 200 and "convcalc" in page.text


def test_serve_help_names_the_extra():
    done = subprocess.run([sys.executable, "-c", "from convcalc.cli import main; main()",
                           "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "--port" in done.stdout and "convcalc[service]" in done.stdout


def test_import_convcalc_imports_no_web_framework_nor_numpy():
    code = ("import sys, convcalc, convcalc.cli, convcalc.service\n"
            "heavy = ('fastapi', 'starlette', 'uvicorn', 'numpy', 'httpx')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_without_the_extra_says_how_to_install_it(tmp_path):
    """With FastAPI hidden, ``convcalc serve`` fails with one line naming the extra."""
    (tmp_path / "fastapi.py").write_text("raise ImportError('No module named fastapi')\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from convcalc.cli import main; main()\n" % str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code, "serve"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "pip install 'convcalc[service]'" in done.stderr


def test_package_data_ships_the_page():
    """The static files are package data (pyproject), so an installed wheel serves them."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"convcalc.service" = ["static/*"]' in text
    static = ROOT / "convcalc" / "service" / "static"
    assert {p.name for p in static.iterdir()} >= {"index.html", "app.js", "style.css"}


# --- the serve command's options --------------------------------------------------------------


def _serve_options(monkeypatch, *args: str):
    """What ``convcalc serve ARGS`` would run the server with (nothing is started)."""
    from click.testing import CliRunner

    import convcalc.service.server as server
    from convcalc.cli import main

    calls = []
    monkeypatch.setattr(server, "run", lambda **options: calls.append(options))
    result = CliRunner().invoke(main, ["serve", *args])
    return result, (calls[0] if calls else None)


@pytest.mark.parametrize("args, names", [
    ((), ("127.0.0.1", "localhost", "[::1]")),
    (("--host", "localhost"), ("127.0.0.1", "localhost", "[::1]")),
    (("--host", "::1"), ("127.0.0.1", "localhost", "[::1]")),
    (("--host", "192.168.1.5"), ("192.168.1.5",)),
    (("--host", "0.0.0.0", "--allowed-host", "calc.example", "--allowed-host", "10.0.0.2"),
     ("calc.example", "10.0.0.2")),
    (("--allowed-host", "calc.example"), ("calc.example",)),
])
def test_serve_answers_the_bound_names_or_the_allowed_hosts(monkeypatch, args, names):
    result, options = _serve_options(monkeypatch, *args)
    assert result.exit_code == 0, result.output
    assert options["allowed_hosts"] == names and options["workers"] == 1
    assert "warning" not in result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serve_on_every_interface_needs_allowed_hosts(monkeypatch, host):
    result, options = _serve_options(monkeypatch, "--host", host)
    assert result.exit_code == 2 and options is None
    assert (f"Error: --host {host} listens on every interface, so the names clients will "
            "use are unknown: give each with --allowed-host NAME (repeatable), or "
            "--allowed-host '*' to answer any Host (open to DNS rebinding)") in result.output


def test_serve_any_host_is_a_warning(monkeypatch):
    result, options = _serve_options(monkeypatch, "--host", "0.0.0.0", "--allowed-host", "*")
    assert result.exit_code == 0 and options["allowed_hosts"] == ("*",)
    assert ("warning: --allowed-host '*' answers any Host header: a web page elsewhere can "
            "reach this service through DNS rebinding") in result.output


def test_serve_workers_option(monkeypatch):
    result, options = _serve_options(monkeypatch, "--workers", "3")
    assert result.exit_code == 0 and options["workers"] == 3
    result, options = _serve_options(monkeypatch, "--workers", "0")
    assert result.exit_code == 2 and options is None


def test_serve_with_two_worker_processes(tmp_path, server_process):
    """``--workers 2``: uvicorn's supervisor and two server processes, each with its
    share of the verification slots, answering on one port."""
    server = server_process(tmp_path / "serve.log", ("--workers", "2"))
    try:
        text = (ROOT / "examples" / "simple-convnet.yaml").read_bytes()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            report = client.post("/api/v1/analyse", content=text,
                                 headers={"Content-Type": "text/yaml"})
            health = client.get("/api/v1/health").json()
        assert report.status_code == 200 and report.json()["total_params"] == 433_890
        assert health["limits"]["verify_workers"] == 1 and health["verify"]["workers"] == 1
        log = server.wait_for_log("Application startup complete.")
        deadline = time.monotonic() + 30
        while log.count("Application startup complete.") < 2:
            assert time.monotonic() < deadline, log
            time.sleep(0.1)
            log = server.log_text()
        assert "Started parent process" in log and log.count("Started server process") == 2
        _connections_are_spread(server)
    finally:
        server.stop()


def _sockets_of_children(pid: int) -> dict[int, int]:
    """Open sockets of each direct child process of ``pid`` (Linux's /proc)."""
    counts = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1]
                                            .split()[1]) == pid:
                counts[int(entry.name)] = sum(
                    1 for fd in (entry / "fd").iterdir()
                    if os.readlink(fd).startswith("socket:"))
        except OSError:   # gone meanwhile
            continue
    return counts


def _connections_are_spread(server) -> None:
    """32 connections opened at once reach both worker processes (each has its own
    SO_REUSEPORT socket; with one shared socket the first to wake took them all)."""
    before = _sockets_of_children(server.process.pid)
    connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(32)]
    try:
        deadline = time.monotonic() + 10     # accepted as the workers get to them
        while True:
            time.sleep(0.2)
            after = _sockets_of_children(server.process.pid)
            taken = sorted(after[pid] - before.get(pid, 0) for pid in after)
            if sum(taken) >= 32 or time.monotonic() > deadline:
                break
    finally:
        for connection in connections:
            connection.close()
    assert sum(taken) == 32 and taken[-2] >= 4, taken
