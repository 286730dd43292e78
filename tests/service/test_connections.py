"""The service on real sockets: what a slow, departing, misdirected or faulty client
gets, against server processes on 127.0.0.1.

- ``served`` — ``convcalc serve`` with its defaults (the CLI's Host allow-list);
- ``strict`` — the same server with one-second read timeouts, one verification worker
  and a fault planted in analyse (a body starting ``# fail`` raises), to see the
  deadlines and a 500 without waiting long.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from convcalc.service.problems import PROBLEM_BASE

YAML = {"Content-Type": "application/yaml"}
SMALL = b"input: [1, 12, 12]\nlayers:\n  - {type: conv, filters: 4, kernel: 3}\n"
STRIDE_ZERO = b"input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 0}\n"
#: About 5 s of engine work at batch 1 (estimate ~1 GiB, under the 2 GiB ceiling).
HEAVY = b"input: [1024, 64, 64]\nlayers:\n  - {type: conv, filters: 1024, kernel: 1, repeat: 16}\n"
#: The strict server's read timeouts (keep-alive, headers, body), in seconds.
TIMEOUT = 1.0
STRICT = f"""
import convcalc.service.routes as routes
real = routes.analyse_text
def analyse_text(body, limits, *memory):
    if body.startswith(b"# fail"):
        raise RuntimeError("a fault of the service, planted by the test")
    return real(body, limits, *memory)
routes.analyse_text = analyse_text
from convcalc.service.limits import Limits
from convcalc.service.server import run
run(Limits(keep_alive_timeout={TIMEOUT}, header_timeout={TIMEOUT}, body_timeout={TIMEOUT},
           verify_workers=1),
    host="127.0.0.1", port=PORT, allowed_hosts=["127.0.0.1"], access_log=False)
"""


@pytest.fixture(scope="module")
def strict(tmp_path_factory, server_process) -> Iterator[Any]:
    server = server_process(tmp_path_factory.mktemp("strict") / "serve.log", code=STRICT)
    try:
        yield server
    finally:
        server.stop()


def connect(server: Any) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def head(method: str, path: str, length: int | None = None, host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/yaml"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def trickle(sock: socket.socket, chunks: list[bytes], every: float) -> tuple[bytes, float]:
    """Send ``chunks`` one every ``every`` seconds, reading meanwhile; stop when the
    server closes.  What it answered and when it closed (None: it never did)."""
    answer = b""
    sock.settimeout(every)
    for chunk in chunks + [b""] * 3:
        try:
            if chunk:
                sock.sendall(chunk)
            while data := sock.recv(65536):
                answer += data
            return answer, time.monotonic()
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return answer, time.monotonic()
    return answer, None  # type: ignore[return-value]


def read_to_close(sock: socket.socket, seconds: float) -> tuple[bytes, float | None]:
    """Everything until the server closes (within ``seconds``), and when it closed."""
    return trickle(sock, [], seconds / 3)


def parse(answer: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of one HTTP/1.1 answer."""
    top, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines)}
    return int(status_line.split()[1]), headers, json.loads(body[:int(headers["content-length"])])


def assert_closed_with(answer: bytes, status: int, kind: str) -> dict:
    code, headers, body = parse(answer)
    assert (code, body["status"], body["type"]) == (status, status, PROBLEM_BASE + kind)
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    return body


# --- read timeouts --------------------------------------------------------------------------------


def test_a_silent_connection_is_closed_after_the_keep_alive_timeout(strict):
    with connect(strict) as sock:
        opened = time.monotonic()
        answer, closed = read_to_close(sock, 3 * TIMEOUT)
    assert closed is not None, "the server kept a silent connection open"
    assert answer == b"" and TIMEOUT - 0.1 < closed - opened < TIMEOUT + 0.9


def test_headers_sent_slowly_are_cut_off_after_the_header_timeout(strict):
    """One header line every 0.2 s: each byte resets a keep-alive timer, not this one."""
    with connect(strict) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        answer, closed = trickle(sock, [b"X-Slow: 1\r\n"] * 20, 0.2)
    assert closed is not None, "the server waited for the headers for ever"
    body = assert_closed_with(answer, 408, "header-timeout")
    assert body["detail"] == ("the request line and headers did not arrive within 1 s of "
                              "their first byte; the connection is closed")
    assert TIMEOUT - 0.1 < closed - started < TIMEOUT + 0.9


def test_a_body_sent_slowly_is_cut_off_after_the_body_timeout(strict):
    with connect(strict) as sock:
        sock.sendall(head("POST", "/api/v1/analyse", 1000))
        started = time.monotonic()
        answer, closed = trickle(sock, [b"# slow\n"] * 20, 0.2)
    assert closed is not None, "the server waited for the body for ever"
    body = assert_closed_with(answer, 408, "body-timeout")
    assert re.fullmatch(r"the body did not arrive within 1 s \(got \d+ of 1000 bytes\); "
                        r"the connection is closed", body["detail"]), body["detail"]
    assert TIMEOUT - 0.1 < closed - started < TIMEOUT + 0.9


def test_a_body_nothing_reads_is_cut_off_a_second_after_the_body_timeout(strict):
    """405 is answered on the headers; the connection is closed once the body is late."""
    with connect(strict) as sock:
        sock.sendall(head("POST", "/api/v1/health", 1000))
        started = time.monotonic()
        answer, closed = trickle(sock, [b"# slow\n"] * 25, 0.2)
    assert closed is not None, "the server drained the unread body for ever"
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert TIMEOUT + 0.9 < closed - started < TIMEOUT + 1.9


# --- disconnects ----------------------------------------------------------------------------------


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_verify_whose_client_leaves_frees_its_slot_at_once(strict):
    """The only worker runs ~5 s of work; its client leaves after 0.3 s: the worker is
    killed, so a verification right after is run, not refused 503."""
    _wait(lambda: strict.health()["verify"]["idle"] == 1, 30, "the warm worker")
    with connect(strict) as sock:
        sock.sendall(head("POST", "/api/v1/verify?batch=1", len(HEAVY)) + HEAVY)
        _wait(lambda: strict.health()["verify"]["busy"] == 1, 10, "the verification")
        time.sleep(0.3)
    _wait(lambda: strict.health()["verify"]["busy"] == 0, 1.0, "the slot to be freed")
    again = httpx.post(strict.url + "/api/v1/verify?batch=1", content=SMALL, headers=YAML,
                       timeout=60)
    assert again.status_code == 200, again.text
    assert again.json()["ok"]
    verify = strict.health()["verify"]
    assert (verify["cancelled"], verify["workers_killed"], verify["busy"]) == (1, 1, 0)
    log = strict.wait_for_log("disconnected during its verification")
    assert re.search(r"INFO: +127\.0\.0\.1:\d+ disconnected during its verification, which "
                     r"was stopped \(its worker process killed, its slot freed\)\n", log)


def test_an_aborted_upload_logs_one_line_and_no_traceback(served):
    with connect(served) as sock:
        sock.sendall(head("POST", "/api/v1/analyse", 1000) + b"# 11 bytes\n")
        time.sleep(0.3)
    log = served.wait_for_log("disconnected while sending its body")
    assert re.search(r"INFO: +127\.0\.0\.1:\d+ disconnected while sending its body "
                     r"\(11 bytes received\)\n", log), log
    assert "Traceback" not in log and "ERROR" not in log and log.count("disconnected") == 1


# --- keep-alive after errors ----------------------------------------------------------------------


def _local_address(response: httpx.Response) -> tuple[str, int]:
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_keep_alive_holds_after_a_4xx_and_after_a_500(strict):
    with httpx.Client(base_url=strict.url, timeout=10) as client:
        answers = [client.post("/api/v1/analyse", content=STRIDE_ZERO, headers=YAML),
                   client.get("/api/v1/nothing"),
                   client.post("/api/v1/analyse", content=b"# fail\n", headers=YAML),
                   client.get("/api/v1/health")]
        addresses = {_local_address(a) for a in answers}
    assert [a.status_code for a in answers] == [422, 404, 500, 200]
    assert len(addresses) == 1, "a new connection was needed"
    assert all("connection" not in a.headers for a in answers)
    assert answers[2].json() == {"type": PROBLEM_BASE + "internal-error",
                                 "title": "Internal error", "status": 500,
                                 "detail": "the service failed: RuntimeError", "problems": []}
    log = strict.wait_for_log("RuntimeError: a fault of the service")
    # a server fault: its traceback logged once (by the service, not again by uvicorn)
    assert log.count("Traceback") == 1 and "ERROR:    POST /api/v1/analyse failed\n" in log
    assert "Exception in ASGI application" not in log


# --- Host allow-list ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}",
                                  "LocalHost", "localhost."])
def test_the_bound_host_names_are_answered(served, host):
    response = httpx.get(served.url + "/api/v1/health", timeout=10,
                         headers={"Host": host.format(port=served.port)})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.evil.example",
                                  "localhost.evil.example:{port}", "10.0.0.1"])
@pytest.mark.parametrize("path", ["/api/v1/health", "/", "/api/v1/nothing"])
def test_other_host_names_are_400(served, host, path):
    host = host.format(port=served.port)
    response = httpx.get(served.url + path, headers={"Host": host}, timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": PROBLEM_BASE + "host-not-allowed", "title": "Host not allowed",
        "status": 400, "problems": [],
        "detail": f"Host {host!r} is not answered here: this service answers to "
                  "127.0.0.1, localhost, [::1] (a page from another site must not reach "
                  "it under its own name; to add a name, start the service with "
                  "--allowed-host NAME)"}


# --- what the server answers without the app ------------------------------------------------------


def test_requests_that_are_not_http_are_problems(served):
    with connect(served) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: lots\r\n\r\n")
        answer, closed = read_to_close(sock, 5)
    body = assert_closed_with(answer, 400, "bad-request")
    assert body["detail"] == ("the request is not valid HTTP/1.1 (request line, headers or "
                              "framing)")


def test_headers_over_16_kib_are_431(served):
    with connect(served) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * (16 << 10))
        answer, closed = read_to_close(sock, 5)
    body = assert_closed_with(answer, 431, "headers-too-large")
    assert body["detail"] == "the request line and headers exceed 16384 bytes"


def test_a_request_over_max_connections_is_503(tmp_path, server_process):
    code = ("from convcalc.service.limits import Limits\n"
            "from convcalc.service.server import run\n"
            "run(Limits(max_connections=2), host='127.0.0.1', port=PORT, "
            "allowed_hosts=['127.0.0.1'], access_log=False)\n")
    server = server_process(tmp_path / "serve.log", code=code)
    try:
        with connect(server), connect(server):   # two connections, silent
            time.sleep(0.2)
            response = httpx.get(server.url + "/api/v1/health", timeout=10)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["connection"] == "close"
        assert response.json()["type"] == PROBLEM_BASE + "too-many-connections"
        assert response.json()["detail"] == ("this server process serves at most 2 "
                                             "connections at once; try again shortly")
        time.sleep(0.2)
        assert httpx.get(server.url + "/api/v1/health", timeout=10).status_code == 200
    finally:
        server.stop()
