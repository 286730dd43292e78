"""All problems at once (issue 14, point 4): validation and analysis problems in one
round, the layers after a failed (or invalid) one checked for what does not depend on
their input's shape, and every independent problem of one layer listed."""

from __future__ import annotations

from pathlib import Path

import pytest

import convcalc
from convcalc.kinds import REGISTRY, Context, Kind
from convcalc.spec import LAYER_MODELS, MODEL_BY_TYPE

GOLDEN = Path(__file__).parent / "golden"


def spec_error(text: str) -> convcalc.SpecError:
    with pytest.raises(convcalc.SpecError) as caught:
        convcalc.loads(text, filename="net.yaml")
    return caught.value


def lines(error: convcalc.SpecError) -> list[str]:
    return [str(d) for d in error.diagnostics]


def test_a_file_with_n_independent_problems_reports_n() -> None:
    """The golden case all-at-once: seven problems, one per line of the listing below
    (validation errors and analysis errors interleaved by line)."""
    error = spec_error((GOLDEN / "all-at-once.yaml").read_text(encoding="utf-8"))
    found = [(d.line, d.field, d.message.split(":")[0]) for d in error.diagnostics]
    assert found == [
        (3, "layers[0].groups", "4 groups do not divide the 30 filters"),
        (3, "layers[0].groups", "4 groups do not divide the 3 input channels"),
        (4, "layers[1].padding", "padding 2 is not smaller than the window 2"),
        (5, "layers[2].stride", "has 3 entries but kernel has 2"),
        (6, "layers[3].strid", "unknown key — did you mean 'stride'? (allowed"),
        (7, "layers[4]", "needs a flat vector but its input is a feature map [3, 32, 32]; "
                         "add a flatten (or global pooling) layer before it — nothing is "
                         "flattened implicitly"),
        (8, "layers[5].rate", "must be < 1.0 (got 1.5)"),
    ]
    assert [d.line for d in error.validation] == [6, 8]
    assert [d.line for d in error.analysis] == [3, 3, 4, 5, 7]
    assert str(error).count("\n") == 6


@pytest.mark.parametrize("count", [1, 2, 5])
def test_n_independent_problems_anywhere_are_n_diagnostics(count: int) -> None:
    """``count`` copies of a block of five independent problems (an invalid option, a
    shape problem, a shape-independent problem after it, a layer with two)."""
    layers = []
    for i in range(count):
        layers += [
            f"  - {{type: dropout, rate: 2, name: d{i}, inputs: input}}",
            f"  - {{type: dense, units: 3, name: h{i}, inputs: input}}",     # on a map
            f"  - {{type: maxpool, kernel: 1, padding: 1, name: p{i}}}",      # after h
            f"  - {{type: conv, filters: 5, kernel: 1, groups: 2, name: c{i}, inputs: input}}",
            f"  - {{type: concat, inputs: [d{i}, p{i}, c{i}], name: j{i}}}",
        ]
    layers.append(f"  - {{type: concat, inputs: [{', '.join(f'j{i}' for i in range(count))}, "
                  "input]}")
    error = spec_error("input: [3, 8, 8]\nlayers:\n" + "\n".join(layers) + "\n")
    assert len(error.diagnostics) == 5 * count, lines(error)
    assert len(error.validation) == count


def test_load_loads_and_validate_still_raise_for_an_invalid_spec(tmp_path: Path) -> None:
    text = "input: [3, 8, 8]\nlayers:\n  - {type: conv, filters: 0, kernel: 3}\n" \
           "  - {type: conv, filters: 5, kernel: 1, groups: 2}\n"
    path = tmp_path / "net.yaml"
    path.write_text(text, encoding="utf-8")
    data = {"input": [3, 8, 8], "layers": [{"type": "conv", "filters": 0, "kernel": 3},
                                           {"type": "conv", "filters": 5, "kernel": 1,
                                            "groups": 2}]}
    for call in (lambda: convcalc.load(path), lambda: convcalc.loads(text),
                 lambda: convcalc.validate(data)):
        with pytest.raises(convcalc.SpecError) as caught:
            call()
        assert [d.message for d in caught.value.diagnostics] == [
            "must be ≥ 1 (got 0)", "2 groups do not divide the 5 filters"]


def test_a_valid_spec_checks_the_layers_after_a_failed_one() -> None:
    report = convcalc.analyze({"input": [3, 8, 8], "layers": [
        {"type": "dense", "units": 4},                                  # on a map: fails
        {"type": "conv", "filters": 6, "kernel": 1, "groups": 4},       # static
        {"type": "avgpool", "kernel": [2, 2], "stride": [1, 1, 1]},
        {"type": "conv_transpose", "filters": 2, "kernel": 2, "padding": "full"}]})
    assert [(p.layer, p.field.rsplit(".", 1)[-1]) for p in report.errors] == [
        ("dense1", "layers[0]"), ("conv1", "groups"), ("avgpool1", "stride"),
        ("conv_transpose1", "padding")]
    assert all(row.output_shape is None for row in report.layers)


def test_a_static_problem_reads_the_same_whether_the_input_is_known() -> None:
    layer = {"type": "maxpool", "kernel": 2, "padding": 2}
    known = convcalc.analyze({"input": [3, 8, 8], "layers": [layer]}).errors
    after = convcalc.analyze({"input": [3, 8, 8], "layers": [
        {"type": "dense", "units": 4}, layer]}).errors[1:]
    assert known[0].message == ("H: padding 2 is not smaller than the window 2: some "
                                "windows would see only padding")
    # unknown input, single values: the same message, for every axis
    assert after[0].message == known[0].message.removeprefix("H: ")


def test_every_independent_problem_of_a_conv_is_listed() -> None:
    report = convcalc.analyze({"input": [3, 7, 7], "layers": [
        {"type": "conv", "filters": 30, "kernel": 3, "groups": 4, "stride": 2,
         "padding": 0}]})
    messages = [p.message for p in report.errors]
    assert messages[:2] == ["4 groups do not divide the 30 filters",
                            "4 groups do not divide the 3 input channels"]
    assert len(messages) == 2      # (7 − 3)/2 + 1 = 3 tiles: nothing else


def test_conv_groups_and_tiling_are_both_reported() -> None:
    report = convcalc.analyze({"input": [3, 8, 8], "layers": [
        {"type": "conv", "filters": 4, "kernel": 3, "groups": 2, "stride": 2}]})
    assert len(report.errors) == 2
    assert report.errors[0].message == "2 groups do not divide the 3 input channels"
    assert "7/2 is not a whole number" in report.errors[1].message
    assert report.layers[0].output_shape is None


def test_conv_transpose_reports_every_axis_it_crops_away_together() -> None:
    report = convcalc.analyze({"input": [2, 1, 1], "layers": [
        {"type": "conv_transpose", "filters": 2, "kernel": 1, "padding": 1}]})
    assert [p.message for p in report.errors] == [
        "H, W: padding 1 + 1 crops the whole output (-1 left)"]


def test_a_bad_reference_leaves_its_reader_unknown_not_wrong() -> None:
    """An input name that does not resolve is not replaced by the previous layer in the
    analysis: the add is not said to have one input, nor the dense to read a map."""
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {type: conv, filters: 4, kernel: 1}\n"
                       "  - {type: add, inputs: [conv1, nowhere]}\n"
                       "  - {type: flatten, inputs: later}\n"
                       "  - {type: dense, units: 2}\n  - {name: later, type: relu, "
                       "inputs: conv1}\n")
    assert [d.message for d in error.diagnostics if d.severity == "error"] == [
        "unknown layer 'nowhere'", "'later' is defined later: a layer reads earlier "
        "layers only"]


def test_a_layer_that_is_not_a_mapping_leaves_the_next_one_unknown() -> None:
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {type: conv, filters: 4, kernel: 1}\n"
                       "  - [flatten]\n  - {type: dense, units: 2}\n")
    assert [d.line for d in error.diagnostics] == [4]


def test_a_block_use_that_makes_nothing_leaves_its_readers_unknown() -> None:
    error = spec_error("""\
input: [3, 8, 8]
blocks:
  widen:
    params: {width: null}
    layers:
      - {type: conv, filters: $width, kernel: 1}
layers:
  - {type: widen, name: w}
  - {type: add, inputs: [w, input]}
  - {type: conv, filters: 4, kernel: 1, groups: 3}
""")
    # the add would have read the input twice (fine) were w its input; it is unknown
    assert [d.message for d in error.diagnostics] == [
        "block 'widen' needs width", "3 groups do not divide the 4 filters"]


def test_problems_in_a_block_leave_its_layers_in_doubt_and_the_rest_analysed() -> None:
    error = spec_error("""\
input: [3, 8, 8]
blocks:
  unit:
    params: {width: 4}
    layers:
      - {type: conv, filters: $widht, kernel: 1}
      - {type: relu}
layers:
  - {type: unit, name: u}
  - {type: dense, units: 2}
  - {type: dense, units: 2, inputs: input}
""")
    messages = [d.message for d in error.diagnostics if d.severity == "error"]
    assert messages[0].startswith("unknown parameter $widht — did you mean $width?")
    assert messages[1] == "must be a whole number (got '$widht')"
    assert messages[2:] == [
        "needs a flat vector but its input is a feature map [3, 8, 8]; add a flatten (or "
        "global pooling) layer before it — nothing is flattened implicitly"]
    assert len(error.validation) == 2 and len(error.analysis) == 2   # dense1 unused


def test_an_invalid_input_or_rounding_leaves_only_the_shape_independent_checks() -> None:
    for top in ("input: [3, 8, -8]", "input: [3, 8, 8]\nrounding: round",
                "input: [null, 8, 8]"):
        error = spec_error(f"{top}\nlayers:\n  - {{type: conv, filters: 4, kernel: 9}}\n"
                           "  - {type: conv, filters: 5, kernel: 1, groups: 2}\n")
        assert [d.message for d in error.analysis] == ["2 groups do not divide the 5 filters"]


def test_nothing_is_analysed_when_the_layers_cannot_be_listed() -> None:
    assert spec_error("input: [3, 8, 8]\nlayers: 5\n").analysis == ()
    error = spec_error("input: [3, 8, 8]\nlayers:\n  - {type: relu, repeat: 100000}\n"
                       "  - {type: conv, filters: 5, kernel: 1, groups: 2}\n")
    assert error.analysis == ()


def test_the_cli_prints_them_all_and_json_lists_them(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from convcalc.cli import main

    path = tmp_path / "net.yaml"
    path.write_text((GOLDEN / "all-at-once.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(path), "--format", "json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["error"] == "SpecError"
    assert len(data["problems"]) == 7
    assert [p["line"] for p in data["problems"]] == sorted(p["line"] for p in data["problems"])


# --- the kinds' static problems ------------------------------------------------------------

STATIC_KINDS = sorted({type(kind).__name__: model for model, kind in REGISTRY.items()
                       if type(kind).static_problems is not Kind.static_problems}.items())


def test_some_kinds_declare_static_problems() -> None:
    assert {name for name, _ in STATIC_KINDS} >= {"ConvKind", "ConvTransposeKind", "PoolKind"}


@pytest.mark.parametrize("model", LAYER_MODELS, ids=lambda m: m.__name__)
def test_no_example_has_a_static_problem(model: type) -> None:
    """The static checks are of the options alone: none fires on a valid example,
    whether the input is unknown or known."""
    kind = REGISTRY[model]
    for example in model.examples:
        layer = MODEL_BY_TYPE[example.layer["type"]].model_validate(example.layer)
        for dims in (None, len(example.input) - 1):
            seen: list[str] = []
            ctx = Context("exact", lambda severity, message, option, details:
                          seen.append(message))
            ctx.dims = dims
            kind.static_problems(layer, ctx)
            assert not seen and not ctx.failed, (example, dims, seen)
