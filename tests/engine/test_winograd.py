"""Winograd F(4×4, 3×3) (engine/winograd.py) against naive loops, the im2col path and
numerical gradients.  The rule that picks it is held to the calculator's memory model in
tests/test_engine_rules.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from references import as_pairs, assert_leaves_arguments_alone
from test_conv import conv_layer, naive_conv

import convcalc
from engine import winograd
from engine.conv import Conv

RNG = np.random.default_rng(20261122)


def winograd_layer(**options):
    layer = conv_layer(kernel=3, **options)
    layer.algorithm = "winograd"
    return layer


def with_random_bias(layer, x):
    """Allocate the parameters (a forward pass on no examples) and give the bias random
    values: it starts at zero, which would hide a wrongly added bias."""
    layer.forward(x[:0])
    if "bias" in layer.params:
        layer.params["bias"][:] = RNG.standard_normal(layer.params["bias"].shape)
    return layer


def test_the_transform_matrices_compute_m_outputs_of_a_3_tap_correlation():
    """1-D: ``Aᵀ [(G g) ⊙ (Bᵀ d)]`` equals the correlation ``y_i = Σ_k d_{i+k} g_k``,
    written out as a sum (the matrices are checked, not trusted)."""
    for _ in range(20):
        d, g = RNG.standard_normal(6), RNG.standard_normal(3)
        direct = [sum(d[i + k] * g[k] for k in range(3)) for i in range(4)]
        np.testing.assert_allclose(winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d)),
                                   direct, rtol=1e-12, atol=1e-12)


CASES = [
    ((2, 16, 8, 8), dict(filters=16, padding=1)),                       # whole tiles
    ((1, 16, 7, 9), dict(filters=20, padding=1)),                       # odd: cropped tiles
    ((2, 17, 5, 6), dict(filters=16, padding=((0, 2), (1, 0)))),        # asymmetric
    ((1, 16, 3, 11), dict(filters=16)),                                 # valid, one row out
    ((3, 16, 6, 5), dict(filters=18, padding="same", bias=False)),
]


@pytest.mark.parametrize("shape, options", CASES)
def test_forward_equals_naive_loops(shape, options):
    x = RNG.standard_normal(shape)
    layer = with_random_bias(winograd_layer(**options), x)
    y = layer.forward(x)
    assert layer._cache[0] == "winograd"
    pads = as_pairs(options.get("padding", 0), 2) if options.get("padding") != "same" \
        else ((1, 1), (1, 1))
    expected = naive_conv(x, layer.params["weight"], layer.params.get("bias"), (1, 1),
                          pads, (1, 1), 1)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape, options", CASES)
def test_backward_equals_the_im2col_path(shape, options):
    x = RNG.standard_normal(shape)
    layer = with_random_bias(winograd_layer(**options), x)
    reference = conv_layer(kernel=3, **options)
    reference.algorithm = "im2col"
    y = layer.forward(x)
    reference.params = {name: value.copy() for name, value in layer.params.items()}
    np.testing.assert_allclose(y, reference.forward(x), rtol=1e-11, atol=1e-11)
    dy = RNG.standard_normal(y.shape)
    dx, dx_reference = layer.backward(dy), reference.backward(dy)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_reference, rtol=1e-11, atol=1e-11)
    assert layer.grads.keys() == reference.grads.keys()
    for name in layer.grads:
        np.testing.assert_allclose(layer.grads[name], reference.grads[name],
                                   rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("shape, options", [CASES[1], CASES[2]])
def test_leaves_its_arguments_alone(shape, options):
    """The tile fold overwrites a workspace in place; never the caller's arrays."""
    layer = winograd_layer(**options)
    assert_leaves_arguments_alone(layer, RNG.standard_normal(shape), RNG)
    assert layer._cache[0] == "winograd"


@pytest.mark.parametrize("shape, options", [
    ((1, 16, 5, 6), dict(filters=16, padding=1)),
    ((2, 16, 4, 3), dict(filters=16, padding=((2, 0), (0, 1)), bias=False)),
])
def test_gradients_match_centred_differences(shape, options, gradient_errors):
    x = RNG.standard_normal(shape)
    layer = with_random_bias(winograd_layer(**options), x)
    errors = gradient_errors(layer, x)
    assert layer._cache[0] == "winograd"
    assert max(errors.values()) < 1e-6, errors


def test_float32_stays_within_float32_rounding_of_float64():
    """F(4×4, 3×3)'s transforms hold coefficients up to 8 and 1/24: float32 loses a few
    more bits than im2col (measured ~1e-5 of the largest value), never more than 1e-4."""
    x = RNG.standard_normal((2, 32, 12, 12))
    wide = winograd_layer(filters=32, padding=1)
    narrow = winograd_layer(filters=32, padding=1, dtype=np.float32)
    y = wide.forward(x)
    narrow.params = {name: value.astype(np.float32) for name, value in wide.params.items()}
    y32 = narrow.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    dy = RNG.standard_normal(y.shape)
    pairs = [(y32, y), (narrow.backward(dy.astype(np.float32)), wide.backward(dy)),
             (narrow.grads["weight"], wide.grads["weight"])]
    for low, high in pairs:
        assert low.dtype == np.float32
        assert np.abs(low - high).max() / np.abs(high).max() < 1e-4


def test_forcing_winograd_where_it_does_not_apply_is_a_clear_error():
    layer = conv_layer(filters=16, kernel=3, stride=2, padding=1)
    layer.algorithm = "winograd"
    with pytest.raises(ValueError, match="needs a 2-D 3×3 convolution with stride 1"):
        layer.forward(np.zeros((1, 16, 8, 8)))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(batch=st.integers(1, 3), channels=st.integers(16, 20), filters=st.integers(16, 20),
       height=st.integers(1, 14), width=st.integers(1, 14),
       pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans())
def test_agrees_with_im2col_on_random_shapes(batch, channels, filters, height, width, pads,
                                             bias):
    """Every output size (whole tiles or not), padding and bias: the two paths give the
    same outputs and gradients; inputs too small for a 3×3 window fail the same way."""
    padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    fast, slow = (conv_layer(filters=filters, kernel=3, padding=padding, bias=bias)
                  for _ in range(2))
    fast.algorithm, slow.algorithm = "winograd", "im2col"
    x = RNG.standard_normal((batch, channels, height, width))
    if height + pads[0] + pads[1] < 3 or width + pads[2] + pads[3] < 3:
        for layer in (fast, slow):
            with pytest.raises(ValueError):
                layer.forward(x)
        return
    y = with_random_bias(fast, x).forward(x)
    slow.params = {name: value.copy() for name, value in fast.params.items()}
    np.testing.assert_allclose(y, slow.forward(x), rtol=1e-10, atol=1e-10)
    dy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(fast.backward(dy), slow.backward(dy), rtol=1e-10, atol=1e-10)
    for name in fast.grads:
        np.testing.assert_allclose(fast.grads[name], slow.grads[name], rtol=1e-10,
                                   atol=1e-9)


def test_a_network_of_winograd_layers_verifies():
    """End to end through convcalc.verify: predicted shapes and counts hold."""
    spec = convcalc.validate({"input": [16, 10, 10], "layers": [
        {"type": "conv", "filters": 16, "kernel": 3, "padding": 1}, "relu",
        {"type": "conv", "filters": 24, "kernel": 3}]})
    result = convcalc.verify(spec, batch=2, gradcheck=True)
    assert result.ok
    assert Conv.algorithm is None            # nothing above forced a path for every layer


def test_filters_too_big_to_keep_are_transformed_again(monkeypatch):
    """Big ``U`` is not kept from forward; backward transforms the weights again and must
    give the same gradients."""
    x = RNG.standard_normal((2, 16, 6, 7))
    kept = with_random_bias(winograd_layer(filters=16, padding=1), x)
    again = winograd_layer(filters=16, padding=1)
    again.forward(x[:0])
    again.params = {name: value.copy() for name, value in kept.params.items()}
    y = kept.forward(x)
    assert kept._cache[-1][0] is not None
    monkeypatch.setattr(winograd, "KEEP_TRANSFORMED", 0)
    np.testing.assert_array_equal(again.forward(x), y)
    assert again._cache[-1][0] is None
    dy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(again.backward(dy), kept.backward(dy), rtol=1e-12, atol=1e-12)
    for name in kept.grads:
        np.testing.assert_allclose(again.grads[name], kept.grads[name], rtol=1e-12,
                                   atol=1e-12)
