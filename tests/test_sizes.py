"""Valid input sizes (convcalc/sizes.py) against brute force: analysing the spec at
every size 1 … 2,048 along an axis (the others at the sizes the answer assumes), on
every zoo model and on random specs mixing strides, pools with ceil_mode, dilation,
transposed convs, resizes, crops and merges."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from test_agreement import graphs, specs

import convcalc
from convcalc import zoo
from convcalc.axes import axis_names
from convcalc.sizes import AxisSizes, check, valid_sizes

ROOT = Path(__file__).resolve().parent.parent
UPTO = 2048


def brute_force(spec: convcalc.Spec, answer: AxisSizes, upto: int = UPTO) -> list[int]:
    """Every size 1 … upto along the answer's axis at which the spec analyses cleanly."""
    names = axis_names(len(spec.input) - 1)
    shape = [spec.input[0]] + [answer.assumed.get(name) for name in names]
    valid = []
    for n in range(1, upto + 1):
        shape[1 + answer.index] = n
        if convcalc.analyze(spec.with_input(shape), fields=False).ok:
            valid.append(n)
    return valid


def claimed(answer: AxisSizes, upto: int = UPTO) -> list[int]:
    return [n for n in range(1, upto + 1) if answer.contains(n)]


def dump(spec: convcalc.Spec) -> str:
    return f"input {spec.input} rounding {spec.rounding} " + "; ".join(
        str(layer.model_dump(exclude_defaults=True)) for layer in spec.layers)


def note_spec(spec: convcalc.Spec) -> None:
    """The spec in a failing example's report (hypothesis refuses notes outside @given)."""
    try:
        note(dump(spec))
    except InvalidArgument:
        pass


def check_against_brute_force(spec: convcalc.Spec, upto: int = UPTO) -> list[AxisSizes]:
    note_spec(spec)
    answers = list(valid_sizes(spec))
    for answer in answers:
        truth = brute_force(spec, answer, upto)
        assert claimed(answer, upto) == truth, (answer.axis, answer.describe(),
                                                 sorted(set(claimed(answer, upto)) ^ set(truth))[:10])
        assert answer.smallest == (truth[0] if truth else None) or truth == []
        for n in truth[:3] + truth[-3:]:
            report = convcalc.analyze(spec.with_input(
                [spec.input[0]] + [answer.assumed.get(a, n) if a != answer.axis else n
                                   for a in axis_names(len(spec.input) - 1)]))
            last = report.output_shape
            if last is not None and len(last) == len(spec.input):
                assert answer.output(n) == last[1 + answer.index], (n, answer.output_formula())
    return answers


# --- known answers ------------------------------------------------------------------------


def net(input_shape, *layers, rounding="exact"):
    return convcalc.validate({"input": list(input_shape), "rounding": rounding,
                              "layers": list(layers)})


def test_a_flat_vector_added_to_a_map_lines_up_with_its_last_axis():
    """(4,) + (4, 1, W) broadcasts from the last axis: W is 1 or the vector's 4 (found by
    hypothesis: the sizes compared entries from the first axis, and said {1})."""
    h, w = check_against_brute_force(net(
        [4, 1, 1], {"name": "n0", "type": "global_avgpool"},
        {"name": "n2", "type": "add", "inputs": ["input", "n0"]}, rounding="floor"))
    assert (h.describe(), w.describe()) == ("every H ≥ 1", "W ∈ {1, 4}")


def test_two_strided_convs():
    (axis,) = check_against_brute_force(net(
        [1, None], {"type": "conv", "filters": 2, "kernel": 3, "stride": 2},
        {"type": "conv", "filters": 2, "kernel": 3, "stride": 2}))
    assert (axis.period, axis.residues, axis.threshold, axis.exceptions) == (4, (3,), 4, (3,)) \
        or (axis.period, axis.residues) == (4, (3,))
    assert axis.describe() == "L = 4k + 3, k ≥ 1" and axis.smallest == 7
    assert axis.output_formula() == "L_out = (L − 3)/4"
    assert axis.nearest(12) == (11, 15) and axis.nearest(11) == (7, 15)


def test_floor_rounding_accepts_every_size_from_the_first_that_fits():
    (axis,) = check_against_brute_force(net(
        [1, None], {"type": "conv", "filters": 2, "kernel": 5, "stride": 2},
        {"type": "maxpool", "kernel": 2}, rounding="floor"))
    assert axis.describe() == "every L ≥ 7" and axis.smallest == 7


def test_a_finite_set_is_exceptions_only():
    """add(x, conv 3/2 pad 1 (x)): ceil(n/2) = n only at n = 1, 2? — the two branches
    agree at finitely many sizes, so there is no period."""
    spec = net([1, None], {"type": "conv", "filters": 1, "kernel": 3, "stride": 2,
                           "padding": 1, "name": "half"},
               {"type": "add", "inputs": ["half", "input"]}, rounding="floor")
    (axis,) = check_against_brute_force(spec)
    assert axis.period == 0 and axis.exceptions == (1, 2) and axis.residues == ()
    assert axis.describe() == "L ∈ {1, 2}"


def test_no_size_works_says_why():
    spec = net([1, None], {"type": "conv", "filters": 1, "kernel": 3, "name": "shrunk"},
               {"type": "concat", "inputs": ["shrunk", "input"]})
    (axis,) = valid_sizes(spec)
    assert axis.empty and axis.smallest is None and axis.nearest(10) == (None, None)
    assert axis.describe().startswith("no L works: ") and "needs equal spatial sizes" \
        in axis.describe()


def test_each_axis_on_its_own_and_the_assumption_stated():
    spec = net([1, None, 9], {"type": "conv", "filters": 1, "kernel": [3, 3],
                              "stride": [2, 3]})
    height, width = check_against_brute_force(spec)
    assert height.describe() == "H = 2k + 1, k ≥ 1" and height.assumed == {"W": 9}
    assert width.describe() == "W = 3k, k ≥ 1" and width.assumed == {"H": 3}


def test_a_given_invalid_size_is_replaced_by_the_smallest_in_the_assumptions():
    spec = net([1, 10, 10], {"type": "conv", "filters": 1, "kernel": 3, "stride": 2})
    height, width = valid_sizes(spec)
    assert height.assumed == {"W": 3} and width.assumed == {"H": 3}


def test_the_api_on_a_spec_with_given_sizes_ignores_the_axis_asked():
    given = valid_sizes(net([1, 13], {"type": "conv", "filters": 1, "kernel": 3,
                                      "stride": 2}))
    open_ = valid_sizes(net([1, None], {"type": "conv", "filters": 1, "kernel": 3,
                                        "stride": 2}))
    assert given[0].describe() == open_[0].describe() == "L = 2k + 1, k ≥ 1"


def test_a_flat_input_has_no_sizes():
    assert valid_sizes(net([5], {"type": "dense", "units": 2})) == ()


# --- the zoo and random specs against brute force ------------------------------------------


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_against_brute_force(name):
    spec = convcalc.load(zoo.label(name))
    answers = valid_sizes(spec)
    first = answers[0]     # the axes of the zoo's models are alike: one is brute-forced
    assert claimed(first) == brute_force(spec, first), first.describe()
    for answer in answers[1:]:
        assert answer.describe() == first.describe().replace(first.axis, answer.axis)


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def open_spec(spec: convcalc.Spec, draw) -> convcalc.Spec:
    """The spec with its spatial sizes left open, or kept."""
    shape = [spec.input[0]] + [None if draw(st.booleans()) else n for n in spec.input[1:]]
    return spec.with_input(shape)


@SETTINGS
@given(specs(), st.data())
def test_random_chains_against_brute_force(spec, data):
    check_against_brute_force(open_spec(spec, data.draw), upto=400)


@SETTINGS
@given(graphs(), st.data())
def test_random_graphs_against_brute_force(spec, data):
    check_against_brute_force(open_spec(spec, data.draw), upto=400)


# --- the command ---------------------------------------------------------------------------


def run(*args):
    result = subprocess.run([sys.executable, "-m", "convcalc", *args], capture_output=True,
                            text=True, cwd=ROOT)
    return result.returncode, result.stdout, result.stderr


def test_sizes_command_json_and_near(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("input: [1, null]\nlayers:\n  - {type: conv, filters: 2, kernel: 3, "
                    "stride: 2}\n  - {type: conv, filters: 2, kernel: 3, stride: 2}\n")
    code, out, err = run("sizes", str(path), "--format", "json", "--near", "12")
    assert code == 0, err
    axis = json.loads(out)["axes"][0]
    assert (axis["period"], axis["residues"], axis["smallest"]) == (4, [3], 7)
    assert axis["near"] == {"size": 12, "valid": False, "below": 11, "above": 15,
                            "output": {"11": 2, "15": 3}}
    code, out, _ = run("sizes", str(path), "--near", "12")
    assert "L = 4k + 3, k ≥ 1" in out and "11 (→ 2) / 15 (→ 3)" in out


def test_check_on_open_sizes_analyses_the_smallest(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("input: [1, null]\nlayers:\n  - {type: conv, filters: 2, kernel: 3, "
                    "stride: 2}\n")
    code, out, _ = run("check", str(path))
    assert code == 0 and "analysed at the smallest valid size, [1, 3]" in out
    code, out, err = run("check", str(path), "--input", "1,8")
    assert code == 1
    assert "the input [1, 8] does not suit this network: L = 8: nearest valid 7 or 9" in err + out


def test_sizes_is_fast_as_a_whole_process():
    started = time.perf_counter()
    code, out, err = run("sizes", "zoo:resnet50")
    elapsed = time.perf_counter() - started
    assert code == 0, err
    print(f"convcalc sizes zoo:resnet50: {elapsed:.2f} s")


def test_duplicate_names_that_hide_a_layers_input_are_no_size_problem():
    """Found by test_fuzz: the second ``a`` (an add) reads ``a`` — itself, by its name —
    so no failing layer with computed inputs could be found (StopIteration, a traceback
    from ``convcalc check``).  The file is wrong at every size."""
    layers = [{"type": "adaptive_avgpool", "name": "a", "output": 1}, {"type": "add", "name": "a"}]
    (answer,) = convcalc.valid_sizes({"input": [1, None], "layers": layers})
    assert answer.empty and "duplicate layer name 'a'" in answer.reason
    checked = check(convcalc.validate({"input": [1, 1], "layers": layers}))
    assert [p.message for p in checked.report.errors] == [
        "duplicate layer name 'a' (also at layers[0])", "add needs at least two inputs (got 1)"]
