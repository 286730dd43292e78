"""Whole networks against published parameter counts, and every shipped example.

Published numbers: VGG-16 138,357,544 (torchvision ``vgg16``; its 13 convs 14,714,688);
LeNet-5 (simplified, full C3) 61,706; SimpleConvNet 433,890 (BRIEF example 8); AlexNet
as in Caffe's ``bvlc_alexnet`` (grouped conv2/4/5) 60,965,224; MobileNet v1 (Keras
``MobileNet()``, alpha 1, 224) 4,231,976 trainable + 21,888 non-trainable (BN moving
statistics).  Per-layer counts are re-derived by hand in the comments.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import convcalc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> convcalc.Report:
    return convcalc.analyze(convcalc.load(EXAMPLES / name))


# --- every example file -------------------------------------------------------------------

#: Hand-checked totals (params, output shape) of every file in examples/.  A new example
#: must be added here with numbers worked out independently.
EXAMPLE_TOTALS = {
    "channels-last-conv.yaml": (104, (8, 4, 4)),          # 8·(2·2·3) + 8
    "cs231n-conv.yaml": (760, (10, 32, 32)),              # 10·(5·5·3 + 1)
    "hd-image.yaml": (1_200, (16, 1916, 1076)),           # 16·5·5·3, no bias
    "lenet5.yaml": (61_706, (10,)),
    "maxpool-224.yaml": (0, (64, 112, 112)),
    "one-by-one.yaml": (2_080, (32, 56, 56)),             # 32·64 + 32
    "simple-convnet.yaml": (433_890, (10,)),
    "six-filters.yaml": (456, (6, 28, 28)),               # 6·(5·5·3 + 1)
    "squeeze-excitation.yaml": (868, (96, 56, 56)),       # (96·4 + 4) + (4·96 + 96)
    "vgg16.yaml": (138_357_544, (1000,)),
}


def test_every_example_has_hand_checked_totals() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_TOTALS)


@pytest.mark.parametrize("name", sorted(EXAMPLE_TOTALS))
def test_example_file(name: str) -> None:
    report = load(name)
    params, output = EXAMPLE_TOTALS[name]
    assert report.total_params == params
    assert report.output_shape == output
    assert report.ok and not report.problems      # the shipped examples are clean
    assert report.trainable_params == params      # nothing frozen
    assert report.name  # every example is named
    assert all(row.output_shape is not None for row in report.layers)


# --- VGG-16 ----------------------------------------------------------------------------------

VGG_CONVS = [  # (name, in channels, out channels, spatial size)
    ("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224),
    ("conv2_1", 64, 128, 112), ("conv2_2", 128, 128, 112),
    ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56), ("conv3_3", 256, 256, 56),
    ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv4_3", 512, 512, 28),
    ("conv5_1", 512, 512, 14), ("conv5_2", 512, 512, 14), ("conv5_3", 512, 512, 14),
]


def test_vgg16() -> None:
    report = load("vgg16.yaml")
    for name, cin, cout, size in VGG_CONVS:
        row = report.layer(name)
        assert row.output_shape == (cout, size, size)          # 3×3, pad 1 keeps the size
        assert row.params == cout * cin * 9 + cout
        assert row.macs == size * size * cout * cin * 9
    assert [report.layer(f"pool{i}").output_shape for i in range(1, 6)] == [
        (64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    assert report.layer("flatten1").output_shape == (25_088,)   # 512·7·7
    assert report.layer("fc6").params == 25_088 * 4_096 + 4_096 == 102_764_544
    assert report.layer("fc7").params == 4_096 * 4_096 + 4_096 == 16_781_312
    assert report.layer("fc8").params == 4_096 * 1_000 + 1_000 == 4_097_000
    assert sum(report.layer(c[0]).params for c in VGG_CONVS) == 14_714_688
    assert report.total_params == 138_357_544
    # conv MACs from the table above, plus the three dense layers' in·out
    conv_macs = sum(size * size * cout * cin * 9 for _, cin, cout, size in VGG_CONVS)
    dense_macs = 25_088 * 4_096 + 4_096 * 4_096 + 4_096 * 1_000
    assert report.total_macs == conv_macs + dense_macs
    # ~15.47 GMACs, as ptflops/fvcore report for torchvision's vgg16
    assert round(report.total_macs / 1e9, 2) == 15.47


# --- LeNet-5 ---------------------------------------------------------------------------------


def test_lenet5() -> None:
    report = load("lenet5.yaml")
    expected = {
        "c1": ((6, 28, 28), 6 * 25 + 6),            # 156
        "s2": ((6, 14, 14), 0),
        "c3": ((16, 10, 10), 16 * 6 * 25 + 16),     # 2,416
        "s4": ((16, 5, 5), 0),
        "c5": ((120,), 400 * 120 + 120),            # 48,120
        "f6": ((84,), 120 * 84 + 84),               # 10,164
        "output": ((10,), 84 * 10 + 10),            # 850
    }
    for name, (shape, params) in expected.items():
        row = report.layer(name)
        assert (row.output_shape, row.params) == (shape, params)
    assert report.total_params == 61_706


# --- SimpleConvNet (BRIEF example 8) ------------------------------------------------------------


def test_simple_convnet() -> None:
    report = load("simple-convnet.yaml")
    assert [row.params for row in report.layers] == [780, 0, 0, 0, 432_100, 0, 1_010, 0]
    assert report.total_params == 433_890


# --- AlexNet (Caffe bvlc_alexnet) -------------------------------------------------------------


ALEXNET = {
    "input": [3, 227, 227],
    "layers": [
        {"name": "conv1", "type": "conv", "filters": 96, "kernel": 11, "stride": 4},
        "relu", "lrn",
        {"name": "pool1", "type": "maxpool", "kernel": 3, "stride": 2},
        {"name": "conv2", "type": "conv", "filters": 256, "kernel": 5, "padding": 2, "groups": 2},
        "relu", "lrn",
        {"name": "pool2", "type": "maxpool", "kernel": 3, "stride": 2},
        {"name": "conv3", "type": "conv", "filters": 384, "kernel": 3, "padding": 1},
        "relu",
        {"name": "conv4", "type": "conv", "filters": 384, "kernel": 3, "padding": 1, "groups": 2},
        "relu",
        {"name": "conv5", "type": "conv", "filters": 256, "kernel": 3, "padding": 1, "groups": 2},
        "relu",
        {"name": "pool5", "type": "maxpool", "kernel": 3, "stride": 2},
        "flatten",
        {"name": "fc6", "type": "dense", "units": 4096}, "relu", "dropout",
        {"name": "fc7", "type": "dense", "units": 4096}, "relu", "dropout",
        {"name": "fc8", "type": "dense", "units": 1000}, "softmax",
    ],
}


def test_alexnet_grouped_convs_and_overlapping_pools() -> None:
    report = convcalc.analyze(ALEXNET)
    assert report.ok and not report.problems
    shapes = {name: report.layer(name).output_shape for name in
              ("conv1", "pool1", "conv2", "pool2", "conv3", "conv5", "pool5", "fc6")}
    assert shapes == {
        "conv1": (96, 55, 55),     # (227 − 11)/4 + 1
        "pool1": (96, 27, 27),     # (55 − 3)/2 + 1: overlapping 3×3/2 pooling
        "conv2": (256, 27, 27),
        "pool2": (256, 13, 13),
        "conv3": (384, 13, 13),
        "conv5": (256, 13, 13),
        "pool5": (256, 6, 6),
        "fc6": (4096,),
    }
    params = {name: report.layer(name).params for name in
              ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")}
    assert params == {
        "conv1": 96 * 3 * 121 + 96,          # 34,944
        "conv2": 256 * 48 * 25 + 256,        # groups 2: each filter sees 96/2 channels
        "conv3": 384 * 256 * 9 + 384,
        "conv4": 384 * 192 * 9 + 384,
        "conv5": 256 * 192 * 9 + 256,
        "fc6": 9_216 * 4_096 + 4_096,        # 256·6·6 inputs
        "fc7": 4_096 * 4_096 + 4_096,
        "fc8": 4_096 * 1_000 + 1_000,
    }
    assert report.total_params == 60_965_224


# --- MobileNet v1 (depthwise separable convs + batchnorm) ---------------------------------------


def mobilenet_v1() -> dict:
    layers: list = [{"type": "conv", "filters": 32, "kernel": 3, "stride": 2,
                     "padding": "same", "bias": False}, "batchnorm", "relu"]
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 \
        + [(1024, 2), (1024, 1)]
    channels = 32
    for filters, stride in blocks:
        layers += [
            {"type": "conv", "filters": channels, "kernel": 3, "stride": stride,
             "padding": "same", "groups": "depthwise", "bias": False}, "batchnorm", "relu",
            {"type": "conv", "filters": filters, "kernel": 1, "bias": False}, "batchnorm", "relu",
        ]
        channels = filters
    layers += ["global_avgpool", "dropout", {"type": "dense", "units": 1000}, "softmax"]
    return {"name": "MobileNet", "input": [3, 224, 224], "layers": layers}


def test_mobilenet_v1_matches_keras_summary() -> None:
    report = convcalc.analyze(mobilenet_v1())
    assert report.ok and not report.problems
    # Keras: "Trainable params: 4,231,976", "Non-trainable params: 21,888"
    assert report.total_params == 4_231_976
    assert report.total_buffers == 21_888
    spatial = [row.output_shape[1] for row in report.layers
               if row.type == "conv" and len(row.output_shape) == 3]
    assert spatial[0] == 112 and spatial[-1] == 7
    # the first depthwise conv: 32 channels, one 3×3 filter each
    first_dw = [row for row in report.layers if row.type == "conv"][1]
    assert first_dw.params == 32 * 9
    assert report.layers[-3].output_shape == (1024,)  # after global pooling and dropout
