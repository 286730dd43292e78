"""The model zoo (convcalc/zoo/*.yaml): published totals, clean analyses, the API, the
``zoo:NAME`` prefix, ``convcalc zoo`` and ``convcalc verify zoo:NAME``.

Published numbers, from the reference implementations the files name:
LeNet-5 (simplified) 61,706; SimpleConvNet 433,890 (BRIEF example 8); VGG-16 138,357,544
(torchvision ``vgg16``; pool5 receptive field 212, jump 32, effective padding 90);
AlexNet 61,100,840 (torchvision ``alexnet``; last pool 195, jump 32); ResNet-18
11,689,512 and ResNet-50 25,557,032 (torchvision); GoogLeNet 6,624,904 (torchvision,
no auxiliary heads); MobileNet v1 1.0-224 4,231,976 trainable + 21,888 non-trainable
(Keras ``MobileNet()``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import convcalc
from convcalc import zoo
from convcalc.catalog import summary
from convcalc.cli import main
from convcalc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent

#: name → (params, trainable params, buffers, input, output)
PUBLISHED = {
    "alexnet": (61_100_840, 61_100_840, 0, (3, 224, 224), (1000,)),
    "convnext_tiny": (28_589_128, 28_589_128, 0, (3, 224, 224), (1000,)),
    "deeplabv3_resnet50": (39_638_869, 39_638_869, 56_704, (3, 224, 224), (21, 224, 224)),
    "densenet121": (7_978_856, 7_978_856, 83_648, (3, 224, 224), (1000,)),
    "efficientnet_b0": (5_288_548, 5_288_548, 42_016, (3, 224, 224), (1000,)),
    "espcn": (22_729, 22_729, 0, (1, 128, 128), (1, 384, 384)),
    "fcn_resnet50": (32_957_013, 32_957_013, 54_144, (3, 224, 224), (21, 224, 224)),
    "googlenet": (6_624_904, 6_624_904, 14_560, (3, 224, 224), (1000,)),
    "inception_v3": (27_161_264, 27_161_264, 36_224, (3, 299, 299), (1000,)),   # aux head too
    "lenet5": (61_706, 61_706, 0, (1, 32, 32), (10,)),
    "mobilenet_v1": (4_231_976, 4_231_976, 21_888, (3, 224, 224), (1000,)),
    "mobilenet_v2": (3_504_872, 3_504_872, 34_112, (3, 224, 224), (1000,)),
    "mobilenet_v3_large": (5_483_032, 5_483_032, 24_400, (3, 224, 224), (1000,)),
    "regnet_y_400mf": (4_344_144, 4_344_144, 27_152, (3, 224, 224), (1000,)),
    "resnet18": (11_689_512, 11_689_512, 9_600, (3, 224, 224), (1000,)),
    "resnet50": (25_557_032, 25_557_032, 53_120, (3, 224, 224), (1000,)),
    "resnext50_32x4d": (25_028_904, 25_028_904, 68_224, (3, 224, 224), (1000,)),
    "simple_convnet": (433_890, 433_890, 0, (1, 28, 28), (10,)),
    "shufflenet_v2_x1_0": (2_278_604, 2_278_604, 16_180, (3, 224, 224), (1000,)),
    "squeezenet1_1": (1_235_496, 1_235_496, 0, (3, 224, 224), (1000,)),
    "unet": (31_030_658, 31_030_658, 0, (1, 572, 572), (2, 388, 388)),
    "unet_same": (31_037_698, 31_037_698, 11_776, (3, 128, 128), (2, 128, 128)),
    "vgg16": (138_357_544, 138_357_544, 0, (3, 224, 224), (1000,)),
}

#: The only warnings, by layer: the rounding the reference implementations really do
#: that a file does not declare (GoogLeNet's ceil_mode pools hang one pixel past
#: theirs), and what is no rounding.  See the files' headers.
EXPECTED_WARNINGS = {
    "googlenet": ["maxpool1", "maxpool2", "maxpool3"],
    "inception_v3": ["AuxLogits.fc"],   # the auxiliary head, a branch nothing reads
    # the ASPP concat: the pooling branch's field is the whole input
    "deeplabv3_resnet50": ["classifier.0.cat"],
}

#: The only notes, by layer: the rounding the reference implementations do, declared
#: on those layers (`rounding: floor`), and the misalignments a design has
#: (`accept_misalignment: true`).  `--strict` accepts them.
_RESNET_NOTES = ["layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0",
                 "conv1", "maxpool"]
_BACKBONE_NOTES = ["backbone.layer2.0.conv2", "backbone.layer2.0.downsample.0",
                   "backbone.conv1", "backbone.maxpool"]
EXPECTED_NOTES = {
    # the stride-2 3×3 pad-1 convs, stem and max pool leave their last padding row and
    # column unread; the 1×1/2 projection shortcuts skip the last input row and column
    "resnet18": ["layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1", *_RESNET_NOTES],
    "resnet50": ["layer2.0.conv2", "layer3.0.conv2", "layer4.0.conv2", *_RESNET_NOTES],
    "resnext50_32x4d": ["layer2.0.conv2", "layer3.0.conv2", "layer4.0.conv2",
                        *_RESNET_NOTES],
    "regnet_y_400mf": ["stem.conv", "block1.0.f.b.conv", "block2.0.f.b.conv",
                       "block3.0.f.b.conv", "block4.0.f.b.conv", "block1.0.proj.0",
                       "block2.0.proj.0", "block3.0.proj.0", "block4.0.proj.0"],
    "squeezenet1_1": ["conv1"],   # 3×3/2 unpadded on 224: input row and column 223 unread
    "fcn_resnet50": _BACKBONE_NOTES,
    "deeplabv3_resnet50": _BACKBONE_NOTES,
    # U-Net's concats: the upsampled map's fields are half a pixel off the skip's
    "unet_same": ["up1.cat", "up2.cat", "up3.cat", "up4.cat"],
    "unet": ["concat4", "concat3", "concat2", "concat1"],
}

#: Models whose architecture repeats: their files use blocks.
WITH_BLOCKS = {"vgg16", "googlenet", "resnet18", "resnet50", "mobilenet_v1", "unet_same"}
WITH_BLOCKS |= {"unet", "fcn_resnet50", "deeplabv3_resnet50"}
WITH_BLOCKS |= {"densenet121", "resnext50_32x4d", "inception_v3", "squeezenet1_1",
                "shufflenet_v2_x1_0"}
WITH_BLOCKS |= {"mobilenet_v2", "efficientnet_b0", "convnext_tiny", "regnet_y_400mf",
                "mobilenet_v3_large"}

#: torchvision's published GFLOPS (``weights.meta["_ops"]``: the multiply-accumulates of
#: the conv and dense weights, convcalc's MACs) → convcalc's exact MACs.
TORCHVISION_MACS = {
    "densenet121": (2.834, 2_834_161_664),
    "resnext50_32x4d": (4.23, 4_230_479_872),
    "inception_v3": (5.713, 5_713_216_096),   # the main network (without AuxLogits)
    "squeezenet1_1": (0.349, 349_151_936),
    "shufflenet_v2_x1_0": (0.145, 144_907_992),
    "mobilenet_v2": (0.301, 300_774_272),
    "efficientnet_b0": (0.386, 385_814_752),
    "convnext_tiny": (4.456, 4_455_531_264),
    "regnet_y_400mf": (0.402, 401_842_848),
    "mobilenet_v3_large": (0.217, 216_589_760),
}

#: Verified by hand (``convcalc verify``, times in docs/zoo.rst), not in the default suite:
#: each run takes 10 s or more (CONVCALC_SLOW=1 runs them).  name → the batch it verifies at.
SLOW_VERIFY = {"densenet121": 1, "resnext50_32x4d": 1,
               "inception_v3": 2}   # at batch 1 its aux head's batchnorm sees 1 value a channel
#: MobileNet v2 and the other torchvision models of issue 12 (5–20 s each here): by hand too.
SLOW_VERIFY |= {"mobilenet_v2": 1, "efficientnet_b0": 1, "convnext_tiny": 1,
                "regnet_y_400mf": 1, "mobilenet_v3_large": 1}
#: U-Net (original, 10 s or more): at 572 the run needs 7.40 GiB, so it is verified at a
#: valid size within the default 2 GiB (``--input``).
SLOW_VERIFY |= {"unet": 1}
VERIFY_INPUT = {"unet": ("--input", "1,284,284")}
SLOW_VERIFY |= {"fcn_resnet50": 1, "unet_same": 1}   # 10–25 s, 10–50 s
#: DeepLabV3 at batch 2 (at batch 1 its image-pooling batchnorm sees 1 value a channel),
#: which needs 3.22 GiB at 224: verified at 144 (1.71 GiB).
SLOW_VERIFY |= {"deeplabv3_resnet50": 2}
VERIFY_INPUT |= {"deeplabv3_resnet50": ("--input", "3,144,144")}


def report(name: str) -> convcalc.Report:
    return convcalc.analyze(convcalc.load(zoo.label(name)))


# --- the files ------------------------------------------------------------------------------


def test_the_zoo_has_every_model() -> None:
    assert zoo.names() == sorted(PUBLISHED)
    assert sorted(p.stem for p in zoo.DIRECTORY.glob("*.yaml")) == sorted(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_totals(name: str) -> None:
    params, trainable, buffers, shape_in, shape_out = PUBLISHED[name]
    result = report(name)
    assert result.total_params == params
    assert result.trainable_params == trainable
    assert result.total_buffers == buffers
    assert result.input_shape == shape_in
    assert result.output_shape == shape_out
    assert all(row.output_shape is not None for row in result.layers)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_analyses_without_errors_and_only_the_documented_warnings(name: str) -> None:
    result = report(name)
    assert result.ok, [str(p) for p in result.errors]
    assert [p.layer for p in result.warnings] == EXPECTED_WARNINGS.get(name, [])
    for warning in result.warnings:   # each rounds by one row/column, as the header says
        if warning.layer == "AuxLogits.fc":   # or is Inception v3's unused aux logits
            assert "output is never used" in warning.message
            continue
        if warning.field.endswith(".inputs"):   # or is a merge of misaligned fields
            continue
        assert warning.details.get("uncovered", warning.details.get("overhang")) == 1
    assert [p.layer for p in result.notes] == EXPECTED_NOTES.get(name, [])
    for note in result.notes:   # a declared rounding of one row/column (input or padding)
        if note.field.endswith(".accept_misalignment"):   # or a declared misalignment
            assert "½ pixel of this layer" in note.message or "up to" in note.message
            continue
        assert note.field.endswith(".rounding") and note.details["applied"] == "floor"
        assert note.details["uncovered"] in (0, 1)


@pytest.mark.parametrize("name", sorted(EXPECTED_NOTES))
def test_declared_roundings_and_misalignments_pass_strict(name: str) -> None:
    result = invoke("check", f"zoo:{name}", "--strict")
    assert result.exit_code == (1 if EXPECTED_WARNINGS.get(name) else 0), result.output


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "regnet_y_400mf"])
def test_torchvisions_sizes_are_valid(name: str) -> None:
    """Written as torchvision writes them (symmetric padding, a floor on the layers that
    round), the ResNets accept every input size torchvision does — every size, with both
    paths of each add rounding alike — where [before, after] padding accepted only
    sizes ≡ 0–3 (mod 32)."""
    from convcalc.sizes import valid_sizes

    for axis in valid_sizes(convcalc.load(f"zoo:{name}")):
        assert axis.describe() == f"every {axis.axis} ≥ 1"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_file_has_name_input_and_a_header_with_source_and_totals(name: str) -> None:
    data = yaml.safe_load(zoo.text(name))
    assert data["name"]
    assert tuple(data["input"]) == PUBLISHED[name][3]
    header = zoo.header(name)
    assert re.search(r"\d{4}", header), "the header names the source (with its year)"
    params = PUBLISHED[name][0]
    assert f"{params:,}" in header, f"the header states the published total {params:,}"
    assert (name in WITH_BLOCKS) == bool(data.get("blocks"))


def test_receptive_fields_of_vgg16_and_alexnet() -> None:
    pool5 = report("vgg16").layer("pool5").receptive_field.to_dict()
    assert (pool5["size"], pool5["jump"], pool5["padding"]) == ([212, 212], [32, 32], [90, 90])
    pool3 = report("alexnet").layer("pool3").receptive_field.to_dict()
    assert (pool3["size"], pool3["jump"]) == ([195, 195], [32, 32])


def test_mobilenet_trainable_and_moving_statistics() -> None:
    result = report("mobilenet_v1")
    # Keras: "Trainable params: 4,231,976", "Non-trainable params: 21,888"
    assert result.trainable_params == 4_231_976
    assert result.total_buffers == 21_888
    depthwise = [row for row in result.layers if row.name.endswith(".dw")]
    assert len(depthwise) == 13
    assert depthwise[0].params == 32 * 9                  # one 3×3 filter per channel
    assert result.total_macs == 568_740_352               # the paper's "569 million"


@pytest.mark.parametrize("name", sorted(TORCHVISION_MACS))
def test_macs_equal_torchvisions_published_gflops(name: str) -> None:
    gflops, macs = TORCHVISION_MACS[name]
    result = report(name)
    aux = sum(g.macs for g in result.group_summaries if g.name == "AuxLogits")
    assert result.total_macs - aux == macs    # Inception v3: the main network's
    assert round(macs / 10**9, 3) == gflops


def test_efficientnet_b0_stochastic_depth_is_torchvisions() -> None:
    """drop_path before each shortcut add, rate 0.2·i/16 for block i (0 … 15) as
    torchvision; the first block of a stage has no add, so torchvision never applies its
    rate there, and the file has no drop_path."""
    spec = convcalc.load("zoo:efficientnet_b0")
    blocks = [f"features.{stage}.{b}" for stage, depth in enumerate((1, 2, 2, 3, 3, 4, 1), 1)
              for b in range(depth)]
    assert [(layer.name, layer.rate) for layer in spec.layers if layer.type == "drop_path"] \
        == [(f"{block}.stochastic_depth", pytest.approx(0.2 * i / 16, abs=1e-16))
            for i, block in enumerate(blocks) if not block.endswith(".0")]
    assert all(layer.inputs[0].endswith(".stochastic_depth")
               for layer in spec.layers if layer.type == "add")


def test_convnext_tiny_blocks_and_stochastic_depth_are_torchvisions() -> None:
    """Each of the 18 blocks ends in layer scale (C parameters), drop_path at
    torchvision's rate 0.1·i/17 (the same double), add."""
    spec = convcalc.load("zoo:convnext_tiny")
    rates = [layer.rate for layer in spec.layers if layer.type == "drop_path"]
    assert rates == [0.1 * i / (18 - 1.0) for i in range(18)]
    result = report("convnext_tiny")
    scales = [(row.output_shape[0], row.params) for row in result.layers if row.type == "scale"]
    assert scales == [(c, c) for c, depth in ((96, 3), (192, 3), (384, 9), (768, 3))
                      for _ in range(depth)]


def test_inception_v3_main_network_and_auxiliary_head() -> None:
    """torchvision's 27,161,264 count the auxiliary classifier, which it runs in training
    only: the file has it as a branch off Mixed_6e that nothing reads, so both totals show
    (the AuxLogits group's, and the file's minus it)."""
    result = report("inception_v3")
    aux = next(g for g in result.group_summaries if g.name == "AuxLogits")
    assert (aux.params, aux.buffers, aux.macs, aux.output_shape) == \
        (3_326_696, 1_792, 5_683_200, (1000,))          # torchvision's AuxLogits
    main = result.total_params - aux.params
    assert main == 23_834_568 and result.total_buffers - aux.buffers == 34_432
    assert main + aux.params == result.total_params == 27_161_264
    assert result.total_macs - aux.macs == 5_713_216_096   # torchvision's 5.713 GFLOPS
    assert result.layer("AuxLogits.avg_pool").inputs == ("Mixed_6e.concat",)
    assert result.layer("Mixed_7a.branch3x3_1.conv").inputs == ("Mixed_6e.concat",)
    assert result.layers[-1].name == "fc" and result.output_shape == (1000,)
    spec = convcalc.load("zoo:inception_v3")
    kernels = {tuple(layer.kernel) for layer in spec.layers
               if layer.type == "conv" and not isinstance(layer.kernel, int)}
    assert {(1, 7), (7, 1), (1, 3), (3, 1)} <= kernels


# --- the architectures, re-derived independently ------------------------------------------------

def basic_conv(cin: int, cout: int, k: int) -> int:
    """GoogLeNet's BasicConv2d: conv without bias + batchnorm (gamma, beta)."""
    return cin * cout * k * k + 2 * cout


INCEPTIONS = [  # torchvision: in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool proj
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]


def test_googlenet_inception_blocks() -> None:
    result = report("googlenet")
    groups = {g.name: g for g in result.group_summaries}
    total = basic_conv(3, 64, 7) + basic_conv(64, 64, 1) + basic_conv(64, 192, 3)
    for name, cin, c1, c3r, c3, c5r, c5, pool in INCEPTIONS:
        params = (basic_conv(cin, c1, 1) + basic_conv(cin, c3r, 1) + basic_conv(c3r, c3, 3)
                  + basic_conv(cin, c5r, 1) + basic_conv(c5r, c5, 3)   # the "5×5" is 3×3
                  + basic_conv(cin, pool, 1))
        assert groups[name].params == params, name
        assert groups[name].output_shape[0] == c1 + c3 + c5 + pool
        assert result.layer(f"{name}.concat").inputs == tuple(
            f"{name}.{branch}.relu" for branch in ("branch1", "branch2.1", "branch3.1",
                                                   "branch4.1"))
        total += params
    total += 1024 * 1000 + 1000
    assert total == result.total_params == 6_624_904
    spec = convcalc.load("zoo:googlenet")
    assert all(layer.eps == 0.001 for layer in spec.layers if layer.type == "batchnorm")
    assert all(not layer.bias for layer in spec.layers if layer.type == "conv")
    ceil = [layer.name for layer in spec.layers if layer.type == "maxpool" and layer.ceil_mode]
    assert len(ceil) == 4 + 9   # maxpool1–4 and every branch pool, as torchvision
    assert [result.layer(f"maxpool{i}").output_shape[1] for i in range(1, 5)] == [56, 28, 14, 7]


def bottleneck(cin: int, width: int, projection: bool) -> int:
    params = (cin * width + 2 * width) + (width * width * 9 + 2 * width) \
        + (width * 4 * width + 2 * 4 * width)
    return params + ((cin * 4 * width + 2 * 4 * width) if projection else 0)


def basic(cin: int, channels: int, projection: bool) -> int:
    params = (cin * channels * 9 + 2 * channels) + (channels * channels * 9 + 2 * channels)
    return params + ((cin * channels + 2 * channels) if projection else 0)


STEM = 3 * 64 * 49 + 2 * 64   # conv1 7×7 without bias + bn1


@pytest.mark.parametrize("name, block, depths, expansion", [
    ("resnet18", basic, (2, 2, 2, 2), 1),
    ("resnet50", bottleneck, (3, 4, 6, 3), 4),
])
def test_resnets(name: str, block, depths: tuple[int, ...], expansion: int) -> None:
    result = report(name)
    total, cin = STEM, 64
    for stage, (blocks, width) in enumerate(zip(depths, (64, 128, 256, 512)), 1):
        for i in range(blocks):
            projection = i == 0 and cin != width * expansion
            params = block(cin, width, projection)
            group = next(g for g in result.group_summaries if g.name == f"layer{stage}.{i}")
            assert group.params == params, group.name
            size = 56 // 2 ** (stage - 1)
            assert group.output_shape == (width * expansion, size, size)
            assert any(row.name.endswith("downsample.0") for row in group.layers) == projection
            cin = width * expansion
            total += params
    total += cin * 1000 + 1000
    assert total == result.total_params
    spec = convcalc.load(zoo.label(name))
    assert all(not layer.bias for layer in spec.layers if layer.type == "conv")


def test_resnet50_is_v1_5_stride_on_the_3x3() -> None:
    spec = convcalc.load("zoo:resnet50")
    strides = {layer.name: layer.stride for layer in spec.layers if layer.type == "conv"}
    for stage in (2, 3, 4):
        assert strides[f"layer{stage}.0.conv1"] == 1
        assert strides[f"layer{stage}.0.conv2"] == 2
        assert strides[f"layer{stage}.0.downsample.0"] == 2
    assert strides["layer1.0.conv2"] == 1 and strides["layer1.0.downsample.0"] == 1


TORCHVISION_PADDING = {"[[3, 2], [3, 2]]": "3", "[[2, 1], [2, 1]]": "2", "[[1, 0], [1, 0]]": "1"}


@pytest.mark.parametrize("name", ["alexnet", "googlenet"])
def test_before_after_padding_is_torchvisions_computation(name: str) -> None:
    """The files write [before, after] padding where torchvision pads symmetrically but
    never reads the last padding row: with torchvision's symmetric padding and floor
    rounding, every shape and count is the same, and the only extra warnings are about
    padding that no window reads (no input is lost)."""
    text = zoo.text(name)
    assert any(written in text for written in TORCHVISION_PADDING)
    for written, symmetric in TORCHVISION_PADDING.items():
        text = text.replace(written, symmetric)
    if "rounding: floor" not in text:
        text = text.replace("\ninput:", "\nrounding: floor\ninput:", 1)
    theirs = convcalc.analyze(convcalc.loads(text))
    ours = report(name)
    assert [(r.name, r.output_shape, r.params, r.macs) for r in theirs.layers] == \
        [(r.name, r.output_shape, r.params, r.macs) for r in ours.layers]
    extra = [p for p in theirs.warnings if p.layer not in EXPECTED_WARNINGS.get(name, [])]
    assert extra and all(p.details["uncovered"] == 0 for p in extra)


# --- the API and zoo:NAME ---------------------------------------------------------------------


def test_api() -> None:
    assert zoo.path("resnet50") == zoo.DIRECTORY / "resnet50.yaml"
    assert zoo.path("zoo:resnet50") == zoo.path("resnet50")
    assert zoo.text("lenet5") == zoo.path("lenet5").read_text(encoding="utf-8")
    assert zoo.text("lenet5").startswith("# LeNet-5")
    assert isinstance(convcalc.load("zoo:resnet18"), convcalc.Spec)
    assert summary("vgg16").to_dict()["params"] == 138_357_544


def test_convcalc_load_reads_zoo_names() -> None:
    spec = convcalc.load("zoo:resnet50")
    assert spec.name == "ResNet-50"
    assert [layer.name for layer in spec.layers] == \
        [layer.name for layer in convcalc.load("zoo:resnet50").layers]
    diagnostics = convcalc.analyze(spec).problems
    assert diagnostics[0].file == "zoo:resnet50" and diagnostics[0].line


@pytest.mark.parametrize("name", ["resnet5", "", "../examples/vgg16", "zoo:vgg16"])
def test_unknown_model_is_a_one_line_error_listing_the_models(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        convcalc.load(f"zoo:{name}")
    message = str(caught.value)
    assert "\n" not in message and "unknown zoo model" in message
    assert ", ".join(zoo.names()) in message


def test_unknown_model_suggests_the_closest() -> None:
    with pytest.raises(SpecError, match="did you mean 'resnet50'"):
        convcalc.load("zoo:resnet51")


# --- the command line -------------------------------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_check_zoo_model_exits_0(name: str) -> None:
    result = invoke("check", f"zoo:{name}")
    assert result.exit_code == 0, result.output
    assert f"params: {PUBLISHED[name][0]:,}" in result.output


def test_check_unknown_zoo_model_exits_1_with_one_line() -> None:
    result = invoke("check", "zoo:resnet")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "unknown zoo model 'resnet'" in lines[0]
    assert all(name in lines[0] for name in PUBLISHED)


def test_check_zoo_model_works_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "zoo:lenet5", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.output)["total_params"] == 61_706


def test_zoo_command_lists_every_model_with_totals() -> None:
    result = invoke("zoo")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "model", "params", "trainable", "MACs", "input",
                                "output", "layers"]
    for name, (params, trainable, _, shape_in, shape_out) in PUBLISHED.items():
        row = next(line for line in lines if line.startswith(name + " "))
        assert f"{params:,}" in row and f"{trainable:,}" in row
        assert str(list(shape_in)) in row and str(list(shape_out)) in row
        assert row.split()[-1] == str(len(convcalc.load(zoo.label(name)).layers))


def test_zoo_command_json() -> None:
    result = invoke("zoo", "--format", "json")
    assert result.exit_code == 0
    data = {entry["name"]: entry for entry in json.loads(result.output)}
    assert sorted(data) == sorted(PUBLISHED)
    for name, (params, trainable, buffers, shape_in, shape_out) in PUBLISHED.items():
        entry = data[name]
        assert (entry["params"], entry["trainable_params"], entry["buffers"]) == \
            (params, trainable, buffers)
        assert (tuple(entry["input_shape"]), tuple(entry["output_shape"])) == \
            (shape_in, shape_out)
        assert entry["macs"] == report(name).total_macs
        assert entry["errors"] == 0
        assert entry["warnings"] == len(EXPECTED_WARNINGS.get(name, []))
    assert data["vgg16"]["macs"] == 15_470_264_320


def test_zoo_command_show() -> None:
    result = invoke("zoo", "--show", "googlenet")
    assert result.exit_code == 0
    assert result.output == zoo.text("googlenet")
    result = invoke("zoo", "--show", "inception")
    assert result.exit_code == 1 and "unknown zoo model" in result.output


def test_zoo_files_are_package_data() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["setuptools"]["package-data"]["convcalc.zoo"] == ["*.yaml"]


# --- the reference engine runs every model ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(PUBLISHED) - set(SLOW_VERIFY)))
def test_verify_passes_on_every_zoo_model(name: str) -> None:
    result = invoke("verify", f"zoo:{name}", "--batch", "1")
    assert result.exit_code == 0, result.output
    assert "✓ verified:" in result.output
    assert "✗" not in result.output


@pytest.mark.skipif(not os.environ.get("CONVCALC_SLOW"), reason="slow; CONVCALC_SLOW=1 runs it")
@pytest.mark.parametrize("name", sorted(SLOW_VERIFY))
def test_verify_passes_on_the_slow_zoo_models(name: str) -> None:
    result = invoke("verify", f"zoo:{name}", "--batch", str(SLOW_VERIFY[name]),
                    *VERIFY_INPUT.get(name, ()))
    assert result.exit_code == 0, result.output
    assert "✓ verified:" in result.output and "✗" not in result.output


def test_verify_passes_on_mobilenet_v3_large_at_64x64() -> None:
    """The default suite's one engine run of squeeze-and-excitation (adaptive pool to
    1×1, two 1×1 convs, hardsigmoid, the broadcast mul) and hardswish in a whole network:
    at 64×64 (2×2 before its pool) it takes about 1 s; at 224×224 it is by hand."""
    result = invoke("verify", "zoo:mobilenet_v3_large", "--batch", "1", "--input", "3,64,64")
    assert result.exit_code == 0, result.output
    assert "✓ verified: all 187 layers agree" in result.output and "✗" not in result.output


# --- the docs page ------------------------------------------------------------------------------


def test_docs_zoo_sections_come_from_the_analysis() -> None:
    """docs/_ext/zoo_pages.py builds each model's section from its report (the whole
    build, with -W, is tests/test_docs.py's)."""
    pytest.importorskip("sphinx")
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import zoo_pages
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    for name, (params, trainable, buffers, shape_in, _) in PUBLISHED.items():
        text = "\n".join(zoo_pages.model_rst(name))
        assert f".. _zoo-{name}:" in text and f"``zoo:{name}``" in text
        assert f":parameters: {params:,} (trainable {trainable:,}" in text
        assert f":buffers: {buffers:,}" in text
        assert text.count("- warning: ") == len(EXPECTED_WARNINGS.get(name, []))
    rows = zoo_pages.top_level_rows(report("vgg16"))
    conv1 = (64 * 3 * 9 + 64) + (64 * 64 * 9 + 64)
    assert rows[0][:4] == ["conv1", "conv3 ×2", "[64, 224, 224]", f"{conv1:,}"]
    assert next(r for r in rows if r[0] == "pool5")[5] == "212 / 32 / 90"
    rows = zoo_pages.top_level_rows(report("googlenet"))
    assert [r[0] for r in rows if r[1] == "inception"] == [i[0] for i in INCEPTIONS]
