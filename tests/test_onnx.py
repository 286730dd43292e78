"""ONNX both ways: ``convcalc export --to onnx`` and ``convcalc import model.onnx``.

Export (convcalc/export/onnx.py), for every kind's examples, every file in examples/,
every zoo model and random chains and graphs (tests/test_agreement.py's strategies):
``onnx.checker.check_model`` (full check) passes; every value the graph computes is
annotated, and ``onnx.shape_inference.infer_shapes`` (strict) agrees with every
annotation; onnxruntime runs it in float32 and its output equals the engine's with the
same weights copied in (evaluation mode).  Zoo models and the large example files are
checked at their own input with zero weights, and run at a small valid size.

Import (convcalc/importers/onnx.py): spec → ONNX → import → spec gives the same report
(names, output shapes, parameters, buffers, MACs, receptive fields; the types but where
a kind is written with another's operator, :data:`LOSSY`) for every zoo model;
torchvision models exported by ``torch.onnx.export`` (tests/fixtures/onnx, made by
make_fixtures.py there) import with torchvision's own parameter and buffer counts and
onnxruntime's output shape; hostile files fail in one line, in bounded time and memory.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import small_inputs

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from test_agreement import graphs, specs  # noqa: E402

import convcalc  # noqa: E402
import engine  # noqa: E402
from convcalc import zoo  # noqa: E402
from convcalc.cli import main  # noqa: E402
from convcalc.export import onnx as exporter  # noqa: E402
from convcalc.importers import onnx as importer  # noqa: E402
from convcalc.spec import LAYER_MODELS, Example  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "onnx"
EXAMPLE_FILES = sorted((ROOT / "examples").glob("*.yaml"))
KIND_EXAMPLES = [pytest.param(example, id=f"{model.__name__}-{index}")
                 for model in LAYER_MODELS for index, example in enumerate(model.examples)]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: float32 on both sides, other orders of summation: the difference relative to the
#: output's size
TOLERANCE = 2e-4
#: kinds the export writes with another kind's operators: (spec type, imported type)
LOSSY = {("drop_path", "identity"), ("adaptive_avgpool", "avgpool"),
         ("adaptive_maxpool", "maxpool"), ("adaptive_avgpool", "identity"),
         ("adaptive_maxpool", "identity")}

ort.set_default_logger_severity(3)


# --- exporting and checking ---------------------------------------------------------------


def engine_weights(net: Any) -> dict[str, dict[str, Any]]:
    weights: dict[str, dict[str, Any]] = {}
    for source in (net.parameters(), net.buffers()):
        for layer, arrays in source.items():
            weights.setdefault(layer, {}).update(arrays)
    return weights


def shapes_of(infos: Any) -> dict[str, list[Any]]:
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in infos}


def check_model(model: Any) -> None:
    """The checker; every computed value annotated; shape inference agrees."""
    onnx.checker.check_model(model, full_check=True)
    annotated = shapes_of(list(model.graph.value_info) + list(model.graph.output))
    computed = [out for node in model.graph.node if node.op_type != "Constant"
                for out in node.output]
    assert set(computed) <= set(annotated), set(computed) - set(annotated)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for name, dims in shapes_of(list(inferred.graph.value_info)
                                + list(inferred.graph.output)).items():
        if name in annotated:
            assert dims == annotated[name], (name, dims, annotated[name])


def run_both(spec: Any, seed: int = 0, batch: int = 2) -> None:
    """The model with the engine's weights: checked, and run by onnxruntime and by
    the engine on the same batch (evaluation mode)."""
    spec = convcalc.validate(spec)
    report = convcalc.analyze(spec, fields=False)
    net = engine.build(spec, seed=seed, dtype="float32").eval()
    model = exporter.build_model(spec, report, weights=engine_weights(net))
    check_model(model)
    x = np.random.default_rng(seed + 1).standard_normal((batch, *spec.input)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString())
    (got,) = session.run(None, {"input": x})
    want = net.forward(x)
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1.0)
    assert float(np.abs(got - want).max()) <= TOLERANCE * scale, \
        (float(np.abs(got - want).max()), scale)


runnable = small_inputs.runs


# --- export: coverage ------------------------------------------------------------------------


@pytest.mark.parametrize("model", LAYER_MODELS, ids=lambda m: m.__name__)
def test_every_kind_has_an_onnx_exporter(model: type) -> None:
    assert model in exporter.EXPORTERS, f"{model.__name__} has no ONNX exporter"
    assert exporter.OPERATORS[model]


def test_no_exporter_for_a_kind_that_does_not_exist() -> None:
    assert set(exporter.EXPORTERS) <= set(LAYER_MODELS)
    assert exporter.missing_exporters() == []


# --- export: proofs --------------------------------------------------------------------------


@pytest.mark.parametrize("example", KIND_EXAMPLES)
def test_kind_examples(example: Example) -> None:
    run_both(example.spec())


def small_input(spec: Any, target: int = 64) -> Any:
    """:func:`small_inputs.small_input`, at 64 by default."""
    return small_inputs.small_input(spec, target)


def check_native(spec: Any) -> None:
    """The model at its own input, its weights graph inputs of their shapes (the same
    graph, without hundreds of megabytes): checker and shape inference."""
    report = convcalc.analyze(spec, fields=False)
    check_model(exporter.build_model(spec, report, weights_as_inputs=True))


#: example files that are a zoo model (run there)
SAME_AS_ZOO = {"vgg16.yaml"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_files(path: Path) -> None:
    spec = convcalc.load(str(path))
    check_native(spec)
    if path.name not in SAME_AS_ZOO:
        run_both(small_input(spec, 32))


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model(name: str) -> None:
    spec = convcalc.load(zoo.label(name))
    check_native(spec)
    run_both(spec if name == "inception_v3" else small_input(spec, 64), batch=1)


@SETTINGS
@given(specs())
def test_random_chains(spec: Any) -> None:
    if runnable(spec):
        run_both(spec)


@SETTINGS
@given(graphs())
def test_random_graphs(spec: Any) -> None:
    if runnable(spec):
        run_both(spec)


def test_pool_whose_last_ceil_window_would_start_in_the_padding() -> None:
    """ceil on one axis, a dropped window on the other: every reader counts the same."""
    spec = {"input": [1, 5, 12], "layers": [
        {"type": "maxpool", "kernel": [2, 1], "stride": 2, "ceil_mode": True}]}
    assert convcalc.analyze(spec).layers[0].output_shape == (1, 3, 6)
    run_both(spec)


def test_random_weights_are_seeded_and_zeros_are_zero() -> None:
    spec = convcalc.validate({"input": [2, 6, 6], "layers": [
        {"type": "conv", "filters": 3, "kernel": 3}, "batchnorm"]})
    report = convcalc.analyze(spec)
    first, again = (exporter.build_model(spec, report, seed=5) for _ in range(2))
    other = exporter.build_model(spec, report, seed=6)
    zeros = exporter.build_model(spec, report, zeros=True)

    def weight(model: Any, name: str = "conv1.weight") -> Any:
        tensor = next(t for t in model.graph.initializer if t.name == name)
        return onnx.numpy_helper.to_array(tensor)
    assert np.array_equal(weight(first), weight(again))
    assert not np.array_equal(weight(first), weight(other))
    assert np.all(np.abs(weight(first)) > 0) and np.all(np.abs(weight(first)) < 1)
    assert not weight(zeros).any()
    assert np.all(weight(zeros, "batchnorm1.running_var") == 1)


def test_the_cli_writes_a_model(tmp_path: Path) -> None:
    target = tmp_path / "net.onnx"
    result = CliRunner().invoke(main, ["export", "examples/simple-convnet.yaml", "--to",
                                       "onnx", "-o", str(target), "--seed", "3"])
    assert result.exit_code == 0, result.output
    model = onnx.load(str(target))
    check_model(model)
    assert [o.name for o in model.graph.output] == ["softmax1"]
    assert model.opset_import[0].version == exporter.OPSET
    usage = CliRunner().invoke(main, ["export", "examples/simple-convnet.yaml", "--zeros"])
    assert usage.exit_code == 2 and "--zeros only applies with --to onnx" in usage.output


# --- import: round trips ------------------------------------------------------------------------


def report_rows(report: Any) -> list[tuple[Any, ...]]:
    return [(row.name, row.output_shape, row.params, row.trainable_params, row.buffers,
             row.macs, row.receptive_field.to_dict() if row.receptive_field else None)
            for row in report.layers]


def round_trip(spec: Any) -> tuple[Any, Any]:
    spec = convcalc.validate(spec)
    report = convcalc.analyze(spec)
    data = exporter.to_onnx(spec, report, zeros=True)
    imported = importer.import_onnx(data, "model.onnx")
    return report, convcalc.analyze(imported.spec())


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_round_trip(name: str) -> None:
    report, again = round_trip(convcalc.load(zoo.label(name)))
    assert report_rows(again) == report_rows(report)
    changed = {(a.type, b.type) for a, b in zip(report.layers, again.layers) if a.type != b.type}
    assert changed <= LOSSY, changed
    assert (again.total_params, again.total_buffers, again.total_macs) == \
        (report.total_params, report.total_buffers, report.total_macs)


def reads_back(spec: Any) -> bool:
    """Whether the export of ``spec`` is all operators the import reads: not when a
    layer is written as a decomposition (docs/export.rst lists them) — an adaptive pool
    with uneven windows, softplus with another beta or threshold, an even-size lrn,
    cubic upsampling in 1-D or 3-D, a group norm on a flat input, a transposed conv
    whose output_padding onnxruntime does not take."""
    spec = convcalc.validate(spec)
    for layer, row in zip(spec.layers, convcalc.analyze(spec).layers):
        sizes, out = row.input_shapes[0][1:], row.output_shape[1:]
        if layer.type.startswith("adaptive_") and not all(o == 1 for o in out) and \
                not all(n % o == 0 for n, o in zip(sizes, out)):
            return False
        if layer.type == "softplus" and (layer.beta, layer.threshold) != (1.0, 20.0):
            return False
        if layer.type == "lrn" and layer.size % 2 == 0:
            return False
        if layer.type == "upsample" and layer.mode == "cubic" and len(sizes) != 2:
            return False
        if layer.type == "groupnorm" and not sizes:
            return False
        if layer.type == "conv_transpose":
            dims = len(sizes)
            pads = [row.window.padding[i][1] for i in range(dims)]
            out_pad = [layer.output_padding] * dims if isinstance(layer.output_padding, int) \
                else list(layer.output_padding)
            if any(op >= s and op > pa for op, s, pa in zip(out_pad, row.window.stride, pads)):
                return False    # written as ConvTranspose, Pad and Add (onnxruntime's limit)
    return True


@pytest.mark.parametrize("example", KIND_EXAMPLES)
def test_kind_example_round_trip(example: Example) -> None:
    if not reads_back(example.spec()):
        with pytest.raises(importer.OnnxImportError):
            round_trip(example.spec())
        return
    report, again = round_trip(example.spec())
    assert report_rows(again) == report_rows(report)


@SETTINGS
@given(specs())
def test_random_chain_round_trip(spec: Any) -> None:
    if runnable(spec) and reads_back(spec):
        report, again = round_trip(spec)
        assert report_rows(again) == report_rows(report)


@SETTINGS
@given(graphs())
def test_random_graph_round_trip(spec: Any) -> None:
    """Branches, merges of three, broadcasting merges and dead branches read back."""
    if runnable(spec) and reads_back(spec):
        report, again = round_trip(spec)
        assert report_rows(again) == report_rows(report)


# --- import: torchvision's files ----------------------------------------------------------------

TORCHVISION = json.loads((FIXTURES / "fixtures.json").read_text())


def filled(model: Any, seed: int = 0) -> Any:
    """The fixture with random values in every emptied initializer (its recorded dims)."""
    rng = np.random.default_rng(seed)
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and not tensor.raw_data and \
                not tensor.float_data:
            values = rng.uniform(0.5, 1.0, tuple(tensor.dims)).astype(np.float32)
            tensor.CopyFrom(onnx.numpy_helper.from_array(values, tensor.name))
    return model


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_model(name: str) -> None:
    meta = TORCHVISION[name]
    path = FIXTURES / meta["file"]
    imported = importer.import_onnx_file(str(path))
    spec = imported.spec()
    if meta["open_sizes"]:
        assert spec.open_axes == (0, 1)
    spec = spec.with_input(meta["input"])
    report = convcalc.analyze(spec)
    assert not report.errors, report.errors
    assert report.total_params == meta["params"]
    assert report.total_buffers == meta["buffers"]
    assert list(report.layers[-1].output_shape) == meta["output"]
    session = ort.InferenceSession(filled(onnx.load(str(path))).SerializeToString())
    x = np.zeros((1, *meta["input"]), np.float32)
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    assert list(out.shape[1:]) == meta["output"]


def test_torch_names_become_module_paths() -> None:
    text = importer.import_onnx_file(str(FIXTURES / "resnet50.onnx")).text
    assert "- {name: layer1.0.conv1, type: conv, filters: 64, kernel: 1" in text
    assert text.startswith("# Imported by convcalc")
    assert "opset 17 (ai.onnx), written by pytorch" in text


# --- import: graphs made here ---------------------------------------------------------------------


def graph_model(nodes: list[Any], input_shape: list[Any], output: str = "y",
                initializers: list[Any] = (), value_info: list[Any] = (), opset: int = 17,
                inputs: list[Any] | None = None) -> bytes:
    graph = helper.make_graph(
        nodes, "g", inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             input_shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        list(initializers), value_info=list(value_info))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]
                             ).SerializeToString()


def weight(name: str, dims: list[int]) -> Any:
    return onnx.numpy_helper.from_array(np.zeros(dims, np.float32), name)


def ints(name: str, values: list[int]) -> Any:
    return onnx.numpy_helper.from_array(np.array(values, np.int64), name)


def test_view_flatten_chain_is_folded_into_flatten() -> None:
    """``x.view(x.size(0), -1)`` as torch.onnx.export writes it, on an open input."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[3, 3]),
        helper.make_node("Shape", ["c"], ["s"], name="/Shape"),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor(
            "zero", TensorProto.INT64, [], [0])),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus"], ["shape"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["c", "shape"], ["y"], name="/Reshape"),
    ]
    data = graph_model(nodes, ["batch", 3, "h", "w"],
                       initializers=[weight("w", [4, 3, 3, 3]), ints("axes", [0]),
                                     ints("minus", [-1])])
    imported = importer.import_onnx(data, "view.onnx")
    assert imported.data["input"] == [3, None, None]
    assert [layer["type"] for layer in imported.data["layers"]] == ["conv", "flatten"]
    assert [layer["name"] for layer in imported.data["layers"]] == ["conv", "reshape"]
    report = convcalc.analyze(imported.spec().with_input([3, 10, 10]))
    assert report.layers[-1].output_shape == (256,)


def scalar(name: str, value: float) -> Any:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name, TensorProto.FLOAT, [], [value]))


def test_gelu_written_with_erf_is_gelu() -> None:
    """``x · ½(1 + erf(x/√2))``, as torch.onnx.export writes nn.GELU before opset 20."""
    nodes = [scalar("root", math.sqrt(2)), scalar("one", 1.0), scalar("half", 0.5),
             helper.make_node("Div", ["x", "root"], ["d"], name="/act/Div"),
             helper.make_node("Erf", ["d"], ["e"], name="/act/Erf"),
             helper.make_node("Add", ["e", "one"], ["a"], name="/act/Add"),
             helper.make_node("Mul", ["x", "a"], ["m"], name="/act/Mul"),
             helper.make_node("Mul", ["m", "half"], ["y"], name="/act/Mul_1")]
    (layer,) = importer.import_onnx(graph_model(nodes, [1, 3, 4, 4]), "g.onnx").data["layers"]
    assert layer == {"name": "act", "type": "gelu"}


def test_ceil_mode_states_which_rule_the_file_follows() -> None:
    """MaxPool 2/2 pad 1 with ceil_mode on 5: a 4th window would start in the padding;
    onnx.shape_inference keeps it (4), onnxruntime and PyTorch drop it (3)."""
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2],
                            strides=[2], pads=[1, 1], ceil_mode=1)
    plain = graph_model([node], [1, 1, 5])
    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(plain))
    stated = model.SerializeToString()
    imported = importer.import_onnx(stated, "pool.onnx")
    (warning,) = imported.warnings
    assert "onnx.shape_inference keeps it ([4])" in warning
    assert "the file's annotation states [4]" in warning
    assert "# pool: ceil_mode: along L" in imported.text
    assert convcalc.analyze(imported.spec()).layers[0].output_shape == (1, 3)
    session = ort.InferenceSession(plain)
    (out,) = session.run(None, {"x": np.zeros((1, 1, 5), np.float32)})
    assert out.shape == (1, 1, 3)
    assert "the file states no size" in importer.import_onnx(plain, "p.onnx").warnings[0]


@pytest.mark.parametrize("attrs, padding", [
    ({"auto_pad": "SAME_UPPER"}, "same"),
    ({"auto_pad": "SAME_LOWER"}, [[1, 0], [1, 0]]),
    ({"auto_pad": "VALID"}, None),
    ({"pads": [0, 1, 1, 0]}, [[0, 1], [1, 0]]),
])
def test_conv_padding_rules(attrs: dict[str, Any], padding: Any) -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[2, 2],
                            strides=[2, 2], **attrs)
    data = graph_model([node], [1, 3, 7, 7], initializers=[weight("w", [4, 3, 2, 2])])
    (layer,) = importer.import_onnx(data, "c.onnx").data["layers"]
    assert layer.get("padding") == padding
    session = ort.InferenceSession(data)
    (out,) = session.run(None, {"x": np.zeros((1, 3, 7, 7), np.float32)})
    spec = importer.import_onnx(data, "c.onnx").spec()
    assert convcalc.analyze(spec).layers[0].output_shape == out.shape[1:]


def test_every_node_convcalc_cannot_express_is_listed() -> None:
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="erf"),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Sin", ["b"], ["c"], name="sine"),
             helper.make_node("AveragePool", ["c"], ["y"], name="avg", kernel_shape=[3],
                              pads=[1, 1])]
    with pytest.raises(importer.OnnxImportError) as caught:
        importer.import_onnx(graph_model(nodes, [1, 2, 8]), "m.onnx")
    text = str(caught.value)
    assert "nodes of the graph cannot be expressed" in text
    assert "erf: Erf:" in text and "sine: Sin:" in text
    nodes[0] = helper.make_node("Relu", ["x"], ["a"], name="relu0")
    nodes[2] = helper.make_node("Relu", ["b"], ["c"], name="relu2")
    with pytest.raises(importer.OnnxImportError, match="count_include_pad 0 over padding"):
        importer.import_onnx(graph_model(nodes, [1, 2, 8]), "m.onnx")


@pytest.mark.parametrize("mode, ctm, expected", [
    ("nearest", "asymmetric", {"size": [8, 6]}),
    ("linear", "half_pixel", {"mode": "linear", "size": [8, 6]}),
    ("linear", "align_corners", {"mode": "linear", "align_corners": True, "size": [8, 6]}),
    ("cubic", "pytorch_half_pixel", {"mode": "cubic", "size": [8, 6]}),
    ("linear", "asymmetric", None),
    ("nearest", "half_pixel", None),
])
def test_resize_modes(mode: str, ctm: str, expected: Any) -> None:
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up", mode=mode,
                            coordinate_transformation_mode=ctm, nearest_mode="floor")
    data = graph_model([node], [1, 2, 4, 3], initializers=[ints("sizes", [1, 2, 8, 6])])
    if expected is None:
        with pytest.raises(importer.OnnxImportError, match="up: Resize"):
            importer.import_onnx(data, "r.onnx")
        return
    (layer,) = importer.import_onnx(data, "r.onnx").data["layers"]
    assert {k: v for k, v in layer.items() if k not in ("name", "type")} == expected


@pytest.mark.parametrize("mode, ok", [("CRD", True), ("DCR", False)])
def test_depth_to_space_channel_order(mode: str, ok: bool) -> None:
    node = helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=2, mode=mode)
    data = graph_model([node], [1, 8, 3, 3])
    if ok:
        (layer,) = importer.import_onnx(data, "d.onnx").data["layers"]
        assert layer == {"name": "d2s", "type": "pixel_shuffle", "factor": 2}
    else:
        with pytest.raises(importer.OnnxImportError, match="DCR"):
            importer.import_onnx(data, "d.onnx")


def test_split_of_channels_becomes_slices() -> None:
    nodes = [helper.make_node("Split", ["x", "parts"], ["a", "b"], name="split", axis=1),
             helper.make_node("Concat", ["b", "a"], ["y"], name="cat", axis=1)]
    data = graph_model(nodes, [1, 6, 4, 4], initializers=[ints("parts", [2, 4])], opset=13)
    layers = importer.import_onnx(data, "s.onnx").data["layers"]
    assert [(layer["type"], layer.get("channels")) for layer in layers] == \
        [("slice", [0, 2]), ("slice", [2, 6]), ("concat", None)]


def test_the_cli_imports_and_checks_an_onnx_file(tmp_path: Path) -> None:
    source = tmp_path / "net.onnx"
    assert CliRunner().invoke(main, ["export", "zoo:lenet5", "--to", "onnx", "-o",
                                     str(source)]).exit_code == 0
    target = tmp_path / "net.yaml"
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert convcalc.analyze(convcalc.load(str(target))).total_params == \
        convcalc.analyze(convcalc.load("zoo:lenet5")).total_params
    checked = CliRunner().invoke(main, ["check", str(source), "--format", "json"])
    assert checked.exit_code == 0, checked.output
    renamed = tmp_path / "model.bin"          # found by its first byte
    renamed.write_bytes(source.read_bytes())
    assert CliRunner().invoke(main, ["check", str(renamed)]).exit_code == 0
    assert CliRunner().invoke(main, ["sizes", str(source)]).exit_code == 0


def test_without_onnx_the_error_names_the_extra(tmp_path: Path) -> None:
    source = tmp_path / "net.onnx"
    source.write_bytes(b"\x08\x07")
    code = ("import sys; sys.modules['onnx'] = None\n"
            "from convcalc.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "check", str(source)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "pip install 'convcalc[onnx]'" in done.stderr
    assert "Traceback" not in done.stderr


# --- hostile files --------------------------------------------------------------------------

#: address space of each case's process (onnx imports NumPy and protobuf)
MEMORY = 2 << 30
TIMEOUT = 30.0


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def cycle() -> bytes:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second"),
             helper.make_node("Relu", ["b"], ["y"], name="out")]
    return graph_model(nodes, [1, 2, 4, 4])


def bare(name: str, dims: list[int]) -> Any:
    """A float tensor of ``dims`` with no data."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT)
    tensor.dims.extend(dims)
    return tensor


def external_weights(tmp: Path) -> bytes:
    """A conv whose 2 GB of weights are in an external file — a FIFO, so reading it
    would block: the import must take the dims only."""
    os.mkfifo(tmp / "weights.bin")
    tensor = bare("w", [50000, 10000, 1, 1])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"),
                       ("length", str(2 * 10**9))):
        tensor.external_data.add(key=key, value=value)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1])
    return graph_model([node], [1, 10000, 2, 2], initializers=[tensor])


def unknown_domain() -> bytes:
    node = helper.make_node("FusedConv", ["x"], ["y"], name="fused", domain="com.microsoft")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)]
                             ).SerializeToString()


def absurd_input() -> bytes:
    return graph_model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                       [1, 3, 10**18, 10**18])


def absurd_weights() -> bytes:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1])
    tensor = bare("w", [2**62, 3, 1, 1])
    return graph_model([node], [1, 3, 4, 4], initializers=[tensor])


def many_nodes() -> bytes:
    count = importer.MAX_NODES + 1
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}"])
             for i in range(count)]
    return graph_model(nodes, [1, 2, 2], output=f"t{count}")


def two_inputs() -> bytes:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4, 4])
              for n in ("x", "z")]
    return graph_model([helper.make_node("Add", ["x", "z"], ["y"])], [], inputs=inputs)


def real_model() -> bytes:
    spec = convcalc.load("zoo:lenet5")
    return exporter.to_onnx(spec, convcalc.analyze(spec), zeros=True)


#: (name, bytes or a function of the case's folder, exit status, what stderr says)
HOSTILE = [
    ("truncated", lambda tmp: real_model()[:4000], 1, "not an ONNX model"),
    ("not-onnx-bytes", lambda tmp: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, 1,
     "not an ONNX model"),
    ("onnx-first-byte-then-junk", lambda tmp: b"\x08" + b"\xff" * 4096, 1, "not an ONNX model"),
    ("empty", lambda tmp: b"", 1, "not an ONNX model: no IR version or no graph"),
    ("cycle", lambda tmp: cycle(), 1, "the graph has a cycle (through first, second"),
    ("external-data-never-read", external_weights, 0, ""),
    ("unknown-domain", lambda tmp: unknown_domain(), 1,
     "operators from domains convcalc does not know ('com.microsoft'): fused"),
    ("absurd-input-dims", lambda tmp: absurd_input(), 1, "axis 2 has size 1000000000000000000"),
    ("absurd-weight-dims", lambda tmp: absurd_weights(), 1, "must be ≤ 9007199254740991"),
    ("too-many-nodes", lambda tmp: many_nodes(), 1, "too many nodes: 100,001"),
    ("two-inputs", lambda tmp: two_inputs(), 1, "a convcalc network has one input"),
]


@pytest.mark.parametrize("name, make, exit, expected", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_file(name: str, make: Any, exit: int, expected: str, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(make(tmp_path))
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", "from convcalc.cli import main; main()",
                               "check", "model.onnx"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=TIMEOUT, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"killed after {time.monotonic() - started:.1f} s")
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-2000:]
    assert done.returncode == exit, done.stderr[-2000:]
    if exit:
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert expected in done.stderr, done.stderr
    else:
        assert "500,000,000 params" not in done.stderr
        assert "params: 500,000,000" in done.stdout, done.stdout[-1000:]


def test_too_large_a_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.onnx"
    with open(path, "wb") as handle:        # sparse: no disk, no time
        handle.truncate(importer.MAX_ONNX_BYTES + 1)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "file too large: 1,073,741,825 bytes" in result.output


def test_the_documented_limits() -> None:
    assert importer.MAX_ONNX_BYTES == 1 << 30
    assert importer.MAX_NODES == 100_000
    assert math.prod(importer.PROBES) > 0
