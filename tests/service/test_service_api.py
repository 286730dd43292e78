"""The service's API through FastAPI's TestClient: every endpoint, every error status,
every limit; answers equal to the CLI's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import convcalc
from convcalc import zoo
from convcalc.catalog import summary
from convcalc.cli import main
from convcalc.service.app import PROBLEM_BASE
from convcalc.service.limits import Limits
from convcalc.service.worker import Job, Worker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
YAML = {"Content-Type": "application/yaml"}
PROBLEM = "application/problem+json"
SMALL = "name: small\ninput: [1, 12, 12]\nlayers:\n  - {type: conv, filters: 4, kernel: 3}\n" \
        "  - relu\n  - flatten\n  - {type: dense, units: 10}\n"
STRIDE_ZERO = "input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 0}\n"
NOT_TILING = "input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 3}\n"
#: ~1.25 s of engine work at batch 1 (estimate ~930 MiB, under the ceiling): a
#: verification to time out at 0.2 s
SLOW = "input: [32, 96, 96]\nlayers:\n  - {type: conv, filters: 32, kernel: 3, padding: 1, repeat: 40}\n"


def cli(*args: str) -> str:
    return CliRunner().invoke(main, list(args)).output


def assert_problem(response, status: int, kind: str | None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"] == (PROBLEM_BASE + kind if kind else "about:blank")
    assert body["title"] and body["detail"]
    assert isinstance(body["problems"], list)
    return body


# --- analyse -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_analyse_answers_exactly_what_check_prints(client, path):
    response = client.post("/api/v1/analyse", content=path.read_bytes(), headers=YAML)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == cli("check", str(path), "--format", "json")


@pytest.mark.parametrize("name", ["resnet50", "googlenet"])
def test_analyse_zoo_models_as_the_cli(client, name):
    response = client.post("/api/v1/analyse", content=zoo.text(name), headers=YAML)
    assert response.text == cli("check", f"zoo:{name}", "--format", "json")


@pytest.mark.parametrize("content_type", ["application/yaml", "text/yaml", "application/x-yaml",
                                          "application/yaml; charset=utf-8",
                                          "Application/YAML; charset=\"UTF-8\""])
def test_analyse_accepts_yaml_content_types(client, content_type):
    response = client.post("/api/v1/analyse", content=SMALL, headers={"Content-Type": content_type})
    assert response.status_code == 200
    assert response.json()["total_params"] == 40 + 4 * 10 * 10 * 10 + 10


def test_analyse_accepts_json(client):
    data = yaml.safe_load(SMALL)
    response = client.post("/api/v1/analyse", json=data)
    assert response.status_code == 200
    served, expected = response.json(), convcalc.analyze(convcalc.validate(data)).to_dict()
    for row in served["layers"] + expected["layers"]:
        row.pop("line")     # a JSON body is one line; a dict has none
    assert served == expected


def test_analysis_errors_are_a_200_report_with_problems(client):
    response = client.post("/api/v1/analyse", content=NOT_TILING, headers=YAML)
    assert response.status_code == 200
    assert response.headers["convcalc-errors"] == "2"   # the layer's, and the input's
    assert response.headers["convcalc-warnings"] == "0"
    advice, problem = response.json()["problems"]
    assert advice["field"] == "input" and "nearest valid" in advice["message"]
    assert problem["severity"] == "error" and problem["line"] == 3
    assert problem["layer"] == "conv1" and "7/3 is not a whole number" in problem["message"]


def test_invalid_spec_is_422_with_the_cli_diagnostics(client):
    response = client.post("/api/v1/analyse", content=STRIDE_ZERO, headers=YAML)
    body = assert_problem(response, 422, "invalid-spec")
    assert body["detail"] == "<request>:3: layers[0].stride: must be ≥ 1 (got 0)"
    cli_json = json.loads(CliRunner().invoke(main, ["check", "-", "--format", "json"],
                                             input=STRIDE_ZERO).output)
    assert body["problems"] == cli_json["problems"]
    assert body["problems"][0]["line"] == 3 and body["problems"][0]["field"] == "layers[0].stride"


@pytest.mark.parametrize("text, line", [
    ("input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1\n", 4),   # YAML syntax
    ("", None),                                                         # empty
    ("input: [1, 7, 7]\nlayers: []\nlayers: []\n", 3),                  # duplicate key
    ("- 1\n- 2\n", 1),                                                  # not a mapping
    ("input: !!python/object:os.system [1]\nlayers: []\n", 1),          # tags refused
])
def test_unreadable_bodies_are_422_with_lines(client, text, line):
    body = assert_problem(client.post("/api/v1/analyse", content=text, headers=YAML),
                          422, "invalid-spec")
    assert body["problems"][0]["line"] == line


def test_not_utf8_is_422(client):
    body = assert_problem(client.post("/api/v1/analyse", content=b"input: [1, \xff]\n",
                                      headers=YAML), 422, "invalid-spec")
    assert "not UTF-8" in body["detail"]


# --- content types and sizes ------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"},
                                     {"Content-Type": "application/x-www-form-urlencoded"},
                                     {"Content-Type": "application/yaml; charset=latin-1"}])
@pytest.mark.parametrize("path", ["/api/v1/analyse", "/api/v1/verify"])
def test_other_content_types_are_415(client, headers, path):
    body = assert_problem(client.post(path, content=SMALL.encode(), headers=headers),
                          415, "unsupported-media-type")
    assert "application/yaml" in body["detail"] or "UTF-8" in body["detail"]


def test_body_over_the_limit_is_413_by_its_length(make_client):
    with make_client(Limits(max_body_bytes=2000)) as small:
        padded = SMALL + "#" * (2000 - len(SMALL) - 1) + "\n"
        assert len(padded) == 2000
        assert small.post("/api/v1/analyse", content=padded, headers=YAML).status_code == 200
        body = assert_problem(small.post("/api/v1/analyse", content=padded + "\n", headers=YAML),
                              413, "body-too-large")
        assert "2001 bytes" in body["detail"] and "at most 2000" in body["detail"]
        assert small.post("/api/v1/verify", content=padded + "\n",
                          headers=YAML).status_code == 413


def test_body_over_the_limit_is_413_while_streaming(make_client):
    """Chunked, without Content-Length: refused once the count passes the limit."""
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"# " + b"x" * 998 + b"\n"

    with make_client(Limits(max_body_bytes=5000)) as small:
        response = small.post("/api/v1/analyse", content=chunks(), headers=YAML)
    assert_problem(response, 413, "body-too-large")


def test_default_body_limit_is_one_mib(client):
    body = assert_problem(client.post("/api/v1/analyse", content=b"#" * ((1 << 20) + 1),
                                      headers=YAML), 413, "body-too-large")
    assert "1.00 MiB" in body["detail"]


def test_bad_content_length_is_400(client):
    response = client.post("/api/v1/analyse", content=SMALL,
                           headers={**YAML, "Content-Length": "lots"})
    assert_problem(response, 400, "bad-request")


def test_too_many_layers_is_422(client, make_client):
    text = "input: [4]\nlayers:\n  - {type: relu, repeat: 2001}\n"
    body = assert_problem(client.post("/api/v1/analyse", content=text, headers=YAML),
                          422, "too-many-layers")
    assert body["problems"][0]["field"] == "layers" and body["problems"][0]["line"] == 2
    assert body["detail"] == ("<request>:2: layers: the spec expands to more than 2000 "
                              "layers; this service analyses at most 2000 (the CLI and the "
                              "library at most 10,000)")
    assert client.post("/api/v1/analyse", content=text.replace("2001", "2000"),
                       headers=YAML).status_code == 200
    # a repeat bomb stops at the service's limit, before the work
    huge = "input: [4]\nlayers:\n  - {type: relu, repeat: 1000000000}\n"
    started = time.perf_counter()
    assert_problem(client.post("/api/v1/analyse", content=huge, headers=YAML), 422,
                   "too-many-layers")
    assert time.perf_counter() - started < 1.0
    with make_client(Limits(max_layers=3)) as strict:
        assert_problem(strict.post("/api/v1/verify", content=SMALL + "  - softmax\n",
                                   headers=YAML), 422, "too-many-layers")


def test_large_bodies_are_parsed_one_at_a_time(make_client):
    with make_client(Limits(large_body_bytes=200)) as small:
        gate = small.app.state.large_parses
        big = SMALL + "#" * 300 + "\n"
        assert gate.acquire(blocking=False)          # as if another large parse ran
        try:
            response = small.post("/api/v1/analyse", content=big, headers=YAML)
            assert_problem(response, 503, "busy")
            assert response.headers["retry-after"] == "1"
            assert_problem(small.post("/api/v1/verify", content=big, headers=YAML), 503, "busy")
            # small bodies do not wait for the large ones
            assert small.post("/api/v1/analyse", content=SMALL, headers=YAML).status_code == 200
        finally:
            gate.release()
        assert small.post("/api/v1/analyse", content=big, headers=YAML).status_code == 200


# --- verify ---------------------------------------------------------------------------------------


def _without_timings(data: dict) -> dict:
    """The result without what differs from run to run: timings, the file's name and
    the measured peak memory (every other figure of ``memory`` is the estimate)."""
    memory = {k: v for k, v in data["memory"].items() if k != "measured_peak_bytes"}
    return {**{k: v for k, v in data.items() if k not in ("seconds", "file")},
            "memory": memory}


def test_verify_answers_what_verify_prints(client, tmp_path):
    path = EXAMPLES / "simple-convnet.yaml"
    response = client.post("/api/v1/verify?batch=1&seed=3", content=path.read_bytes(),
                           headers=YAML)
    assert response.status_code == 200, response.text
    served = response.json()
    printed = json.loads(cli("verify", str(path), "--format", "json", "--batch", "1",
                             "--seed", "3"))
    assert served["ok"] and served["file"] == "<request>"
    assert _without_timings(served) == _without_timings(printed)
    assert set(served["seconds"]) == {"build", "forward", "backward"}


def test_verify_with_gradcheck_and_a_lower_memory_limit(client):
    response = client.post("/api/v1/verify?gradcheck=true&max_memory=256MiB", content=SMALL,
                           headers=YAML)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] and result["gradcheck"] and result["batch"] == 2
    assert result["gradcheck_method"] == "directions"
    assert [check["tensor"] for check in result["gradcheck_end_to_end"]] == ["input", "parameters"]
    assert result["memory"]["limit_bytes"] == 256 << 20
    assert all(row["gradcheck_error"] is not None for row in result["layers"] if row["observed_params"])


@pytest.mark.parametrize("query, method", [("gradcheck=entries", "entries"),
                                           ("gradcheck=directions", "directions"),
                                           ("gradcheck=1", "directions"), ("gradcheck=no", None)])
def test_verify_gradcheck_methods(client, query, method):
    response = client.post(f"/api/v1/verify?{query}", content=SMALL, headers=YAML)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ok"] and result["gradcheck"] is (method is not None)
    assert result["gradcheck_method"] == method
    assert (result["gradcheck_end_to_end"] is None) is (method != "directions")


def test_verify_refuses_errors_as_the_cli_does(client):
    body = assert_problem(client.post("/api/v1/verify", content=NOT_TILING, headers=YAML),
                          422, "network-errors")
    printed = json.loads(CliRunner().invoke(main, ["verify", "-", "--format", "json"],
                                            input=NOT_TILING).output)
    assert body["problems"] == printed["problems"]
    assert_problem(client.post("/api/v1/verify", content=STRIDE_ZERO, headers=YAML),
                   422, "invalid-spec")


def test_verify_refuses_runs_over_the_memory_ceiling(client):
    vgg = (EXAMPLES / "vgg16.yaml").read_bytes()
    body = assert_problem(client.post("/api/v1/verify?batch=8", content=vgg, headers=YAML),
                          422, "over-memory")
    assert "more than the limit of 2.00 GiB" in body["detail"]
    assert "the largest batch that fits is 1." in body["detail"]
    assert body["problems"][0]["message"] == body["detail"]
    pool = client.app.state.pool
    assert pool.stats["jobs"] == pool.stats["jobs"]   # refused without a worker


@pytest.mark.parametrize("query, field", [("batch=0", "query.batch"), ("batch=65", "query.batch"),
                                          ("seed=-1", "query.seed"), ("gradcheck=maybe", "query.gradcheck"),
                                          ("max_memory=lots", "query.max_memory"),
                                          ("max_memory=3GiB", "query.max_memory")])
def test_bad_verify_options_are_422(client, query, field):
    body = assert_problem(client.post(f"/api/v1/verify?{query}", content=SMALL, headers=YAML),
                          422, "invalid-request")
    assert body["problems"][0]["field"] == field


def test_busy_then_timeout_then_a_new_worker(make_client):
    """One worker, 0.2 s: a second verification meanwhile is 503; the slow one is 504 and
    its process is killed; the next one runs in a new worker."""
    with make_client(Limits(verify_workers=1, verify_timeout=0.2)) as one:
        pool = one.app.state.pool
        answers = {}
        slow = threading.Thread(target=lambda: answers.setdefault(
            "slow", one.post("/api/v1/verify?batch=1", content=SLOW, headers=YAML)))
        slow.start()
        deadline = time.monotonic() + 30
        while pool.busy == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = one.post("/api/v1/verify", content=SMALL, headers=YAML)
        slow.join(60)
        assert_problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "5"
        body = assert_problem(answers["slow"], 504, "verify-timeout")
        assert "within 0.2 s" in body["detail"] and "killed" in body["detail"]
        assert pool.stats["timeouts"] == 1 and pool.stats["workers_killed"] == 1
        assert pool.busy == 0 and not pool._idle   # the killed worker is not reused
        again = one.post("/api/v1/verify", content=SMALL, headers=YAML)
        assert again.status_code == 200 and again.json()["ok"]
        assert pool.stats["workers_started"] == 2
        health = one.get("/api/v1/health").json()["verify"]
        assert health["timeouts"] == 1 and health["busy_refusals"] == 1


def test_an_app_started_again_verifies_again():
    """Its lifespan closes the pool; a new lifespan (schemathesis starts one per test)
    opens it again instead of answering every verification 503."""
    from fastapi.testclient import TestClient

    from convcalc.service.app import create_app

    app = create_app(Limits(verify_workers=1), warm=False)
    for _ in range(2):
        with TestClient(app) as again:
            response = again.post("/api/v1/verify?batch=1", content=SMALL, headers=YAML)
            assert response.status_code == 200, response.text


def test_a_worker_is_capped_below_what_an_estimate_could_miss():
    """The address-space limit stops a run the estimate let through: here a worker with a
    64 MiB budget (so a cap of its size + 352 MiB) is sent, bypassing the service's check,
    a dense layer of 1 GiB of weights; NumPy's allocation fails and the verification
    reports it instead of taking the memory."""
    huge = b"input: [4096]\nlayers:\n  - {type: dense, units: 65536}\n"
    worker = Worker(budget=64 << 20)
    try:
        worker.wait_ready()
        assert worker.info["address_space_limit"] is not None
        kind, answer = worker.run(Job(huge, "<request>", 1, 0, False, 8 << 30), 60)
        assert kind == "ok"
        result = json.loads(answer)
        assert not result["ok"] and "allocate" in result["engine_error"]
    finally:
        worker.kill()
    assert not worker.alive()


# --- schema, zoo, health, page, docs ------------------------------------------------------------


def test_schema_is_the_cli_schema(client):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    assert response.json() == json.loads(cli("schema"))


def test_zoo_list_is_the_cli_list(client):
    response = client.get("/api/v1/zoo")
    assert response.status_code == 200
    assert response.json() == json.loads(cli("zoo", "--format", "json"))
    assert [m["name"] for m in response.json()] == zoo.names()


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model(client, name):
    response = client.get(f"/api/v1/zoo/{name}")
    assert response.status_code == 200
    model = response.json()
    assert model["text"] == zoo.text(name) and model["header"] == zoo.header(name)
    assert model["spec"] == yaml.safe_load(zoo.text(name))
    assert model["summary"] == summary(name).to_dict()
    raw = client.get(f"/api/v1/zoo/{name}/spec.yaml")
    assert raw.headers["content-type"].startswith("application/yaml")
    assert raw.text == zoo.text(name)


@pytest.mark.parametrize("path", ["/api/v1/zoo/resnet51", "/api/v1/zoo/resnet51/spec.yaml",
                                  "/api/v1/zoo/..%2Fcli/spec.yaml"])
def test_unknown_zoo_model_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    if "resnet51" in path:
        assert "did you mean 'resnet50'?" in response.json()["detail"]


def test_unknown_paths_and_methods_are_problems(client):
    assert_problem(client.get("/api/v1/nothing"), 404, None)
    response = client.get("/api/v1/analyse")
    assert_problem(response, 405, None)
    assert response.headers["allow"] == "POST"


def test_health(client):
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["version"] == convcalc.__version__
    assert body["limits"] == Limits().to_dict()
    assert body["verify"]["workers"] == 2
    assert set(body["verify"]) == {"workers", "busy", "idle", "timeout_seconds", "jobs",
                                   "timeouts", "cancelled", "workers_started",
                                   "workers_killed", "busy_refusals"}


def test_limits_documented_values():
    assert Limits().to_dict() == {
        "max_body_bytes": 1 << 20, "max_layers": 2000, "large_body_bytes": 64 << 10,
        "large_parses": 1, "body_timeout": 20.0, "verify_max_memory": 2 << 30,
        "verify_timeout": 60.0, "verify_workers": 2, "max_batch": 64,
        "draw_timeout": 20.0, "draw_workers": 2,
        "keep_alive_timeout": 5.0, "header_timeout": 10.0, "max_header_bytes": 16 << 10,
        "max_connections": 100, "shutdown_timeout": 10.0}
    assert Limits(verify_workers=5).per_process(2).verify_workers == 2
    assert Limits(verify_workers=1).per_process(4).verify_workers == 1


def test_an_unexpected_exception_is_a_500_problem_and_leaves_the_app(monkeypatch):
    """Answered by the app itself (nothing re-raised to the server, which would log the
    traceback again and drop the connection)."""
    from fastapi.testclient import TestClient

    import convcalc.service.routes as routes
    from convcalc.service.app import create_app

    def fail(body, limits, *memory):
        raise RuntimeError("planted")

    monkeypatch.setattr(routes, "analyse_text", fail)
    with TestClient(create_app(warm=False), raise_server_exceptions=True) as strict:
        body = assert_problem(strict.post("/api/v1/analyse", content=SMALL, headers=YAML),
                              500, "internal-error")
    assert body["detail"] == "the service failed: RuntimeError"


def test_host_allow_list_of_an_app(make_client):
    """``create_app(allowed_hosts=...)``: other Host headers are 400 on every path."""
    from fastapi.testclient import TestClient

    from convcalc.service.app import create_app

    app = create_app(warm=False, allowed_hosts=["calc.example", "[::1]"])
    with TestClient(app, base_url="http://calc.example:8000") as named:
        assert named.get("/api/v1/health").status_code == 200
        assert named.get("/", headers={"Host": "[::1]:8000"}).status_code == 200
        for host in ("testserver", "calc.example.evil", "127.0.0.1"):
            for path in ("/api/v1/health", "/", "/api/v1/nothing", "/openapi.json"):
                body = assert_problem(named.get(path, headers={"Host": host}), 400,
                                      "host-not-allowed")
                assert body["detail"].startswith(f"Host {host!r} is not answered here: "
                                                 "this service answers to calc.example, [::1]")
    with make_client() as any_host:   # the default: no allow-list
        assert any_host.get("/api/v1/health", headers={"Host": "x.example"}).status_code == 200


def test_openapi_document(client):
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/api/v1/health", "/api/v1/analyse", "/api/v1/sizes", "/api/v1/draw", "/api/v1/verify",
        "/api/v1/import", "/api/v1/schema", "/api/v1/zoo", "/api/v1/zoo/{name}", "/api/v1/zoo/{name}/spec.yaml"}
    analyse = document["paths"]["/api/v1/analyse"]["post"]
    assert set(analyse["requestBody"]["content"]) == {"application/json", "application/yaml",
                                                      "text/yaml", "application/onnx",
                                                      "multipart/form-data"}
    assert set(analyse["responses"]) == {"200", "400", "408", "413", "415", "422", "503"}
    verify = document["paths"]["/api/v1/verify"]["post"]
    assert set(verify["responses"]) == {"200", "400", "408", "413", "415", "422", "503",
                                        "504"}
    assert set(analyse["responses"]["422"]["content"]) == {PROBLEM}
    drawn = document["paths"]["/api/v1/draw"]["post"]
    assert set(drawn["responses"]) == {"200", "400", "408", "413", "415", "422", "503", "504"}
    assert set(drawn["responses"]["200"]["content"]) == {"image/svg+xml", "image/png",
                                                         "text/vnd.graphviz"}
    assert {p["name"] for p in drawn["parameters"]} == {"format", "fold", "depth"}
    assert "spec.Spec" in document["components"]["schemas"]
    assert "$defs" not in json.dumps(document)


def test_docs_page_is_offline_and_lists_every_operation(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for path in client.get("/openapi.json").json()["paths"]:
        assert path in response.text
    assert "cdn" not in response.text.lower()


def test_design_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<textarea id="spec"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    # nothing from the network: the only absolute URL is the SVG namespace
    static = Path(__file__).resolve().parents[2] / "convcalc" / "service" / "static"
    for path in static.iterdir():
        urls = {u for u in __import__("re").findall(r"https?://[^\s\"'`)]+", path.read_text())}
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)


def test_the_docs_problem_example_is_real(client):
    """docs/service.rst shows net.yaml and the problem curl printed for it: the same now."""
    import re

    page = (ROOT / "docs" / "service.rst").read_text(encoding="utf-8")
    spec = re.search(r":caption: net.yaml\n\n((?:   .*\n)+)", page).group(1)
    spec = "\n".join(line[3:] for line in spec.splitlines()) + "\n"
    shown = re.search(r"HTTP/1\.1 422 Unprocessable Entity\n(?:   \S.*\n)+\n((?:   .*\n)+)",
                      page).group(1)
    shown = json.loads("\n".join(line[3:] for line in shown.splitlines()))
    response = client.post("/api/v1/analyse", content=spec, headers=YAML)
    assert response.status_code == 422 and response.json() == shown
    assert f"content-length: {len(response.content)}" in page


OPEN = "input: [1, null]\nlayers:\n  - {type: conv, filters: 2, kernel: 3, stride: 2}\n" \
    "  - {type: conv, filters: 2, kernel: 3, stride: 2}\n"


def test_sizes_is_what_convcalc_sizes_prints(client):
    response = client.post("/api/v1/sizes?near=12", content=OPEN, headers=YAML)
    assert response.status_code == 200
    (axis,) = response.json()["axes"]
    assert (axis["description"], axis["smallest"], axis["output"]) == (
        "L = 4k + 3, k ≥ 1", 7, "L_out = (L − 3)/4")
    assert axis["near"] == {"size": 12, "valid": False, "below": 11, "above": 15,
                            "output": {"11": 2, "15": 3}}
    cli = subprocess.run([sys.executable, "-m", "convcalc", "sizes", "-", "--format", "json",
                          "--near", "12"], input=OPEN, capture_output=True, text=True)
    assert json.loads(cli.stdout) == {**response.json(), "name": None}


def test_analyse_of_open_sizes_analyses_the_smallest(client):
    data = client.post("/api/v1/analyse", content=OPEN, headers=YAML).json()
    assert data["input_shape"] == [1, 7] and data["sizes"][0]["smallest"] == 7
    failing = client.post("/api/v1/analyse", content=OPEN.replace("null", "12"),
                          headers=YAML).json()
    assert failing["problems"][0]["field"] == "input"
    assert "nearest valid 11 or 15" in failing["problems"][0]["message"]
