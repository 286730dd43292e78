"""The non-windowed engine layers against formulas written out here, naive loops and
centred-difference gradients (float64), in 1-D, 2-D and 3-D where spatial."""

from __future__ import annotations

import math

import numpy as np
import pytest
from references import numerical_gradient

from convcalc import spec as specs
from engine.activations import (
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    softmax_cross_entropy,
)
from engine.layers import Dense, Dropout, Flatten, GlobalPool
from engine.normalization import LRN, BatchNorm

SPATIAL_SHAPES = {1: (2, 3, 5), 2: (2, 3, 4, 5), 3: (2, 2, 3, 4, 3)}
FLAT_SHAPE = (3, 7)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def make(cls, model, dtype="float64", seed=0, **options):
    """An engine layer from a spec model built with ``options``."""
    return cls(model(name=f"{options.get('type', 'x')}1", **options), rng(seed), dtype)


def relu():
    return make(ReLU, specs.ReLU, type="relu")


def leaky(slope=0.1):
    return make(LeakyReLU, specs.LeakyRelu, type="leaky_relu", negative_slope=slope)


def sigmoid():
    return make(Sigmoid, specs.Sigmoid, type="sigmoid")


def tanh():
    return make(Tanh, specs.Tanh, type="tanh")


def softmax():
    return make(Softmax, specs.Softmax, type="softmax")


def global_pool(kind):
    return make(GlobalPool, specs.GlobalPool, type=f"global_{kind}pool")


def flatten():
    return make(Flatten, specs.Flatten, type="flatten")


def dense(units=4, bias=True, dtype="float64"):
    return make(Dense, specs.Dense, dtype=dtype, type="dense", units=units, bias=bias)


def dropout(rate=0.5, seed=0):
    return make(Dropout, specs.Dropout, seed=seed, type="dropout", rate=rate)


def batchnorm(**options):
    return make(BatchNorm, specs.BatchNorm, type="batchnorm", **options)


def lrn(**options):
    return make(LRN, specs.LRN, type="lrn", **options)


def away_from_zero(shape, seed=0):
    """Random values with |x| ≥ 0.1, so a centred difference never crosses a ReLU kink."""
    values = rng(seed).standard_normal(shape)
    return np.sign(values) * (0.1 + np.abs(values))


# --- numerical gradients, written here (not the engine's gradcheck) --------------------


def rel_error(a, b):
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def assert_gradients(layer, x, before_forward=lambda: None, tolerance=1e-6):
    """Backward against centred differences of ``L = Σ forward(x) ⊙ P``, for the input
    and every parameter; ``before_forward`` resets anything random."""
    x = x.astype(np.float64).copy()
    before_forward()
    y = layer.forward(x)
    projection = rng(99).standard_normal(y.shape)
    dx = layer.backward(projection.copy())
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}

    def loss():
        before_forward()
        return float((layer.forward(x) * projection).sum())

    assert rel_error(dx, numerical_gradient(loss, x)) < tolerance
    for name, param in layer.params.items():
        assert rel_error(analytic[name], numerical_gradient(loss, param)) < tolerance, name


# Every kind's gradients in 1, 2 and 3 spatial axes and on flat vectors are checked
# against centred differences through its examples (tests/test_kinds.py); the tests
# here cover what examples cannot: fixed masks, eval mode, chosen values.


@pytest.mark.parametrize("bias", [True, False])
def test_dense_gradients(bias):
    assert_gradients(dense(units=4, bias=bias), rng(1).standard_normal(FLAT_SHAPE))


@pytest.mark.parametrize("dims", [0, 1, 2, 3])
def test_dropout_gradients_with_a_fixed_mask(dims):
    layer = dropout(rate=0.4)
    shape = SPATIAL_SHAPES.get(dims, FLAT_SHAPE)

    def same_mask():
        layer.rng = rng(7)

    assert_gradients(layer, rng(2).standard_normal(shape), same_mask)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_batchnorm_gradients_in_eval_mode(dims):
    layer = batchnorm()
    layer.forward(rng(3).standard_normal(SPATIAL_SHAPES[dims]))   # allocate, move stats
    layer.training = False
    layer.params["gamma"][...] = rng(4).uniform(0.5, 2.0, layer.params["gamma"].shape)
    layer.params["beta"][...] = rng(5).standard_normal(layer.params["beta"].shape)
    assert_gradients(layer, rng(6).standard_normal(SPATIAL_SHAPES[dims]))


def test_batchnorm_gradients_with_gamma_and_beta_in_training():
    layer = batchnorm()
    layer.forward(np.zeros((0, 3, 4, 5)))
    layer.params["gamma"][...] = [0.5, 1.5, -2.0]
    layer.params["beta"][...] = [0.1, -0.2, 0.3]
    assert_gradients(layer, rng(8).standard_normal((2, 3, 4, 5)))


# --- values against formulas written here ----------------------------------------------


def test_elementwise_values():
    x = np.array([[-3.0, -0.5, 0.0, 0.25, 4.0]])
    assert relu().forward(x).tolist() == [[0.0, 0.0, 0.0, 0.25, 4.0]]
    assert leaky(0.2).forward(x).tolist() == [[-0.6000000000000001, -0.1, 0.0, 0.25, 4.0]]
    expected_sigmoid = [[1 / (1 + math.exp(-v)) for v in x[0]]]
    np.testing.assert_allclose(sigmoid().forward(x), expected_sigmoid, rtol=1e-15)
    np.testing.assert_allclose(tanh().forward(x), [[math.tanh(v) for v in x[0]]], rtol=1e-15)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, 3.0])
def test_leaky_relu_is_the_masked_select_for_any_slope(slope):
    """The layer computes max(x, s·x) (min for s > 1); it must equal the definition
    for every slope the spec allows (s ≥ 0)."""
    x = rng(3).standard_normal((2, 3, 4, 5))
    dy = rng(4).standard_normal(x.shape)
    layer = leaky(slope)
    assert np.array_equal(layer.forward(x), np.where(x > 0, x, slope * x))
    assert np.array_equal(layer.backward(dy), np.where(x > 0, dy, slope * dy))


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        y = sigmoid().forward(np.array([[-1e4, 1e4]]))
    assert y.tolist() == [[0.0, 1.0]]


def test_softmax_over_channels_matches_a_loop():
    x = rng(10).standard_normal((2, 4, 3, 2))
    y = softmax().forward(x)
    for n in range(2):
        for i in range(3):
            for j in range(2):
                exps = [math.exp(x[n, c, i, j]) for c in range(4)]
                for c in range(4):
                    assert y[n, c, i, j] == pytest.approx(exps[c] / sum(exps), rel=1e-13)


def test_softmax_is_stable_for_large_logits():
    y = softmax().forward(np.array([[1000.0, 1000.0 + math.log(3.0)]]))
    np.testing.assert_allclose(y, [[0.25, 0.75]], rtol=1e-12)


def test_softmax_cross_entropy_matches_a_loop():
    logits = rng(11).standard_normal((5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    loss, dlogits = softmax_cross_entropy(logits, labels)
    total = 0.0
    for n in range(5):
        denominator = sum(math.exp(v) for v in logits[n])
        total -= math.log(math.exp(logits[n, labels[n]]) / denominator)
        for c in range(3):
            p = math.exp(logits[n, c]) / denominator
            assert dlogits[n, c] == pytest.approx((p - (c == labels[n])) / 5, abs=1e-15)
    assert loss == pytest.approx(total / 5, rel=1e-13)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert rel_error(dlogits, numeric) < 1e-6


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros((2, 3, 4)), [0, 1], "must be \\(N, C\\)"),
    (np.zeros((2, 3)), [0.0, 1.0], "integers"),
    (np.zeros((2, 3)), [0, 3], "in \\[0, 3\\)"),
    (np.zeros((0, 3)), np.zeros(0, int), "empty"),
])
def test_softmax_cross_entropy_rejects_bad_input(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        softmax_cross_entropy(logits, labels)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_global_pools_match_loops(dims):
    x = rng(12).standard_normal(SPATIAL_SHAPES[dims])
    avg, mx = global_pool("avg").forward(x), global_pool("max").forward(x)
    assert avg.shape == mx.shape == x.shape[:2]
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            values = list(x[n, c].ravel())
            assert avg[n, c] == pytest.approx(math.fsum(values) / len(values), rel=1e-13)
            assert mx[n, c] == max(values)


def test_flatten_is_c_order():
    x = rng(13).standard_normal((2, 3, 4, 5))
    y = flatten().forward(x)
    assert y.shape == (2, 60)
    for c in range(3):
        for i in range(4):
            for j in range(5):
                assert y[1, c * 20 + i * 5 + j] == x[1, c, i, j]


def test_flatten_passes_flat_vectors_through():
    x = rng(14).standard_normal(FLAT_SHAPE)
    assert np.array_equal(flatten().forward(x), x)


def test_dense_layout_values_and_init():
    layer = dense(units=300, dtype="float32")
    x = rng(15).standard_normal((3, 400)).astype(np.float32)
    y = layer.forward(x)
    weight, bias = layer.params["weight"], layer.params["bias"]
    assert weight.shape == (400, 300) and bias.shape == (300,)
    assert weight.dtype == bias.dtype == y.dtype == np.float32
    assert not bias.any()
    assert abs(weight.mean()) < 0.002
    assert weight.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)   # He-normal
    bias[...] = rng(16).standard_normal(300)
    y = layer.forward(x)
    for n, u in [(0, 0), (2, 17), (1, 299)]:
        expected = math.fsum(float(x[n, f]) * float(weight[f, u]) for f in range(400))
        assert y[n, u] == pytest.approx(expected + float(bias[u]), rel=1e-4, abs=1e-4)


def test_dense_without_bias_has_only_a_weight():
    layer = dense(units=2, bias=False)
    layer.forward(np.zeros((0, 5)))
    assert list(layer.params) == ["weight"]


def test_dropout_masks_scales_and_repeats_with_the_seed():
    x = np.ones((200, 500))
    y = dropout(rate=0.3, seed=5).forward(x)
    kept = y != 0
    assert set(np.unique(y).tolist()) == {0.0, 1 / 0.7}
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    assert np.array_equal(dropout(rate=0.3, seed=5).forward(x), y)
    assert not np.array_equal(dropout(rate=0.3, seed=6).forward(x), y)


def test_dropout_backward_uses_the_forward_mask_and_eval_is_identity():
    layer = dropout(rate=0.5)
    x = rng(17).standard_normal((4, 6))
    y = layer.forward(x)
    dout = rng(18).standard_normal((4, 6))
    np.testing.assert_array_equal(layer.backward(dout), np.where(y != 0, dout * 2.0, 0.0))
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_rate_zero_keeps_everything():
    x = rng(19).standard_normal((3, 4))
    np.testing.assert_array_equal(dropout(rate=0.0).forward(x), x)


def naive_batchnorm(x, gamma, beta, eps):
    """Per channel, with Python sums: (y, batch means, biased variances, m)."""
    y = np.empty_like(x)
    means, variances = [], []
    for c in range(x.shape[1]):
        values = x[:, c].ravel().tolist()
        m = len(values)
        mean = math.fsum(values) / m
        var = math.fsum((v - mean) ** 2 for v in values) / m
        y[:, c] = (x[:, c] - mean) / math.sqrt(var + eps) * gamma[c] + beta[c]
        means.append(mean)
        variances.append(var)
    return y, np.array(means), np.array(variances), m


@pytest.mark.parametrize("shape", [FLAT_SHAPE, *SPATIAL_SHAPES.values()])
def test_batchnorm_training_values_and_running_stats(shape):
    layer = batchnorm(eps=1e-3, momentum=0.2)
    x = rng(20).standard_normal(shape) * 3 + 1
    layer.forward(np.zeros((0, *shape[1:])))
    channels = shape[1]
    gamma, beta = rng(21).uniform(0.5, 2, channels), rng(22).standard_normal(channels)
    layer.params["gamma"][...] = gamma
    layer.params["beta"][...] = beta
    y = layer.forward(x)
    expected, means, variances, m = naive_batchnorm(x, gamma, beta, 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.2 * means, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"],
                               0.8 * 1.0 + 0.2 * variances * m / (m - 1), rtol=1e-12)
    # eval mode uses the running statistics
    layer.training = False
    rm, rv = layer.buffers["running_mean"], layer.buffers["running_var"]
    per = (1, channels) + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(
        layer.forward(x),
        (x - rm.reshape(per)) / np.sqrt(rv.reshape(per) + 1e-3) * gamma.reshape(per)
        + beta.reshape(per), rtol=1e-12, atol=1e-12)


def test_batchnorm_updates_its_buffers_in_place():
    layer = batchnorm()
    layer.forward(np.zeros((0, 2, 3)))
    held = layer.buffers["running_mean"]
    layer.forward(rng(23).standard_normal((4, 2, 3)))
    assert layer.buffers["running_mean"] is held and held.any()


def test_batchnorm_empty_batch_leaves_stats_alone_and_one_value_is_refused():
    layer = batchnorm()
    assert layer.forward(np.zeros((0, 3, 2, 2))).shape == (0, 3, 2, 2)
    assert layer.buffers["running_mean"].tolist() == [0, 0, 0]
    assert layer.buffers["running_var"].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="batchnorm1: training needs more than one value"):
        layer.forward(np.zeros((1, 3, 1, 1)))
    layer.training = False
    assert layer.forward(np.ones((1, 3, 1, 1))).shape == (1, 3, 1, 1)


def naive_lrn(x, size, alpha, beta, k):
    y = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        low, high = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        total = sum(x[:, j] ** 2 for j in range(low, high + 1))
        y[:, c] = x[:, c] / (k + alpha / size * total) ** beta
    return y


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("shape", [(2, 6), (2, 6, 3), (1, 6, 2, 3), (1, 6, 2, 2, 2)])
def test_lrn_matches_the_window_formula(size, shape):
    x = rng(24).standard_normal(shape) * 2
    y = lrn(size=size, alpha=0.3, beta=0.75, k=1.5).forward(x)
    np.testing.assert_allclose(y, naive_lrn(x, size, 0.3, 0.75, 1.5), rtol=1e-13)


@pytest.mark.parametrize("size", [2, 4, 7])
def test_lrn_gradients_with_even_and_wide_windows(size):
    assert_gradients(lrn(size=size, alpha=0.7, beta=0.6, k=1.0),
                     rng(25).standard_normal((2, 5, 3, 2)))


# --- optional cross-check with PyTorch ------------------------------------------------


def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = rng(26).standard_normal((3, 6, 4, 5))
    ours = lrn(size=5, alpha=1e-2, beta=0.75, k=2.0).forward(x)
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0)(torch.tensor(x))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10)
    bn, tbn = batchnorm(momentum=0.1), torch.nn.BatchNorm2d(6, momentum=0.1).double()
    np.testing.assert_allclose(bn.forward(x), tbn(torch.tensor(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(bn.buffers["running_var"], tbn.running_var.numpy(), rtol=1e-12)


# Properties every layer has (leaves its arguments alone, takes an empty batch, keeps
# float32) are checked on every kind's examples in tests/test_kinds.py.


@pytest.mark.parametrize("layer, x, message", [
    (lambda: dense(), np.zeros((2, 3, 4)), "dense1: needs a flat vector \\(N, F\\)"),
    (lambda: global_pool("avg"), np.zeros((2, 3)), "global_avgpool1: needs a feature map"),
    (lambda: batchnorm(), np.zeros(3), "batchnorm1: needs \\(N, C, ...\\)"),
    (lambda: lrn(), np.zeros(3), "lrn1: needs"),
])
def test_wrong_input_kinds_raise_value_errors_naming_the_layer(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer().forward(x)


def test_a_built_layer_refuses_a_different_width():
    layer = dense()
    layer.forward(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="dense1: built for 5 input features, got 6"):
        layer.forward(np.zeros((1, 6)))
