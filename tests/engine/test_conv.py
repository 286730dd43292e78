"""Conv and ConvTranspose against scipy, naive loops, numerical gradients (and torch)."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from references import as_pairs, as_tuple, assert_leaves_arguments_alone, window_starts
from scipy import signal

from convcalc.spec import Conv as ConvSpec
from convcalc.spec import ConvTranspose as ConvTransposeSpec
from engine.conv import Conv, ConvTranspose

RNG = np.random.default_rng(20240601)


def conv_layer(dtype=np.float64, rounding="floor", **options):
    options.setdefault("name", "conv1")
    return Conv(ConvSpec(type="conv", **options), np.random.default_rng(0), dtype,
                rounding=rounding)


def transpose_layer(dtype=np.float64, **options):
    options.setdefault("name", "up1")
    return ConvTranspose(ConvTransposeSpec(type="conv_transpose", **options),
                         np.random.default_rng(0), dtype)


# --- naive reference implementations (loops over output positions) ---------------------


def naive_conv(x, w, b, stride, pads, dilation, groups, ceil=False):
    dims = x.ndim - 2
    filters, per_group = w.shape[0], w.shape[1]
    kernel = w.shape[2:]
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    starts = [window_starts(n, pb, pa, e, s, ceil)
              for n, (pb, pa), e, s in zip(x.shape[2:], pads, extents, stride)]
    # zeros past the end for ceil windows that hang over
    ends = [max(st[-1] + e - (n + pb + pa), 0)
            for st, e, n, (pb, pa) in zip(starts, extents, x.shape[2:], pads)]
    xp = np.pad(x, [(0, 0), (0, 0), *[(pb, pa + end) for (pb, pa), end in zip(pads, ends)]])
    y = np.zeros((x.shape[0], filters, *map(len, starts)))
    for n, f in product(range(x.shape[0]), range(filters)):
        group = f // (filters // groups)
        channels = slice(group * per_group, (group + 1) * per_group)
        for out_index in product(*(range(len(s)) for s in starts)):
            where = tuple(slice(st[o], st[o] + e, d)
                          for st, o, e, d in zip(starts, out_index, extents, dilation))
            y[(n, f, *out_index)] = np.sum(xp[(n, channels, *where)] * w[f]) + \
                (b[f] if b is not None else 0.0)
    assert dims == len(starts)
    return y


def naive_conv_transpose(x, w, b, stride, pads, dilation, groups, output_padding):
    """Scatter: every input entry adds x · W[c] into the output, then crop the padding."""
    batch, channels = x.shape[:2]
    per_group, kernel = w.shape[1], w.shape[2:]
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    full = [(n - 1) * s + e + op
            for n, s, e, op in zip(x.shape[2:], stride, extents, output_padding)]
    y = np.zeros((batch, per_group * groups, *full))
    for n, c in product(range(batch), range(channels)):
        group = c // (channels // groups)
        filters = slice(group * per_group, (group + 1) * per_group)
        for position in product(*(range(size) for size in x.shape[2:])):
            where = tuple(slice(p * s, p * s + e, d)
                          for p, s, e, d in zip(position, stride, extents, dilation))
            y[(n, filters, *where)] += x[(n, c, *position)] * w[c]
    y = y[(Ellipsis, *(slice(pb, size - pa) for size, (pb, pa) in zip(full, pads)))]
    return y + (b.reshape(-1, *(1,) * len(kernel)) if b is not None else 0.0)


# --- values -----------------------------------------------------------------------------


def test_single_channel_conv_is_scipy_correlate2d():
    layer = conv_layer(filters=1, kernel=(3, 4), bias=False)
    x = RNG.standard_normal((1, 1, 9, 8))
    y = layer.forward(x)
    expected = signal.correlate2d(x[0, 0], layer.params["weight"][0, 0], mode="valid")
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-12, atol=1e-12)
    # and not convolve2d: the kernel is not flipped
    assert not np.allclose(y[0, 0], signal.convolve2d(x[0, 0], layer.params["weight"][0, 0],
                                                      mode="valid"))


@pytest.mark.parametrize("shape, kernel", [((11,), 4), ((5, 6, 7), (2, 3, 2))])
def test_single_channel_conv_is_scipy_correlate_1d_3d(shape, kernel):
    layer = conv_layer(filters=1, kernel=kernel, bias=False)
    x = RNG.standard_normal((1, 1, *shape))
    y = layer.forward(x)
    expected = signal.correlate(x[0, 0], layer.params["weight"][0, 0], mode="valid")
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-12, atol=1e-12)


def test_multichannel_sums_channels_and_adds_bias():
    layer = conv_layer(filters=2, kernel=3)
    x = RNG.standard_normal((1, 3, 5, 5))
    layer.forward(x)
    layer.params["bias"][:] = [0.5, -2.0]
    w = layer.params["weight"]
    y = layer.forward(x)
    for f in range(2):
        expected = sum(signal.correlate2d(x[0, c], w[f, c], mode="valid") for c in range(3))
        np.testing.assert_allclose(y[0, f], expected + [0.5, -2.0][f], rtol=1e-12)


CONV_CASES = [
    # (input shape, options, rounding)
    ((2, 3, 7, 7), dict(filters=4, kernel=3, stride=2), "floor"),
    ((2, 2, 6, 5), dict(filters=3, kernel=(3, 2), padding=((1, 2), (0, 1))), "floor"),
    ((1, 2, 9, 8), dict(filters=2, kernel=3, dilation=(2, 3), padding=1), "floor"),
    ((2, 4, 6, 6), dict(filters=6, kernel=3, groups=2, padding=1, bias=False), "floor"),
    ((2, 3, 5, 6), dict(filters=6, kernel=(2, 3), groups="depthwise"), "floor"),
    ((1, 3, 7, 7), dict(filters=3, kernel=3, stride=3), "ceil"),          # 0, 3, 6 + overhang
    ((1, 1, 6, 7), dict(filters=2, kernel=2, stride=2, padding=(0, 1)), "ceil"),
    ((1, 2, 7, 7), dict(filters=2, kernel=3, stride=3), "exact"),        # exact = floor
    ((2, 3, 10), dict(filters=4, kernel=3, stride=2, dilation=2, padding=((2, 0),)), "floor"),
    ((1, 2, 4, 5, 6), dict(filters=3, kernel=(2, 3, 2), stride=(1, 2, 2),
                           padding=(1, 0, (0, 1))), "floor"),
    ((1, 4, 4, 4, 5), dict(filters=4, kernel=2, groups=4, dilation=(1, 2, 1)), "ceil"),
]


@pytest.mark.parametrize("shape, options, rounding", CONV_CASES)
def test_conv_matches_naive_loops(shape, options, rounding):
    layer = conv_layer(rounding=rounding, **options)
    x = RNG.standard_normal(shape)
    y = layer.forward(x)
    dims = len(shape) - 2
    groups = shape[1] if options.get("groups") == "depthwise" else options.get("groups", 1)
    expected = naive_conv(x, layer.params["weight"], layer.params.get("bias"),
                          as_tuple(options.get("stride", 1), dims),
                          as_pairs(options.get("padding", 0), dims),
                          as_tuple(options.get("dilation", 1), dims), groups,
                          ceil=rounding == "ceil")
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_ceil_rounding_by_hand():
    # n = 7, k = 3, s = 3: floor windows start at 0, 3 (row 6 lost); ceil adds one at 6
    # that hangs 2 past the end (implicit zeros).
    assert conv_layer(filters=1, kernel=3, stride=3).forward(np.ones((1, 1, 7))).shape[-1] == 2
    ceil = conv_layer(filters=1, kernel=3, stride=3, bias=False, rounding="ceil")
    x = np.arange(7.0).reshape(1, 1, 7)
    y = ceil.forward(x)
    w = ceil.params["weight"][0, 0]
    np.testing.assert_allclose(y[0, 0], [x[0, 0, 0:3] @ w, x[0, 0, 3:6] @ w, 6.0 * w[0]])
    # n = 6, k = 2, s = 2, pad (0, 1): (7 − 2)/2 + 1 = 3.5; a 4th window would start at 6,
    # in the right padding (6 ≥ n + pb = 6), so ceil drops it and keeps 3.
    dropped = conv_layer(filters=1, kernel=2, stride=2, padding=((0, 1),), rounding="ceil")
    assert dropped.forward(np.ones((1, 1, 6))).shape[-1] == 3


TRANSPOSE_CASES = [
    ((2, 3, 4, 4), dict(filters=2, kernel=3, stride=2)),
    ((1, 2, 5, 3), dict(filters=4, kernel=(3, 2), stride=(2, 3), padding=((1, 0), 1),
                        output_padding=(1, 2))),
    ((2, 4, 3, 4), dict(filters=2, kernel=2, stride=1, dilation=(2, 3), output_padding=(1, 0),
                        groups=2)),
    ((1, 2, 6), dict(filters=3, kernel=4, stride=2, padding=1, bias=False)),
    ((1, 2, 3, 2, 4), dict(filters=2, kernel=(2, 3, 2), stride=(2, 1, 2), padding=(0, 1, 0),
                           output_padding=(1, 0, 1))),
]


@pytest.mark.parametrize("shape, options", TRANSPOSE_CASES)
def test_conv_transpose_matches_naive_scatter(shape, options):
    layer = transpose_layer(**options)
    x = RNG.standard_normal(shape)
    dims = len(shape) - 2
    y = layer.forward(x)
    expected = naive_conv_transpose(x, layer.params["weight"], layer.params.get("bias"),
                                    as_tuple(options.get("stride", 1), dims),
                                    as_pairs(options.get("padding", 0), dims),
                                    as_tuple(options.get("dilation", 1), dims),
                                    options.get("groups", 1),
                                    as_tuple(options.get("output_padding", 0), dims))
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_conv_transpose_upsamples_by_the_stride():
    """k = 4, s = 2, p = 1: the usual ×2 upsampling, 16 → 32."""
    assert transpose_layer(filters=2, kernel=4, stride=2, padding=1).forward(
        np.zeros((1, 3, 16, 16))).shape == (1, 2, 32, 32)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> = <x, conv_transpose(y)> with the same weights and no bias."""
    conv = conv_layer(filters=3, kernel=(3, 2), stride=2, padding=1, dilation=(1, 2), bias=False)
    x = RNG.standard_normal((2, 4, 7, 8))
    y = conv.forward(x)
    up = transpose_layer(filters=4, kernel=(3, 2), stride=2, padding=1, dilation=(1, 2),
                         output_padding=(0, 1), bias=False)
    z = RNG.standard_normal(y.shape)
    up.forward(z)
    up.params["weight"][...] = conv.params["weight"]
    back = up.forward(z)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, z), np.vdot(x, back), rtol=1e-12)


# --- gradients ----------------------------------------------------------------------------

GRAD_CONV_CASES = [
    ((2, 2, 6, 5), dict(filters=3, kernel=3, stride=2, padding=((1, 0), (2, 1))), "floor"),
    ((1, 4, 5, 6), dict(filters=4, kernel=(2, 3), dilation=(2, 1), groups=2), "floor"),
    ((2, 3, 7, 7), dict(filters=3, kernel=3, stride=3, groups="depthwise"), "ceil"),
    ((2, 2, 9), dict(filters=2, kernel=3, stride=2, dilation=2, padding=1), "ceil"),
    ((1, 2, 4, 5, 4), dict(filters=2, kernel=2, stride=(1, 2, 1), padding=(1, 0, (0, 1)),
                           dilation=(1, 1, 2)), "floor"),
]


@pytest.mark.parametrize("shape, options, rounding", GRAD_CONV_CASES)
def test_conv_gradients_match_centred_differences(shape, options, rounding, gradient_errors):
    layer = conv_layer(rounding=rounding, **options)
    errors = gradient_errors(layer, RNG.standard_normal(shape))
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-6, errors


STRIDE_ONE_CASES = [
    ((2, 3, 6, 7), dict(filters=3, kernel=3, padding=1)),                     # "same"
    ((1, 2, 5, 6), dict(filters=2, kernel=(2, 3), padding=((0, 1), (1, 1)))),
    ((1, 2, 5, 6), dict(filters=2, kernel=2, padding=((3, 0), (0, 4)))),    # pad > e − 1
    ((2, 4, 6, 6), dict(filters=4, kernel=3, dilation=2, padding=2, groups=2)),
    ((1, 3, 5, 5), dict(filters=3, kernel=3, padding="same", groups="depthwise")),
    ((2, 2, 9), dict(filters=2, kernel=4, dilation=2, padding="full")),
    ((1, 2, 4, 3, 5), dict(filters=2, kernel=(2, 3, 2), padding=(1, 1, (0, 1)))),
]


@pytest.mark.parametrize("shape, options", STRIDE_ONE_CASES)
def test_both_input_gradient_methods_agree_and_are_right(shape, options, gradient_errors):
    """Stride 1 with dy no bigger than the column gradient: backward correlates dy with the
    flipped kernel.  It must give col2im's numbers, and pass the numerical check."""
    layer = conv_layer(**options)
    x = RNG.standard_normal(shape)
    y = layer.forward(x)
    assert layer.uses_correlation_for_dx(x.shape, layer.window(x.shape), y.shape)
    dy = RNG.standard_normal(y.shape)
    by_correlation = layer.backward(dy)
    layer.input_gradient_method = "col2im"
    by_col2im = layer.backward(dy)
    np.testing.assert_allclose(by_correlation, by_col2im, rtol=1e-12, atol=1e-13)
    for method in ("correlation", "col2im"):
        layer.input_gradient_method = method
        assert max(gradient_errors(layer, x).values()) < 1e-6, method


@pytest.mark.parametrize("shape, options", [
    ((3, 8, 4, 4), dict(filters=4, kernel=4, padding=1)),                  # C·K = 128
    ((2, 32, 5, 4), dict(filters=4, kernel=(3, 3), stride=(2, 1), groups=2, padding=1)),
])
def test_one_product_over_the_batch_gives_the_same_numbers(shape, options, gradient_errors):
    """Small images with a long reduction use one matmul over the whole batch
    (columns (C, *k, N, *out)); values and gradients must not change."""
    layer = conv_layer(**options)
    x = RNG.standard_normal(shape)
    y = layer.forward(x)
    assert layer._cache[-1].batch_last
    expected = naive_conv(x, layer.params["weight"], layer.params["bias"],
                          as_tuple(options.get("stride", 1), 2),
                          as_pairs(options.get("padding", 0), 2), (1, 1),
                          options.get("groups", 1))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    for method in ("correlation", "col2im"):
        if method == "correlation" and options.get("stride", 1) != 1:
            continue
        layer.input_gradient_method = method
        assert max(gradient_errors(layer, x).values()) < 1e-6, method


GRAD_TRANSPOSE_CASES = [
    ((2, 2, 3, 4), dict(filters=3, kernel=3, stride=2, padding=((1, 0), 1),
                        output_padding=1)),
    ((1, 4, 3, 3), dict(filters=2, kernel=2, dilation=2, groups=2, output_padding=(1, 0))),
    ((2, 2, 5), dict(filters=2, kernel=3, stride=3, padding=2, output_padding=2)),
    ((1, 2, 2, 3, 2), dict(filters=2, kernel=(2, 2, 3), stride=2, padding=(0, 1, 1),
                           output_padding=(1, 0, 0))),
]


@pytest.mark.parametrize("shape, options", GRAD_TRANSPOSE_CASES)
def test_conv_transpose_gradients_match_centred_differences(shape, options, gradient_errors):
    errors = gradient_errors(transpose_layer(**options), RNG.standard_normal(shape))
    assert max(errors.values()) < 1e-6, errors


# --- layer protocol: parameters, dtypes, empty batch, no mutation -------------------------


def test_parameters_come_from_the_first_forward_even_on_an_empty_batch():
    layer = conv_layer(filters=30, kernel=5)               # BRIEF example 8's conv
    y = layer.forward(np.zeros((0, 1, 28, 28)))
    assert y.shape == (0, 30, 24, 24)
    assert layer.params["weight"].shape == (30, 1, 5, 5)
    assert layer.params["bias"].shape == (30,)
    dx = layer.backward(np.zeros(y.shape))
    assert dx.shape == (0, 1, 28, 28)
    assert not layer.grads["weight"].any() and layer.grads["weight"].shape == (30, 1, 5, 5)
    up = transpose_layer(filters=4, kernel=(3, 2), groups=2)
    assert up.forward(np.zeros((0, 6, 5, 5))).shape == (0, 4, 7, 6)
    assert up.params["weight"].shape == (6, 2, 3, 2)
    assert up.backward(np.zeros((0, 4, 7, 6))).shape == (0, 6, 5, 5)


def test_he_normal_init_and_zero_bias():
    layer = conv_layer(filters=64, kernel=3, groups=2)
    layer.forward(np.zeros((0, 32, 8, 8)))
    weight = layer.params["weight"]
    assert weight.shape == (64, 16, 3, 3)
    assert abs(weight.std() / np.sqrt(2 / (16 * 9)) - 1) < 0.05
    assert not layer.params["bias"].any()
    up = transpose_layer(filters=64, kernel=3)
    up.forward(np.zeros((0, 32, 4, 4)))
    assert abs(up.params["weight"].std() / np.sqrt(2 / (64 * 9)) - 1) < 0.05


def test_float32_in_float32_out():
    layer = conv_layer(dtype=np.float32, filters=4, kernel=3, padding=1)
    y = layer.forward(np.ones((2, 3, 6, 6), np.float32))
    assert y.dtype == np.float32 and layer.params["weight"].dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.grads["weight"].dtype == np.float32
    assert layer.grads["bias"].dtype == np.float32
    up = transpose_layer(dtype=np.float32, filters=2, kernel=2, stride=2)
    z = up.forward(np.ones((1, 3, 4, 4), np.float32))
    assert z.dtype == np.float32 and up.backward(np.ones_like(z)).dtype == np.float32


@pytest.mark.parametrize("make, shape", [
    (lambda: conv_layer(filters=2, kernel=3, padding=1, rounding="ceil", stride=2),
     (2, 2, 5, 5)),
    (lambda: transpose_layer(filters=2, kernel=3, stride=2, padding=1), (2, 2, 5, 5)),
])
def test_layers_do_not_modify_their_arguments(make, shape):
    assert_leaves_arguments_alone(make(), RNG.standard_normal(shape), RNG)


# --- invalid geometry --------------------------------------------------------------------


@pytest.mark.parametrize("make, shape, message", [
    (lambda: conv_layer(filters=1, kernel=5), (1, 1, 4, 9),
     r"conv1: H: window 5 is larger than the padded input 4"),
    (lambda: conv_layer(filters=1, kernel=3, dilation=3, padding=1), (1, 1, 9, 4),
     r"conv1: W: window 7 \(kernel 3 dilated by 3\) is larger than the padded input 4 \+ 2 = 6"),
    (lambda: conv_layer(filters=4, kernel=1, groups=3), (1, 4, 5, 5),
     "3 groups do not divide the 4 input channels"),
    (lambda: conv_layer(filters=5, kernel=1, groups="depthwise"), (1, 4, 5, 5),
     "depthwise: filters must be a multiple of the input channels"),
    (lambda: conv_layer(filters=1, kernel=(3, 3)), (1, 1, 9),
     "kernel has 2 entries but the input has 1 spatial axis"),
    (lambda: conv_layer(filters=1, kernel=1), (1, 9),
     r"needs a feature map \(N, C, \*spatial\)"),
    (lambda: transpose_layer(filters=1, kernel=3, padding="same"), (1, 1, 4, 4),
     "padding 'same' is not defined for conv_transpose"),
    (lambda: transpose_layer(filters=1, kernel=3, stride=2, output_padding=2), (1, 1, 4, 4),
     "up1: H: output_padding 2 must be smaller than the stride 2 or the dilation 1"),
    (lambda: transpose_layer(filters=1, kernel=1, padding=((1, 1), 0)), (1, 1, 1, 4),
     "up1: H: padding 1 \\+ 1 crops the whole uncropped output of 1"),
])
def test_invalid_geometry_is_a_value_error(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make().forward(np.zeros(shape))


def test_wrong_channel_count_after_allocation_is_a_value_error():
    layer = conv_layer(filters=2, kernel=3)
    layer.forward(np.zeros((0, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"conv1: weights \(2, 3, 3, 3\) do not fit an input "
                                         "with 4 channels"):
        layer.forward(np.zeros((1, 4, 5, 5)))


# --- PyTorch, when it happens to be installed (not a test dependency) ----------------------


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    for dims in (1, 2, 3):
        sizes = (7, 6, 5)[:dims]
        layer = conv_layer(filters=4, kernel=(3, 2, 2)[:dims], stride=(2, 1, 2)[:dims],
                           dilation=(1, 2, 1)[:dims], padding=1, groups=2)
        x = RNG.standard_normal((2, 4, *sizes))
        y = layer.forward(x)
        dy = RNG.standard_normal(y.shape)
        dx = layer.backward(dy)
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(layer.params["weight"], requires_grad=True)
        conv = (functional.conv1d, functional.conv2d, functional.conv3d)[dims - 1]
        yt = conv(xt, wt, torch.tensor(layer.params["bias"]), stride=(2, 1, 2)[:dims],
                  padding=1, dilation=(1, 2, 1)[:dims], groups=2)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["weight"], wt.grad.numpy(), rtol=1e-10, atol=1e-12)

        up = transpose_layer(filters=4, kernel=3, stride=2, padding=1, output_padding=1, groups=2)
        z = up.forward(x)
        dz = RNG.standard_normal(z.shape)
        dx = up.backward(dz)
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(up.params["weight"], requires_grad=True)
        convt = (functional.conv_transpose1d, functional.conv_transpose2d,
                 functional.conv_transpose3d)[dims - 1]
        zt = convt(xt, wt, torch.tensor(up.params["bias"]), stride=2, padding=1,
                   output_padding=1, groups=2)
        zt.backward(torch.tensor(dz))
        np.testing.assert_allclose(z, zt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(up.grads["weight"], wt.grad.numpy(), rtol=1e-10, atol=1e-12)
