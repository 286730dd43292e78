"""The benchmark scripts the docs tell people to run still run, and add up.

Timings are not checked (machines are noisy); what is checked is that the scripts work
and that ``profile_winograd.py``'s split is arithmetic on its own measurements.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_conv  # noqa: E402
import profile_winograd  # noqa: E402


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the pauses that let a real benchmark's thread pools settle, and leave this
    process's malloc settings alone."""
    monkeypatch.setattr(profile_winograd, "steady_heap", lambda: True)
    monkeypatch.setattr(profile_winograd.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(profile_winograd, "wait_until_idle", lambda label: None)
    monkeypatch.setattr(bench_conv, "wait_until_idle", lambda label, limit=30.0: None)


def test_profile_split_adds_up_and_puts_matmul_back(no_waiting: None,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    matmul = np.matmul
    assert profile_winograd.main(["--only", "e", "--rounds", "1"]) == 0
    assert np.matmul is matmul
    out = capsys.readouterr().out
    assert "case e (8, 256, 14, 256, 3, 1, 1), path winograd" in out
    figures = {label: float(ms) for ms, label in
               re.findall(r"^ +([\d.]+)  (all matrix products|everything else.*|total)$",
                          out, re.MULTILINE)}
    products = [float(ms) for ms in re.findall(r"^ +([\d.]+)  (?:forward|backward) ", out,
                                                re.MULTILINE)]
    assert len(products) == 7          # 3 products forward, 4 backward
    # Each printed figure is rounded to 0.01 ms, so sums of n of them may be off by n/200.
    assert sum(products) == pytest.approx(figures["all matrix products"], abs=0.04)
    assert figures["all matrix products"] + figures[
        "everything else (copies, padding, sums)"] == pytest.approx(figures["total"],
                                                                    abs=0.015)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_steady_heap_takes_on_glibc() -> None:
    # In a child process: the settings last for the life of the process.
    child = subprocess.run(
        [sys.executable, "-c", "import bench_conv; print(bench_conv.steady_heap())"],
        cwd=Path(bench_conv.__file__).parent, capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "True"


# --- bench_analyze.py and the PyTorch zoo it times against --------------------------------

import json  # noqa: E402

import bench_analyze  # noqa: E402  (imports torch only if it is installed)

import convcalc  # noqa: E402


@pytest.fixture
def no_matmul(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matmul reference takes seconds (and waits for an idle machine): stub it."""
    monkeypatch.setattr(bench_analyze.bench_conv, "matmul_gflops", lambda rounds: 123.0)
    monkeypatch.setattr(bench_analyze.bench_conv, "cpu_busy", lambda seconds=0.25: 0.0)
    monkeypatch.setattr(bench_analyze.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(bench_analyze.bench_conv, "wait_until_idle",
                        lambda label, limit=30.0: None)


def test_bench_analyze_prints_a_row_per_model_and_the_targets(
        no_matmul: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_analyze.main(["--repeat", "1", "--warmup", "0",
                               "--only", "lenet5,simple_convnet"]) == 0
    out = capsys.readouterr().out
    assert "numpy.matmul 2048×2048 float32: 123.0 GFLOP/s" in out
    assert f"python {sys.version.split()[0]}" in out
    rows = re.findall(r"^(lenet5|simple_convnet) +(\d+) ", out, re.MULTILINE)
    assert rows == [("lenet5", "13"), ("simple_convnet", "8")]
    # ResNet-50 and GoogLeNet were not run: their 2 × 3 targets say so instead of ✓/✗.
    assert out.count("not measured in this run") == 6


def test_bench_analyze_json_has_the_ratios_and_the_verdicts(
        no_matmul: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_analyze.main(["--repeat", "2", "--warmup", "0", "--json",
                               "--only", "lenet5,resnet50"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["matmul_gflops"] == 123.0 and doc["repeat"] == 2
    assert [m["model"] for m in doc["models"]] == ["lenet5", "resnet50"]
    resnet = doc["models"][1]
    assert resnet["layers"] == len(convcalc.load("zoo:resnet50").layers)
    assert resnet["analyze_us_per_layer"] == pytest.approx(
        resnet["analyze_ms"] * 1e3 / resnet["layers"])
    verdicts = {(t["model"], t["target"].split(",")[-1].split()[0]): t["ok"]
                for t in doc["targets"]}
    assert verdicts[("resnet50", "analyze")] in (True, False)
    assert verdicts[("googlenet", "analyze")] is None
    for mode in bench_analyze.MODES:
        if bench_analyze.torch is None:
            assert resnet[f"meta_{mode}_ms"] is None and verdicts[("resnet50", mode)] is None
        else:
            assert resnet[f"meta_{mode}_over_analyze"] == pytest.approx(
                resnet[f"meta_{mode}_ms"] / resnet["analyze_ms"])
            assert verdicts[("resnet50", mode)] in (True, False)


def test_bench_analyze_reports_a_model_it_cannot_analyse_and_goes_on(
        no_matmul: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real = bench_analyze.bench_model

    def bench_model(name: str, repeat: int, warmup: int) -> dict:
        if name == "lenet5":
            raise ValueError("no kind for Tanh")
        return real(name, repeat, warmup)
    monkeypatch.setattr(bench_analyze, "bench_model", bench_model)
    assert bench_analyze.main(["--repeat", "1", "--warmup", "0",
                               "--only", "lenet5,simple_convnet"]) == 0
    out = capsys.readouterr().out
    assert "✗ lenet5: not timed, loading or analysing it raised ValueError: no kind for Tanh" \
        in out
    assert re.search(r"^simple_convnet +8 ", out, re.MULTILINE)


def test_median_times_spreads_the_runs_over_blocks_that_take_turns() -> None:
    order: list[str] = []
    times = bench_analyze.median_times({"a": lambda: order.append("a"),
                                        "b": lambda: order.append("b")}, 7, 1)
    assert set(times) == {"a", "b"}
    # three blocks each (3 + 2 + 2 timed runs, one warm-up run before each block)
    assert "".join(order) == "aaaa" "bbbb" "aaa" "bbb" "aaa" "bbb"


def _torch_models():
    pytest.importorskip("torch")
    import torch_models

    return torch_models


@pytest.mark.parametrize("name", convcalc.zoo.names())
def test_pytorch_model_agrees_with_the_zoo(name: str) -> None:
    """The PyTorch definition (as torchvision / Keras / the paper writes it) and the zoo
    file are independent: the same parameter count, buffers (batchnorm running mean and
    variance; not PyTorch's batch counter), output shape, and the same convs and dense
    layers in the same order (parameters and output size of each)."""
    torch_models = _torch_models()
    import torch

    if name not in torch_models.MODELS:
        pytest.skip(f"benchmarks/torch_models.py has no PyTorch definition of {name}")

    report = convcalc.analyze(convcalc.load(f"zoo:{name}"))
    model = torch_models.build(name, "meta")
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    assert sum(b.numel() for key, b in model.named_buffers()
               if not key.endswith("num_batches_tracked")) == report.total_buffers

    seen: list[tuple[int, int]] = []

    def record(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        seen.append((sum(p.numel() for p in module.parameters()), output[0].numel()))

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(record)
    with torch.no_grad():
        out = model(torch.empty((1, *report.input_shape), device="meta"))
    assert tuple(out.shape) == (1, *report.output_shape)
    # Keras' classifier is a 1×1 conv on a 1×1 map where the zoo has dense: so compare
    # parameters and output sizes, not kinds and shapes.
    assert seen == [(row.params, row.activations) for row in report.layers
                    if row.type in ("conv", "dense")]


# --- bench_verify_memory.py ------------------------------------------------------------------

import bench_verify_memory  # noqa: E402


def test_bench_verify_memory_prints_the_measured_peak_beside_the_estimate(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench_verify_memory.bench_conv, "matmul_gflops", lambda rounds: 123.0)
    assert bench_verify_memory.main(["--only", "lenet5", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "numpy.matmul 2048×2048 float32: 123.0 GFLOP/s" in out
    row = re.search(r"^lenet5 +([\d,]+) +([\d,]+) +(\d+)% ", out, re.MULTILINE)
    assert row, out
    measured, estimate = (int(v.replace(",", "")) for v in row.groups()[:2])
    assert 0.5 * estimate <= measured <= 1.1 * estimate
    # the untraced baseline really ran without the trace, and the trace is back after
    assert bench_verify_memory.verification._traced_peak is not bench_verify_memory.untraced
