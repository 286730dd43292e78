"""Renderers: the text table, Markdown and JSON, on small hand-checked reports.

Numbers in the expected texts are worked out in the comments, not copied from output.
"""

from __future__ import annotations

import json

import convcalc
from convcalc.render import render_json, render_markdown, render_table

# input 3×9×12; conv 4 filters 3×5, stride [2, 3] under floor rounding:
#   H: (9 − 3)/2 + 1 = 4;  W: (12 − 5)/3 + 1 = 10/3 → 3 (last column, 11, never covered)
#   params 4·3·15 + 4 = 184; MACs 4·3 positions · 4 filters · 45 = 2,160
#   field 3×5, jump 2×3, padding 0
# maxpool 2 (stride 2) on 4×3: H 2; W (3 − 2)/2 + 1 = 3/2 → 1 (column 2 lost)
#   field 3 + 1·2 = 5 × 5 + 1·3 = 8, jump 4×6
# flatten: 4·2·1 = 8 values, field 5 + (2 − 1)·4 = 9 × 8, jump 4×6
# dense 8 → 1,000: 9,000 params, 8,000 MACs
# activations (float32, batch 1): 48·4 = 192 B, 8·4 = 32 B, 32 B, 1,000·4 = 4,000 B;
#   forward 1,064·4 = 4,256 B (backward the same); input 324·4 = 1,296 B; params
#   9,184·4 = 36,736 B; gradients (trainable only) 184·4 = 736 B; sgd keeps no state;
#   total 1,296 + 2·4,256 + 36,736 + 736 = 47,280 B
SPEC = {
    "name": "render-me",
    "input": [3, 9, 12],
    "rounding": "floor",
    "layers": [
        {"type": "conv", "filters": 4, "kernel": [3, 5], "stride": [2, 3]},
        {"type": "maxpool", "kernel": 2},
        "flatten",
        {"type": "dense", "units": 1000, "trainable": False},
    ],
}

TABLE = """\
render-me
layer       type     output shape  params   MACs  activations  receptive field
----------  -------  ------------  ------  -----  -----------  ---------------
conv1 !     conv     [4, 4, 3]        184  2,160        192 B  3×5 / 2×3 / 0
maxpool1 !  maxpool  [4, 2, 1]          0      0         32 B  5×8 / 4×6 / 0
flatten1    flatten  [8]                0      0         32 B  9×8 / 4×6 / 0
dense1      dense    [1000]         9,000  8,000      4,000 B  9×8 / 4×6 / 0

input [3, 9, 12] → output [1000]
params: 9,184 (trainable 184, frozen 9,000); buffers: 0; MACs: 10,160
memory at batch 1, float32: input 1,296 B, activations 4,256 B forward + 4,256 B backward, \
params 36,736 B, buffers 0 B
training with sgd: gradients 736 B, optimizer state 0 B; estimated total 47,280 B
receptive field: size / jump / effective padding, in input pixels

0 errors, 2 warnings:
warning: layers[0] (conv1): W: (12 − 5) / 3 + 1 = 10/3 rounded down to 3 (rounding: floor): \
the last 1 input column is never covered
warning: layers[1] (maxpool1): W: (3 − 2) / 2 + 1 = 3/2 rounded down to 1 (rounding: floor): \
the last 1 input column is never covered"""


def report() -> convcalc.Report:
    return convcalc.analyze(SPEC)


def test_table() -> None:
    assert render_table(report(), units=False) == TABLE


def test_table_with_units() -> None:
    """The default: counts of 1,000 and more in K, M, G; sizes in KiB, MiB; the summary's
    counts exact, and rounded beside them."""
    lines = render_table(report()).splitlines()
    assert lines[3].split() == ["conv1", "!", "conv", "[4,", "4,", "3]", "184", "2.16", "K",
                                "192", "B", "3×5", "/", "2×3", "/", "0"]
    assert lines[6].split()[3:9] == ["9.00", "K", "8.00", "K", "3.91", "KiB"]   # 4,000 B
    assert "params: 9,184 ≈ 9.18 K (trainable 184, frozen 9,000); buffers: 0; " \
           "MACs: 10,160 ≈ 10.16 K" in lines
    assert ("training with sgd: gradients 736 B, optimizer state 0 B; estimated total "
            "46.17 KiB") in lines           # 47,280 / 1,024


def test_table_columns_line_up() -> None:
    lines = TABLE.splitlines()[1:7]
    # right-aligned numbers end in the same column; left-aligned text starts together
    params_end = lines[0].index("params") + len("params")
    for line in lines[2:]:
        assert line[params_end - 1] != " "
        assert line[params_end] == " "


def test_markdown() -> None:
    lines = render_markdown(report(), units=False).splitlines()
    assert lines[:3] == ["### render-me", "", "| layer | type | output shape | params | MACs "
                         "| activations | receptive field |"]
    assert lines[3] == "|---|---|---|---:|---:|---:|---|"
    assert lines[4] == "| conv1 ! | conv | [4, 4, 3] | 184 | 2,160 | 192 B | 3×5 / 2×3 / 0 |"
    assert lines[7] == "| dense1 | dense | [1000] | 9,000 | 8,000 | 4,000 B | 9×8 / 4×6 / 0 |"
    # a hard line break (two trailing spaces) after every summary line
    assert "params: 9,184 (trainable 184, frozen 9,000); buffers: 0; MACs: 10,160  " in lines
    assert "**Problems**" in lines


def test_markdown_escapes_pipes() -> None:
    text = render_markdown(convcalc.analyze(
        {"input": [1, 4], "layers": [{"name": "a|b", "type": "relu"}]}))
    assert "| a\\|b | relu | [1, 4] | 0 | 0 | 16 B | 1 / 1 / 0 |" in text.splitlines()


def test_bug_markdown_problem_lines_say_the_severity_once() -> None:
    """``- **warning** warning: layers[0] …``: the severity is printed twice, because the
    line is ``**{severity}**`` followed by ``str(diagnostic)``, which starts with
    ``warning: `` for warnings."""
    lines = [line for line in render_markdown(report()).splitlines() if line.startswith("- ")]
    assert len(lines) == 2
    for line in lines:
        assert line.count("warning") == 1, line


def test_errors_show_marks_and_dashes() -> None:
    bad = convcalc.analyze({"input": [3, 4, 4], "layers": [
        {"type": "conv", "filters": 2, "kernel": 5}, "relu"]})
    lines = render_table(bad).splitlines()
    assert lines[2].split() == ["conv1", "✗", "conv", "—", "—", "—", "—", "—"]
    assert lines[3].split() == ["relu1", "relu", "—", "—", "—", "—", "—"]
    assert "input [3, 4, 4] → output —" in lines
    assert "1 error, 0 warnings:" in lines
    # no receptive-field legend when no layer has one
    assert not any(line.startswith("receptive field:") for line in lines)


def test_flat_input_has_no_field() -> None:
    flat = convcalc.analyze({"input": [10], "layers": [{"type": "dense", "units": 3}]})
    lines = render_table(flat).splitlines()
    assert lines[2].split() == ["dense1", "dense", "[3]", "33", "30", "12", "B", "—"]  # 10·3 + 3


def test_json() -> None:
    data = json.loads(render_json(report()))
    assert data["name"] == "render-me"
    assert [layer["output_shape"] for layer in data["layers"]] == [[4, 4, 3], [4, 2, 1], [8],
                                                                   [1000]]
    assert data["layers"][1]["receptive_field"] == {"size": [5, 8], "jump": [4, 6],
                                                    "padding": [0, 0]}
    assert (data["total_params"], data["trainable_params"], data["total_macs"]) == (
        9_184, 184, 10_160)
    # activations: 4·4·3 + 4·2·1 + 8 + 1,000 = 1,064
    assert data["total_activations"] == 1_064
    warnings = [p for p in data["problems"] if p["severity"] == "warning"]
    assert [(p["layer"], p["applied"], p["uncovered"], p["fraction"]) for p in warnings] == [
        ("conv1", "floor", 1, "10/3"), ("maxpool1", "floor", 1, "3/2")]
    assert "−" in render_json(report())           # not escaped to \\u2212
    assert "\n" not in render_json(report(), indent=None)


def test_fractional_jump_is_shown_as_a_decimal() -> None:
    """After ×2 upsampling the jump is 1/2 input pixel: JSON 0.5, table 0.5."""
    up = convcalc.analyze({"input": [1, 8, 8], "layers": [
        {"type": "conv_transpose", "filters": 1, "kernel": 4, "stride": 2, "padding": 1}]})
    data = json.loads(render_json(up))
    assert data["layers"][0]["receptive_field"] == {"size": [2, 2], "jump": [0.5, 0.5],
                                                    "padding": [1, 1]}
    assert render_table(up).splitlines()[2].endswith("2 / 0.5 / 1")


def test_a_repeated_name_keeps_each_rows_own_activations() -> None:
    """Rows are matched to their sizes by position: a file with a duplicate name (an
    error) still shows the first layer's 4 bytes."""
    bad = convcalc.analyze({"input": [1, 1], "layers": [
        {"type": "adaptive_avgpool", "name": "a", "output": 1}, {"type": "add", "name": "a"}]})
    lines = render_table(bad).splitlines()
    assert lines[2].split() == ["a", "adaptive_avgpool", "[1,", "1]", "0", "0", "4", "B",
                                "1", "/", "1", "/", "0"]
