"""convcalc.verify and the `verify` / `check --verify` commands: a passing run, refused
memory estimates, JSON, specs with errors not run, and mismatches reported as failures."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner
from residual_blocks import BASIC_BLOCK

import convcalc
import engine
from convcalc.cli import main
from convcalc.memory import RUNTIME_BYTES, estimate_memory, parse_bytes
from convcalc.units import format_bytes

ROOT = Path(__file__).resolve().parent.parent
SIMPLE = str(ROOT / "examples" / "simple-convnet.yaml")
VGG16 = str(ROOT / "examples" / "vgg16.yaml")
TOO_BIG_KERNEL = "input: [3, 4, 4]\nlayers:\n  - {type: conv, filters: 2, kernel: 5}\n  - relu\n"
MIXED = {"input": [3, 20, 20], "layers": [
    {"type": "conv", "filters": 8, "kernel": 3, "padding": "same"}, {"type": "batchnorm"},
    "relu", {"type": "lrn", "size": 3},
    {"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"type": "conv_transpose", "filters": 4, "kernel": 4, "stride": 2, "padding": 1},
    "tanh", {"type": "maxpool", "kernel": 2},
    {"type": "conv", "filters": 8, "kernel": 3, "groups": 4}, "sigmoid",
    {"type": "global_avgpool"}, {"type": "dropout"}, {"type": "dense", "units": 5},
    "softmax"]}


def run(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path, text, name="net.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- the command -----------------------------------------------------------------------------


def test_a_passing_example():
    code, out, err = run("verify", SIMPLE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "gradients"]
    assert "conv1     conv     [30, 24, 24] ✓      780 ✓  ✓" in lines
    assert "dense1    dense    [100] ✓         432,100 ✓  ✓" in lines
    assert "✓ verified: all 8 layers agree on output shapes, parameter counts and gradient " \
           "shapes" in out
    assert "engine run: batch 2, float32, seed 0" in out
    assert "✗" not in out and err == ""


def test_json_output():
    code, out, _ = run("verify", SIMPLE, "--format", "json", "--batch", "3", "--seed", "7")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and data["batch"] == 3 and data["seed"] == 7
    assert data["dtype"] == "float32" and data["gradcheck"] is False
    assert data["memory"]["limit_bytes"] == 2 * 2**30
    assert data["memory"]["total_bytes"] < data["memory"]["limit_bytes"]
    conv = data["layers"][0]
    assert conv["name"] == "conv1" and conv["predicted_shape"] == conv["observed_shape"] == [
        30, 24, 24]
    assert conv["predicted_params"] == conv["observed_params"] == 780
    assert conv["shape_ok"] and conv["params_ok"] and conv["gradients_ok"] and conv["ok"]
    assert sum(layer["observed_params"] for layer in data["layers"]) == 433_890


def test_gradcheck_option_reports_the_error_per_layer(tmp_path):
    spec = write(tmp_path, json.dumps(MIXED), "mixed.json")
    code, out, _ = run("verify", spec, "--gradcheck", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["gradcheck"] and data["gradcheck_tolerance"] == 1e-6
    assert data["gradcheck_method"] == "directions"
    assert all(layer["gradcheck_error"] < 1e-6 for layer in data["layers"])
    assert [(c["tensor"], c["ok"]) for c in data["gradcheck_end_to_end"]] == [
        ("input", True), ("parameters", True)]
    code, out, _ = run("verify", spec, "--gradcheck")
    assert "✓ gradients match centred differences (float64, one random direction per " \
           "tensor): largest relative error" in out
    assert "✓ gradient check end to end (one direction each, the whole network): the " \
           "input " in out
    code, out, _ = run("verify", spec, "--gradcheck-entries", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["gradcheck"] and data["gradcheck_method"] == "entries"
    assert data["gradcheck_end_to_end"] is None
    assert all(layer["gradcheck_error"] < 1e-6 for layer in data["layers"])
    code, out, _ = run("verify", spec, "--format", "json")
    data = json.loads(out)
    assert data["gradcheck"] is False and data["gradcheck_method"] is None


def test_a_refused_memory_estimate(tmp_path):
    code, out, err = run("verify", VGG16, "--batch", "1", "--max-memory", "1GiB")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("running this network needs an estimated ")
    assert "more than the limit of 1.00 GiB; not even batch 1 fits (parameters, gradients " \
           "and other fixed costs alone need 1.19 GiB)" in err


def test_the_refusal_names_the_largest_batch_that_fits():
    spec = convcalc.load(SIMPLE)
    with pytest.raises(convcalc.ResourceError) as caught:
        convcalc.verify(spec, batch=5000, max_memory=300 * 2**20)
    fits = int(str(caught.value).split("the largest batch that fits is ")[1].split(".")[0])
    limit = 300 * 2**20
    assert estimate_memory(spec, fits).total <= limit < estimate_memory(spec, fits + 1).total
    assert convcalc.verify(spec, batch=2, max_memory=limit).ok


def test_a_refused_memory_estimate_in_json():
    code, out, _ = run("verify", VGG16, "--batch", "4", "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False and data["error"] == "ResourceError"
    assert "largest batch that fits is 1" in data["problems"][0]["message"]


def test_a_spec_with_errors_is_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "build", lambda *a, **k: pytest.fail("engine was run"))
    code, out, err = run("verify", write(tmp_path, TOO_BIG_KERNEL))
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        f"{tmp_path / 'net.yaml'}:3: layers[0].kernel (conv1): H, W: window 5 is larger "
        "than the input 4"]
    code, out, _ = run("verify", write(tmp_path, TOO_BIG_KERNEL), "--format", "json")
    assert code == 1 and json.loads(out)["error"] == "ShapeError"
    with pytest.raises(convcalc.ShapeError):
        convcalc.verify(convcalc.loads(TOO_BIG_KERNEL))


def test_an_invalid_file_is_one_line(tmp_path):
    code, out, err = run("verify", write(tmp_path, "input: [3, 4, 4]\nlayers: []\n"))
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--batch", "0"], ["--max-memory", "lots"],
                                  ["--format", "markdown"]])
def test_usage_errors(args):
    code, _, err = run("verify", SIMPLE, *args)
    assert code == 2 and "Traceback" not in err


# --- mismatches are failures -------------------------------------------------------------


def test_a_shape_mismatch_fails_with_crosses(monkeypatch):
    real = engine.layers.Flatten.forward
    monkeypatch.setattr(engine.layers.Flatten, "forward", lambda self, x: real(self, x)[:, :-1])
    code, out, _ = run("verify", SIMPLE)
    assert code == 1
    assert "[4320] ≠ [4319] ✗" in out
    assert "432,100 ≠ 432,000 ✗" in out              # dense1 built for 4,319 inputs
    assert "✗ 2 of 8 layers disagree: flatten1, dense1" in out
    # ... and the backward pass then cannot reshape the gradient: reported, not raised
    assert "✗ the engine run failed: flatten1" in out


def test_a_gradient_shape_mismatch_fails(monkeypatch):
    real = engine.layers.Dense.backward

    def backward(self, dout):
        dx = real(self, dout)
        self.grads["bias"] = self.grads["bias"][:-1]
        return dx

    monkeypatch.setattr(engine.layers.Dense, "backward", backward)
    result = convcalc.verify(convcalc.load(SIMPLE))
    assert not result.ok
    assert result.layers[4].gradient_problems == ("bias: gradient [99] ≠ parameter [100]",)
    assert "✗ bias: gradient [99] ≠ parameter [100]" in convcalc.render_verification(result)


@pytest.mark.parametrize("option", ["--gradcheck", "--gradcheck-entries"])
def test_a_gradcheck_failure_fails(monkeypatch, tmp_path, option):
    real = engine.activations.Tanh.backward
    monkeypatch.setattr(engine.activations.Tanh, "backward", lambda self, dout: 1.01 * real(self, dout))
    code, out, _ = run("verify", write(tmp_path, json.dumps(MIXED), "mixed.json"), option)
    assert code == 1
    assert "tanh1" in out.split("disagree: ")[1]
    assert "✗" in [line for line in out.splitlines() if line.startswith("tanh1")][0]
    if option == "--gradcheck":      # each layer against its own forward: tanh1 alone
        assert out.split("disagree: ")[1].strip() == "tanh1"
        assert "✗ gradient check end to end" in out


def test_a_wrong_combination_of_right_layers_fails_end_to_end(monkeypatch):
    real = engine.Network.backward
    monkeypatch.setattr(engine.Network, "backward",
                        lambda self, dout, **options: 1.01 * real(self, dout, **options))
    result = convcalc.verify(convcalc.validate(MIXED), gradcheck=True)
    assert not result.ok and not result.failing
    assert [check.ok for check in result.gradcheck_end_to_end] == [False, True]
    text = convcalc.render_verification(result)
    assert "✗ gradient check end to end (one direction each, the whole network): the " \
           "input " in text and "✓ verified" not in text


def test_a_nan_gradient_fails_and_says_so(monkeypatch):
    real = engine.activations.Tanh.backward
    monkeypatch.setattr(engine.activations.Tanh, "backward",
                        lambda self, dout: real(self, dout) * np.nan)
    result = convcalc.verify(convcalc.validate(MIXED), gradcheck=True)
    row = [row for row in result.layers if row.name == "tanh1"][0]
    assert math.isnan(row.gradcheck_error) and not row.gradcheck_ok and not result.ok
    assert "not a number ✗" in convcalc.render_verification(result)


def test_an_engine_refusal_is_reported(monkeypatch):
    def refuse(self, x):
        raise ValueError("dense2: refused for the test")

    monkeypatch.setattr(engine.layers.Dense, "forward", refuse)
    result = convcalc.verify(convcalc.load(SIMPLE))
    assert not result.ok and result.engine_error.startswith("dense1")
    assert "✗ the engine run failed" in convcalc.render_verification(result)


# --- check --verify --------------------------------------------------------------------------


def test_check_then_verify():
    code, out, _ = run("check", SIMPLE, "--verify", "--batch", "1")
    assert code == 0
    assert "params: 433,890" in out and "✓ verified: all 8 layers agree" in out
    code, out, _ = run("check", SIMPLE, "--verify", "--format", "json")
    data = json.loads(out)
    assert data["total_params"] == 433_890 and data["verification"]["ok"] is True


def test_check_verify_does_not_run_a_spec_with_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "build", lambda *a, **k: pytest.fail("engine was run"))
    code, out, err = run("check", write(tmp_path, TOO_BIG_KERNEL), "--verify")
    assert code == 1 and "not verified: the spec has errors" in err


def test_verify_options_need_verify():
    code, _, err = run("check", SIMPLE, "--gradcheck")
    assert code == 2 and "--gradcheck only applies with --verify" in err


# --- the Python API ----------------------------------------------------------------------------


def test_python_api_result_and_progress():
    seen = []
    result = convcalc.verify(convcalc.load(SIMPLE), batch=1, seed=3,
                             progress=lambda done, total: seen.append((done, total)))
    assert isinstance(result, convcalc.VerificationResult) and result.ok
    assert seen == [(i, 16) for i in range(1, 17)]
    assert json.loads(json.dumps(result.to_dict()))["ok"] is True


@pytest.mark.parametrize("options, message", [
    ({"batch": 0}, "batch must be a whole number from 1 to"),
    ({"dtype": "float16"}, "dtype must be one of float32, float64"),
    ({"gradcheck": "sampled"}, "gradcheck must be True, False or one of directions, entries"),
])
def test_python_api_bad_arguments(options, message):
    with pytest.raises(ValueError, match=message):
        convcalc.verify(convcalc.load(SIMPLE), **options)


def test_python_api_gradcheck_methods():
    spec = convcalc.validate(SMALL)
    with pytest.raises(TypeError, match="verify\\(gradcheck\\): expected bool or str"):
        convcalc.verify(spec, gradcheck=1)
    for given, method in ((True, "directions"), ("directions", "directions"),
                          ("entries", "entries"), (False, None)):
        result = convcalc.verify(spec, gradcheck=given)
        assert result.ok and result.gradcheck is (method is not None)
        assert result.gradcheck_method == method
        assert len(result.gradcheck_end_to_end) == (2 if method == "directions" else 0)


# --- the memory estimate is honest ----------------------------------------------------------


def test_vgg16_at_batch_1_fits_the_default_limit():
    estimate = estimate_memory(convcalc.load(VGG16), batch=1)
    assert 1.6 * 2**30 < estimate.total < 2 * 2**30
    assert estimate.parts["parameters"] == 138_357_544 * 4


CONV_HEAVY = {"input": [64, 14, 14], "layers": [
    {"type": "conv", "filters": 128, "kernel": 3, "padding": 1}, "relu",
    {"type": "conv", "filters": 128, "kernel": 3, "padding": 1}]}


SMALL = {"input": [1, 12, 12], "layers": [
    {"type": "conv", "filters": 6, "kernel": 3}, "relu", {"type": "maxpool", "kernel": 2},
    "flatten", {"type": "dense", "units": 10}]}


RESIDUAL_YAML = """\
name: tiny-resnet
input: [3, 9, 9]
blocks:
  basic:
    params: {channels: null}
    layers:
      - {name: conv1, type: conv, filters: $channels, kernel: 3, padding: 1, bias: false}
      - {name: bn1, type: batchnorm}
      - {name: relu1, type: relu}
      - {name: conv2, type: conv, filters: $channels, kernel: 3, padding: 1, bias: false}
      - {name: bn2, type: batchnorm}
      - {name: add, type: add, inputs: [bn2, input]}
      - {name: relu2, type: relu}
  down:
    params: {channels: null}
    layers:
      - {name: conv1, type: conv, filters: $channels, kernel: 3, stride: 2, padding: 1,
         bias: false}
      - {name: bn1, type: batchnorm}
      - relu
      - {name: conv2, type: conv, filters: $channels, kernel: 3, padding: 1, bias: false}
      - {name: bn2, type: batchnorm}
      - {name: proj, type: conv, inputs: input, filters: $channels, kernel: 1, stride: 2,
         bias: false}
      - {name: proj_bn, type: batchnorm}
      - {name: add, type: add, inputs: [bn2, proj_bn]}
      - relu
layers:
  - {name: stem, type: conv, filters: 4, kernel: 3, padding: 1}
  - {name: layer1, type: basic, channels: 4, repeat: 2}
  - {name: layer2, type: down, channels: 8}
  - {name: side, type: conv, inputs: layer1, filters: 8, kernel: 3, stride: 2, padding: 1}
  - {name: branches, type: concat, inputs: [layer2, side]}
  - {type: global_avgpool}
  - {type: dense, units: 3}
"""


def test_verify_a_residual_net_through_the_cli(tmp_path):
    path = write(tmp_path, RESIDUAL_YAML)
    code, out, err = run("verify", path)
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert rows["layer1.0.add"].split()[1:] == ["add", "[4,", "9,", "9]", "✓", "0", "✓", "—"]
    assert rows["layer2.proj"].split()[1:6] == ["conv", "[8,", "5,", "5]", "✓"]
    assert rows["branches"].split()[1:6] == ["concat", "[16,", "5,", "5]", "✓"]
    assert "✓ verified: all 28 layers agree on output shapes, parameter counts and gradient " \
           "shapes" in out
    code, out, _ = run("verify", path, "--gradcheck", "--format", "json", "--batch", "3")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] and len(data["layers"]) == 28
    checked = {layer["name"]: layer["gradcheck_error"] for layer in data["layers"]}
    assert all(error is not None and error < 1e-6 for error in checked.values())
    assert data["memory"]["parts"]["branch_gradients"] > 0


@pytest.mark.parametrize("gradcheck", [True, "entries"])
def test_a_broken_merge_is_reported_at_its_layer(tmp_path, monkeypatch, gradcheck):
    real = engine.merge.Add.backward
    monkeypatch.setattr(engine.merge.Add, "backward",
                        lambda self, dout: [g * 1.01 for g in real(self, dout)])
    result = convcalc.verify(convcalc.loads(RESIDUAL_YAML), gradcheck=gradcheck)
    assert not result.ok
    failing = {row.name for row in result.failing}
    assert "layer2.add" in failing and "dense1" not in failing
    if gradcheck is True:          # each layer against its own forward: the adds alone
        assert failing == {"layer1.0.add", "layer1.1.add", "layer2.add"}
    real_forward = engine.merge.Concat.forward
    monkeypatch.setattr(engine.merge.Concat, "forward", lambda self, xs: real_forward(self, xs[:1]
                                                                                + xs))
    result = convcalc.verify(convcalc.loads(RESIDUAL_YAML))
    assert "[16, 5, 5] ≠ [24, 5, 5] ✗" in convcalc.render_verification(result)


def test_branch_gradients_in_the_estimate():
    """Zero for a chain; for relu(f(x) + x): x's gradient waits while f runs back, and
    the second share makes a new sum (2 × x's size per example)."""
    assert estimate_memory(convcalc.load(SIMPLE), 4).parts["branch_gradients"] == 0
    spec = convcalc.validate({"input": [4, 6, 6], "layers": [
        {"type": "conv", "filters": 4, "kernel": 3, "padding": 1}, "relu",
        {"type": "conv", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "add", "inputs": ["conv2", "input"]}, "relu"]})
    estimate = estimate_memory(spec, 4)
    assert estimate.parts["branch_gradients"] == 2 * 4 * 144 * 4
    with_shortcut = estimate.per_example
    spec.layers[3].inputs = ["conv2", "conv2"]          # no long shortcut: x's gradient
    assert estimate_memory(spec, 4).per_example < with_shortcut   # is not kept waiting


RESIDUAL = {"input": [3, 32, 32], "blocks": {
    "basic": BASIC_BLOCK,
    "down": {"params": {"channels": None}, "layers": [
        {"name": "conv1", "type": "conv", "filters": "$channels", "kernel": 3, "stride": 2,
         "padding": [[1, 0], [1, 0]], "bias": False},
        {"name": "bn1", "type": "batchnorm"}, "relu",
        {"name": "conv2", "type": "conv", "filters": "$channels", "kernel": 3, "padding": 1,
         "bias": False},
        {"name": "bn2", "type": "batchnorm"},
        {"name": "proj", "type": "conv", "inputs": "input", "filters": "$channels",
         "kernel": 1, "stride": 2, "bias": False},
        {"name": "proj_bn", "type": "batchnorm"},
        {"type": "add", "inputs": ["bn2", "proj_bn"]}, "relu"]}},
    "rounding": "floor", "layers": [
        {"type": "conv", "filters": 16, "kernel": 3, "padding": 1, "bias": False},
        {"type": "batchnorm"}, "relu",
        {"name": "layer1", "type": "basic", "channels": 16, "repeat": 2},
        {"name": "layer2.0", "type": "down", "channels": 32},
        {"name": "layer2.1", "type": "basic", "channels": 32},
        {"type": "global_avgpool"}, {"type": "dense", "units": 10}]}


@pytest.mark.parametrize("spec, batch, gradcheck", [
    (MIXED, 16, False), (CONV_HEAVY, 16, False), (SMALL, 8, "entries"), (MIXED, 4, "entries"),
    (RESIDUAL, 16, False), ({**RESIDUAL, "input": [3, 8, 8]}, 2, "entries"),
    (SMALL, 8, True), (MIXED, 4, True), ({**CONV_HEAVY, "input": [64, 8, 8]}, 2, True),
    ({**RESIDUAL, "input": [3, 16, 16]}, 2, True)])
def test_estimate_covers_a_measured_run(spec, batch, gradcheck):
    """tracemalloc sees every NumPy allocation: the estimate (without the interpreter's
    own memory) must cover the measured peak, and not by much more than half again.
    (``gradcheck=True`` is the directional check.)"""
    spec = convcalc.validate(spec)
    estimate = estimate_memory(spec, batch=batch, gradcheck=gradcheck)
    method = "directions" if gradcheck is True else gradcheck
    if gradcheck:   # first calls allocate for good (caches, NumPy's): not the run's
        engine.gradcheck(spec, batch=1, samples=3, method=method)
    tracemalloc.start()
    try:
        if gradcheck:
            engine.gradcheck(spec, batch=batch, samples=3, method=method)
        else:
            net = engine.build(spec, seed=0)
            x = np.random.default_rng(0).standard_normal((batch, *spec.input),
                                                         dtype=np.float32)
            y = net.forward(x)
            net.backward(np.ones_like(y))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = estimate.total - RUNTIME_BYTES
    print(f"peak {peak} estimate {arrays} ratio {arrays / peak:.2f}")
    assert peak <= arrays <= 1.6 * peak, (peak, arrays)


def test_estimate_is_affine_in_the_batch():
    spec = convcalc.load(SIMPLE)
    one, ten = estimate_memory(spec, 1), estimate_memory(spec, 10)
    assert ten.total - one.total == 9 * one.per_example and one.fixed == ten.fixed
    double = estimate_memory(spec, 1, "float64")
    assert double.parts["activations"] == 2 * one.parts["activations"]
    assert double.parts["masks"] == one.parts["masks"]          # bool masks: 1 byte a value


def test_memory_sizes():
    assert parse_bytes("2GiB") == 2 * 2**30 and parse_bytes("1.5g") == 3 * 2**29
    assert parse_bytes("800 MB") == 800 * 10**6 and parse_bytes("123") == 123
    assert format_bytes(2**31) == "2.00 GiB" and format_bytes(10) == "10 B"
    assert math.isclose(parse_bytes(format_bytes(5 * 2**20).replace(" ", "")), 5 * 2**20)
