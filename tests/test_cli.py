"""The command line: version, help, formats, stdin, exit codes, --strict, schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import convcalc
from convcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CS231N = str(EXAMPLES / "cs231n-conv.yaml")

NON_TILING = "input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 3}\n"
FLOOR = "input: [1, 7, 7]\nrounding: floor\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 3}\n"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    return result.exit_code, result.stdout, result.stderr


def entry_point() -> list[str]:
    script = Path(sys.executable).parent / "convcalc"
    found = str(script) if script.exists() else shutil.which("convcalc")
    if found is None:
        pytest.skip("the convcalc script is not installed")
    return [found]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- version and help ----------------------------------------------------------------------


def test_version_matches_the_package_and_pyproject() -> None:
    code, out, _ = run("--version")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert code == 0
    assert out == f"convcalc, version {pyproject['project']['version']}\n"
    assert convcalc.__version__ == pyproject["project"]["version"]


def test_help_shows_a_spec_and_the_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert "input: [3, 32, 32]" in out and "convcalc check net.yaml" in out
    for command in ("check", "schema", "layers"):
        assert f"  {command} " in out


def test_check_help_shows_examples_and_exit_codes() -> None:
    code, out, _ = run("check", "--help")
    assert code == 0
    assert "Examples:" in out
    assert "convcalc check examples/cs231n-conv.yaml" in out
    assert "cat net.json | convcalc check -" in out
    assert "--strict" in out and "--format [csv|json|markdown|table]" in out
    assert "0 clean, 1 errors" in out


def test_layers_lists_every_type() -> None:
    code, out, _ = run("layers")
    assert code == 0
    for tag in convcalc.spec.MODEL_BY_TYPE:
        assert tag in out


def test_layers_prints_each_whole_description_as_plain_text_with_its_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    code, out, _ = run("layers")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 72
    for marker in ("``", ":class:", ":func:", ":meth:", "**"):
        assert marker not in out
    flat = " ".join(out.split())
    # the whole docstring, not its first line: pool's second paragraph, in plain text
    assert "stride defaults to kernel. ceil_mode: true rounds a non-integer output size" in flat
    assert "(PyTorch's count_include_pad=True)" in flat
    # every option of every kind, with its type, default and description
    assert "filters: int ≥ 1 (required) Number of filters: the output channels." in flat
    assert "stride: int ≥ 1 or list (one per axis) of int ≥ 1 (default 1) Step between" in flat
    assert 'padding_mode: "zeros" | "reflect" | "replicate" | "circular" (default "zeros")' in flat
    for model in convcalc.spec.LAYER_MODELS:
        for name, field in model.model_fields.items():
            if name != "type":
                assert f"{name}: " in out and " ".join((field.description or "").split()
                                                       )[:40] in flat, (model, name)


# --- formats -------------------------------------------------------------------------------


def test_table() -> None:
    code, out, err = run("check", CS231N)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "cs231n-conv"
    assert lines[1].split() == ["layer", "type", "output", "shape", "params", "MACs",
                                "activations", "receptive", "field"]
    # 10 filters × 32·32 outputs × 75 weights = 768,000 MACs; 10·32·32·4 bytes = 40 KiB;
    # field 5, jump 1, padding 2
    assert lines[3].split() == ["conv1", "conv", "[10,", "32,", "32]", "760", "768.00", "K",
                                "40.00", "KiB", "5", "/", "1", "/", "2"]
    assert "params: 760 (trainable 760, frozen 0); buffers: 0; MACs: 768,000 ≈ 768.00 K" \
        in lines


def test_markdown() -> None:
    code, out, _ = run("check", CS231N, "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "### cs231n-conv"
    assert ("| layer | type | output shape | params | MACs | activations | receptive field |"
            in lines)
    assert "|---|---|---|---:|---:|---:|---|" in lines
    assert "| conv1 | conv | [10, 32, 32] | 760 | 768.00 K | 40.00 KiB | 5 / 1 / 2 |" in lines


def test_markdown_lists_problems() -> None:
    code, out, _ = run("check", "-", "--format", "markdown", input=NON_TILING)
    assert code == 1
    assert "**Problems**" in out
    assert any(line.startswith("- **error** <stdin>:3:") and "7/3" in line
               for line in out.splitlines())


LAYER_KEYS = {"name", "type", "input_shape", "output_shape", "params", "trainable_params",
              "buffers", "macs", "activations", "activation_bytes", "receptive_field", "line",
              "inputs", "group"}
TOP_KEYS = {"ok", "name", "input_shape", "output_shape", "layers", "total_params",
            "trainable_params", "total_buffers", "total_macs", "total_activations", "problems",
            "groups", "memory"}


def test_json_contract() -> None:
    code, out, _ = run("check", "-", "--format", "json", input=NON_TILING)
    assert code == 1
    data = json.loads(out)
    # the keys documented in convcalc/report.py (the list, plus output_shape,
    # activations, line, total_activations, and the graph's inputs/group/groups)
    assert set(data) == TOP_KEYS
    (layer,) = data["layers"]
    assert set(layer) == LAYER_KEYS
    assert set(layer["receptive_field"]) == {"size", "jump", "padding"}
    assert layer["receptive_field"] == {"size": [3, 3], "jump": [3, 3], "padding": [0, 0]}
    assert (layer["input_shape"], layer["output_shape"]) == ([1, 7, 7], [1, 2, 2])
    assert (layer["params"], layer["macs"], layer["activations"]) == (10, 36, 4)
    advice, problem = data["problems"]      # the input's nearest valid sizes, the layer's
    assert {"layer", "severity", "message"} <= set(problem)
    assert (problem["layer"], problem["severity"]) == ("conv1", "error")
    assert "7/3" in problem["message"]
    assert (advice["field"], advice["severity"]) == ("input", "error")
    assert advice["message"].startswith("the input [1, 7, 7] does not suit this network: "
                                        "H = 7: nearest valid 6 or 9")


def test_json_of_every_example_parses() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        code, out, _ = run("check", str(path), "--format", "json")
        data = json.loads(out)
        assert code == 0 and set(data) == TOP_KEYS and data["problems"] == []
        assert all(set(layer) == LAYER_KEYS for layer in data["layers"])


def test_json_spec_error_goes_to_stdout_as_json() -> None:
    code, out, err = run("check", "-", "--format", "json",
                         input='{"input": [3, 8, 8], "layers": [{"type": "conv", "kernel": 3}]}')
    assert (code, err) == (1, "")
    data = json.loads(out)
    assert data["ok"] is False and data["error"] == "SpecError"
    assert data["problems"][0]["field"] == "layers[0].filters"


# --- stdin, exit codes, --strict -------------------------------------------------------------


def test_stdin_through_the_real_entry_point() -> None:
    spec = (EXAMPLES / "simple-convnet.yaml").read_text(encoding="utf-8")
    done = subprocess.run([*entry_point(), "check", "-", "--format", "json"], input=spec,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 433_890


def test_stdin_errors_name_stdin() -> None:
    code, out, err = run("check", "-", input=NON_TILING.replace("stride: 3", "stride: 0"))
    assert (code, out) == (1, "")
    assert err == "<stdin>:3: layers[0].stride: must be ≥ 1 (got 0)\n"


@pytest.mark.parametrize(("text", "strict", "code"), [
    ("input: [3, 8, 8]\nlayers: [relu]\n", False, 0),
    ("input: [3, 8, 8]\nlayers: [relu]\n", True, 0),
    (FLOOR, False, 0),
    (FLOOR, True, 1),
    (NON_TILING, False, 1),
    (NON_TILING, True, 1),
    ("input: [3, 8, 8]\nlayers: []\n", False, 1),
    ("not: [valid", False, 1),
])
def test_exit_codes(text: str, strict: bool, code: int) -> None:
    args = ["check", "-"] + (["--strict"] if strict else [])
    assert run(*args, input=text)[0] == code


@pytest.mark.parametrize("args", [
    ["check"],                                  # missing FILE
    ["check", CS231N, "--format", "xml"],       # bad choice
    ["check", CS231N, "--nope"],                # unknown option
    ["frobnicate"],                             # unknown command
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 2 and "Usage:" in err and "Traceback" not in err


def test_unreadable_file_is_exit_1_without_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    code, out, err = run("check", missing)
    assert code == 1 and err == f"{missing}: cannot read: No such file or directory\n"


def test_entry_point_exit_codes(tmp_path: Path) -> None:
    good, bad = write(tmp_path, "good.yaml", FLOOR), write(tmp_path, "bad.yaml", NON_TILING)
    for args, code in (([good], 0), ([good, "--strict"], 1), ([bad], 1), (["--format"], 2)):
        done = subprocess.run([*entry_point(), "check", *args], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == code, (args, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr


# --- trainable, batchnorm --------------------------------------------------------------------


def test_frozen_layers() -> None:
    spec = ("input: [3, 8, 8]\nlayers:\n"
            "  - {type: conv, filters: 4, kernel: 3, trainable: false}\n"   # 4·27 + 4 = 112
            "  - flatten\n"
            "  - {type: dense, units: 2}\n")                                 # 4·6·6·2 + 2 = 290
    code, out, _ = run("check", "-", "--format", "json", input=spec)
    data = json.loads(out)
    assert code == 0
    assert [layer["trainable_params"] for layer in data["layers"]] == [0, 0, 290]
    assert (data["total_params"], data["trainable_params"]) == (402, 290)
    code, out, _ = run("check", "-", input=spec)
    assert "params: 402 (trainable 290, frozen 112); buffers: 0;" in out


def test_batchnorm_counts_2c_params_and_2c_buffers() -> None:
    spec = "input: [16, 8, 8]\nlayers:\n  - batchnorm\n  - {type: batchnorm, trainable: false}\n"
    data = json.loads(run("check", "-", "--format", "json", input=spec)[1])
    assert [(l["params"], l["buffers"], l["trainable_params"]) for l in data["layers"]] == [
        (32, 32, 32), (32, 32, 0)]
    assert (data["total_params"], data["total_buffers"], data["trainable_params"]) == (64, 64, 32)


# --- schema ----------------------------------------------------------------------------------


def schema() -> dict:
    code, out, _ = run("schema")
    assert code == 0
    return json.loads(out)


def test_schema_is_the_library_schema() -> None:
    data = schema()
    assert data == json.loads(json.dumps(convcalc.json_schema()))
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(data["required"]) == {"input", "layers"}


jsonschema = pytest.importorskip("jsonschema")

BAD_SPECS = {
    "stride 0": {"input": [3, 8, 8], "layers": [{"type": "conv", "filters": 1, "kernel": 3,
                                                 "stride": 0}]},
    "unknown key": {"input": [3, 8, 8], "layers": [{"type": "conv", "filters": 1, "kernel": 3,
                                                    "strid": 2}]},
    "unknown type": {"input": [3, 8, 8], "layers": [{"type": "maxpol", "kernel": 2}]},
    "missing filters": {"input": [3, 8, 8], "layers": [{"type": "conv", "kernel": 3}]},
    "bare conv": {"input": [3, 8, 8], "layers": ["conv"]},
    "no layers": {"input": [3, 8, 8], "layers": []},
    "no input": {"layers": ["relu"]},
    "bad padding": {"input": [3, 8, 8], "layers": [{"type": "conv", "filters": 1, "kernel": 3,
                                                    "padding": "sam"}]},
    "bool filters": {"input": [3, 8, 8], "layers": [{"type": "conv", "filters": True,
                                                     "kernel": 3}]},
    "top-level key": {"input": [3, 8, 8], "layers": ["relu"], "rounding": "nearest"},
}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_schema_accepts_every_example(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    validator.validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_schema_and_loader_both_reject(name: str) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    assert not validator.is_valid(BAD_SPECS[name])
    with pytest.raises(convcalc.SpecError):
        convcalc.validate(BAD_SPECS[name])


def test_schema_accepts_what_the_loader_accepts() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    spec = {"input": [2, 9, 9, 9], "rounding": "ceil", "layers": [
        {"type": "conv", "filters": 4, "kernel": [3, 3, 1], "padding": [1, [0, 1], 0],
         "dilation": [1, 2, 1], "groups": 2},
        {"type": "conv", "filters": 4, "kernel": 1, "groups": "depthwise"},
        "batchnorm", {"type": "leaky_relu", "negative_slope": 0.2},
        {"type": "maxpool", "kernel": 2, "ceil_mode": True},
        {"type": "conv_transpose", "filters": 2, "kernel": 2, "stride": 2,
         "output_padding": [1, 0, 0]},
        "global_avgpool", {"type": "dropout", "rate": 0.25},
        {"type": "dense", "units": 3, "trainable": False, "name": "head"}, "softmax"]}
    validator.validate(spec)
    convcalc.validate(spec)


def test_cwd_independent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "net.yaml", NON_TILING)
    code, out, _ = run("check", "net.yaml")
    assert code == 1 and "net.yaml:3: layers[0] (conv1): H, W: (7 − 3) / 3 + 1 = 7/3" in out
    assert os.listdir(tmp_path) == ["net.yaml"]
