"""Pool (max/min/avg) against naive loops, hand-worked ceil cases, numerical gradients."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from references import as_pairs, as_tuple, assert_leaves_arguments_alone, window_starts

from convcalc.spec import Pool as PoolSpec
from engine.pool import Pool

RNG = np.random.default_rng(7)


def pool_layer(kind="maxpool", dtype=np.float64, rounding="floor", **options):
    options.setdefault("name", "pool1")
    return Pool(PoolSpec(type=kind, **options), None, dtype, rounding=rounding)


def naive_pool(x, dy, kind, kernel, stride, pads, dilation, ceil):
    """Forward and backward with a loop over every window and every entry of it.

    An entry past the padded input (ceil overhang) is skipped; an entry in the explicit
    padding is −inf (max), +inf (min) or 0 (avg) and counts in the average's divisor.
    Max/min backward: the first entry (kernel offsets in C order) equal to the result.
    """
    dims = x.ndim - 2
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    starts = [window_starts(n, pb, pa, e, s, ceil)
              for n, (pb, pa), e, s in zip(x.shape[2:], pads, extents, stride)]
    fill = {"maxpool": -np.inf, "minpool": np.inf, "avgpool": 0.0}[kind]
    y = np.zeros((*x.shape[:2], *map(len, starts)))
    dx = np.zeros_like(x)
    for n, c in product(range(x.shape[0]), range(x.shape[1])):
        for out in product(*(range(len(s)) for s in starts)):
            entries = []                      # (value, index into x or None for padding)
            for offset in product(*(range(k) for k in kernel)):
                padded_index = [st[o] + i * d
                                for st, o, i, d in zip(starts, out, offset, dilation)]
                if any(p >= n_ + pb + pa
                       for p, n_, (pb, pa) in zip(padded_index, x.shape[2:], pads)):
                    continue                  # ceil overhang: not part of the window
                index = tuple(p - pb for p, (pb, _) in zip(padded_index, pads))
                inside = all(0 <= i < size for i, size in zip(index, x.shape[2:]))
                entries.append((x[(n, c, *index)] if inside else fill, index if inside else None))
            values = [v for v, _ in entries]
            if kind == "avgpool":
                y[(n, c, *out)] = sum(values) / len(values)
                for _, index in entries:
                    if index is not None:
                        dx[(n, c, *index)] += dy[(n, c, *out)] / len(values)
            else:
                result = max(values) if kind == "maxpool" else min(values)
                y[(n, c, *out)] = result
                winner = next(index for value, index in entries if value == result)
                if winner is not None:
                    dx[(n, c, *winner)] += dy[(n, c, *out)]
    assert len(starts) == dims
    return y, dx


POOL_CASES = [
    # (input shape, kind, options, rounding)
    ((2, 3, 8, 8), "maxpool", dict(kernel=2), "floor"),
    ((2, 2, 7, 7), "maxpool", dict(kernel=3, stride=2, padding=1), "floor"),
    ((1, 2, 7, 6), "maxpool", dict(kernel=3, stride=1), "floor"),                 # overlapping
    ((1, 2, 7, 6), "minpool", dict(kernel=(3, 2), stride=(2, 1), padding=((1, 0), (0, 1))),
     "floor"),
    ((2, 2, 6, 7), "avgpool", dict(kernel=3, stride=2, padding=1, ceil_mode=True), "floor"),
    ((1, 2, 5, 5), "avgpool", dict(kernel=2, ceil_mode=True), "floor"),
    ((1, 2, 5, 6), "maxpool", dict(kernel=2, stride=2, padding=1), "ceil"),      # spec-level
    ((1, 1, 9, 8), "maxpool", dict(kernel=2, stride=2, dilation=2, padding=(1, 0)), "ceil"),
    ((2, 2, 11), "avgpool", dict(kernel=3, stride=2, dilation=2, padding=2), "ceil"),
    ((2, 2, 11), "minpool", dict(kernel=4, stride=3, ceil_mode=True), "floor"),
    ((1, 2, 5, 4, 6), "maxpool", dict(kernel=2, stride=(2, 1, 2), padding=(1, 0, 0),
                                      ceil_mode=True), "floor"),
    ((1, 2, 5, 4, 6), "avgpool", dict(kernel=(3, 2, 2), stride=2, padding=(1, (0, 1), 1)),
     "ceil"),
]


@pytest.mark.parametrize("shape, kind, options, rounding", POOL_CASES)
def test_pool_matches_naive_loops(shape, kind, options, rounding):
    layer = pool_layer(kind, rounding=rounding, **options)
    x = RNG.standard_normal(shape)
    y = layer.forward(x)
    dy = RNG.standard_normal(y.shape)
    dx = layer.backward(dy)
    dims = len(shape) - 2
    kernel = as_tuple(options["kernel"], dims)
    expected_y, expected_dx = naive_pool(
        x, dy, kind, kernel, as_tuple(options.get("stride") or kernel, dims),
        as_pairs(options.get("padding", 0), dims), as_tuple(options.get("dilation", 1), dims),
        ceil=options.get("ceil_mode", False) or rounding == "ceil")
    assert y.shape == expected_y.shape
    np.testing.assert_allclose(y, expected_y, rtol=1e-12)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12, atol=1e-15)


# --- ceil mode, worked out by hand (1-D, x = 1, 2, ..., n) ----------------------------------


def forward_1d(kind, n, **options):
    x = np.arange(1.0, n + 1).reshape(1, 1, n)
    return pool_layer(kind, **options).forward(x)[0, 0]


def test_ceil_adds_a_window_that_hangs_past_the_end():
    # n = 5, k = 2, s = 2: (5 − 2)/2 + 1 = 2.5.  Floor: windows [1 2] [3 4], the 5 is lost.
    # Ceil: a third window at 4 covers the 5 and hangs 1 past the end; the overhang is
    # ignored by max and not counted by the average (divisor 1, not 2).
    np.testing.assert_array_equal(forward_1d("maxpool", 5, kernel=2), [2, 4])
    np.testing.assert_array_equal(forward_1d("maxpool", 5, kernel=2, ceil_mode=True), [2, 4, 5])
    np.testing.assert_array_equal(forward_1d("avgpool", 5, kernel=2, ceil_mode=True),
                                  [1.5, 3.5, 5.0])


def test_ceil_average_counts_explicit_padding_but_not_the_overhang():
    # n = 6, k = 3, s = 2, pad 1: padded = [0, 1..6, 0], (8 − 3)/2 + 1 = 3.5 → floor 3.
    # A 4th window would start at 6 < n + pb = 7 (on the 6): kept.  It covers the 6, the
    # right padding and one position of overhang: divisor 2 → (6 + 0) / 2 = 3.
    np.testing.assert_allclose(forward_1d("avgpool", 6, kernel=3, stride=2, padding=1),
                               [(0 + 1 + 2) / 3, (2 + 3 + 4) / 3, (4 + 5 + 6) / 3])
    np.testing.assert_allclose(
        forward_1d("avgpool", 6, kernel=3, stride=2, padding=1, ceil_mode=True),
        [(0 + 1 + 2) / 3, (2 + 3 + 4) / 3, (4 + 5 + 6) / 3, (6 + 0) / 2])


def test_ceil_drops_a_window_that_would_start_in_the_right_padding():
    # n = 6, k = 2, s = 2, pad (0, 1): (7 − 2)/2 + 1 = 3.5.  A 4th window would start at
    # 6 = n + pb, i.e. on the right padding: PyTorch drops it, so ceil gives 3 like floor.
    for ceil in (False, True):
        np.testing.assert_array_equal(
            forward_1d("maxpool", 6, kernel=2, padding=((0, 1),), ceil_mode=ceil), [2, 4, 6])
    # n = 5, k = 2, s = 2, pad 1: padded = [−inf, 1..5, −inf], (7 − 2)/2 + 1 = 3.5; a 4th
    # window would start at 6 = n + pb (the right padding): dropped again, 3 windows.
    np.testing.assert_array_equal(
        forward_1d("maxpool", 5, kernel=2, padding=1, ceil_mode=True), [1, 3, 5])


def test_ceil_and_floor_agree_when_the_windows_tile():
    # n = 6, k = 2, s = 2, pad 1: (8 − 2)/2 + 1 = 4 exactly, nothing to round: both give
    # 4 windows, [pad 1] [2 3] [4 5] [6 pad].
    for ceil in (False, True):
        np.testing.assert_array_equal(
            forward_1d("maxpool", 6, kernel=2, padding=1, ceil_mode=ceil), [1, 3, 5, 6])
        np.testing.assert_array_equal(
            forward_1d("avgpool", 6, kernel=2, padding=1, ceil_mode=ceil), [0.5, 2.5, 4.5, 3])


def test_spec_rounding_ceil_applies_and_ceil_mode_overrides_floor():
    x = np.arange(1.0, 8).reshape(1, 1, 7)
    assert pool_layer(kernel=3, stride=3).forward(x).shape[-1] == 2
    assert pool_layer(kernel=3, stride=3, rounding="ceil").forward(x).shape[-1] == 3
    assert pool_layer(kernel=3, stride=3, rounding="exact").forward(x).shape[-1] == 2
    assert pool_layer(kernel=3, stride=3, ceil_mode=True, rounding="floor").forward(
        x).shape[-1] == 3


def test_stride_defaults_to_the_kernel():
    layer = pool_layer(kernel=(2, 3))
    assert layer.forward(np.zeros((1, 1, 224, 225))).shape == (1, 1, 112, 75)


def test_brief_examples_5_and_8():
    assert pool_layer(kernel=2, stride=2).forward(np.zeros((1, 64, 224, 224))).shape == \
        (1, 64, 112, 112)
    assert pool_layer(kernel=2, stride=2).forward(np.zeros((2, 30, 24, 24))).shape == \
        (2, 30, 12, 12)


# --- backward details ---------------------------------------------------------------------


def test_ties_send_the_gradient_to_the_first_entry_in_window_order():
    layer = pool_layer(kernel=2, stride=1)                 # overlapping windows on a constant
    dx = layer.backward(np.ones(layer.forward(np.ones((1, 1, 3, 3))).shape))
    # every window's first entry (its top-left) wins; the four windows start at (0,0),
    # (0,1), (1,0), (1,1)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    minimum = pool_layer("minpool", kernel=(1, 2))
    minimum.forward(np.array([[[[3.0, 3.0, 0.0, 0.0]]]]))
    np.testing.assert_array_equal(minimum.backward(np.ones((1, 1, 1, 2)))[0, 0], [[1, 0, 1, 0]])


def test_overlapping_windows_add_their_gradients():
    # 1-D max pool k = 3, s = 1 on [0, 5, 1, 2]: windows [0 5 1] and [5 1 2] both pick 5.
    layer = pool_layer(kernel=3, stride=1)
    layer.forward(np.array([[[0.0, 5.0, 1.0, 2.0]]]))
    np.testing.assert_array_equal(layer.backward(np.array([[[2.0, 3.0]]]))[0, 0], [0, 5, 0, 0])
    average = pool_layer("avgpool", kernel=3, stride=1)
    average.forward(np.zeros((1, 1, 4)))
    np.testing.assert_allclose(average.backward(np.array([[[3.0, 6.0]]]))[0, 0], [1, 3, 3, 2])


GRAD_CASES = [
    ((2, 2, 6, 7), "maxpool", dict(kernel=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 7, 6), "minpool", dict(kernel=2, stride=1, dilation=(2, 1), padding=((1, 0), 0))),
    ((2, 2, 6, 7), "avgpool", dict(kernel=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 3, 10), "maxpool", dict(kernel=3, stride=2, dilation=2, padding=1, ceil_mode=True)),
    ((2, 2, 9), "avgpool", dict(kernel=4, stride=3, padding=((1, 2),), ceil_mode=True)),
    ((1, 2, 5, 4, 5), "maxpool", dict(kernel=2, stride=(2, 1, 2), padding=(1, 0, 0),
                                      ceil_mode=True)),
    ((1, 2, 5, 4, 5), "avgpool", dict(kernel=(3, 2, 2), stride=2, dilation=(1, 2, 1),
                                      padding=(1, 0, 1), ceil_mode=True)),
]


@pytest.mark.parametrize("shape, kind, options", GRAD_CASES)
def test_pool_gradients_match_centred_differences(shape, kind, options, gradient_errors):
    # distinct values far apart compared with h, so no perturbation changes a winner
    x = RNG.permutation(np.prod(shape)).reshape(shape) * 0.01
    errors = gradient_errors(pool_layer(kind, **options), x)
    assert errors["x"] < 1e-6, errors


# --- protocol: empty batch, dtype, no mutation, fast path agrees ---------------------------


@pytest.mark.parametrize("kind", ["maxpool", "minpool", "avgpool"])
def test_empty_batch_and_float32(kind):
    layer = pool_layer(kind, dtype=np.float32, kernel=2, padding=1, ceil_mode=True)
    y = layer.forward(np.zeros((0, 3, 5, 5), np.float32))
    assert y.shape == (0, 3, 3, 3) and layer.backward(y).shape == (0, 3, 5, 5)
    y = layer.forward(np.ones((2, 3, 5, 5), np.float32))
    assert y.dtype == np.float32 and layer.backward(y).dtype == np.float32


def test_pool_does_not_modify_its_arguments():
    assert_leaves_arguments_alone(pool_layer(kernel=3, stride=2, padding=1),
                                  RNG.standard_normal((2, 2, 6, 6)), RNG)


def test_large_arrays_split_over_threads_give_the_naive_numbers():
    x = RNG.standard_normal((4, 16, 24, 24))          # > 1 MiB: split across cores
    for kind in ("maxpool", "avgpool"):
        layer = pool_layer(kind, kernel=2)
        y = layer.forward(x)
        dy = RNG.standard_normal(y.shape)
        dx = layer.backward(dy)
        blocks = x.reshape(4, 16, 12, 2, 12, 2)
        if kind == "avgpool":
            np.testing.assert_allclose(y, blocks.mean(axis=(3, 5)), rtol=1e-12)
            np.testing.assert_allclose(dx, np.repeat(np.repeat(dy / 4, 2, 2), 2, 3))
        else:
            np.testing.assert_array_equal(y, blocks.max(axis=(3, 5)))
            def spread(a):
                return np.repeat(np.repeat(a, 2, 2), 2, 3)
            np.testing.assert_array_equal(dx, np.where(spread(y) == x, spread(dy), 0))


# --- invalid geometry --------------------------------------------------------------------


@pytest.mark.parametrize("options, shape, message", [
    (dict(kernel=3), (1, 1, 2, 8), "pool1: H: window 3 is larger than the padded input 2"),
    (dict(kernel=2, padding=2), (1, 1, 8, 8),
     "pool1: H: padding 2 is not smaller than the window 2: some windows would see only padding"),
    (dict(kernel=2, padding=((0, 0), (0, 3)), dilation=(1, 2)), (1, 1, 8, 8),
     "pool1: W: padding 3 is not smaller than the window 3"),
    (dict(kernel=(2, 2)), (1, 1, 8), "kernel has 2 entries but the input has 1 spatial axis"),
    (dict(kernel=2), (4, 8), r"needs a feature map \(N, C, \*spatial\)"),
])
def test_invalid_geometry_is_a_value_error(options, shape, message):
    with pytest.raises(ValueError, match=message):
        pool_layer(**options).forward(np.zeros(shape))


# --- PyTorch, when it happens to be installed (not a test dependency) ----------------------


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    for dims, ceil in product((1, 2, 3), (False, True)):
        x = RNG.standard_normal((2, 3, *(7, 6, 5)[:dims]))
        for kind in ("maxpool", "avgpool", "minpool"):
            layer = pool_layer(kind, kernel=3, stride=2, padding=1, ceil_mode=ceil)
            y = layer.forward(x)
            dy = RNG.standard_normal(y.shape)
            dx = layer.backward(dy)
            xt = torch.tensor(x, requires_grad=True)
            if kind == "avgpool":
                pool = (functional.avg_pool1d, functional.avg_pool2d, functional.avg_pool3d)
                yt = pool[dims - 1](xt, 3, 2, 1, ceil_mode=ceil, count_include_pad=True)
            else:
                pool = (functional.max_pool1d, functional.max_pool2d, functional.max_pool3d)
                sign = 1 if kind == "maxpool" else -1      # min = −max(−x)
                yt = sign * pool[dims - 1](sign * xt, 3, 2, 1, ceil_mode=ceil)
            yt.backward(torch.tensor(dy))
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
