"""The engine executes graphs: merge layers (add, concat), fan-out with summed gradients,
outputs freed after their last reader, errors naming the layer, and gradient checks of
residual, projection-shortcut and inception-like blocks in 1-D, 2-D and 3-D."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from residual_blocks import BASIC_BLOCK

import convcalc
import engine
from convcalc import spec as specs
from convcalc.spec import Spec
from engine import build, gradcheck
from engine.merge import Add, Concat

RNG = np.random.default_rng(0)


def spec_of(*layers, input=(2, 5, 5), **options):
    return Spec.model_validate({"input": list(input), "layers": list(layers), **options})


def merge_layer(kind, inputs=("a", "b", "c")):
    cls, model = {"add": (Add, specs.Add), "concat": (Concat, specs.Concat)}[kind]
    return cls(model(type=kind, name=f"{kind}1", inputs=list(inputs)),
               np.random.default_rng(0), "float64")


# --- the merge layers on their own --------------------------------------------------------


def test_add_sums_and_hands_the_gradient_to_every_input():
    a, b, c = (RNG.standard_normal((2, 3, 4)) for _ in range(3))
    saved = [a.copy(), b.copy(), c.copy()]
    add = merge_layer("add")
    y = add.forward([a, b, c])
    expected = np.empty_like(a)
    for index in np.ndindex(a.shape):                      # a hand-written loop
        expected[index] = a[index] + b[index] + c[index]
    assert np.array_equal(y, expected)
    dy = RNG.standard_normal(y.shape)
    grads = add.backward(dy)
    assert len(grads) == 3 and all(np.array_equal(g, dy) for g in grads)
    assert all(np.array_equal(x, s) for x, s in zip([a, b, c], saved))   # not modified
    assert y is not a and not np.shares_memory(y, a)


def test_concat_joins_channels_and_splits_the_gradient():
    a, b = RNG.standard_normal((2, 1, 3, 2)), RNG.standard_normal((2, 3, 3, 2))
    cat = merge_layer("concat", ("a", "b"))
    y = cat.forward([a, b])
    assert y.shape == (2, 4, 3, 2)
    for n, c, h, w in np.ndindex(y.shape):
        assert y[n, c, h, w] == (a[n, c, h, w] if c < 1 else b[n, c - 1, h, w])
    dy = RNG.standard_normal(y.shape)
    da, db = cat.backward(dy)
    assert np.array_equal(da, dy[:, :1]) and np.array_equal(db, dy[:, 1:])
    flat = cat.forward([np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0], [6.0]])])
    assert flat.tolist() == [[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]]


@pytest.mark.parametrize("kind, shapes, message", [
    ("add", [(1, 4, 3, 3), (1, 4, 3, 2)],
     r"add1: add needs inputs of one shape, but got a \[4, 3, 3\], b \[4, 3, 2\]"),
    ("add", [(1, 4, 3), (1, 4, 3, 1)], r"add needs inputs of one shape"),
    ("concat", [(1, 2, 3, 3), (1, 5, 3, 4)],
     r"concat1: concat joins channels and needs equal spatial sizes, but got a \[2, 3, 3\], "
     r"b \[5, 3, 4\]"),
    ("concat", [(1, 6), (1, 2, 3)], r"concat1: concat joins channels"),
    ("add", [(1, 6)], r"add1: add needs at least two inputs \(got 1\)"),
])
def test_merge_refuses_mismatched_shapes(kind, shapes, message):
    with pytest.raises(ValueError, match=message):
        merge_layer(kind).forward([np.zeros(shape) for shape in shapes])


# --- the network evaluates the graph --------------------------------------------------------

RESIDUAL = {"input": [3, 6, 6], "layers": [
    {"name": "conv1", "type": "conv", "filters": 3, "kernel": 3, "padding": 1, "bias": False},
    {"name": "bn1", "type": "batchnorm"}, {"name": "relu1", "type": "relu"},
    {"name": "conv2", "type": "conv", "filters": 3, "kernel": 3, "padding": 1, "bias": False},
    {"name": "bn2", "type": "batchnorm"},
    {"name": "add", "type": "add", "inputs": ["bn2", "input"]},
    {"name": "relu2", "type": "relu"}]}


def test_residual_block_forward_and_backward_by_hand():
    net = build(RESIDUAL, seed=1, dtype="float64")
    x = RNG.standard_normal((2, 3, 6, 6))
    y = net.forward(x)
    # The same layers wired by hand: relu(bn2(conv2(relu(bn1(conv1(x))))) + x).
    ref = build(RESIDUAL, seed=1, dtype="float64")
    layer = {item.name: item for item in ref}
    branch = x
    for name in ("conv1", "bn1", "relu1", "conv2", "bn2"):
        branch = layer[name].forward(branch)
    total = branch + x
    assert np.array_equal(y, layer["relu2"].forward(total))
    dy = RNG.standard_normal(y.shape)
    dx = net.backward(dy)
    dtotal = layer["relu2"].backward(dy)
    dbranch = dtotal
    for name in ("bn2", "conv2", "relu1", "bn1", "conv1"):
        dbranch = layer[name].backward(dbranch)
    np.testing.assert_allclose(dx, dbranch + dtotal, rtol=1e-12, atol=1e-14)
    for name, grads in net.gradients().items():
        for key, grad in grads.items():
            np.testing.assert_allclose(grad, layer[name].grads[key], rtol=1e-12, atol=1e-14)
    assert net.observed_shapes == {name: (3, 6, 6) for name in layer}


def test_input_gradient_equals_numerical_gradient_with_fan_out_and_repeated_inputs(
        centred_differences):
    # input is read by three layers; "a" feeds a merge twice ([a, a]).
    spec = spec_of({"name": "a", "type": "conv", "filters": 2, "kernel": 3, "padding": 1},
                   {"name": "t", "type": "tanh", "inputs": "input"},
                   {"name": "sum", "type": "add", "inputs": ["a", "a", "t", "input"]},
                   {"name": "s", "type": "sigmoid"},
                   {"name": "cat", "type": "concat", "inputs": ["s", "a", "input"]})
    net = build(spec, seed=0, dtype="float64")
    x = RNG.standard_normal((2, 2, 5, 5))
    projection = RNG.standard_normal((2, 6, 5, 5))
    net.forward(x)
    dx = net.backward(projection)
    numeric = centred_differences(lambda: float(np.sum(net.forward(x) * projection)), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)
    net.forward(x)
    net.backward(projection)
    weight = net.parameters()["a"]["weight"]
    numeric_w = centred_differences(lambda: float(np.sum(net.forward(x) * projection)),
                                    weight)
    np.testing.assert_allclose(net.gradients()["a"]["weight"], numeric_w, rtol=1e-6, atol=1e-8)


def test_backward_never_writes_into_arrays_layers_returned():
    # Add hands one array to both inputs; the sum for "input" must be a new array.
    spec = spec_of({"name": "add", "type": "add", "inputs": ["input", "input", "input"]},
                   {"name": "drop", "type": "dropout"})
    net = build(spec, dtype="float64").eval()        # eval dropout: dx is dy itself
    net.forward(np.ones((1, 2, 5, 5)))
    dout = RNG.standard_normal((1, 2, 5, 5))
    saved = dout.copy()
    dx = net.backward(dout)
    assert np.array_equal(dout, saved) and np.array_equal(dx, 3 * saved)
    assert not np.shares_memory(dx, dout)


def test_outputs_are_dropped_after_their_last_reader():
    spec = spec_of({"name": "a", "type": "tanh"}, {"name": "b", "type": "relu"},
                   {"name": "c", "type": "relu"},
                   {"name": "sum", "type": "add", "inputs": ["a", "c"]}, {"name": "d",
                                                                         "type": "relu"})
    net = build(spec, dtype="float64")
    refs = {}
    alive = []

    def watch(index, layer):
        alive.append(sorted(name for name, ref in refs.items() if ref() is not None))

    originals = {layer.name: layer.forward for layer in net}

    def recorder(name):
        def forward(x):
            y = originals[name](x)
            refs[name] = weakref.ref(y)
            return y
        return forward

    for layer in net:
        if layer.name != "a":        # tanh keeps its output for backward: not watched
            layer.forward = recorder(layer.name)
    net.forward(RNG.standard_normal((2, 2, 5, 5)), on_layer=watch)
    # after b: b alive; after c: b dropped (read by c only); after sum: c dropped.
    assert alive == [[], ["b"], ["c"], ["sum"], ["d"]]


def test_a_dead_branch_gets_zero_parameter_gradients():
    spec = spec_of({"name": "unused", "type": "conv", "filters": 2, "kernel": 1},
                   {"name": "out", "type": "conv", "filters": 2, "kernel": 1,
                    "inputs": "input"})
    net = build(spec, dtype="float64")
    x = RNG.standard_normal((2, 2, 5, 5))
    net.forward(x)
    net.gradients()["unused"]["weight"][...] = 7.0
    dx = net.backward(np.ones((2, 2, 5, 5)))
    assert not net.gradients()["unused"]["weight"].any()
    assert net.gradients()["out"]["weight"].any()
    assert dx.shape == x.shape
    result = gradcheck(net, batch=2)          # zero gradients are right for a dead branch
    assert result.ok and {c.layer for c in result.tensors} == {"unused", "out"}


def test_progress_and_observed_shapes_in_a_graph():
    spec = spec_of({"name": "left", "type": "conv", "filters": 3, "kernel": 3},
                   {"name": "right", "type": "maxpool", "kernel": 3, "stride": 1,
                    "inputs": "input"},
                   {"name": "cat", "type": "concat", "inputs": ["left", "right"]},
                   "flatten", {"type": "dense", "units": 2})
    net = build(spec)
    seen = []
    y = net.forward(np.zeros((1, 2, 5, 5)), on_layer=lambda i, layer: seen.append(i))
    grads = []
    net.backward(np.zeros_like(y), on_layer=lambda i, layer: seen.append(-i),
                 on_gradient=lambda name, g: grads.append((name, g.shape)))
    assert seen == [0, 1, 2, 3, 4, -4, -3, -2, -1, 0]
    assert grads == [("dense1", (1, 2)), ("flatten1", (1, 45)), ("cat", (1, 5, 3, 3)),
                     ("right", (1, 2, 3, 3)), ("left", (1, 3, 3, 3)), ("input", (1, 2, 5, 5))]
    assert net.observed_shapes == {"left": (3, 3, 3), "right": (2, 3, 3), "cat": (5, 3, 3),
                                   "flatten1": (45,), "dense1": (2,)}
    assert net.sources[2] == ("left", "right") and net.readers["input"] == (0, 1)


@pytest.mark.parametrize("layers, message", [
    ([{"name": "c", "type": "conv", "filters": 4, "kernel": 3},
      {"type": "add", "inputs": ["c", "input"]}],
     r"add1: add needs inputs of one shape, but got c \[4, 3, 3\], input \[2, 5, 5\]"),
    ([{"name": "c", "type": "conv", "filters": 4, "kernel": 3},
      {"type": "concat", "inputs": ["c", "input"]}],
     r"concat1: concat joins channels and needs equal spatial sizes, but got c \[4, 3, 3\], "
     r"input \[2, 5, 5\]"),
    ([{"type": "add", "inputs": ["input"]}], r"add1: add needs at least two inputs"),
    (["relu", {"type": "tanh", "inputs": ["relu1", "input"]}],
     r"tanh1 \(tanh\): tanh takes one input \(got 2: relu1, input\)"),
    ([{"type": "relu", "inputs": "tanh1"}, "tanh"],
     r"relu1: reads 'tanh1', which is a later layer"),
    ([{"type": "relu", "inputs": "nope"}], r"relu1: reads 'nope', which is no layer"),
    ([{"type": "relu", "name": "x"}, {"type": "tanh", "name": "x"}],
     r"x: duplicate layer name"),
    ([{"type": "relu", "name": "input"}], r"input: a layer cannot be called 'input'"),
])
def test_graph_errors_name_the_layer(layers, message):
    with pytest.raises(ValueError, match=message):
        build(spec_of(*layers))


def test_against_torch_projection_block():
    torch = pytest.importorskip("torch")
    spec = convcalc.validate(PROJECTION)
    net = build(spec, seed=0, dtype="float64")
    p = net.parameters()
    nn = torch.nn
    conv1, conv2 = nn.Conv2d(2, 4, 3, 2, 1, bias=False), nn.Conv2d(4, 4, 3, 1, 1, bias=False)
    down = nn.Conv2d(2, 4, 1, 2, bias=False)
    bn1, bn2, bn3 = nn.BatchNorm2d(4), nn.BatchNorm2d(4), nn.BatchNorm2d(4)
    for module in (conv1, conv2, down, bn1, bn2, bn3):
        module.double()
    with torch.no_grad():
        for module, name in ((conv1, "b.conv1"), (conv2, "b.conv2"), (down, "b.down")):
            module.weight.copy_(torch.tensor(p[name]["weight"]))
    x = RNG.standard_normal((3, 2, 7, 7))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.relu(bn2(conv2(torch.relu(bn1(conv1(xt))))) + bn3(down(xt)))
    dout = RNG.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dout))
    y = net.forward(x)
    dx = net.backward(dout)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(net.gradients()["b.down"]["weight"], down.weight.grad.numpy(),
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(net.buffers()["b.down_bn"]["running_var"],
                               bn3.running_var.numpy(), rtol=1e-12)


# --- gradient checks through graphs --------------------------------------------------------

BLOCKS = {
    "basic": BASIC_BLOCK,
    "down": {"params": {"channels": None, "stride": 2}, "layers": [
        {"name": "conv1", "type": "conv", "filters": "$channels", "kernel": 3,
         "stride": "$stride", "padding": 1, "bias": False},
        {"name": "bn1", "type": "batchnorm"}, "relu",
        {"name": "conv2", "type": "conv", "filters": "$channels", "kernel": 3, "padding": 1,
         "bias": False},
        {"name": "bn2", "type": "batchnorm"},
        {"name": "down", "type": "conv", "inputs": "input", "filters": "$channels",
         "kernel": 1, "stride": "$stride", "bias": False},
        {"name": "down_bn", "type": "batchnorm"},
        {"type": "add", "inputs": ["bn2", "down_bn"]}, "relu"]},
    "inception": {"params": {"n": 2}, "layers": [
        {"name": "b1", "type": "conv", "filters": "$n", "kernel": 1},
        {"name": "b3r", "type": "conv", "filters": 2, "kernel": 1, "inputs": "input"},
        {"name": "b3", "type": "conv", "filters": "$n", "kernel": 3, "padding": "same"},
        {"name": "b5r", "type": "conv", "filters": 1, "kernel": 1, "inputs": "input"},
        {"name": "b5", "type": "conv", "filters": "$n", "kernel": 5, "padding": 2},
        {"name": "pool", "type": "maxpool", "kernel": 3, "stride": 1, "padding": 1,
         "inputs": "input"},
        {"name": "bp", "type": "conv", "filters": "$n", "kernel": 1},
        {"name": "cat", "type": "concat", "inputs": ["b1", "b3", "b5", "bp"]}]},
}

RESIDUAL_NET = {"input": [2, 5, 5], "blocks": BLOCKS, "layers": [
    {"type": "conv", "filters": 3, "kernel": 3, "padding": 1}, "relu",
    {"name": "layer1", "type": "basic", "channels": 3},
    {"type": "global_avgpool"}, {"type": "dense", "units": 3}]}
PROJECTION = {"input": [2, 7, 7], "blocks": BLOCKS, "layers": [
    {"name": "b", "type": "down", "channels": 4}]}
INCEPTION = {"input": [3, 5, 5], "blocks": BLOCKS, "layers": [
    {"name": "mixed", "type": "inception", "n": 2}, {"type": "batchnorm"}, "tanh"]}
GRAPH_1D = {"input": [2, 9], "blocks": BLOCKS, "layers": [
    {"name": "stem", "type": "conv", "filters": 3, "kernel": 3, "padding": 1},
    {"name": "r", "type": "basic", "channels": 3, "repeat": 2},
    {"name": "d", "type": "down", "channels": 4},
    {"name": "i", "type": "inception", "n": 1},
    {"name": "skip", "type": "global_maxpool", "inputs": "stem"},
    {"name": "main", "type": "global_avgpool", "inputs": "i"},
    {"name": "join", "type": "concat", "inputs": ["main", "skip"]},
    {"type": "dense", "units": 2}]}
GRAPH_3D = {"input": [2, 5, 5, 5], "blocks": BLOCKS, "layers": [
    {"name": "r", "type": "basic", "channels": 2},
    {"name": "d", "type": "down", "channels": 3},
    {"name": "i", "type": "inception", "n": 1},
    {"name": "side", "type": "conv", "filters": 4, "kernel": 1, "inputs": "d"},
    {"name": "sum", "type": "add", "inputs": ["i", "side"]}, "sigmoid"]}


@pytest.mark.parametrize("name, spec", [
    ("residual", RESIDUAL_NET), ("projection", PROJECTION), ("inception", INCEPTION),
    ("1d", GRAPH_1D), ("3d", GRAPH_3D)])
def test_gradcheck_passes_through_graphs(name, spec):
    spec = convcalc.validate(spec)
    assert not convcalc.analyze(spec).errors        # the calculator accepts it as it is
    result = gradcheck(spec, batch=3, seed=2, samples=8)
    assert set(result.per_layer) == {layer.name for layer in spec.layers}
    assert result.ok, result.failing()
    assert result.max_error < 1e-6
    merges = [layer for layer in spec.layers if layer.type in ("add", "concat")]
    for layer in merges:          # every input of a merge is checked
        tensors = {c.tensor for c in result.tensors if c.layer == layer.name}
        assert tensors == {f"input:{source}" for source in layer.inputs}


@pytest.mark.parametrize("method, scope", [("entries", "layer"), ("directions", "network"),
                                           ("directions", "layer")])
def test_gradcheck_checks_the_summed_gradient_of_a_shortcut(method, scope):
    spec = convcalc.validate(RESIDUAL_NET)
    net = build(spec, dtype="float64")
    add = net.layer("layer1.add")
    real = add.backward
    add.backward = lambda dout: [real(dout)[0], 0.99 * dout]   # the shortcut's share
    result = gradcheck(net, batch=3, samples=8, method=method, scope=scope)
    failing = set(result.failing())
    if scope == "layer" and method == "directions":   # each layer against its forward
        assert failing == {"layer1.add"} and not result.ok
    else:
        # relu1's output feeds layer1.conv1 and the add: its summed gradient is wrong.
        assert {"layer1.conv1", "layer1.add", "relu1", "conv1"} <= failing
    assert result.per_layer["dense1"] < 1e-6 and result.per_layer["layer1.relu2"] < 1e-6
    assert [c.tensor for c in result.tensors if c.layer == "layer1.add" and c.error >= 1e-6] \
        == ["input:relu1"]


def test_gradcheck_leaves_a_graph_network_as_it_was():
    net = build(convcalc.validate(PROJECTION), dtype="float64")
    buffers = {(n, k): v.copy() for n, b in net.buffers().items() for k, v in b.items()}
    gradcheck(net, samples=3)
    for (n, k), v in buffers.items():
        assert np.array_equal(net.buffers()[n][k], v)


def test_the_engine_registers_the_merge_layers():
    assert engine.LAYERS[specs.Add] is Add and engine.LAYERS[specs.Concat] is Concat
