"""Branching networks and blocks: hand-computed residual, inception and misaligned graphs;
errors for references, cycles, merges and blocks; a single path equals the sequential spec.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc

RESIDUAL = """\
name: residual
input: [8, 16, 16]
layers:
  - {name: conv1, type: conv, filters: 8, kernel: 3, padding: 1, bias: false}
  - {name: bn1, type: batchnorm}
  - relu
  - {name: conv2, type: conv, filters: 8, kernel: 3, padding: 1, bias: false}
  - {name: bn2, type: batchnorm}
  - {name: sum, type: add, inputs: [bn2, input]}
  - relu
"""


def field(report: convcalc.Report, name: str) -> tuple[Any, Any, Any]:
    data = report.layer(name).receptive_field.to_dict()
    return data["size"], data["jump"], data["padding"]


def messages(report: convcalc.Report, severity: str = "error") -> list[str]:
    return [str(p) for p in report.problems if p.severity == severity]


def spec_errors(text: str) -> list[str]:
    with pytest.raises(convcalc.SpecError) as caught:
        convcalc.loads(text, filename="net.yaml")
    return [str(d) for d in caught.value.diagnostics]


def test_residual_block_by_hand():
    report = convcalc.analyze(convcalc.loads(RESIDUAL))
    assert report.ok and not report.problems
    # two 3×3 convs 8→8 without bias: 8·8·9 = 576 each; two batchnorms: 2·8 each
    assert report.total_params == 2 * 576 + 2 * 16 == 1184
    assert report.total_buffers == 32
    assert report.total_macs == 2 * 16 * 16 * 8 * 8 * 9 == 294_912
    assert report.layer("sum").inputs == ("bn2", "input")
    assert report.layer("sum").output_shape == (8, 16, 16)
    # main path sees 5×5 (pad 2); the identity sees 1×1 (pad 0); same centre: aligned
    assert field(report, "sum") == ([5, 5], [1, 1], [2, 2])
    assert report.branching


def test_inception_block_by_hand():
    """GoogLeNet's inception (3a) with bias: 4 branches concatenated to 256 channels."""
    text = """\
input: [192, 28, 28]
layers:
  - {name: b1, type: conv, filters: 64, kernel: 1}
  - {name: b2a, type: conv, inputs: input, filters: 96, kernel: 1}
  - {name: b2b, type: conv, filters: 128, kernel: 3, padding: 1}
  - {name: b3a, type: conv, inputs: input, filters: 16, kernel: 1}
  - {name: b3b, type: conv, filters: 32, kernel: 5, padding: 2}
  - {name: b4a, type: maxpool, inputs: input, kernel: 3, stride: 1, padding: 1}
  - {name: b4b, type: conv, filters: 32, kernel: 1}
  - {name: join, type: concat, inputs: [b1, b2b, b3b, b4b]}
"""
    report = convcalc.analyze(convcalc.loads(text))
    assert report.ok and not report.problems
    assert report.layer("join").output_shape == (64 + 128 + 32 + 32, 28, 28)
    expected = [192 * 64 + 64, 192 * 96 + 96, 96 * 128 * 9 + 128, 192 * 16 + 16,
                16 * 32 * 25 + 32, 0, 192 * 32 + 32, 0]
    assert [row.params for row in report.layers] == expected
    assert report.total_params == 163_696
    assert field(report, "join") == ([5, 5], [1, 1], [2, 2])


def test_misaligned_branches_warn_with_the_union_field():
    """Branch a (pad [0, 2]) sees [o, o+2]; branch b (pad 1) sees [o−1, o+1]: same size,
    different centres.  The union is [o−1, o+2]: 4 wide, effective padding 1."""
    text = """\
input: [1, 10]
layers:
  - {name: a, type: conv, filters: 1, kernel: 3, padding: [[0, 2]]}
  - {name: b, type: conv, inputs: input, filters: 1, kernel: 3, padding: 1}
  - {name: sum, type: add, inputs: [a, b]}
"""
    report = convcalc.analyze(convcalc.loads(text, filename="net.yaml"))
    assert report.ok
    (warning,) = report.warnings
    assert warning.layer == "sum" and warning.line == 5 and warning.field == "layers[2].inputs"
    assert "a, b are misaligned along L" in warning.message
    assert field(report, "sum") == ([4], [1], [1])


def test_add_of_different_shapes_names_both_branches():
    text = """\
input: [3, 8, 8]
layers:
  - {name: a, type: conv, filters: 4, kernel: 3}
  - {name: b, type: conv, inputs: input, filters: 4, kernel: 1}
  - {type: add, inputs: [a, b]}
"""
    (message,) = messages(convcalc.analyze(convcalc.loads(text, filename="net.yaml")))
    assert message == ("net.yaml:5: layers[2].inputs (add1): add needs inputs of one shape, "
                       "but got a [4, 6, 6], b [4, 8, 8]")


def test_concat_needs_equal_spatial_sizes_and_adds_channels():
    text = """\
input: [3, 8, 8]
layers:
  - {name: a, type: conv, filters: 4, kernel: 3, padding: 1}
  - {name: b, type: conv, inputs: input, filters: 6, kernel: 3}
  - {type: concat, inputs: [a, b]}
"""
    (message,) = messages(convcalc.analyze(convcalc.loads(text, filename="net.yaml")))
    assert "concat joins channels and needs equal spatial sizes, but got a [4, 8, 8], " \
           "b [6, 6, 6]" in message
    ok = convcalc.analyze(convcalc.loads(text.replace("kernel: 3}\n  - {type", "kernel: 3, padding: 1}\n  - {type")))
    assert ok.layer("concat1").output_shape == (10, 8, 8)


def test_flat_vectors_concatenate():
    text = """\
input: [3, 4, 4]
layers:
  - {name: f, type: flatten}
  - {name: g, type: global_avgpool, inputs: input}
  - {type: concat, inputs: [f, g]}
  - {type: dense, units: 2}
"""
    report = convcalc.analyze(convcalc.loads(text))
    assert report.layer("concat1").output_shape == (48 + 3,)
    assert report.layer("dense1").params == 51 * 2 + 2


def test_reference_errors_name_file_line_and_field():
    text = """\
input: [3, 8, 8]
layers:
  - {name: a, type: conv, filters: 4, kernel: 3, inputs: b}
  - {name: b, type: relu, inputs: a}
  - {name: c, type: relu, inputs: nowhere}
  - {name: d, type: relu, inputs: e}
  - {name: e, type: relu}
  - {type: add, inputs: [c, 7]}
"""
    assert spec_errors(text) == [
        "net.yaml:3: layers[0].inputs: cycle: a → b → a",
        "net.yaml:5: layers[2].inputs: unknown layer 'nowhere'",
        "net.yaml:6: layers[3].inputs: 'e' is defined later: a layer reads earlier layers only",
        "net.yaml:8: layers[5].inputs[1]: unknown layer 7",
    ]


def test_a_self_reference_is_a_cycle():
    errors = spec_errors("input: [3, 8, 8]\nlayers:\n  - {name: a, type: relu, inputs: a}\n")
    assert errors == ["net.yaml:3: layers[0].inputs: cycle: a → a"]


def test_unused_branch_is_a_warning_and_one_input_layers_refuse_two():
    text = """\
input: [3, 8, 8]
layers:
  - {name: side, type: conv, filters: 4, kernel: 1}
  - {name: main, type: conv, inputs: input, filters: 4, kernel: 1}
  - {type: relu, inputs: [main, side]}
  - {type: add, inputs: [main]}
"""
    report = convcalc.analyze(convcalc.loads(text, filename="net.yaml"))
    assert messages(report) == [
        "net.yaml:5: layers[2].inputs (relu1): relu takes one input (got 2); merge branches "
        "with an add or concat layer first",
        "net.yaml:6: layers[3].inputs (add1): add needs at least two inputs (got 1)",
    ]
    assert messages(report, "warning") == [
        "net.yaml:5: warning: layers[2] (relu1): this layer's output is never used (no layer "
        "reads it and it is not the last layer)",
    ]
    assert report.layer("add1").output_shape is None


BLOCKS = """\
input: [3, 32, 32]
blocks:
  unit:
    params: {width: null, stride: 1}
    layers:
      - {name: conv, type: conv, filters: "$width * 2", kernel: 3, stride: $stride, padding: 1}
      - {name: bn, type: batchnorm}
      - {type: add, inputs: [bn, input]}
layers:
  - {name: stem, type: conv, filters: 8, kernel: 1}
  - {name: s1, type: unit, width: 4, repeat: 3}
"""


def test_blocks_expand_with_params_and_repeat():
    spec = convcalc.loads(BLOCKS)
    names = [layer.name for layer in spec.layers]
    assert names == ["stem"] + [f"s1.{i}.{n}" for i in range(3) for n in ("conv", "bn", "add1")]
    assert spec.layers[1].filters == 8 and spec.layers[1].stride == 1
    assert spec.layers[3].inputs == ["s1.0.bn", "stem"]
    assert spec.layers[4].inputs == ["s1.0.add1"]
    report = convcalc.analyze(spec)
    assert report.ok and not report.problems
    per_unit = 8 * 8 * 9 + 8 + 2 * 8
    assert report.total_params == 8 * 3 + 8 + 3 * per_unit
    (s1, *units) = report.group_summaries
    assert (s1.name, s1.block, s1.params) == ("s1", "unit ×3", 3 * per_unit)
    assert [(u.name, u.block, u.params, u.depth) for u in units] == [
        (f"s1.{i}", "unit", per_unit, 2) for i in range(3)]
    data = report.to_dict()
    assert data["layers"][1]["group"] == ["s1", "s1.0"]
    assert data["groups"][1]["layers"] == ["s1.0.conv", "s1.0.bn", "s1.0.add1"]


def test_block_errors_point_into_the_block_or_the_call():
    text = BLOCKS.replace("width: 4, repeat: 3", "widht: 4, repeat: 0").replace(
        "stride: $stride", "stride: $strid")
    assert spec_errors(text) == [
        "net.yaml:6: blocks.unit.layers[0].stride: unknown parameter $strid — did you mean "
        "$stride? (this block has: $width, $stride)",
        "net.yaml:11: layers[1].repeat: must be a whole number ≥ 1 (got 0)",
        "net.yaml:11: layers[1].widht: block 'unit' has no parameter 'widht' — did you mean "
        "'width'? (it has: width, stride)",
        "net.yaml:11: layers[1]: block 'unit' needs width",
    ]


def test_an_invalid_option_inside_a_block_names_the_instance():
    text = BLOCKS.replace("stride: $stride", "stride: 0")
    assert spec_errors(text) == ["net.yaml:6: blocks.unit.layers[0].stride (s1.0.conv): "
                                 "must be ≥ 1 (got 0) (and in 2 more instances)"]


def test_a_block_that_uses_itself_is_refused():
    text = """\
input: [3, 8, 8]
blocks:
  a: {layers: [{type: b}]}
  b: {layers: [relu, {type: a}]}
layers: [{type: a}]
"""
    assert spec_errors(text) == ["net.yaml:4: blocks.b.layers[1].type: block 'a' uses itself: "
                                 "a → b → a"]


def test_expressions_are_integer_arithmetic_only():
    text = BLOCKS.replace('"$width * 2"', '"$width + len([])"')
    (error, *_) = spec_errors(text)
    assert "only whole numbers, params, + − * // and parentheses are allowed" in error


# --- a single path written as a graph gives the sequential report -------------------------


LAYER = st.one_of(
    st.builds(lambda f, k, s, p: {"type": "conv", "filters": f, "kernel": k, "stride": s,
                                  "padding": p},
              st.integers(1, 4), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1)),
    st.builds(lambda k: {"type": "maxpool", "kernel": k}, st.integers(1, 2)),
    st.just({"type": "relu"}),
    st.just({"type": "batchnorm"}),
)


def numbers(report: convcalc.Report) -> list[tuple[Any, ...]]:
    return [(row.type, row.output_shape, row.params, row.buffers, row.macs,
             None if row.receptive_field is None else row.receptive_field.to_dict())
            for row in report.layers]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LAYER, min_size=1, max_size=6), st.booleans())
def test_a_single_path_graph_equals_the_sequential_spec(layers, as_block):
    sequential = {"input": [2, 24, 24], "rounding": "floor", "layers": layers}
    named = [{**layer, "name": f"n{i}", "inputs": [f"n{i - 1}" if i else "input"]}
             for i, layer in enumerate(layers)]
    if as_block:
        graph = {"input": [2, 24, 24], "rounding": "floor",
                 "blocks": {"path": {"layers": named}}, "layers": [{"type": "path"}]}
    else:
        graph = {**sequential, "layers": named}
    expected, got = convcalc.analyze(sequential), convcalc.analyze(graph)
    assert numbers(got) == numbers(expected)
    assert [p.message for p in got.problems] == [p.message for p in expected.problems]
    assert (got.total_params, got.total_macs) == (expected.total_params, expected.total_macs)


def test_the_json_schema_accepts_graphs_and_blocks():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    validator = jsonschema.Draft202012Validator(convcalc.json_schema())
    for text in (RESIDUAL, BLOCKS):
        assert list(validator.iter_errors(yaml.safe_load(text))) == []
    typo = yaml.safe_load(RESIDUAL.replace("type: batchnorm", "type: batchnrom", 1))
    assert not validator.is_valid(typo)


def test_input_is_a_reserved_name():
    errors = spec_errors("input: [3, 8, 8]\nlayers:\n  - {name: input, type: relu}\n  - relu\n")
    assert errors == ["net.yaml:3: layers[0].name: 'input' is reserved: it names the "
                      "network's (or a block's) input"]
