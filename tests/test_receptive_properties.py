"""Receptive fields against a brute-force back-projection.

The oracle takes one output neuron and walks back layer by layer, collecting the set of
positions (in unbounded coordinates: padding positions included, and followed back like
any other) that it depends on.  At the input, ``size`` is the span of that set and
neuron ``i``'s field starts at ``i·jump − padding``.  No RF recurrence is used.
"""

from __future__ import annotations

from fractions import Fraction
from math import prod
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import convcalc

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- brute force ---------------------------------------------------------------------------


def back_window(positions: set[int], kernel: int, stride: int, pad_before: int,
                dilation: int) -> set[int]:
    """Inputs read by the given outputs of a conv/pool: output j reads j·s + t·d − p."""
    return {j * stride + t * dilation - pad_before for j in positions for t in range(kernel)}


def back_transposed(positions: set[int], kernel: int, stride: int, pad_before: int,
                    dilation: int) -> set[int]:
    """Inputs read by the given outputs of a transposed conv: input i sends tap t to
    output i·s + t·d − p, so output o reads every i with i·s = o + p − t·d."""
    out = set()
    for o in positions:
        for t in range(kernel):
            q = o + pad_before - t * dilation
            if q % stride == 0:
                out.add(q // stride)
    return out


def back_project(layers: list[dict[str, Any]], neuron: int) -> set[int]:
    positions = {neuron}
    for layer in reversed(layers):
        step = back_transposed if layer["kind"] == "conv_transpose" else back_window
        positions = step(positions, layer["kernel"], layer["stride"], layer["pad"][0],
                         layer["dilation"])
    return positions


def span(positions: set[int]) -> int:
    return max(positions) - min(positions) + 1


# --- strategies ----------------------------------------------------------------------------


def axis_layer(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "kind": st.just(kind),
        "kernel": st.integers(1, 5),
        "stride": st.integers(1, 3),
        "dilation": st.integers(1, 3) if kind != "maxpool" else st.integers(1, 2),
        "pad": st.tuples(st.integers(0, 3), st.integers(0, 3)),
    })


@st.composite
def window_stack(draw: Any, dims: int, kinds=("conv", "maxpool", "avgpool")) -> list[dict[str, Any]]:
    """A stack of layers, each with independent per-axis settings."""
    depth = draw(st.integers(1, 5))
    stack = []
    for _ in range(depth):
        kind = draw(st.sampled_from(kinds))
        stack.append({"kind": kind, "axes": [draw(axis_layer(kind)) for _ in range(dims)]})
    return stack


def to_spec(stack: list[dict[str, Any]], sizes: list[int], extra: list[Any] = ()) -> dict:
    layers: list[Any] = []
    for layer in stack:
        axes = layer["axes"]
        entry: dict[str, Any] = {
            "type": layer["kind"],
            "kernel": [a["kernel"] for a in axes],
            "stride": [a["stride"] for a in axes],
            "dilation": [a["dilation"] for a in axes],
            "padding": [list(a["pad"]) for a in axes],
        }
        if layer["kind"] in ("conv", "conv_transpose"):
            entry["filters"] = 2
        layers.append(entry)
    return {"input": [1, *sizes], "rounding": "floor", "layers": layers + list(extra)}


def analyse_or_skip(spec: dict) -> convcalc.Report:
    report = convcalc.analyze(spec)
    # a window larger than its input, or a pool padded by its own size: not about fields
    assume(report.ok and report.layers[-1].output_shape is not None)
    return report


# --- properties ----------------------------------------------------------------------------


def test_brute_force_sanity() -> None:
    three = [{"kind": "conv", "kernel": 3, "stride": 1, "dilation": 1, "pad": (1, 1)}] * 3
    assert back_project(three, 0) == set(range(-3, 4))  # three 3×3: 7 wide, 3 before
    pool = [{"kind": "maxpool", "kernel": 2, "stride": 2, "dilation": 1, "pad": (0, 0)}]
    assert back_project(pool, 3) == {6, 7}


@SETTINGS
@given(st.integers(1, 2).flatmap(lambda dims: st.tuples(st.just(dims), window_stack(dims))))
def test_window_stacks_match_back_projection(case: tuple[int, list[dict[str, Any]]]) -> None:
    dims, stack = case
    report = analyse_or_skip(to_spec(stack, [64] * dims))
    for layer_index in range(len(stack)):
        field = report.layers[layer_index].receptive_field
        for axis in range(dims):
            chain = [layer["axes"][axis] for layer in stack[: layer_index + 1]]
            got = field.axes[axis]
            jump = prod(a["stride"] for a in chain)
            for neuron in (0, 1, 2, 7):
                seen = back_project(chain, neuron)
                assert span(seen) == got.size
                assert min(seen) == neuron * got.jump - got.padding
            assert got.jump == jump
            assert min(back_project(chain, 1)) - min(back_project(chain, 0)) == jump


@SETTINGS
@given(window_stack(1), st.sampled_from(["global_avgpool", "global_maxpool", "flatten"]))
def test_whole_map_layers_see_the_union(stack: list[dict[str, Any]], last: str) -> None:
    report = analyse_or_skip(to_spec(stack, [40], [last]))
    positions = report.layers[-2].output_shape[1]
    chain = [layer["axes"][0] for layer in stack]
    seen = set().union(*(back_project(chain, j) for j in range(positions)))
    field = report.layers[-1].receptive_field.axes[0]
    assert (field.size, field.padding) == (span(seen), -min(seen))


# --- transposed convolutions ----------------------------------------------------------------


def transposed_oracle(chain: list[dict[str, Any]]) -> tuple[int, int, Fraction]:
    """(largest field over the output neurons, output 0's effective padding, jump)."""
    period = prod(a["stride"] for a in chain)
    fields = {i: back_project(chain, i) for i in range(0, 3 * period)}
    size = max(span(s) for s in fields.values() if s)
    padding = -min(fields[0])
    jump = Fraction(min(back_project(chain, period)) - min(fields[0]), period)
    return size, padding, jump


@SETTINGS
@given(window_stack(1, kinds=("conv", "maxpool")), axis_layer("conv_transpose"))
def test_one_transposed_conv_on_top_of_a_window_stack(
        stack: list[dict[str, Any]], top: dict[str, Any]) -> None:
    top = {**top, "pad": (min(top["pad"][0], top["kernel"] - 1),) * 2}
    stack = stack + [{"kind": "conv_transpose", "axes": [top]}]
    report = analyse_or_skip(to_spec(stack, [48]))
    chain = [layer["axes"][0] for layer in stack]
    assume(back_project(chain, 0))  # output 0 must read something to have a field
    size, padding, jump = transposed_oracle(chain)
    field = report.layers[-1].receptive_field.axes[0]
    assert field.size == size
    assert field.padding == padding
    assert field.jump == jump


def test_transposed_x2_upsampling() -> None:
    """kernel 4, stride 2, pad 1: output o reads inputs (o + 1 − t)/2 for taps t that
    divide: o = 0 → {−1, 0}, o = 1 → {0, 1}; fields 2 wide, jump 1/2, padding 1."""
    report = convcalc.analyze({"input": [1, 8], "layers": [
        {"type": "conv_transpose", "filters": 1, "kernel": 4, "stride": 2, "padding": 1}]})
    assert report.layers[0].output_shape == (1, 16)
    field = report.layers[0].receptive_field.axes[0]
    assert (field.size, field.jump, field.padding) == (2, Fraction(1, 2), 1)


def test_bug_conv_after_transposed_conv_has_a_whole_receptive_field() -> None:
    """×2 upsampling then a 2-wide conv.  Upsampled o reads {−1, 0} (o = 0), {0, 1}
    (o = 1, 2), {1, 2} (o = 3, 4), …; conv output 0 reads upsampled 0 and 1 → inputs
    −1..1 (3 wide), output 1 reads 1 and 2 → 0..1 (2 wide).  Largest field: 3 (the
    calculator says 5/2 — a fraction of a pixel — and ``--format json`` then crashes)."""
    spec = {"input": [1, 8], "layers": [
        {"type": "conv_transpose", "filters": 1, "kernel": 4, "stride": 2, "padding": 1},
        {"type": "conv", "filters": 1, "kernel": 2}]}
    chain = [{"kind": "conv_transpose", "kernel": 4, "stride": 2, "dilation": 1, "pad": (1, 1)},
             {"kind": "conv", "kernel": 2, "stride": 1, "dilation": 1, "pad": (0, 0)}]
    assert back_project(chain, 0) == {-1, 0, 1}
    assert back_project(chain, 1) == {0, 1}
    report = convcalc.analyze(spec)
    field = report.layers[1].receptive_field.axes[0]
    assert field.size == 3
    convcalc.render_json(report)  # must not raise


@SETTINGS
@given(window_stack(1, kinds=("conv", "conv_transpose", "maxpool")))
def test_bug_mixed_transposed_stacks(stack: list[dict[str, Any]]) -> None:
    """Any stack with transposed convs anywhere: the largest field over output neurons
    and output 0's padding, by back-projection.  Fails while a transposed conv followed
    by other layers gives fractional sizes (see the test above)."""
    for layer in stack:
        a = layer["axes"][0]
        if layer["kind"] == "conv_transpose":
            a["pad"] = (min(a["pad"][0], a["kernel"] - 1),) * 2
    assume(any(layer["kind"] == "conv_transpose" for layer in stack[:-1]))
    report = analyse_or_skip(to_spec(stack, [24]))
    chain = [layer["axes"][0] for layer in stack]
    assume(back_project(chain, 0))
    size, padding, _ = transposed_oracle(chain)
    field = report.layers[-1].receptive_field.axes[0]
    assert (field.size, field.padding) == (size, padding)


# --- VGG-16 ---------------------------------------------------------------------------------


def test_vgg16_pool5_field_by_back_projection() -> None:
    conv = {"kind": "conv", "kernel": 3, "stride": 1, "dilation": 1, "pad": (1, 1)}
    pool = {"kind": "maxpool", "kernel": 2, "stride": 2, "dilation": 1, "pad": (0, 0)}
    chain = [conv] * 2 + [pool] + [conv] * 2 + [pool] + ([conv] * 3 + [pool]) * 3
    seen = back_project(chain, 0)
    assert (span(seen), -min(seen)) == (212, 90)
    assert min(back_project(chain, 1)) - min(seen) == 32

    from pathlib import Path
    examples = Path(__file__).resolve().parent.parent / "examples"
    report = convcalc.analyze(convcalc.load(examples / "vgg16.yaml"))
    pool5 = report.layer("pool5")
    assert pool5.output_shape == (512, 7, 7)
    assert [(a.size, a.jump, a.padding) for a in pool5.receptive_field.axes] == [(212, 32, 90)] * 2
    conv_params = sum(row.params for row in report.layers if row.type == "conv")
    assert conv_params == 14_714_688
    assert report.total_params == 138_357_544


@pytest.mark.parametrize("neuron", [0, 3, 6])
def test_vgg16_every_pool5_neuron_starts_at_32i_minus_90(neuron: int) -> None:
    conv = {"kind": "conv", "kernel": 3, "stride": 1, "dilation": 1, "pad": (1, 1)}
    pool = {"kind": "maxpool", "kernel": 2, "stride": 2, "dilation": 1, "pad": (0, 0)}
    chain = [conv] * 2 + [pool] + [conv] * 2 + [pool] + ([conv] * 3 + [pool]) * 3
    seen = back_project(chain, neuron)
    assert min(seen) == 32 * neuron - 90 and span(seen) == 212


# --- merge alignment: a few outputs decide, as every output would ---------------------------


@st.composite
def fields_1d(draw: Any) -> Any:
    """A field after a stack of windows and transposed windows (fields of any period)."""
    from convcalc.receptive import Field1D

    field = Field1D.identity()
    for _ in range(draw(st.integers(0, 3))):
        kernel, stride, pad = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
        if draw(st.booleans()):
            field = field.through_window(kernel, stride, min(pad, kernel - 1),
                                         draw(st.integers(1, 2)))
        else:
            field = field.through_transposed(kernel, stride, min(pad, kernel - 1))
    if draw(st.integers(0, 5)) == 0:
        field = field.spread(draw(st.integers(1, 6)))    # a path that sees a whole map
    return field


def every_output_centre_offset(fields: list[Any], outputs: int) -> tuple[Fraction, bool]:
    """centre_offset as first written: every output's edges of every path."""
    from convcalc.receptive import _positioned

    seen = [[f.edges(o) for o in range(outputs)] for f in fields]
    rest = _positioned(seen)
    spreads = []
    for o in range(outputs):
        centres = [Fraction(lo + hi, 2) for lo, hi in (seen[p][o] for p in rest)
                   if lo is not None and hi is not None]
        spreads.append(max(centres) - min(centres) if centres else Fraction(0))
    return max(spreads, default=Fraction(0)), len(set(spreads)) <= 1


def every_output_aligned(fields: list[Any], outputs: int) -> bool:
    from convcalc.receptive import _positioned

    seen = [[f.edges(o) for o in range(outputs)] for f in fields]
    rest = _positioned(seen)
    if len({fields[p].jump for p in rest}) > 1:
        return False
    return all(len({lo + hi for lo, hi in (seen[p][o] for p in rest)
                    if lo is not None and hi is not None}) <= 1 for o in range(outputs))


@settings(max_examples=400, deadline=None)
@given(st.lists(fields_1d(), min_size=1, max_size=4), st.integers(1, 80))
def test_the_deciding_outputs_give_every_outputs_answer(fields: list[Any], outputs: int) -> None:
    """A merge's offset and alignment from the first and last common period of outputs
    (U-Net analysis 4× faster) equal what every output's edges give."""
    from convcalc.receptive import _aligned_over, centre_offset

    assert centre_offset(fields, outputs) == every_output_centre_offset(fields, outputs)
    assert _aligned_over(fields, outputs) == every_output_aligned(fields, outputs)
