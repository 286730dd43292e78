"""The engine decisions the memory model restates (convcalc/engine_rules.py), held to
what the engine really does: the path a convolution takes (Winograd or im2col), how it
gets ``dx`` (correlation or col2im) and the workspaces it keeps, read off the engine's
own layers after a forward and backward pass."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import convcalc
import engine
from convcalc import engine_rules
from convcalc.kinds.conv import padded_sizes
from engine import winograd


def built_conv(channels: int, sizes: list[int], **options):
    """One conv as the calculator reports it and as the engine builds it."""
    spec = convcalc.validate({"input": [channels, *sizes], "rounding": "floor",
                              "layers": [{"type": "conv", **options}]})
    row = convcalc.analyze(spec).raise_for_errors().layers[0]
    return row, engine.build(spec, seed=0, dtype="float64").layers[0]


def test_the_constants_are_the_engines():
    assert engine_rules.WINOGRAD_MIN_CHANNELS == winograd.MIN_CHANNELS
    assert engine_rules.WINOGRAD_KEEP_TRANSFORMED == winograd.KEEP_TRANSFORMED


@pytest.mark.parametrize("options, channels, sizes, expected", [
    (dict(filters=16, kernel=3, padding=1), 16, [8, 8], True),
    (dict(filters=64, kernel=3, padding="same", bias=False), 64, [8, 8], True),
    (dict(filters=15, kernel=3, padding=1), 16, [8, 8], False),        # too few filters
    (dict(filters=16, kernel=3, padding=1), 3, [8, 8], False),         # too few channels
    (dict(filters=16, kernel=3, stride=2, padding=1), 16, [8, 8], False),
    (dict(filters=16, kernel=3, dilation=2, padding=2), 16, [8, 8], False),
    (dict(filters=16, kernel=3, groups=2, padding=1), 16, [8, 8], False),
    (dict(filters=16, kernel=3, groups="depthwise", padding=1), 16, [8, 8], False),
    (dict(filters=16, kernel=3, padding=1), 16, [9], False),           # 1-D
    (dict(filters=16, kernel=3, padding=1), 16, [5, 5, 5], False),     # 3-D
    (dict(filters=16, kernel=5, padding=1), 16, [9, 9], False),        # 5×5
])
def test_the_engine_and_the_memory_model_pick_the_same_path(options, channels, sizes,
                                                            expected):
    row, layer = built_conv(channels, sizes, **options)
    layer.forward(np.zeros((1, channels, *sizes)))
    assert (layer._cache[0] == "winograd") is expected
    groups = channels if options.get("groups") == "depthwise" else options.get("groups", 1)
    assert engine_rules.takes_winograd(row.window, groups, channels,
                                       options["filters"]) is expected


@settings(max_examples=60, deadline=None)
@given(dims=st.integers(1, 3), kernel=st.integers(1, 4), stride=st.integers(1, 2),
       padding=st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid", "full"])),
       dilation=st.integers(1, 2), channels=st.integers(1, 4), filters=st.integers(1, 4),
       size=st.integers(4, 9))
def test_the_memory_model_knows_how_the_engine_gets_dx(dims, kernel, stride, padding,
                                                       dilation, channels, filters, size):
    """Which path computes a conv's ``dx``, the padded ``dy`` the correlation path keeps,
    and the padded input every conv keeps — all read off the engine's workspaces."""
    try:
        row, layer = built_conv(channels, [size] * dims, filters=filters, kernel=kernel,
                                stride=stride, padding=padding, dilation=dilation)
    except convcalc.ConvCalcError:
        event("invalid geometry")
        return                                 # not a valid geometry: nothing to compare
    layer.algorithm = "im2col"
    x = np.zeros((2, channels, *[size] * dims))
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    in_shape, out_shape = tuple(x.shape[1:]), tuple(row.output_shape)
    assert y.shape[1:] == out_shape
    by_correlation = layer.uses_correlation_for_dx(x.shape, layer.window(x.shape), y.shape)
    assert engine_rules.dx_by_correlation(row.window, in_shape, out_shape) is by_correlation
    event(f"dx by correlation: {by_correlation}")
    padded = padded_sizes(row.window, in_shape, out_shape)
    dyp = layer._workspaces.get("dyp")
    kept = 0 if dyp is None else dyp.size // 2
    assert engine_rules.padded_output_gradient(
        row.window, in_shape, out_shape, padded) * by_correlation == kept
    xp = layer._workspaces.get("xp")
    assert engine_rules.keeps_padded_input(padded, in_shape) is (xp is not None)
    if xp is not None:
        assert xp.size // 2 == channels * int(np.prod(padded))


def test_the_resize_table_is_the_engines():
    from engine import resize

    assert engine_rules.RESIZE_TABLE == resize.TABLE


@settings(max_examples=60, deadline=None)
@given(dims=st.integers(1, 3), kernel=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid", "full"])),
       mode=st.sampled_from(["reflect", "replicate", "circular"]),
       rounding=st.sampled_from(["floor", "ceil"]), channels=st.integers(1, 3),
       size=st.integers(3, 7))
def test_the_memory_model_knows_what_a_padding_mode_keeps(dims, kernel, stride, padding, mode,
                                                         rounding, channels, size):
    """A ``padding_mode`` other than zeros keeps the mode-padded copy (``"xm"``) when
    there is padding, convolves it without padding (``"xp"`` only for a ceil overhang)
    and takes ``dx``'s path for the copy's shape."""
    spec = convcalc.validate({"input": [channels, *[size] * dims], "rounding": rounding,
                              "layers": [{"type": "conv", "filters": 2, "kernel": kernel,
                                          "stride": stride, "padding": padding,
                                          "padding_mode": mode}]})
    report = convcalc.analyze(spec)
    if report.errors:
        event("invalid geometry")
        return
    row = report.layers[0]
    layer = engine.build(spec, seed=0, dtype="float64").layers[0]
    layer.algorithm = "im2col"
    x = np.zeros((2, channels, *[size] * dims))
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    window = row.window
    padded_by_mode = engine_rules.pads_by_mode(mode, window)
    event(f"pads by mode: {padded_by_mode}")
    xm = layer._workspaces.get("xm")
    assert padded_by_mode is (xm is not None)
    in_shape, out_shape = tuple(x.shape[1:]), tuple(row.output_shape)
    if padded_by_mode:
        in_shape = (channels, *(n + pb + pa for n, (pb, pa) in zip(in_shape[1:], window.padding)))
        assert xm.size // 2 == int(np.prod(in_shape))
        window = convcalc.axes.Window(window.kernel, window.stride, window.dilation,
                                      ((0, 0),) * dims)
    padded = padded_sizes(window, in_shape, out_shape)
    xp = layer._workspaces.get("xp")
    assert engine_rules.keeps_padded_input(padded, in_shape) is (xp is not None)
    by_correlation = layer.uses_correlation_for_dx((2, *in_shape), layer._cache[3], y.shape)
    assert engine_rules.dx_by_correlation(window, in_shape, out_shape) is by_correlation
