"""The OpenAPI models of the service's answers (``convcalc/service/models.py``) name
exactly the keys the CLI's JSON has — the report, the verification and everything nested
in them — so the API reference never lists a key that is not there or leaves one out."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import convcalc
from convcalc.service import models

ROOT = Path(__file__).resolve().parents[2]
#: branches, blocks, batchnorm buffers, a frozen layer and a warning
SPEC = {"input": [3, 10, 10], "rounding": "floor", "blocks": {"unit": {"layers": [
    {"type": "conv", "filters": 4, "kernel": 3, "padding": 1}, "batchnorm", "relu"]}},
    "layers": [{"type": "conv", "name": "stem", "filters": 4, "kernel": 3, "stride": 2,
                "trainable": False},
               {"type": "unit", "name": "u"}, {"type": "add", "inputs": ["u", "stem"]},
               "global_avgpool", {"type": "dense", "units": 3}]}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def check(model: type[BaseModel], data: Any, where: str) -> None:
    """``data``'s keys are the model's fields (``exact`` aside: it appears only beside
    integers too large for a double); and so on inward."""
    if isinstance(data, list):
        for index, item in enumerate(data):
            check(model, item, f"{where}[{index}]")
        return
    if data is None:
        return
    assert isinstance(data, dict), where
    if not issubclass(model, models._Open):
        assert set(data) - {"exact"} == set(model.model_fields), (
            f"{where} ({model.__name__}): only in the JSON "
            f"{sorted(set(data) - {'exact'} - set(model.model_fields))}, only in the model "
            f"{sorted(set(model.model_fields) - set(data))}")
    for name, field in model.model_fields.items():
        for inner in _models_in(field.annotation):
            check(inner, data.get(name), f"{where}.{name}")


def test_the_report_model_is_the_reports_json():
    report = convcalc.analyze(SPEC)
    assert report.warnings and report.groups
    check(models.ReportOut, report.to_dict(), "report")


@pytest.mark.parametrize("gradcheck", [False, True], ids=["plain", "gradcheck"])
def test_the_verification_model_is_the_verifications_json(gradcheck):
    pytest.importorskip("numpy")
    result = convcalc.verify(SPEC, batch=2, gradcheck=gradcheck)
    check(models.VerificationOut, result.to_dict(), "verification")


def test_analyse_takes_the_memory_figures_batch_dtype_and_optimizer(client):
    body = (ROOT / "examples" / "simple-convnet.yaml").read_bytes()
    response = client.post("/api/v1/analyse?batch=8&dtype=bfloat16&optimizer=adam",
                           content=body, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 200, response.text
    memory = response.json()["memory"]
    assert (memory["batch"], memory["dtype"], memory["optimizer"]) == (8, "bfloat16", "adam")
    assert memory["optimizer_state_bytes"] == 2 * 433_890 * 2
    refused = client.post("/api/v1/analyse?dtype=int8", content=body,
                          headers={"Content-Type": "application/yaml"})
    assert refused.status_code == 422
