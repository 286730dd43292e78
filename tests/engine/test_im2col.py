"""im2col / col2im against naive loops, the adjoint identity, and BRIEF example 7."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.im2col import col2im, fold, im2col, unfold


def naive_im2col(x, kernel, stride, pads, dilation):
    """Textbook im2col with explicit loops: one row per (n, output position)."""
    dims = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    positions = []
    for axis in range(dims):       # window starts while the whole window fits
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        starts = list(range(0, xp.shape[2 + axis] - extent + 1, stride[axis]))
        positions.append(starts)
    rows = []
    for n in range(x.shape[0]):
        for starts in product(*positions):
            row = []
            for c in range(x.shape[1]):
                for offset in product(*(range(k) for k in kernel)):
                    index = tuple(s + o * d for s, o, d in zip(starts, offset, dilation))
                    row.append(xp[(n, c, *index)])
            rows.append(row)
    return np.array(rows).reshape(len(rows), -1)


def test_brief_example_7_shapes():
    assert im2col(np.zeros((1, 3, 7, 7)), kernel=5, stride=1, padding=0).shape == (9, 75)
    assert im2col(np.zeros((10, 3, 7, 7)), kernel=5, stride=1, padding=0).shape == (90, 75)


@pytest.mark.parametrize("shape, kernel, stride, pads, dilation", [
    ((2, 3, 7, 7), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    ((1, 2, 6, 5), (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2)),
    ((2, 2, 9), (3,), (2,), ((2, 1),), (2,)),
    ((1, 2, 4, 5, 3), (2, 3, 2), (1, 2, 1), ((0, 1), (1, 1), (0, 0)), (2, 1, 1)),
])
def test_im2col_matches_naive_loops(shape, kernel, stride, pads, dilation):
    x = np.random.default_rng(0).standard_normal(shape)
    got = im2col(x, kernel, stride, pads, dilation)
    np.testing.assert_array_equal(got, naive_im2col(x, kernel, stride, pads, dilation))


def test_padding_forms_are_the_spec_forms():
    x = np.random.default_rng(1).standard_normal((1, 1, 7, 6))
    same = im2col(x, 4, 1, "same")          # even kernel: 1 before, 2 after
    np.testing.assert_array_equal(same, naive_im2col(x, (4, 4), (1, 1), ((1, 2), (1, 2)), (1, 1)))
    assert same.shape == (7 * 6, 16)
    full = im2col(x, 3, 1, "full", dilation=2)   # e − 1 = 4 on each side
    np.testing.assert_array_equal(full, naive_im2col(x, (3, 3), (1, 1), ((4, 4), (4, 4)), (2, 2)))
    np.testing.assert_array_equal(im2col(x, 3, 2, "valid"), im2col(x, 3, 2, 0))
    np.testing.assert_array_equal(im2col(x, 3, 1, (1, (0, 2))),
                                  naive_im2col(x, (3, 3), (1, 1), ((1, 1), (0, 2)), (1, 1)))


def test_float32_stays_float32():
    x = np.ones((2, 3, 6, 6), np.float32)
    assert im2col(x, 3).dtype == np.float32
    assert unfold(x, (3, 3), (1, 1), (1, 1)).dtype == np.float32


def test_unfold_is_im2col_in_the_layers_order():
    """unfold's (N, C, kh, kw, OH, OW) holds the same numbers as im2col's (N·OH·OW, C·kh·kw)."""
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 7))
    cols = unfold(x, (3, 2), (2, 1), (1, 2))
    n, c, kh, kw, oh, ow = cols.shape
    textbook = cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
    np.testing.assert_array_equal(textbook, im2col(x, (3, 2), (2, 1), 0, (1, 2)))


def test_col2im_counts_how_many_windows_cover_each_entry():
    cover = col2im(np.ones((9, 3 * 9)), (1, 3, 5, 5), kernel=3, stride=1)
    expected = np.zeros((5, 5))
    for i, j in product(range(3), range(3)):
        expected[i:i + 3, j:j + 3] += 1
    for channel in range(3):
        np.testing.assert_array_equal(cover[0, channel], expected)


def test_fold_without_overlap_is_a_plain_scatter():
    """Stride ≥ window: fold's one-assignment path; the gap between windows stays 0."""
    cols = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)       # kernel 2, three windows
    np.testing.assert_array_equal(fold(cols, (1, 1, 9), (3,), (1,))[0, 0],
                                  [1, 4, 0, 2, 5, 0, 3, 6, 0])


def test_big_arrays_split_over_threads_give_the_same_numbers():
    """Over 1 MiB the copies are split across cores (by batch, or by channel for N = 1)."""
    rng = np.random.default_rng(3)
    for shape in [(4, 8, 30, 30), (1, 32, 30, 30)]:
        x = rng.standard_normal(shape)
        got = im2col(x, 3, 1, 1)
        small = np.concatenate([im2col(x[i:i + 1], 3, 1, 1) for i in range(shape[0])])
        np.testing.assert_array_equal(got, small)
        xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
        cols = unfold(xp, (3, 3), (1, 1), (1, 1))
        np.testing.assert_array_equal(
            cols.transpose(0, 4, 5, 1, 2, 3).reshape(got.shape), got)
        y = rng.standard_normal(got.shape)
        np.testing.assert_allclose(np.vdot(got, y), np.vdot(x, col2im(y, shape, 3, 1, 1)),
                                   rtol=1e-10)


dims_strategy = st.integers(1, 3)


@st.composite
def window_cases(draw):
    dims = draw(dims_strategy)
    sizes = draw(st.lists(st.integers(1, 7), min_size=dims, max_size=dims))
    kernel = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    stride = draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dilation = draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    pads = draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                         min_size=dims, max_size=dims))
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (batch, channels, *sizes), tuple(kernel), tuple(stride), tuple(pads), tuple(dilation)


@settings(max_examples=60, deadline=None)
@given(window_cases(), st.integers(0, 2**32 - 1))
def test_col2im_is_the_adjoint_of_im2col(case, seed):
    """<im2col(x), y> = <x, col2im(y)> for every x, y: col2im is im2col's transpose."""
    shape, kernel, stride, pads, dilation = case
    for n, k, d, (pb, pa) in zip(shape[2:], kernel, dilation, pads):
        assume(d * (k - 1) + 1 <= n + pb + pa)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride, pads, dilation)
    y = rng.standard_normal(cols.shape)
    back = col2im(y, shape, kernel, stride, pads, dilation)
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(cols, y), np.vdot(x, back), rtol=1e-10, atol=1e-12)


def test_window_larger_than_padded_input_is_a_value_error():
    with pytest.raises(ValueError, match=r"W: window 5 is larger than the padded input 2 \+ 2 = 4"):
        im2col(np.zeros((1, 1, 9, 2)), kernel=5, padding=(0, 1))
    with pytest.raises(ValueError, match="dilated by 3"):
        im2col(np.zeros((1, 1, 6)), kernel=3, dilation=3)
    with pytest.raises(ValueError, match="spatial axes"):
        im2col(np.zeros((1, 1, 6, 6)), kernel=(3, 3, 3))
    with pytest.raises(ValueError, match="col2im: columns must have shape"):
        col2im(np.zeros((4, 8)), (1, 1, 4, 4), kernel=3)
