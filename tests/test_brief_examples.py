"""Every worked example of ../shared/BRIEF.md, with the brief's own numbers.

The expected values are the brief's (hand-computed there, re-derived in the comments
here), never the calculator's output.  Examples that have a file in ``examples/`` are
read from it, so the shipped examples are checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import convcalc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str) -> convcalc.Report:
    return convcalc.analyze(convcalc.load(EXAMPLES / name))


def inline(input_shape: list[int], *layers: dict | str, rounding: str = "exact") -> convcalc.Report:
    return convcalc.analyze({"input": input_shape, "rounding": rounding, "layers": list(layers)})


def conv(filters: int, kernel, **options) -> dict:
    return {"type": "conv", "filters": filters, "kernel": kernel, **options}


# --- example 1: CS231n ------------------------------------------------------------------


def test_example1_cs231n_ten_5x5_filters_pad_2() -> None:
    report = example("cs231n-conv.yaml")
    row = report.layers[0]
    assert row.input_shape == (3, 32, 32)
    assert row.output_shape == (10, 32, 32)  # (32 + 2·2 − 5)/1 + 1 = 32
    assert row.params // 10 == 76            # 5·5·3 + 1 per filter
    assert row.params == 760
    assert report.total_params == 760
    assert report.ok and not report.problems


# --- example 2 --------------------------------------------------------------------------


def test_example2_one_5x5x3_filter_no_pad() -> None:
    report = inline([3, 32, 32], conv(1, 5))
    assert report.layers[0].output_shape == (1, 28, 28)  # (32 − 5)/1 + 1
    assert report.total_params == 5 * 5 * 3 + 1


def test_example2_six_filters() -> None:
    report = example("six-filters.yaml")
    assert report.layers[0].output_shape == (6, 28, 28)
    assert report.total_params == 6 * 76 == 456
    assert report.ok


# --- example 3: the 7×7 stride table -----------------------------------------------------


@pytest.mark.parametrize(("stride", "padding", "size"), [(1, 0, 5), (2, 0, 3), (1, 1, 7)])
def test_example3_7x7_3x3_table(stride: int, padding: int, size: int) -> None:
    report = inline([1, 7, 7], conv(1, 3, stride=stride, padding=padding))
    assert report.layers[0].output_shape == (1, size, size)
    assert not report.problems


def test_example3_stride_3_is_an_error_in_exact_mode() -> None:
    report = inline([1, 7, 7], conv(1, 3, stride=3))
    assert not report.ok
    (problem,) = report.problems
    assert problem.severity == "error"
    assert problem.layer == "conv1"
    # (7 − 3)/3 + 1 = 7/3 = 2.33…: shown as the exact fraction, never a float
    assert "7/3" in problem.message
    assert "2.33" not in problem.message
    assert problem.details["fraction"] == "7/3"
    assert problem.details["axes"] == ["H", "W"]
    # the rule applied to continue is said: floor, so 2
    assert problem.details["applied"] == "floor"
    assert "floor = 2" in problem.message
    assert report.layers[0].output_shape == (1, 2, 2)
    # nearest fixes, by hand: 7 + P − 3 ≡ 0 (mod 3) → P = 2 (1 a side) → 3 outputs;
    # 4 = 7 − 3 is divisible by 2 (→ 3) and 4, but a stride past the kernel's 3 skips
    # input; n − 3 ≡ 0 (mod 3) → n = 6 (→ 2), 9 (→ 3); or round on the layer
    def option(name: str, value: object, output: int) -> dict[str, object]:
        return {"layer": "conv1", "option": name, "value": value,
                "path": ["layers", 0, name], "output": output}

    assert problem.details["fixes"] == [
        option("padding", 1, 3), option("stride", 2, 3),
        {"input": [1, 6, 6], "output": 2}, {"input": [1, 9, 9], "output": 3},
        option("rounding", "floor", 2), option("rounding", "ceil", 3),
    ]
    assert problem.message.endswith(
        "Fix: padding: 1 (→ 3); stride: 2 (→ 3); input: [1, 6, 6] (→ 2) or [1, 9, 9] (→ 3); "
        "rounding: floor (→ 2) or ceil (→ 3)")
    with pytest.raises(convcalc.ShapeError, match="7/3"):
        report.raise_for_errors()


def test_example3_stride_3_floor_and_ceil_say_what_they_did() -> None:
    floor = inline([1, 7, 7], conv(1, 3, stride=3), rounding="floor")
    assert floor.ok and floor.layers[0].output_shape == (1, 2, 2)
    (warning,) = floor.problems
    assert warning.severity == "warning" and warning.details["applied"] == "floor"
    assert "7/3" in warning.message and "rounded down to 2" in warning.message
    # windows at 0 and 3 cover rows 0..5: row 6 is never seen
    assert warning.details["uncovered"] == 1

    ceil = inline([1, 7, 7], conv(1, 3, stride=3), rounding="ceil")
    assert ceil.ok and ceil.layers[0].output_shape == (1, 3, 3)
    (warning,) = ceil.problems
    assert warning.details["applied"] == "ceil"
    # third window starts at 6 and covers 6..8: two rows past the input
    assert warning.details["overhang"] == 2
    with pytest.raises(convcalc.ShapeError):
        ceil.raise_for_errors(strict=True)


# --- example 4: 1×1 convolution ---------------------------------------------------------


def test_example4_one_by_one() -> None:
    report = example("one-by-one.yaml")
    assert report.layers[0].output_shape == (32, 56, 56)
    assert report.total_params == 32 * 64 + 32 == 2_080
    assert report.layers[0].receptive_field.axes[0].size == 1


# --- example 5: max pooling --------------------------------------------------------------


def test_example5_maxpool_halves() -> None:
    report = example("maxpool-224.yaml")
    assert report.layers[0].output_shape == (64, 112, 112)  # (224 − 2)/2 + 1
    assert report.total_params == 0
    assert report.ok and not report.problems


# --- example 6: the HD image -------------------------------------------------------------


def test_example6_hd_image_one_filter() -> None:
    report = inline([3, 1920, 1080], conv(1, 5, padding="valid", bias=False))
    row = report.layers[0]
    assert row.params == 75                        # 5·5·3, no bias
    assert row.output_shape == (1, 1916, 1076)     # 1920 − 5 + 1, 1080 − 5 + 1
    assert row.activations == 2_061_616            # 1916·1076


def test_example6_hd_image_sixteen_filters() -> None:
    report = example("hd-image.yaml")
    row = report.layers[0]
    assert row.params == 1_200                     # 16·75
    assert row.output_shape == (16, 1916, 1076)
    assert row.activations == 32_985_856           # 16·2,061,616
    image = 1
    for size in report.input_shape:
        image *= size
    assert image == 6_220_800                      # 1920·1080·3
    assert report.to_dict()["input_shape"] == [3, 1920, 1080]


# --- example 7: im2col sizes, through the calculator's numbers ----------------------------


@pytest.mark.parametrize("batch", [1, 10])
def test_example7_im2col_matrix_size(batch: int) -> None:
    report = inline([3, 7, 7], conv(1, 5, stride=1, padding=0))
    row = report.layers[0]
    _, oh, ow = row.output_shape
    assert oh * ow == 9                       # 3·3 output positions = im2col rows per image
    per_window = row.params - 1               # weights of the one filter = C·FH·FW
    assert per_window == 75                   # 3·5·5 = im2col columns
    assert (batch * oh * ow, per_window) == {1: (9, 75), 10: (90, 75)}[batch]
    # the conv's multiply-accumulates are exactly the im2col product's: rows·cols·FN
    assert row.macs == 9 * 75 * 1


# --- example 8: SimpleConvNet -------------------------------------------------------------


def test_example8_simple_convnet() -> None:
    report = example("simple-convnet.yaml")
    shapes = [row.output_shape for row in report.layers]
    assert shapes == [
        (30, 24, 24),   # conv (28 − 5)/1 + 1
        (30, 24, 24),   # relu
        (30, 12, 12),   # pool 2×2/2
        (4_320,),       # flatten 30·12·12
        (100,),
        (100,),
        (10,),
        (10,),
    ]
    params = [row.params for row in report.layers if row.params]
    assert params == [780, 432_100, 1_010]  # 30·25 + 30; 4,320·100 + 100; 100·10 + 10
    assert report.total_params == 433_890
    assert report.ok and not report.problems


def test_pooling_shrinks_the_dense_layer_that_follows() -> None:
    """BRIEF "Parameters": stride, padding and pooling shrink the next FC layer."""
    no_pool = inline([1, 28, 28], conv(30, 5), "relu", "flatten", {"type": "dense", "units": 100})
    assert no_pool.layers[-1].params == 30 * 24 * 24 * 100 + 100 == 1_728_100
    strided = inline([1, 28, 28], conv(30, 5, stride=2, padding=[[0, 1], [0, 1]]), "flatten",
                     {"type": "dense", "units": 100})
    # (28 + 1 − 5)/2 + 1 = 13 → 30·13·13 = 5,070 inputs
    assert strided.layers[-1].params == 5_070 * 100 + 100


# --- example 9: channels-last conv and the 1.5 pooling -------------------------------------


def test_example9_channels_last_conv() -> None:
    report = example("channels-last-conv.yaml")
    row = report.layers[0]
    # (4 + 2·2 − 2)/2 + 1 = 4: (10, 4, 4, 3) → (10, 4, 4, 8) channels-last
    assert row.output_shape == (8, 4, 4)
    assert row.params == 2 * 2 * 3 * 8 + 8 == 104
    assert report.ok and not report.problems


def test_example9_pool_3_stride_2_on_4_is_flagged() -> None:
    pool = {"type": "maxpool", "kernel": 3, "stride": 2}
    exact = inline([3, 4, 4], pool)
    (problem,) = exact.problems
    assert problem.severity == "error"
    assert "3/2" in problem.message  # (4 − 3)/2 + 1 = 1.5
    assert problem.details["fraction"] == "3/2"
    # the tutorial truncates silently to 1; convcalc continues with floor but says so
    assert exact.layers[0].output_shape == (3, 1, 1)
    assert problem.details["applied"] == "floor"

    floor = inline([3, 4, 4], pool, rounding="floor")
    (warning,) = floor.problems
    assert warning.severity == "warning" and floor.layers[0].output_shape == (3, 1, 1)
    # the one window covers rows 0..2: row 3 is never pooled
    assert warning.details["uncovered"] == 1

    ceil = inline([3, 4, 4], {**pool, "ceil_mode": True})
    (warning,) = ceil.problems
    assert warning.severity == "warning" and ceil.layers[0].output_shape == (3, 2, 2)


# --- receptive field ----------------------------------------------------------------------


@pytest.mark.parametrize(("depth", "size"), [(1, 3), (2, 5), (3, 7)])
def test_stacked_3x3_receptive_field(depth: int, size: int) -> None:
    report = inline([1, 32, 32], *[conv(1, 3, padding=1) for _ in range(depth)])
    field = report.layers[-1].receptive_field
    assert [(a.size, a.jump) for a in field.axes] == [(size, 1), (size, 1)]
    assert report.layers[-1].output_shape == (1, 32, 32)


def test_5x5_filter_sees_5x5() -> None:
    report = inline([3, 32, 32], conv(10, 5))
    assert [a.size for a in report.layers[0].receptive_field.axes] == [5, 5]


def test_dilation_widens_the_kernel() -> None:
    """BRIEF: with dilation D the effective kernel is D·(K − 1) + 1."""
    report = inline([1, 11, 11], conv(1, 3, dilation=2))
    # effective 5: (11 − 5)/1 + 1 = 7, field 5
    assert report.layers[0].output_shape == (1, 7, 7)
    assert report.layers[0].receptive_field.axes[0].size == 5
    assert report.total_params == 3 * 3 + 1  # dilation adds no weights


def test_one_dimensional_and_three_dimensional_convs() -> None:
    """BRIEF: 1-D convolutions slide along one axis, 2-D along two, 3-D along three."""
    one = inline([4, 100], conv(8, 5))
    assert one.layers[0].output_shape == (8, 96)
    assert one.total_params == 8 * 4 * 5 + 8
    three = inline([2, 10, 12, 14], conv(4, 3))
    assert three.layers[0].output_shape == (4, 8, 10, 12)
    assert three.total_params == 4 * 2 * 27 + 4
