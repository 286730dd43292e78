"""``POST /api/v1/draw`` through FastAPI's TestClient: the three formats with their
content types and headers, the DOT exactly as ``convcalc draw`` makes it, folds and
depths, the refusals (bad queries, a spec that does not validate, too many nodes), and
Graphviz missing, hanging or busy.

The tests that run Graphviz skip where ``dot`` is missing, and fail in CI.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import convcalc
from convcalc import zoo
from convcalc.cli import main
from convcalc.service.app import PROBLEM_BASE
from convcalc.service.limits import Limits

YAML = {"Content-Type": "application/yaml"}
PROBLEM = "application/problem+json"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def needs_dot() -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the drawing tests, but Graphviz's dot is missing "
                        "(apt-get install graphviz)")
        pytest.skip("Graphviz's dot is missing (apt-get install graphviz)")


def problem(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == PROBLEM_BASE + kind and body["status"] == status
    return body


def post(client, query: str = "", text: str | None = None, **headers: str):
    body = zoo.text("resnet50") if text is None else text
    return client.post("/api/v1/draw" + query, content=body, headers={**YAML, **headers})


def test_svg_by_default_with_the_names_and_the_counts(client, needs_dot):
    response = post(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    report = convcalc.analyze(convcalc.load("zoo:resnet50"))
    assert response.headers["convcalc-errors"] == str(len(report.errors)) == "0"
    assert response.headers["convcalc-warnings"] == str(len(report.warnings))
    assert response.headers["convcalc-depth"] == "all"
    assert response.headers["convcalc-nodes"] == "175"
    root = ET.fromstring(response.content)
    names = [g.get("data-layer") for g in root.iter(SVG + "g") if g.get("data-layer")]
    assert len(names) == 174 and names[0] == "conv1"


def test_png(client, needs_dot):
    response = post(client, "?format=png&depth=0")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert response.headers["convcalc-depth"] == "0"


def test_dot_is_what_the_cli_writes(client):
    for query, args in [("?format=dot&depth=all", ["--depth", "all"]),
                        ("?format=dot&depth=1&fold=layer1.0,layer2.1",
                         ["--depth", "1", "--fold", "layer1.0", "--fold", "layer2.1"]),
                        ("?format=dot&depth=0", ["--depth", "0"])]:
        response = post(client, query)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/vnd.graphviz; charset=utf-8"
        expected = CliRunner().invoke(main, ["draw", "zoo:resnet50", "--format", "dot", *args])
        assert response.text == expected.stdout


def test_fold_comma_separated_or_repeated(client):
    one = post(client, "?format=dot&depth=all&fold=layer1.0,layer1.1")
    two = post(client, "?format=dot&depth=all&fold=layer1.0&fold=layer1.1")
    assert one.text == two.text and one.headers["convcalc-nodes"] == "155"
    # a name holding a comma is taken whole
    text = ("input: [2, 4, 4]\nblocks:\n  b:\n    layers: [relu, relu]\n"
            "layers:\n  - {type: b, name: 'a,b'}\n  - relu\n")
    folded = post(client, "?format=dot&fold=a,b", text)
    assert folded.status_code == 200 and folded.headers["convcalc-nodes"] == "3"


def test_refusals(client):
    body = problem(post(client, "?format=dot&fold=layer1.O"), 422, "invalid-request")
    assert body["problems"][0]["field"] == "query.fold"
    assert "did you mean" in body["detail"] and not body["detail"].startswith("fold: fold:")
    problem(post(client, "?depth=-1"), 422, "invalid-request")
    problem(post(client, "?depth=deep"), 422, "invalid-request")
    problem(post(client, "?format=gif"), 422, "invalid-request")
    bad = problem(post(client, "", "input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, "
                                   "kernel: 3, stride: 0}\n"), 422, "invalid-spec")
    assert bad["problems"][0]["line"] == 3
    problem(client.post("/api/v1/draw", content=b"{}", headers={"Content-Type": "text/plain"}),
            415, "unsupported-media-type")


def test_more_layers_than_drawn_is_refused(make_client):
    """Only a service whose layer limit is above the drawing's 2,000 gets that far."""
    chain = "input: [2, 4, 4]\nlayers:\n" + "  - relu\n" * 2001
    with make_client(Limits(max_layers=2500)) as roomy:
        body = problem(post(roomy, "?format=dot", chain), 422, "too-large-to-draw")
        assert "2,001 layers and folded blocks, more than the 2,000" in body["detail"]
        repeated = "input: [2, 4, 4]\nlayers:\n  - {type: relu, repeat: 2001}\n"
        assert post(roomy, "?format=dot", repeated).headers["convcalc-nodes"] == "2"


def test_network_errors_are_drawn_and_counted(client):
    text = "input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 3}\n"
    response = post(client, "?format=dot", text)
    assert response.status_code == 200
    assert int(response.headers["convcalc-errors"]) >= 1
    assert 'class="layer error"' in response.text


def fake_dot(folder: Path, script: str) -> None:
    path = folder / "dot"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def test_without_graphviz_503(client, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    body = problem(post(client, "?format=svg"), 503, "no-graphviz")
    assert "apt-get install graphviz" in body["detail"]
    assert post(client, "?format=dot&depth=0").status_code == 200   # DOT needs no Graphviz


def test_a_hanging_dot_is_a_504_and_busy_slots_a_503(make_client, tmp_path, monkeypatch):
    fake_dot(tmp_path, "exec sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with make_client(Limits(draw_timeout=1.5, draw_workers=1)) as one:
        answers: list = []
        first = threading.Thread(target=lambda: answers.append(post(one, "?depth=all")))
        started = time.monotonic()
        first.start()
        time.sleep(0.5)
        busy = post(one, "?depth=all")
        first.join()
        problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        slow = problem(answers[0], 504, "draw-timeout")
        assert "within 1.5 s" in slow["detail"]
        assert time.monotonic() - started < 10
