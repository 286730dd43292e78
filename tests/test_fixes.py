"""Fixes that paste: every fix convcalc suggests, applied to the spec, removes its problem.

A fix is a patch (``problems[].fixes``: ``{"layer", "option", "value", "path"}`` or
``{"input": [...]}``, :mod:`convcalc.fixes`); here each one that the golden cases and
random networks produce is applied to the spec's data (:func:`convcalc.fixes.apply_patch`)
and the spec analysed again: the problem it was for is gone — no error or warning on its
layer and axes (a rounding or misalignment declared on the layer is a note) — and no new
error appears at that layer.  The message shows the same patches, in the spec's syntax.
(The single-layer property tests of every geometry are in test_geometry_properties.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc.errors import SpecError
from convcalc.fixes import apply_patch, describe, spec_padding, spec_text
from convcalc.sizes import check

GOLDEN = Path(__file__).parent / "golden"


def diagnose(data: Any, advice: bool) -> list[Any]:
    """Every problem of spec ``data`` (with ``advice``, as ``convcalc check`` finds them:
    with the input's nearest valid sizes when they are why it fails), or those a spec
    error carries."""
    try:
        spec = convcalc.validate(data)
        return list((check(spec).report if advice else convcalc.analyze(spec)).problems)
    except SpecError as error:
        return list(error.diagnostics)


def _axes(problem: Any) -> frozenset[str]:
    return frozenset(problem.details.get("axes", ()))


def _same_problem(problem: Any, other: Any) -> bool:
    """``other`` is ``problem`` again (or what is left of it): on the same layer, and on
    one of its axes (or its field, for a problem without axes), as an error or warning."""
    if other.layer != problem.layer or other.severity == "note":
        return False
    if _axes(problem):
        return bool(_axes(problem) & _axes(other)) or not _axes(other) and \
            other.field == problem.field
    return other.field == problem.field


def _error_keys(problems: list[Any], layer: str) -> set[tuple[Any, ...]]:
    return {(p.field, _axes(p)) for p in problems if p.layer == layer and p.severity == "error"}


def check_fixes(data: dict[str, Any], advice: bool = True) -> int:
    """Paste every fix of every problem of ``data``; the number of fixes pasted.
    ``advice``: the input's nearest valid sizes too (the whole network's valid sizes
    worked out, for every patch: slow)."""
    before = diagnose(data, advice)
    pasted = 0
    for problem in before:
        patches = problem.details.get("fixes", [])
        if not patches:
            continue
        assert problem.message.endswith("Fix: " + describe(patches)), problem.message
        for patch in patches:
            assert json.loads(json.dumps(patch)) == patch          # plain JSON
            after = diagnose(apply_patch(data, patch), advice)
            left = [p for p in after if _same_problem(problem, p)]
            assert not left, (str(problem), patch, [str(p) for p in left])
            new = _error_keys(after, problem.layer) - _error_keys(before, problem.layer)
            assert not new, (str(problem), patch, new)
            pasted += 1
    return pasted


# --- the golden cases -------------------------------------------------------------------------


def _golden_inputs() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.suffix in (".yaml", ".json"))


@pytest.mark.parametrize("path", _golden_inputs(), ids=lambda p: p.name)
def test_every_fix_of_the_golden_cases_pastes(path: Path) -> None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return                                 # not a spec to paste into
    if not isinstance(data, dict):
        return
    check_fixes(data)


def test_the_golden_cases_have_fixes_to_paste() -> None:
    counts = {}
    for path in _golden_inputs():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            counts[path.name] = check_fixes(data)
    assert counts["stride-not-tiling.yaml"] == 6 + 2       # and the input's two
    assert counts["kernel-too-large.yaml"] == 1             # the input's: [3, 5, 5]
    assert counts["several-shape-problems.yaml"] == 12


# --- the spec's syntax ------------------------------------------------------------------------


def test_padding_is_written_in_the_syntax_of_the_layers_axes() -> None:
    """The issue's case: 3×3/2 pad 1 on 56 needs one padding row less — [0, 1] pasted
    would mean H 0, W 1; the spec's way is one pair per axis (the end's row dropped,
    as torchvision computes it), or the axis-specific form, and [[1, 0]] in 1-D."""
    def paddings(input_: list[int], padding: Any = 1) -> list[Any]:
        report = convcalc.analyze({"input": input_, "layers": [
            {"type": "conv", "filters": 1, "kernel": 3, "stride": 2, "padding": padding}]})
        (problem,) = report.problems
        return [p["value"] for p in problem.details["fixes"] if p.get("option") == "padding"]

    # one row less (→ 28), or one more at the end (→ 29)
    assert paddings([1, 56, 56]) == [[[1, 0], [1, 0]], [[1, 2], [1, 2]]]
    assert paddings([1, 56]) == [[[1, 0]], [[1, 2]]]
    assert paddings([1, 56, 57]) == [[[1, 0], 1], [[1, 2], 1]]   # W tiles: only H changes
    assert paddings([1, 8, 9, 8], [1, 0, 1]) == [[[1, 0], 0, [1, 0]], [[1, 2], 0, [1, 2]]]
    assert spec_padding(((1, 0), (1, 0))) == [[1, 0], [1, 0]]
    assert spec_text([[1, 0], 1]) == "[[1, 0], 1]"


def test_the_issues_conv_on_56_pastes() -> None:
    data = {"input": [3, 56, 56], "layers": [
        {"type": "conv", "filters": 8, "kernel": 3, "stride": 2, "padding": 1}]}
    (problem,) = convcalc.analyze(data).problems
    assert problem.message.endswith(
        "Fix: padding: [[1, 0], [1, 0]] (→ 28) or [[1, 2], [1, 2]] (→ 29); stride: 1 (→ 56); "
        "input: [3, 55, 55] (→ 28) or [3, 57, 57] (→ 29); rounding: floor (→ 28) or "
        "ceil (→ 29)")
    assert check_fixes(data) == 7 + 2          # and the input's nearest valid sizes


def test_strides_are_sensible_and_inputs_the_nearest() -> None:
    """No "53 (→ 2)" for a 3×3 kernel: strides at most the window's extent (or the
    stride the layer had); the nearest input sizes, below and above."""
    def fixes(size: int, option: str) -> list[Any]:
        report = convcalc.analyze({"input": [1, size, size], "layers": [
            {"type": "conv", "filters": 1, "kernel": 3, "stride": 2}]})
        (problem,) = report.problems
        return [p.get("value", p.get("input")) for p in problem.details["fixes"]
                if p.get("option", "input") == option]

    assert fixes(56, "stride") == [1]                 # 53 = 56 − 3 is prime: not 53
    assert fixes(54, "stride") == [1, 3]              # 51 = 3·17: not 17 or 51
    assert fixes(56, "input") == [[1, 55, 55], [1, 57, 57]]
    shortcut = convcalc.analyze({"input": [4, 56, 56], "layers": [
        {"type": "conv", "filters": 8, "kernel": 1, "stride": 2}]}).problems[0]
    # a 1×1/2 shortcut: no padding helps a 1-wide window (it would read only padding)
    assert [p.get("option", "input") for p in shortcut.details["fixes"]] == \
        ["stride", "input", "input", "rounding", "rounding"]


def test_a_deep_layers_input_fix_is_the_network_input_that_gives_it() -> None:
    """Of the network sizes that give the layer its input, the nearest where the layers
    before it tile too: 62 and 66, not 63 (a 2×2/2 conv on 63 does not tile)."""
    data = {"input": [3, 64, 64], "layers": [
        {"type": "conv", "filters": 4, "kernel": 2, "stride": 2},                 # → 32
        {"type": "conv", "filters": 4, "kernel": 3, "padding": 1},                # → 32
        {"type": "maxpool", "kernel": 3, "stride": 2}]}                           # 31/2
    (problem,) = convcalc.analyze(data).problems
    inputs = [p["input"] for p in problem.details["fixes"] if "input" in p]
    assert inputs == [[3, 62, 62], [3, 66, 66]]          # its input 31 or 33
    assert "input: [3, 62, 62] (→ 15) or [3, 66, 66] (→ 16)" in problem.message
    assert check_fixes(data) == 6 + 2
    for shape in inputs:
        assert convcalc.analyze({**data, "input": shape}).ok


BLOCK = """
input: [3, 8, 8]
blocks:
  down:
    params: {stride: 2}
    layers:
      - {type: conv, filters: 8, kernel: 3, stride: $stride}
      - relu
layers:
  - {type: down, name: d1, stride: 1}
  - {type: down, name: d2}
"""


def test_a_fix_inside_a_block_is_written_into_the_block() -> None:
    data = yaml.safe_load(BLOCK.replace("  - {type: down, name: d1, stride: 1}\n", ""))
    (problem,) = convcalc.analyze(data).problems
    assert problem.layer == "d2.conv1"
    padding = problem.details["fixes"][0]
    assert padding == {"layer": "d2.conv1", "option": "padding", "value": [[0, 1], [0, 1]],
                       "path": ["blocks", "down", "layers", 0, "padding"], "output": 4}
    assert check_fixes(data) == 6 + 2


def test_a_fix_of_a_block_used_twice_must_fix_it_in_both() -> None:
    """Padding d2's conv pads d1's too, which then gives d2 an input of 7 (or 8) that
    does not tile either: those fixes are not offered; a stride of 1 in the block is."""
    data = yaml.safe_load(BLOCK)
    (problem,) = convcalc.analyze(data).problems
    assert problem.layer == "d2.conv1"
    assert [p.get("option", "input") for p in problem.details["fixes"]] == \
        ["stride", "input", "input", "rounding", "rounding"]
    assert check_fixes(data) == 5 + 2


def test_the_misalignment_fix_declares_it() -> None:
    data = {"input": [1, 10], "layers": [
        {"name": "a", "type": "conv", "filters": 1, "kernel": 3, "padding": [[0, 2]]},
        {"name": "b", "type": "conv", "inputs": "input", "filters": 1, "kernel": 3,
         "padding": 1},
        {"name": "sum", "type": "add", "inputs": ["a", "b"]}]}
    (warning,) = convcalc.analyze(data).warnings
    assert "their centres differ by 1 input pixel" in warning.message
    assert warning.details["offsets"] == ["1"]
    assert warning.details["fixes"] == [{"layer": "sum", "option": "accept_misalignment",
                                         "value": True, "path": ["layers", 2,
                                                                 "accept_misalignment"]}]
    assert check_fixes(data) == 1
    report = convcalc.analyze(apply_patch(data, warning.details["fixes"][0]))
    (note,) = report.notes
    assert report.ok and not report.warnings and "declared" in note.message


def test_flat_vectors_misaligned_name_the_inputs_axes() -> None:
    """Two flattened branches whose fields are centred apart: the axes named are the
    network input's, which the fields are in."""
    data = {"input": [2, 8, 8], "layers": [
        {"name": "a", "type": "conv", "filters": 2, "kernel": 3, "padding": [[0, 2], [0, 2]]},
        {"name": "fa", "type": "flatten"},
        {"name": "b", "type": "conv", "inputs": "input", "filters": 2, "kernel": 3,
         "padding": 1},
        {"name": "fb", "type": "flatten"},
        {"name": "cat", "type": "concat", "inputs": ["fa", "fb"]}]}
    (warning,) = convcalc.analyze(data).warnings
    assert warning.details["axes"] == ["H", "W"] and warning.details["offsets"] == ["1", "1"]
    assert check_fixes(data) == 1


# --- random networks ---------------------------------------------------------------------------


@st.composite
def window(draw: Any, dims: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool"]))
    kernel = draw(st.integers(1, 4))
    padding = draw(st.one_of(st.integers(0, max(0, kernel - 1)).map(int),
                             st.sampled_from(["same", "valid"]),
                             st.just([[kernel // 2, 0]] * dims)))
    if kind != "conv" and padding == "same":
        padding = 0
    layer: dict[str, Any] = {"type": kind, "kernel": kernel,
                             "stride": draw(st.integers(1, 3)), "padding": padding}
    if draw(st.booleans()):
        layer["dilation"] = draw(st.integers(1, 2))
    if kind == "conv":
        layer["filters"] = 2
    elif draw(st.integers(0, 4)) == 0:
        layer["ceil_mode"] = True
    return layer


@st.composite
def network(draw: Any) -> dict[str, Any]:
    """A chain of 1–4 windows on 1 or 2 spatial axes, sometimes with a branch from the
    input merged by an add or a concat, sometimes written as a block used twice, and
    sometimes ending in an adaptive pool."""
    dims = draw(st.integers(1, 2))
    sizes = [draw(st.integers(6, 40))] * dims if draw(st.booleans()) else \
        [draw(st.integers(6, 40)) for _ in range(dims)]
    layers = [draw(window(dims)) for _ in range(draw(st.integers(1, 4)))]
    for i, layer in enumerate(layers):
        layer["name"] = f"w{i}"
    if draw(st.booleans()):
        layers.append({"name": "side", "type": "conv", "inputs": "input", "filters": 2,
                       "kernel": 1, "stride": draw(st.integers(1, 4))})
        layers.append({"name": "join", "type": draw(st.sampled_from(["add", "concat"])),
                       "inputs": [layers[-2]["name"], "side"]})
    if draw(st.integers(0, 3)) == 0:
        layers.append({"name": "pool", "type": "adaptive_avgpool",
                       "output": draw(st.integers(2, 5))})
    data: dict[str, Any] = {"input": [2, *sizes], "layers": layers}
    if draw(st.integers(0, 3)) == 0:                    # as a block, used twice
        data = {"input": data["input"], "blocks": {"net": {"layers": layers}},
                "layers": [{"type": "net", "name": "a"}, {"type": "net", "name": "b"}]}
    return data


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network())
def test_every_fix_of_a_random_network_pastes(data: dict[str, Any]) -> None:
    check_fixes(data, advice=False)
