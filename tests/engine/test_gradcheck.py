"""engine.gradcheck: whole networks of every layer kind pass in 1-D, 2-D and 3-D, and a
wrong gradient is caught and pinned to its layer — along random directions (each layer
against its own forward, or against the whole network) as per entry."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from convcalc.spec import Spec
from engine import build, gradcheck, numerical_gradient, relative_error
from engine.network import Network

GRADCHECK = sys.modules["engine.gradcheck"]     # (engine.gradcheck is the function)

#: every way of checking: (method, scope)
WAYS = [("directions", "layer"), ("directions", "network"), ("entries", "layer")]

NETWORKS = {
    "1d": {"input": [2, 11], "rounding": "ceil", "layers": [
        {"type": "conv", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
        {"type": "batchnorm"}, "relu",
        {"type": "maxpool", "kernel": 2},
        {"type": "conv_transpose", "filters": 2, "kernel": 3, "stride": 2, "padding": 1,
         "output_padding": 1},
        {"type": "lrn", "size": 3, "alpha": 0.5},
        "flatten", {"type": "dropout", "rate": 0.25}, {"type": "dense", "units": 3}, "softmax"]},
    "2d": {"input": [4, 7, 6], "layers": [
        {"type": "conv", "filters": 4, "kernel": [3, 2], "dilation": [1, 2], "groups": 2,
         "padding": [1, [0, 1]]},
        {"type": "leaky_relu", "negative_slope": 0.1},
        {"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"type": "conv", "filters": 8, "kernel": 1, "groups": "depthwise"}, "sigmoid",
        {"type": "minpool", "kernel": 2, "stride": 1},
        {"type": "global_maxpool"}, {"type": "dense", "units": 3, "bias": False}, "tanh"]},
    "3d": {"input": [2, 4, 5, 4], "layers": [
        {"type": "conv", "filters": 3, "kernel": 2, "padding": "full"}, "tanh",
        {"type": "batchnorm"},
        {"type": "maxpool", "kernel": [2, 3, 2], "stride": [2, 2, 1]},
        {"type": "conv_transpose", "filters": 2, "kernel": 2, "dilation": 2, "groups": 1},
        {"type": "global_avgpool"}, {"type": "dense", "units": 2}]},
}


@pytest.mark.parametrize("method, scope", WAYS)
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_layer_passes_in_float64(name, method, scope):
    spec = Spec.model_validate(NETWORKS[name])
    result = gradcheck(spec, batch=3, seed=1, method=method, scope=scope)
    assert set(result.per_layer) == {layer.name for layer in spec.layers}
    assert result.ok, result.failing()
    assert result.max_error < 1e-6
    with_end_to_end = method == "directions" and scope == "layer"
    assert [c.tensor for c in result.end_to_end] == (["input", "parameters"]
                                                     if with_end_to_end else [])


def test_every_tensor_is_moved_along_one_direction_of_all_its_entries():
    spec = Spec.model_validate(NETWORKS["2d"])
    net = build(spec, dtype="float64")
    result = gradcheck(net, batch=2)
    assert result.method == "directions"
    tensors = {(c.layer, c.tensor): c for c in result.tensors}
    assert set(tensors) == {(layer.name, "input") for layer in net.layers} | {
        (layer.name, key) for layer in net.layers for key in layer.params}
    assert tensors[("conv1", "weight")].entries == net.layer("conv1").params["weight"].size
    assert tensors[("conv1", "input")].entries == 2 * 4 * 7 * 6
    assert all(c.method == "direction" for c in result.tensors)
    params = result.end_to_end[1]
    assert params.tensor == "parameters" and params.entries == net.param_count()


def test_each_tensor_costs_two_evaluations_of_its_layer_and_the_end_to_end_checks_four():
    net = build(NETWORKS["3d"], dtype="float64")      # smooth: no kink, no retry
    calls = []
    real = Network._apply

    def counting(self, index, args):
        calls.append(index)
        return real(self, index, args)

    Network._apply = counting
    try:
        result = gradcheck(net, batch=2)
    finally:
        Network._apply = real
    assert result.ok and not any(c.kinks for c in result.tensors + result.end_to_end)
    layers = len(net.layers)
    for index, layer in enumerate(net.layers):
        tensors = 1 + len(layer.params)
        # the first evaluation, 2 per tensor, 4 full forward passes end to end
        assert calls.count(index) == 1 + 2 * tensors + 4, (layer.name, calls.count(index))
    assert len(calls) == 5 * layers + 2 * sum(1 + len(layer.params) for layer in net.layers)


def test_input_and_every_parameter_tensor_are_checked_on_at_most_samples_entries():
    spec = Spec.model_validate(NETWORKS["2d"])
    result = gradcheck(spec, batch=2, samples=5, method="entries")
    tensors = {(check.layer, check.tensor) for check in result.tensors}
    assert ("conv1", "input") in tensors and ("conv1", "weight") in tensors
    assert ("conv1", "bias") in tensors and ("dense1", "weight") in tensors
    assert ("dense1", "bias") not in tensors
    assert max(check.entries for check in result.tensors) == 5
    assert min(check.entries for check in result.tensors) == 4   # conv1's bias has 4


@pytest.mark.parametrize("method, scope", WAYS)
def test_a_wrong_input_gradient_is_caught_and_located(method, scope):
    net = build(NETWORKS["2d"], dtype="float64")
    sigmoid = net.layer("sigmoid1")
    backward = sigmoid.backward
    sigmoid.backward = lambda dout: 1.001 * backward(dout)
    result = gradcheck(net, method=method, scope=scope)
    assert not result.ok
    if method == "directions" and scope == "layer":
        # Each layer against its own forward: only the broken one fails, and the
        # whole network's input gradient (the parameters' upstream of it too).
        assert set(result.failing()) == {"sigmoid1"}
        assert not result.end_to_end[0].error < 1e-6
    else:
        # Layers before the broken one see a wrong gradient; those after it do not.
        assert set(result.failing()) == {"conv1", "leaky_relu1", "avgpool1", "conv2",
                                         "sigmoid1"}
    assert result.per_layer["minpool1"] < 1e-6


@pytest.mark.parametrize("method, scope", WAYS)
def test_a_wrong_parameter_gradient_is_caught(method, scope):
    net = build(NETWORKS["1d"], dtype="float64")
    dense = net.layer("dense1")
    backward = dense.backward

    def wrong(dout):
        dx = backward(dout)
        dense.grads["bias"] = dense.grads["bias"] * 0.99
        return dx

    dense.backward = wrong
    result = gradcheck(net, method=method, scope=scope)
    assert set(result.failing()) == {"dense1"}
    bad = [c for c in result.tensors if c.error >= 1e-6]
    assert [(c.layer, c.tensor) for c in bad] == [("dense1", "bias")]
    assert dense.backward is wrong                     # the check's hook is gone


def test_a_wrong_sum_of_gradients_fails_end_to_end():
    """Every layer right, the network's combination wrong (here its input gradient):
    only the end-to-end check can see it."""
    net = build(NETWORKS["2d"], dtype="float64")
    real = net.backward
    net.backward = lambda dout, **options: 1.01 * real(dout, **options)
    result = gradcheck(net)
    assert result.failing() == {} and not result.ok
    assert [c.tensor for c in result.end_to_end if not c.error < 1e-6] == ["input"]


@pytest.mark.parametrize("method, scope", WAYS)
def test_a_nan_gradient_is_a_failure(method, scope):
    net = build(NETWORKS["2d"], dtype="float64")
    conv = net.layer("conv2")
    backward = conv.backward

    def poisoned(dout):
        dx = backward(dout)
        conv.grads["weight"] = conv.grads["weight"].copy()
        conv.grads["weight"].flat[3] = np.nan
        return dx

    conv.backward = poisoned
    result = gradcheck(net, method=method, scope=scope)
    assert not result.ok and np.isnan(result.max_error)
    assert np.isnan(result.per_layer["conv2"]) and "conv2" in result.failing()


@pytest.mark.parametrize("method, scope", WAYS)
def test_a_nan_loss_is_a_failure(method, scope):
    net = build(NETWORKS["3d"], dtype="float64")
    tanh = net.layer("tanh1")
    forward = tanh.forward
    tanh.forward = lambda x: forward(x) + (np.nan if x.size and x.flat[0] > 5.0 else 0.0)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 5, 4))
    net.layer("conv1").params["bias"][...] = 10.0        # every evaluation is NaN
    result = gradcheck(net, x, method=method, scope=scope)
    assert not result.ok and np.isnan(result.max_error)


@pytest.mark.parametrize("method, scope", WAYS)
def test_gradcheck_leaves_the_network_as_it_was(method, scope):
    net = build(NETWORKS["1d"], dtype="float64")
    params = {(n, k): v.copy() for n, p in net.parameters().items() for k, v in p.items()}
    buffers = {(n, k): v.copy() for n, b in net.buffers().items() for k, v in b.items()}
    state = net.layer("dropout1").rng.bit_generator.state
    gradcheck(net, method=method, scope=scope)
    for (n, k), v in params.items():
        assert np.array_equal(net.parameters()[n][k], v)
    for (n, k), v in buffers.items():
        assert np.array_equal(net.buffers()[n][k], v)
    assert net.layer("dropout1").rng.bit_generator.state == state
    assert not any("backward" in vars(layer) for layer in net.layers)


def test_unknown_methods_and_scopes_are_refused():
    with pytest.raises(ValueError, match="method must be one of directions, entries"):
        gradcheck(build(NETWORKS["3d"], dtype="float64"), method="sampled")
    with pytest.raises(ValueError, match="scope must be one of layer, network"):
        gradcheck(build(NETWORKS["3d"], dtype="float64"), scope="everything")


def test_float32_networks_are_refused():
    with pytest.raises(ValueError, match="needs a float64 network"):
        gradcheck(build(NETWORKS["3d"]))


@pytest.mark.parametrize("method, steps", [("directions", 8), ("entries", 7)])
def test_progress_is_reported_per_layer(method, steps):
    seen = []
    gradcheck(Spec.model_validate(NETWORKS["3d"]), method=method,
              progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, steps) for i in range(1, steps + 1)]   # + the end-to-end step


def test_numerical_gradient_of_a_known_function():
    a = np.array([[0.5, -1.0], [2.0, 3.0]])
    grad = numerical_gradient(lambda: float(np.sin(a).sum() + (a[0] * a[1]).sum()), a)
    expected = np.cos(a) + a[::-1]
    assert relative_error(expected, grad) < 1e-9
    assert a.tolist() == [[0.5, -1.0], [2.0, 3.0]]


def test_numerical_gradient_steps_around_a_kink():
    a = np.array([1.0])
    loss = lambda: float(max(a[0] - (1.0 + 3e-7), 0.0))   # ReLU kink 3e-7 above a
    assert numerical_gradient(loss, a)[0] == pytest.approx(0.0, abs=1e-9)
    assert numerical_gradient(loss, a)[0] == 0.0


def test_numerical_gradient_needs_float64():
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(2, np.float32))


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([3.0, 4.0]), np.array([3.0, 4.0 + 1e-6])) == pytest.approx(
        1e-6 / 10)


@pytest.mark.parametrize("method, scope", WAYS)
def test_relu_zeros_tying_in_max_pooling_count_as_kinks_not_errors(method, scope):
    # ReLU outputs exact zeros; a pooling window of zeros is a tie: the loss has a kink
    # there and the engine's choice (first winner) lies between the one-sided slopes.
    # Along a direction the kink is at the point whatever the direction: it is drawn
    # again without the tied entries (the zeros).
    net = build({"input": [3, 8, 8], "layers": [
        {"type": "conv", "filters": 6, "kernel": 3, "padding": 1}, "relu",
        {"type": "maxpool", "kernel": 2}, "flatten", {"type": "dense", "units": 4}]},
        dtype="float64")
    net.parameters()["conv1"]["bias"][...] = -1.0     # most ReLUs off: many all-zero windows
    result = gradcheck(net, batch=4, seed=0, method=method, scope=scope)
    assert result.ok, result.failing()
    pool = [check for check in result.tensors if check.layer == "maxpool1"]
    assert sum(check.kinks for check in pool) > 0
    if method == "directions":       # moved: the pool's inputs that are not zeros
        assert pool[0].method == "direction" and 0 < pool[0].entries < 4 * 6 * 8 * 8


def test_a_direction_that_stays_on_a_kink_falls_back_to_entries():
    # One exact zero into a ReLU: no tie to leave out, every direction sits on the kink.
    net = build({"input": [4], "layers": ["relu", {"type": "dense", "units": 3}]},
                dtype="float64")
    x = np.array([[0.0, 1.0, -2.0, 0.5], [1.5, -1.0, 2.0, -0.5]])
    result = gradcheck(net, x)
    relu = [check for check in result.tensors if check.layer == "relu1"][0]
    assert relu.method == "entries" and relu.kinks >= 1 and relu.error < 1e-6
    assert result.ok, (result.failing(), result.end_to_end)
    assert result.end_to_end[0].kinks == 1


@pytest.mark.parametrize("method, scope", WAYS)
def test_a_gradient_zero_in_theory_is_not_failed_for_rounding_noise(method, scope):
    # A conv bias followed by batchnorm has gradient exactly 0; differences give ~1e-10.
    spec = Spec.model_validate({"input": [2, 5], "layers": [
        {"type": "conv", "filters": 3, "kernel": 2}, {"type": "batchnorm"}, "tanh"]})
    result = gradcheck(spec, batch=3, seed=0, method=method, scope=scope)
    bias = [check for check in result.tensors if check.tensor == "bias"][0]
    assert bias.error < 1e-7 and result.ok


def test_the_analytic_side_uses_the_step_actually_taken():
    # θ + t·v rounds: for θ = 1e8 (one ulp 1.5e-8) and t·v ≈ 1e-7 per entry only a
    # few bits of the step survive; against ⟨a, v⟩ the error would be ~1e-2.  (The
    # loss reads θ − 1e8, exact, so that its own rounding does not hide the effect.)
    target = np.full(4, 1e8)
    saved = target.copy()
    v = GRADCHECK._unit(np.array([1.0, 2.0, -1.0, 0.5]))
    weights = np.array([0.3, -1.0, 2.0, 0.7])
    move = GRADCHECK._moving(target, saved, v, weights,
                             lambda: float(np.dot(weights, target - 1e8)))
    found = GRADCHECK._along(move, 1e-7, 0.0, 0.0)
    assert abs(found.analytic - found.numeric) <= 1e-6 * abs(found.numeric)
    assert abs(float(np.dot(weights, v)) - found.numeric) > 1e-3 * abs(found.numeric)
    assert np.array_equal(target, saved)
