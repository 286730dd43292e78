"""ONNX graphs the importer cannot express are refused with a one-line reason naming
the node — never a crash, never a silent default.  Each case crashed (AttributeError,
TypeError) or was read with a made-up default before the importer was typed (mypy
--strict found them)."""

from __future__ import annotations

import re

import pytest

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")

from onnx import TensorProto, helper  # noqa: E402

from convcalc.importers import onnx as importer  # noqa: E402


def model(nodes: list, shape: list, initializers: tuple = ()) -> bytes:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]
                             ).SerializeToString()


def ints(name: str, values: list[int]):
    return onnx.numpy_helper.from_array(np.array(values, np.int64), name)


CONSTANT = onnx.numpy_helper.from_array(np.zeros([1, 3, 1, 1], np.float32), "c")
WEIGHT = onnx.numpy_helper.from_array(np.zeros([4, 3, 1, 1], np.float32), "w")

CASES = {
    "a layer reading a constant": (
        model([helper.make_node("Relu", ["c"], ["r"], name="relu"),
               helper.make_node("Add", ["x", "r"], ["y"], name="add")], [1, 3, 4, 4], (CONSTANT,)),
        "p.onnx: relu: Relu: as relu: an input that is a constant, not computed from the "
        "network's input (convcalc folds shape arithmetic only)"),
    "a crop beside an open axis": (
        model([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="crop")],
              [1, 3, "h", 8], (ints("s", [1]), ints("e", [7]), ints("a", [3]))),
        "p.onnx: crop: Slice: a crop of an input whose axis 2 is open: convcalc's crop "
        "gives every spatial size"),
    "a concat of a tensor and a constant": (
        model([helper.make_node("Concat", ["x", "c"], ["y"], name="cat", axis=1)],
              [1, 3, 1, 1], (CONSTANT,)),
        "p.onnx: cat: Concat: Concat of computed values and constants"),
    "split sizes computed at run time": (
        model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
               helper.make_node("Shape", ["c"], ["s"], name="shape"),
               helper.make_node("Split", ["c", "s"], ["y", "z"], name="split", axis=1)],
              [1, 3, 4, 4], (WEIGHT,)),
        "p.onnx: split: Split: split sizes that are not constants"),
    "pads holding the batch size": (
        model([helper.make_node("Shape", ["x"], ["s"], name="shape"),
               helper.make_node("Concat", ["s", "s"], ["p"], name="cat", axis=0),
               helper.make_node("Pad", ["x", "p"], ["y"], name="pad")], ["n", 3, 4, 4]),
        "p.onnx: pad: Pad: pads that are not constants"),
}


@pytest.mark.parametrize("data, message", CASES.values(), ids=CASES.keys())
def test_a_graph_convcalc_cannot_express_is_refused_by_name(data: bytes, message: str) -> None:
    with pytest.raises(importer.OnnxImportError, match=f"^{re.escape(message)}$"):
        importer.import_onnx(data, "p.onnx")
