"""ONNX uploads to the service: ``application/onnx`` and ``multipart/form-data`` bodies
on /api/v1/analyse (and /api/v1/sizes, /api/v1/verify), within the same body limits,
answered exactly as ``convcalc check model.onnx --format json`` prints; the OpenAPI
document names both media types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("onnx")

from convcalc.cli import main  # noqa: E402
from convcalc.service.limits import Limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESNET = ROOT / "tests" / "fixtures" / "onnx" / "resnet50.onnx"
ONNX = {"Content-Type": "application/onnx"}


def check_json(path: Path) -> dict:
    return json.loads(CliRunner().invoke(main, ["check", str(path), "--format", "json"]).output)


def test_an_onnx_body_is_analysed_as_the_cli_checks_the_file(client) -> None:
    response = client.post("/api/v1/analyse", content=RESNET.read_bytes(), headers=ONNX)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["total_params"] == 25_557_032
    expected = check_json(RESNET)
    assert [row["output_shape"] for row in answer["layers"]] == \
        [row["output_shape"] for row in expected["layers"]]
    assert response.headers["Convcalc-Warnings"] == str(len(expected["problems"]))


def test_a_multipart_upload_with_a_file_field(client) -> None:
    files = {"file": ("resnet50.onnx", RESNET.read_bytes(), "application/octet-stream")}
    response = client.post("/api/v1/analyse", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["total_params"] == 25_557_032
    spec = (ROOT / "examples" / "simple-convnet.yaml").read_bytes()
    response = client.post("/api/v1/analyse", files={"file": ("net.yaml", spec, "text/yaml")})
    assert response.status_code == 200 and response.json()["total_params"] == 433_890
    response = client.post("/api/v1/analyse", files={"other": ("net.yaml", spec)})
    assert response.status_code == 400 and "'file'" in response.json()["detail"]


def test_sizes_and_verify_take_onnx_too(client) -> None:
    source = ROOT / "tests" / "fixtures" / "onnx" / "mobilenet_v3_large.onnx"
    response = client.post("/api/v1/sizes", content=source.read_bytes(), headers=ONNX)
    assert response.status_code == 200, response.text
    assert [axis["smallest"] for axis in response.json()["axes"]] == [1, 1]
    tiny = CliRunner().invoke(main, ["export", "zoo:lenet5", "--to", "onnx", "-o", "-"])
    response = client.post("/api/v1/verify", content=tiny.stdout_bytes, headers=ONNX)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True


@pytest.mark.parametrize("body, status, says", [
    (b"input: [3, 8, 8]\nlayers: [relu]\n", 422, "not an ONNX model"),
    (b"\x08" + b"\xff" * 64, 422, "not an ONNX model"),
])
def test_a_body_that_is_not_onnx(client, body: bytes, status: int, says: str) -> None:
    response = client.post("/api/v1/analyse", content=body, headers=ONNX)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_the_body_limit_holds_for_onnx(make_client) -> None:
    with make_client(Limits(max_body_bytes=10_000)) as small:
        response = small.post("/api/v1/analyse", content=RESNET.read_bytes(), headers=ONNX)
        assert response.status_code == 413
        files = {"file": ("resnet50.onnx", RESNET.read_bytes())}
        assert small.post("/api/v1/analyse", files=files).status_code == 413


def test_the_openapi_document_names_the_upload_types(client) -> None:
    document = client.get("/openapi.json").json()
    content = document["paths"]["/api/v1/analyse"]["post"]["requestBody"]["content"]
    assert content["application/onnx"]["schema"]["format"] == "binary"
    assert content["multipart/form-data"]["schema"]["required"] == ["file"]


def test_import_answers_the_yaml_convcalc_import_writes(client) -> None:
    """What the design page opens a file with: the model's spec text."""
    response = client.post("/api/v1/import", content=RESNET.read_bytes(), headers=ONNX)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    printed = CliRunner().invoke(main, ["import", str(RESNET)]).stdout
    def body(text: str) -> list[str]:   # the file's name is in the header and the name
        return [line for line in text.splitlines()[1:] if not line.startswith("name:")]
    assert body(response.text) == body(printed)
    files = {"file": ("resnet50.onnx", RESNET.read_bytes())}
    assert client.post("/api/v1/import", files=files).text == response.text
    spec = (ROOT / "examples" / "simple-convnet.yaml").read_bytes()
    assert client.post("/api/v1/import", files={"file": ("n.yaml", spec)}).content == spec
