"""engine.build / engine.Network: dispatch, parameters from the arrays, forward/backward
through whole networks (against PyTorch when it is installed), modes and errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from convcalc.spec import Spec
from engine.network import build

SIMPLE_CONV_NET = {  # BRIEF example 8
    "name": "SimpleConvNet",
    "input": [1, 28, 28],
    "layers": [
        {"type": "conv", "filters": 30, "kernel": 5, "stride": 1, "padding": 0},
        "relu",
        {"type": "maxpool", "kernel": 2, "stride": 2},
        "flatten",
        {"type": "dense", "units": 100},
        "relu",
        {"type": "dense", "units": 10},
        "softmax",
    ],
}

#: One spec per layer ``type`` tag, each usable on a small 2-D input.
def spec_of(*layers, input=(2, 6, 6), **options):
    return Spec.model_validate({"input": list(input), "layers": list(layers), **options})


def test_simple_conv_net_parameter_count_from_the_arrays():
    net = build(SIMPLE_CONV_NET)
    assert net.param_count() == 433_890
    counts = {layer.name: net.param_count(layer.name) for layer in net}
    assert counts == {"conv1": 780, "relu1": 0, "maxpool1": 0, "flatten1": 0,
                      "dense1": 432_100, "relu2": 0, "dense2": 1_010, "softmax1": 0}
    shapes = {name: {k: v.shape for k, v in params.items()}
              for name, params in net.parameters().items()}
    assert shapes == {"conv1": {"weight": (30, 1, 5, 5), "bias": (30,)},
                      "dense1": {"weight": (4320, 100), "bias": (100,)},
                      "dense2": {"weight": (100, 10), "bias": (10,)}}
    assert net.observed_shapes == {"conv1": (30, 24, 24), "relu1": (30, 24, 24),
                                   "maxpool1": (30, 12, 12), "flatten1": (4320,),
                                   "dense1": (100,), "relu2": (100,), "dense2": (10,),
                                   "softmax1": (10,)}


def test_observed_shapes_in_1d_and_3d():
    net1 = build(spec_of({"type": "conv", "filters": 3, "kernel": 3, "stride": 2},
                         {"type": "maxpool", "kernel": 2}, input=(2, 21)))
    assert net1.observed_shapes == {"conv1": (3, 10), "maxpool1": (3, 5)}
    net3 = build(spec_of({"type": "conv", "filters": 3, "kernel": (1, 3, 3), "padding": "same"},
                         {"type": "avgpool", "kernel": 2, "ceil_mode": True},
                         input=(1, 3, 5, 7)))
    assert net3.observed_shapes == {"conv1": (3, 3, 5, 7), "avgpool1": (3, 2, 3, 4)}


def test_build_accepts_a_dict_and_a_spec_and_is_seeded():
    a, b = build(SIMPLE_CONV_NET, seed=3), build(Spec.model_validate(SIMPLE_CONV_NET), seed=3)
    c = build(SIMPLE_CONV_NET, seed=4)
    for name, params in a.parameters().items():
        for key, value in params.items():
            assert np.array_equal(value, b.parameters()[name][key])
    assert not np.array_equal(a.parameters()["conv1"]["weight"],
                              c.parameters()["conv1"]["weight"])


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float64])
def test_dtype(dtype):
    net = build(SIMPLE_CONV_NET, dtype=dtype)
    assert {v.dtype for p in net.parameters().values() for v in p.values()} == {np.dtype(dtype)}
    assert net.forward(np.zeros((1, 1, 28, 28))).dtype == np.dtype(dtype)


def test_other_dtypes_are_refused():
    with pytest.raises(ValueError, match="dtype must be one of float32, float64"):
        build(SIMPLE_CONV_NET, dtype="float16")


def test_parameters_are_the_arrays_the_layers_use():
    net = build(spec_of("flatten", {"type": "dense", "units": 2}, input=(3,)), dtype="float64")
    weight, bias = net.parameters()["dense1"]["weight"], net.parameters()["dense1"]["bias"]
    assert weight is net.layer("dense1").params["weight"]
    weight[...] = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]     # load "trained" weights
    bias[...] = [10.0, 20.0]
    y = net.forward(np.array([[1.0, 2.0, 3.0]]))
    assert y.tolist() == [[14.0, 25.0]]
    net.backward(np.array([[1.0, -1.0]]))
    assert net.gradients()["dense1"]["weight"].tolist() == [[1, -1], [2, -2], [3, -3]]
    assert net.gradients()["dense1"]["bias"].tolist() == [1, -1]


def test_buffers_train_and_eval():
    net = build(spec_of({"type": "batchnorm", "momentum": 0.5}, {"type": "dropout", "rate": 0.5},
                        input=(2, 3)), dtype="float64")
    running_mean = net.buffers()["batchnorm1"]["running_mean"]
    assert list(net.buffers()) == ["batchnorm1"]
    assert net.buffer_count() == 4 and net.param_count() == 4
    x = np.array([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[3.0, 4.0, 5.0], [2.0, 2.0, 2.0]]])
    y_train = net.forward(x)
    assert running_mean.tolist() == [1.5, 0.5]        # 0.5·0 + 0.5·(mean 3, mean 1)
    assert set(np.round(y_train, 12).ravel().tolist()) >= {0.0}
    net.eval()
    assert not any(layer.training for layer in net)
    y = net.forward(x)                                 # no dropout; running statistics
    var = net.buffers()["batchnorm1"]["running_var"][None, :, None]
    np.testing.assert_allclose(y, (x - running_mean[None, :, None]) / np.sqrt(var + 1e-5))
    net.train()
    assert all(layer.training for layer in net)


def test_forward_does_not_modify_its_input_and_checks_its_shape():
    net = build(SIMPLE_CONV_NET)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    before = x.copy()
    net.backward(np.ones_like(net.forward(x)))
    assert np.array_equal(x, before)
    with pytest.raises(ValueError, match=r"input: expected \(N, 1, 28, 28\), got \(2, 28, 28\)"):
        net.forward(x[:, 0])


@pytest.mark.parametrize("layers, input, message", [
    ([{"type": "conv", "filters": 2, "kernel": 5}], (3, 4, 9),
     "conv1: H: window 5 is larger than the padded input 4"),
    ([{"type": "maxpool", "kernel": 3, "dilation": 2}], (3, 9, 4),
     "maxpool1: W: window 5 .*is larger than the padded input 4"),
    ([{"type": "conv", "filters": 3, "kernel": 1, "groups": 2}], (4, 5, 5),
     "conv1: 2 groups do not divide the 3 filters"),
    ([{"type": "dense", "units": 3}], (3, 4, 4), "dense1: needs a flat vector"),
    (["flatten", {"type": "conv", "filters": 2, "kernel": 1}], (3, 4, 4), "conv1: needs a feature map"),
])
def test_invalid_geometry_raises_value_error_naming_the_layer(layers, input, message):
    with pytest.raises(ValueError, match=message):
        build(spec_of(*layers, input=input))


def test_training_a_tiny_net_lowers_the_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 6, 6))
    labels = (x[:, 0, :3].sum(axis=(1, 2)) > x[:, 0, 3:].sum(axis=(1, 2))).astype(int)
    net = build(spec_of({"type": "conv", "filters": 4, "kernel": 3, "padding": 1}, "relu",
                        {"type": "maxpool", "kernel": 2}, "flatten", {"type": "dense", "units": 2},
                        input=(1, 6, 6)), seed=0, dtype="float64")
    losses = []
    for _ in range(60):
        loss, dlogits = engine.softmax_cross_entropy(net.forward(x), labels)
        losses.append(loss)
        net.backward(dlogits)
        for name, params in net.parameters().items():
            for key, value in params.items():
                value -= 0.1 * net.gradients()[name][key]
    assert losses[-1] < 0.5 * losses[0]


def test_against_torch_forward_and_backward():
    torch = pytest.importorskip("torch")
    spec = spec_of({"type": "conv", "filters": 4, "kernel": 3, "padding": 1, "stride": 2},
                   {"type": "batchnorm"}, "relu",
                   {"type": "maxpool", "kernel": 2, "ceil_mode": True},
                   {"type": "conv_transpose", "filters": 3, "kernel": 2, "stride": 2},
                   "tanh", "flatten", {"type": "dense", "units": 5}, "softmax",
                   input=(3, 9, 9))
    net = build(spec, seed=0, dtype="float64")
    p = net.parameters()
    t = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2, ceil_mode=True),
        torch.nn.ConvTranspose2d(4, 3, 2, stride=2), torch.nn.Tanh(), torch.nn.Flatten(),
        torch.nn.Linear(108, 5), torch.nn.Softmax(dim=1)).double()
    with torch.no_grad():
        t[0].weight.copy_(torch.tensor(p["conv1"]["weight"]))
        t[0].bias.copy_(torch.tensor(p["conv1"]["bias"]))
        t[4].weight.copy_(torch.tensor(p["conv_transpose1"]["weight"]))
        t[4].bias.copy_(torch.tensor(p["conv_transpose1"]["bias"]))
        t[7].weight.copy_(torch.tensor(p["dense1"]["weight"].T))
        t[7].bias.copy_(torch.tensor(p["dense1"]["bias"]))
    x = np.random.default_rng(5).standard_normal((2, 3, 9, 9))
    dout = np.random.default_rng(6).standard_normal((2, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = t(xt)
    yt.backward(torch.tensor(dout))
    y = net.forward(x)
    dx = net.backward(dout)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    g = net.gradients()
    np.testing.assert_allclose(g["dense1"]["weight"], t[7].weight.grad.numpy().T, rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(g["conv1"]["weight"], t[0].weight.grad.numpy(), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(g["batchnorm1"]["gamma"], t[1].weight.grad.numpy(), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(net.buffers()["batchnorm1"]["running_var"],
                               t[1].running_var.numpy(), rtol=1e-12)


def test_progress_hook_sees_every_layer_in_order():
    net = build(SIMPLE_CONV_NET)
    seen = []
    y = net.forward(np.zeros((1, 1, 28, 28)), on_layer=lambda i, layer: seen.append(i))
    net.backward(np.zeros_like(y), on_layer=lambda i, layer: seen.append(-i))
    assert seen == [0, 1, 2, 3, 4, 5, 6, 7, -7, -6, -5, -4, -3, -2, -1, 0]


def test_repr_and_lookup():
    net = build(SIMPLE_CONV_NET)
    assert repr(net) == "Network('SimpleConvNet', 8 layers, 433890 parameters, float32)"
    assert len(net) == 8 and net.layer("dense2").name == "dense2"
    with pytest.raises(KeyError):
        net.layer("nope")
