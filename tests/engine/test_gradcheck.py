"""engine.gradcheck: whole networks of every layer kind pass in 1-D, 2-D and 3-D, and a
wrong gradient is caught and pinned to its layer."""

from __future__ import annotations

import numpy as np
import pytest

from convcalc.spec import Spec
from engine import build, gradcheck, numerical_gradient, relative_error

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


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_layer_passes_in_float64(name):
    spec = Spec.model_validate(NETWORKS[name])
    result = gradcheck(spec, batch=3, seed=1)
    assert set(result.per_layer) == {layer.name for layer in spec.layers}
    assert result.ok, result.failing()
    assert result.max_error < 1e-6


def test_input_and_every_parameter_tensor_are_checked_on_at_most_samples_entries():
    spec = Spec.model_validate(NETWORKS["2d"])
    result = gradcheck(spec, batch=2, samples=5)
    tensors = {(check.layer, check.tensor) for check in result.tensors}
    assert ("conv1", "input") in tensors and ("conv1", "weight") in tensors
    assert ("conv1", "bias") in tensors and ("dense1", "weight") in tensors
    assert ("dense1", "bias") not in tensors
    assert max(check.entries for check in result.tensors) == 5
    assert min(check.entries for check in result.tensors) == 4   # conv1's bias has 4


def test_a_wrong_input_gradient_is_caught_and_located():
    net = build(NETWORKS["2d"], dtype="float64")
    sigmoid = net.layer("sigmoid1")
    backward = sigmoid.backward
    sigmoid.backward = lambda dout: 1.001 * backward(dout)
    result = gradcheck(net)
    assert not result.ok
    # Layers before the broken one see a wrong gradient; those after it do not.
    assert set(result.failing()) == {"conv1", "leaky_relu1", "avgpool1", "conv2", "sigmoid1"}
    assert result.per_layer["minpool1"] < 1e-6


def test_a_wrong_parameter_gradient_is_caught():
    net = build(NETWORKS["1d"], dtype="float64")
    dense = net.layer("dense1")
    backward = dense.backward

    def wrong(dout):
        dx = backward(dout)
        dense.grads["bias"] = dense.grads["bias"] * 0.99
        return dx

    dense.backward = wrong
    result = gradcheck(net)
    assert set(result.failing()) == {"dense1"}
    bad = [c for c in result.tensors if c.error >= 1e-6]
    assert [(c.layer, c.tensor) for c in bad] == [("dense1", "bias")]


def test_gradcheck_leaves_the_network_as_it_was():
    net = build(NETWORKS["1d"], dtype="float64")
    params = {(n, k): v.copy() for n, p in net.parameters().items() for k, v in p.items()}
    buffers = {(n, k): v.copy() for n, b in net.buffers().items() for k, v in b.items()}
    state = net.layer("dropout1").rng.bit_generator.state
    gradcheck(net)
    for (n, k), v in params.items():
        assert np.array_equal(net.parameters()[n][k], v)
    for (n, k), v in buffers.items():
        assert np.array_equal(net.buffers()[n][k], v)
    assert net.layer("dropout1").rng.bit_generator.state == state


def test_float32_networks_are_refused():
    with pytest.raises(ValueError, match="needs a float64 network"):
        gradcheck(build(NETWORKS["3d"]))


def test_progress_is_reported_per_layer():
    seen = []
    gradcheck(Spec.model_validate(NETWORKS["3d"]), progress=lambda done, total: seen.append(
        (done, total)))
    assert seen == [(i, 7) for i in range(1, 8)]


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


def test_relu_zeros_tying_in_max_pooling_count_as_kinks_not_errors():
    # ReLU outputs exact zeros; a pooling window of zeros is a tie: the loss has a kink
    # there and the engine's choice (first winner) lies between the one-sided slopes.
    net = build({"input": [3, 8, 8], "layers": [
        {"type": "conv", "filters": 6, "kernel": 3, "padding": 1}, "relu",
        {"type": "maxpool", "kernel": 2}, "flatten", {"type": "dense", "units": 4}]},
        dtype="float64")
    net.parameters()["conv1"]["bias"][...] = -1.0     # most ReLUs off: many all-zero windows
    result = gradcheck(net, batch=4, seed=0)
    assert result.ok, result.failing()
    assert sum(check.kinks for check in result.tensors if check.layer == "maxpool1") > 0


def test_a_gradient_zero_in_theory_is_not_failed_for_rounding_noise():
    # A conv bias followed by batchnorm has gradient exactly 0; differences give ~1e-10.
    spec = Spec.model_validate({"input": [2, 5], "layers": [
        {"type": "conv", "filters": 3, "kernel": 2}, {"type": "batchnorm"}, "tanh"]})
    result = gradcheck(spec, batch=3, seed=0)
    bias = [check for check in result.tensors if check.tensor == "bias"][0]
    assert bias.error < 1e-7 and result.ok
