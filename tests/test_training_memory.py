"""Issue 14 point 6, memory and units in the report: :func:`convcalc.footprint`'s training
memory, counted by PyTorch itself on the exported network (every tensor's
``numel() · element_size()``: the input, each layer's output seen by a forward hook, the
parameters, buffers and gradients after ``backward``, and the optimizer's state after a
step); the units of the table; ``--format csv``; the options of ``convcalc check``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import convcalc
from convcalc.cli import main
from convcalc.training_memory import DTYPE_BYTES, OPTIMIZER_STATE, footprint
from convcalc.render import CSV_COLUMNS, render_csv, render_table
from convcalc.units import format_bytes, format_count

ROOT = Path(__file__).resolve().parent.parent
SIMPLE = ROOT / "examples" / "simple-convnet.yaml"

#: a frozen conv, batchnorm (buffers), a residual add and a block: every figure non-zero
MIXED = {"input": [3, 12, 12], "blocks": {"pair": {"params": {"c": 8}, "layers": [
    {"type": "conv", "filters": "$c", "kernel": 3, "padding": 1}, "batchnorm", "relu"]}},
    "layers": [
        {"type": "conv", "name": "stem", "filters": 8, "kernel": 3, "padding": 1,
         "trainable": False},
        {"type": "pair", "name": "body"},
        {"type": "add", "inputs": ["body", "stem"]},
        {"type": "maxpool", "kernel": 2, "stride": 2}, "flatten",
        {"type": "dense", "units": 5}]}


def torch_counts(spec: Any, batch: int, dtype: str, optimizer: str) -> dict[str, Any]:
    """What PyTorch holds, in bytes, for one training step of the exported network."""
    torch = pytest.importorskip("torch")
    from test_export_pytorch import build

    from convcalc.export.pytorch import module_path

    report, net, exported = build(spec)
    kind = {"float32": torch.float32, "bfloat16": torch.bfloat16,
            "float16": torch.float16, "float64": torch.float64}[dtype]
    net = net.to(kind).train()
    modules = dict(net.named_modules())
    outputs: dict[str, int] = {}
    for layer in exported.layers:
        def hook(module: Any, args: Any, output: Any, name: str = layer.name) -> None:
            outputs[name] = output.numel() * output.element_size()
        modules[module_path(layer.path)].register_forward_hook(hook)
    x = torch.randn((batch, *exported.spec.input), generator=torch.Generator().manual_seed(0)
                    ).to(kind)
    net(x).float().sum().backward()
    trainable = [p for p in net.parameters() if p.requires_grad]
    step = {"sgd": lambda: torch.optim.SGD(trainable, lr=0.1),
            "momentum": lambda: torch.optim.SGD(trainable, lr=0.1, momentum=0.9),
            "adam": lambda: torch.optim.Adam(trainable, lr=0.1)}[optimizer]()
    step.step()
    state = sum(value.numel() * value.element_size()
                for per_param in step.state.values() for key, value in per_param.items()
                if key != "step")     # Adam's step counters: a scalar per tensor, not counted

    def size(tensors: Any) -> int:
        return sum(t.numel() * t.element_size() for t in tensors)

    return {
        "report": report, "input": size([x]), "layers": outputs,
        "params": size(net.parameters()),
        "buffers": size(b for name, b in net.named_buffers()
                        if not name.endswith("num_batches_tracked")),
        "gradients": size(p.grad for p in net.parameters() if p.grad is not None),
        "optimizer_state": state,
    }


@pytest.mark.parametrize("spec, batch, dtype, optimizer", [
    (SIMPLE, 3, "float32", "adam"), (MIXED, 2, "bfloat16", "momentum"),
    (MIXED, 1, "float64", "adam"), (MIXED, 4, "float32", "sgd"),
    (ROOT / "examples" / "squeeze-excitation.yaml", 2, "bfloat16", "adam")],
    ids=["simple-adam", "mixed-bf16-momentum", "mixed-f64-adam", "mixed-sgd", "se-bf16"])
def test_the_footprint_is_what_pytorch_holds(spec, batch, dtype, optimizer):
    loaded = convcalc.load(spec) if isinstance(spec, Path) else spec
    seen = torch_counts(loaded, batch, dtype, optimizer)
    memory = footprint(seen["report"], batch, dtype, optimizer)
    assert memory.input == seen["input"]
    assert dict(zip([row.name for row in seen["report"].layers], memory.layers)) == seen["layers"]
    assert memory.forward == memory.backward == sum(seen["layers"].values())
    assert (memory.params, memory.buffers, memory.gradients, memory.optimizer_state) == (
        seen["params"], seen["buffers"], seen["gradients"], seen["optimizer_state"])
    assert memory.total == (seen["input"] + 2 * memory.forward + seen["params"]
                            + seen["buffers"] + seen["gradients"] + seen["optimizer_state"])


def test_frozen_layers_have_no_gradients_or_state():
    report = convcalc.analyze(MIXED)
    frozen = report.total_params - report.trainable_params
    assert frozen == report.layer("stem").params == 8 * 27 + 8
    memory = footprint(report, optimizer="adam")
    assert memory.params - memory.gradients == frozen * 4
    assert memory.optimizer_state == 2 * memory.gradients


def test_every_figure_scales_with_the_batch_or_not_at_all():
    report = convcalc.analyze(MIXED)
    one, seven = footprint(report, 1), footprint(report, 7)
    assert (seven.input, seven.forward) == (7 * one.input, 7 * one.forward)
    assert (seven.params, seven.gradients) == (one.params, one.gradients)
    assert footprint(report, 1, "float16").forward * 2 == one.forward


@pytest.mark.parametrize("arguments, message", [
    ({"batch": 0}, "batch: expected at least 1, got 0"),
    ({"dtype": "int8"}, "dtype: expected one of float32, float16, bfloat16, float64, got 'int8'"),
    ({"optimizer": "rmsprop"}, "optimizer: expected one of sgd, momentum, adam, got 'rmsprop'"),
])
def test_bad_arguments_are_named(arguments, message):
    with pytest.raises(convcalc.ConvCalcError, match=re.escape(message)):
        footprint(convcalc.analyze(MIXED), **arguments)
    with pytest.raises(TypeError):
        footprint(convcalc.analyze(MIXED), batch=True)


# --- units --------------------------------------------------------------------------------


@given(st.integers(min_value=-10**18, max_value=10**18))
def test_a_count_in_units_is_the_count_to_two_decimals(count):
    text = format_count(count)
    if abs(count) < 1000:
        assert text == str(count)
        return
    number, unit = text.split(" ")
    scale = 1000 ** ("KMGTP".index(unit) + 1)
    assert abs(float(number) * scale - count) <= 0.005 * scale + 1e-6 * abs(count)
    assert 1 <= abs(float(number)) < 1000 or unit == "P"


@given(st.integers(min_value=0, max_value=2**62))
def test_a_size_in_units_is_the_size_to_two_decimals(count):
    text = format_bytes(count)
    if count < 1024:
        assert text == f"{count} B"
        return
    number, unit = text.split(" ")
    scale = 1024 ** (["KiB", "MiB", "GiB", "TiB", "PiB"].index(unit) + 1)
    assert abs(float(number) * scale - count) <= 0.005 * scale + 1e-6 * count
    assert 1 <= float(number) < 1024 or unit == "PiB"


def test_the_table_shows_units_and_the_summary_exact_counts():
    report = convcalc.analyze(convcalc.load(SIMPLE))
    text = render_table(report)
    assert re.search(r"^dense1 +dense +\[100\] +432\.10 K +432\.00 K +400 B ", text, re.M)
    assert "params: 433,890 ≈ 433.89 K (trainable 433,890, frozen 0)" in text
    exact = render_table(report, units=False)
    assert re.search(r"^conv1 +conv +\[30, 24, 24\] +780 +432,000 +69,120 B ", exact, re.M)
    assert "estimated total 3,821,616 B" in exact       # 4·(784 + 2·43,420 + 2·433,890)
    assert 4 * (784 + 2 * report.total_activations + 2 * 433_890) == 3_821_616


def test_a_block_row_shows_its_layers_activations_together():
    report = convcalc.analyze(MIXED)
    body = [row for row in report.layers if "body" in row.group]
    line = next(line for line in render_table(report, units=False).splitlines()
                if line.startswith("body "))
    assert f"{sum(row.activations for row in body) * 4:,} B" in line


# --- csv ----------------------------------------------------------------------------------


def test_csv_rows_hold_the_reports_exact_numbers():
    report = convcalc.analyze(MIXED)
    memory = footprint(report, 3, "bfloat16")
    rows = list(csv.DictReader(io.StringIO(render_csv(report, memory))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(report.layers)
    for row, layer in zip(rows, report.layers):
        assert row["layer"] == layer.name and row["type"] == layer.type
        assert row["output_shape"] == "x".join(map(str, layer.output_shape))
        assert row["inputs"].split() == list(layer.inputs)
        assert [int(row[key]) for key in ("params", "trainable_params", "buffers", "macs",
                                          "activations", "activation_bytes")] == [
            layer.params, layer.trainable_params, layer.buffers, layer.macs,
            layer.activations, layer.activations * 3 * 2]
        field = layer.receptive_field.to_dict()
        assert row["rf_size"] == "x".join(map(str, field["size"]))


def test_csv_puts_a_layers_problems_in_its_row():
    report = convcalc.analyze({"input": [1, 7, 7], "rounding": "floor", "layers": [
        {"type": "conv", "filters": 1, "kernel": 3, "stride": 3}, "relu"]})
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert "7/3 rounded down to 2" in rows[0]["problems"] and rows[1]["problems"] == ""


# --- the command line ---------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_check_takes_batch_dtype_and_optimizer():
    result = run("check", str(SIMPLE), "--format", "json", "--batch", "8", "--dtype",
                 "float16", "--optimizer", "momentum")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    memory = data["memory"]
    assert (memory["batch"], memory["dtype"], memory["optimizer"],
            memory["bytes_per_value"]) == (8, "float16", "momentum", 2)
    assert memory["input_bytes"] == 8 * 784 * 2
    assert memory["optimizer_state_bytes"] == memory["gradients_bytes"] == 433_890 * 2
    assert [layer["activation_bytes"] for layer in data["layers"]] == [
        layer["activations"] * 8 * 2 for layer in data["layers"]]
    assert memory["total_bytes"] == sum(value for key, value in memory.items()
                                        if key.endswith("_bytes") and key != "total_bytes")


def test_check_csv_and_units_options():
    result = run("check", str(SIMPLE), "--format", "csv")
    assert result.exit_code == 0 and result.output.startswith(",".join(CSV_COLUMNS) + "\n")
    assert len(result.output.strip().splitlines()) == 9
    units = run("check", str(SIMPLE)).output
    exact = run("check", str(SIMPLE), "--no-units").output
    assert "432.10 K" in units and "432,100" in exact and "432.10 K" not in exact
    markdown = run("check", str(SIMPLE), "--format", "markdown", "--no-units").output
    assert "| 432,100 |" in markdown


def test_check_verify_runs_the_engine_at_its_own_batch_unless_given():
    result = run("check", str(SIMPLE), "--verify", "--format", "json")
    data = json.loads(result.output)
    assert (data["memory"]["batch"], data["verification"]["batch"]) == (1, 2)
    result = run("check", str(SIMPLE), "--verify", "--format", "json", "--batch", "3")
    data = json.loads(result.output)
    assert (data["memory"]["batch"], data["verification"]["batch"]) == (3, 3)


def test_bad_option_values_are_usage_errors():
    for args in (["--dtype", "int8"], ["--optimizer", "lbfgs"], ["--batch", "0"],
                 ["--format", "csv", "--verify"]):
        result = run("check", str(SIMPLE), *args)
        assert result.exit_code == 2, (args, result.output)


def test_dtype_and_optimizer_choices_are_the_footprints():
    """The CLI's choices and the service's query types are these two tables."""
    from typing import get_args

    from convcalc.training_memory import Dtype, Optimizer

    assert DTYPE_BYTES == {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
    assert OPTIMIZER_STATE == {"sgd": 0, "momentum": 1, "adam": 2}
    assert get_args(Dtype) == tuple(DTYPE_BYTES) and get_args(Optimizer) == tuple(OPTIMIZER_STATE)
    options = {option.name: option for option in main.commands["check"].params}
    assert list(options["dtype"].type.choices) == list(DTYPE_BYTES)
    assert list(options["optimizer"].type.choices) == list(OPTIMIZER_STATE)


# --- verify: the measured peak beside the estimate ---------------------------------------


@pytest.mark.parametrize("spec", [SIMPLE, MIXED], ids=["simple", "mixed"])
def test_verify_measures_its_peak_beside_the_estimate(spec):
    pytest.importorskip("numpy")
    from convcalc.memory import RUNTIME_BYTES

    result = convcalc.verify(convcalc.load(spec) if isinstance(spec, Path) else spec, batch=2)
    arrays = result.memory.total - RUNTIME_BYTES
    assert 0.5 * arrays <= result.measured_peak <= 1.1 * arrays, (result.measured_peak, arrays)
    data = result.to_dict()["memory"]
    assert data["measured_peak_bytes"] == result.measured_peak
    assert data["runtime_bytes"] == RUNTIME_BYTES
    text = convcalc.render_verification(result)
    assert f"measured {format_bytes(result.measured_peak)} of arrays" in text


def test_verify_leaves_a_callers_trace_alone():
    import tracemalloc

    tracemalloc.start()
    try:
        result = convcalc.verify(MIXED, batch=1)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
    assert result.measured_peak is None and result.ok
    assert "measured" not in convcalc.render_verification(result)


# --- a report on an input whose sizes are open -------------------------------------------


OPEN_NO_SIZE_FITS = {"input": [3, None, None], "layers": [
    {"type": "conv", "filters": 4, "kernel": 3}, {"type": "add", "inputs": ["conv1", "input"]}]}


def test_an_open_input_has_no_input_size_nor_total():
    report = convcalc.analyze({"input": [3, None, None], "layers": ["relu"]})
    memory = footprint(report, batch=4)
    assert (memory.input, memory.total, memory.forward) == (None, None, 0)
    assert (memory.to_dict()["input_bytes"], memory.to_dict()["total_bytes"]) == (None, None)
    text = render_table(report)
    assert "input [3, null, null] → output —" in text
    assert "memory at batch 1, float32: input —," in text and "estimated total —" in text
    assert json.loads(convcalc.render_json(report))["memory"]["total_bytes"] is None
    assert render_csv(report).splitlines()[1] == "relu1,relu,input,,,,,,,,,,,,,"


def test_check_on_an_open_input_no_size_suits_is_a_report_not_a_traceback(tmp_path):
    """Found by hand: the memory lines multiplied the open sizes (a TypeError)."""
    import yaml

    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(OPEN_NO_SIZE_FITS), encoding="utf-8")
    for fmt in ("table", "markdown", "json", "csv"):
        result = run("check", str(path), "--format", fmt)
        assert result.exit_code == 1 and (result.exception is None or isinstance(
            result.exception, SystemExit)), (fmt, result.exception, result.output)
        assert "Traceback" not in result.output
