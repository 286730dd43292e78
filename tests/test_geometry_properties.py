"""Window arithmetic against brute force, through ``convcalc.analyze``.

The oracle never uses the output-size formula: it lists the window start positions
``0, s, 2s, …`` in the padded input and keeps those whose dilated window fits, and it
scatters every (input, tap) pair of a transposed convolution.  Random 1-D, 2-D and 3-D
conv and pooling layers with random kernels, strides, dilations and paddings (numbers,
[before, after] pairs, 'same', 'full', 'valid') under every rounding rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc.fixes import apply_patch

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# --- brute force ---------------------------------------------------------------------------


def window_starts(padded: int, eff: int, stride: int) -> list[int]:
    """Start positions 0, s, 2s, … of every window that fits in the padded input."""
    return [start for start in range(0, padded, stride) if start + eff <= padded]


def covered(starts: list[int], kernel: int, dilation: int) -> set[int]:
    """Padded positions some window's tap touches."""
    return {start + t * dilation for start in starts for t in range(kernel)}


def remainder(padded: int, eff: int, stride: int) -> int:
    """Padded positions after the last window's end (brute force)."""
    starts = window_starts(padded, eff, stride)
    return padded - (starts[-1] + eff)


def tiles(size: int, total_pad: int, eff: int, stride: int) -> bool:
    padded = size + total_pad
    return eff <= padded and remainder(padded, eff, stride) == 0


def same_padding(size: int, eff: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same': the least total padding that fits as many windows as there
    are stride steps in the input (ceil(n/s), counted), the odd one after."""
    wanted = len(range(0, size, stride))
    total = next(t for t in range(0, eff + 1) if len(window_starts(size + t, eff, stride)) >= wanted)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class Axis:
    size: int
    kernel: int
    stride: int
    dilation: int
    pad: tuple[int, int]

    @property
    def eff(self) -> int:
        # the dilated window's extent, counted: positions from tap 0 to tap k−1
        return len(range(0, (self.kernel - 1) * self.dilation + 1))

    @property
    def padded(self) -> int:
        return self.pad[0] + self.size + self.pad[1]

    def starts(self) -> list[int]:
        return window_starts(self.padded, self.eff, self.stride)

    def fits(self) -> bool:
        return bool(self.starts())

    def hangs(self) -> bool:
        """PyTorch's ceil_mode on a window larger than the padded input: one window,
        from 0, kept when it hangs past the end by less than a stride."""
        return not self.fits() and self.eff - self.padded < self.stride

    def remainder(self) -> int:
        return remainder(self.padded, self.eff, self.stride)

    def ceil_count(self) -> int:
        """PyTorch's ceil_mode: one more window if the last does not reach the end,
        unless it would start at or after the end of the real input."""
        starts = self.starts()
        count = len(starts)
        if starts[-1] + self.eff < self.padded and count * self.stride < self.pad[0] + self.size:
            count += 1
        return count

    def lost_rows(self) -> int:
        """Real input positions after the last position any window touches."""
        last = max(covered(self.starts(), self.kernel, self.dilation))
        return sum(1 for p in range(self.pad[0], self.pad[0] + self.size) if p > last)

    def never_covered(self) -> int:
        """Real input positions no window touches at all."""
        seen = covered(self.starts(), self.kernel, self.dilation)
        return sum(1 for p in range(self.pad[0], self.pad[0] + self.size) if p not in seen)


# --- strategies ----------------------------------------------------------------------------


@st.composite
def geometry(draw: Any) -> dict[str, Any]:
    return {
        "size": draw(st.integers(1, 30)),
        "kernel": draw(st.integers(1, 6)),
        "stride": draw(st.integers(1, 6)),
        "dilation": draw(st.integers(1, 3)),
        "pad": draw(st.one_of(st.integers(0, 4).map(lambda p: (p, p)),
                              st.tuples(st.integers(0, 4), st.integers(0, 4)))),
    }


@st.composite
def window_layer(draw: Any) -> dict[str, Any]:
    dims = draw(st.integers(1, 3))
    if draw(st.booleans()):  # all axes alike (reported once for "H, W")
        axes = [draw(geometry())] * dims
    else:
        axes = [draw(geometry()) for _ in range(dims)]
    return {
        "kind": draw(st.sampled_from(["conv", "maxpool", "avgpool"])),
        "axes": axes,
        "padding_mode": draw(st.sampled_from(["explicit", "explicit", "same", "full", "valid"])),
        "rounding": draw(st.sampled_from(["exact", "floor", "ceil"])),
        "ceil_mode": draw(st.booleans()),
        "channels": draw(st.integers(1, 3)),
    }


def resolve(case: dict[str, Any]) -> list[Axis]:
    """The per-axis geometry the layer really has, padding modes resolved."""
    out = []
    for g in case["axes"]:
        axis = Axis(g["size"], g["kernel"], g["stride"], g["dilation"], g["pad"])
        mode = case["padding_mode"]
        if mode == "valid":
            pad = (0, 0)
        elif mode == "full":
            pad = (axis.eff - 1, axis.eff - 1)
        elif mode == "same":
            pad = same_padding(axis.size, axis.eff, axis.stride)
        else:
            pad = axis.pad
        out.append(Axis(axis.size, axis.kernel, axis.stride, axis.dilation, pad))
    return out


def build(case: dict[str, Any], axes: list[Axis] | None = None,
          rounding: str | None = None) -> dict[str, Any]:
    """A one-layer spec; with ``axes`` the padding is given explicitly per axis."""
    if axes is None:
        axes = [Axis(g["size"], g["kernel"], g["stride"], g["dilation"], g["pad"])
                for g in case["axes"]]
        padding: Any = case["padding_mode"]
        if padding == "explicit":
            padding = [list(a.pad) for a in axes]
    else:
        padding = [list(a.pad) for a in axes]
    layer: dict[str, Any] = {
        "type": case["kind"],
        "kernel": [a.kernel for a in axes],
        "stride": [a.stride for a in axes],
        "dilation": [a.dilation for a in axes],
        "padding": padding,
    }
    if case["kind"] == "conv":
        layer["filters"] = 2
    else:
        layer["ceil_mode"] = case["ceil_mode"]
    return {"input": [case["channels"], *(a.size for a in axes)],
            "rounding": rounding or case["rounding"], "layers": [layer]}


def flagged_axes(report: convcalc.Report, *, containing: str | None = None) -> set[str]:
    names: set[str] = set()
    for problem in report.problems:
        if containing is None or containing in problem.message:
            names.update(problem.details.get("axes", []))
    return names


# --- properties ----------------------------------------------------------------------------


def test_brute_force_sanity() -> None:
    # BRIEF example 3 by brute force: 7×7, 3×3: stride 1 → 5, 2 → 3, 3 → 2 with 1 left over
    assert len(window_starts(7, 3, 1)) == 5
    assert len(window_starts(7, 3, 2)) == 3
    assert (len(window_starts(7, 3, 3)), remainder(7, 3, 3)) == (2, 1)
    assert same_padding(7, 3, 1) == (1, 1) and same_padding(32, 4, 1) == (1, 2)
    assert Axis(7, 3, 3, 1, (0, 0)).ceil_count() == 3
    assert Axis(6, 2, 2, 1, (0, 1)).ceil_count() == 3  # a 4th would start in the padding


@SETTINGS
@given(window_layer())
def test_output_size_and_problems_match_brute_force(case: dict[str, Any]) -> None:
    axes = resolve(case)
    names = AXIS_NAMES[len(axes)]
    report = convcalc.analyze(build(case))
    row = report.layers[0]
    mode = "ceil" if case["kind"] != "conv" and case["ceil_mode"] else case["rounding"]

    if case["kind"] != "conv" and any(max(a.pad) >= a.eff for a in axes):
        # a pooling window that could see only padding is refused
        assert row.output_shape is None
        (problem,) = report.problems
        assert problem.severity == "error" and "not smaller than the window" in problem.message
        return

    hanging = {n for n, a in zip(names, axes) if mode == "ceil" and a.hangs()}
    too_big = {n for n, a in zip(names, axes) if not a.fits()} - hanging
    ragged = {n for n, a in zip(names, axes) if a.fits() and a.remainder() != 0}
    # the definition of "does not tile" and the brute-force remainder agree
    for a in axes:
        if a.fits():
            assert ((a.padded - a.eff) % a.stride != 0) == (a.remainder() != 0)

    assert flagged_axes(report, containing="is larger than") == too_big | hanging
    assert flagged_axes(report) - too_big - hanging == ragged
    if too_big:
        assert row.output_shape is None and not report.ok
        return

    expected = []
    for a in axes:
        expected.append(1 if a.hangs() and mode == "ceil" else
                        a.ceil_count() if mode == "ceil" else len(a.starts()))
    assert row.output_shape == (2 if case["kind"] == "conv" else case["channels"], *expected)

    for problem in report.problems:
        (axis,) = {axes[names.index(n)] for n in problem.details["axes"]}  # one geometry
        if axis.hangs():
            assert problem.severity == "warning" and problem.details["applied"] == "ceil"
            assert problem.details["overhang"] == axis.eff - axis.padded
            continue
        assert problem.details["fraction"] == str(
            Fraction(axis.padded - axis.eff, axis.stride) + 1)
        if mode == "exact":
            assert problem.severity == "error"
            assert problem.details["applied"] == "floor"
            continue
        assert problem.severity == "warning"
        count = axis.ceil_count() if mode == "ceil" else len(axis.starts())
        if count > len(axis.starts()):
            assert problem.details["applied"] == "ceil"
            last_end = (count - 1) * axis.stride + axis.eff
            assert problem.details["overhang"] == last_end - axis.padded
        else:
            assert problem.details["applied"] == "floor"
            assert problem.details["uncovered"] == axis.lost_rows()
            if axis.dilation == 1 and axis.stride <= axis.kernel:  # no gaps between windows
                assert problem.details["uncovered"] == axis.never_covered()
    assert report.ok == (mode != "exact" or not ragged)


def resolved_padding(report: convcalc.Report) -> tuple[tuple[int, int], ...] | None:
    window = report.layers[0].window
    return None if window is None else window.padding


def error_axes(report: convcalc.Report, names: tuple[str, ...]) -> set[str]:
    return {axis for p in report.errors for axis in p.details.get("axes", names)}


def check_pasted(spec: dict[str, Any], report: convcalc.Report, problem: Any,
                 names: tuple[str, ...]) -> None:
    """Every patch of ``problem``, applied to ``spec``: the problem is gone from its axes
    (a rounding declared on the layer leaves a note), no new error appears on the layer,
    the output along the axes is the promised one, and the other axes keep their
    padding (a padding patch changes the problem's axes only)."""
    axes = set(problem.details["axes"])
    for patch in problem.details["fixes"]:
        fixed = convcalc.analyze(apply_patch(spec, patch))
        left = [p for p in fixed.problems if p.severity != "note"
                and set(p.details.get("axes", names)) & axes]
        assert not left, (patch, [p.message for p in left])
        assert error_axes(fixed, names) <= error_axes(report, names) - axes, patch
        row = fixed.layers[0]
        if row.output_shape is not None:
            for axis in axes:
                assert row.output_shape[1 + names.index(axis)] == patch["output"], patch
        if "option" in patch and patch["option"] == "padding" and row.window is not None:
            before = resolved_padding(report)
            for i, name in enumerate(names):
                if name not in axes:
                    assert row.window.padding[i] == before[i], patch  # type: ignore[index]


def per_axis_value(value: Any, i: int) -> Any:
    return value[i] if isinstance(value, list) else value


@SETTINGS
@given(window_layer())
def test_suggested_fixes_are_the_nearest_sensible_and_paste(case: dict[str, Any]) -> None:
    """The padding, stride and input fixes are the nearest that tile (a stride at most
    the window's extent or the stride it had, each side padded at most e − 1 or as it
    was), and every fix, pasted into the spec, removes its problem."""
    case = {**case, "rounding": "exact", "ceil_mode": False}
    axes = resolve(case)
    if case["kind"] != "conv" and any(max(a.pad) >= a.eff for a in axes):
        return
    names = AXIS_NAMES[len(axes)]
    spec = build(case)
    report = convcalc.analyze(spec)
    for problem in report.problems:
        if "fixes" not in problem.details:
            continue
        idx = [names.index(n) for n in problem.details["axes"]]
        a = axes[idx[0]]
        total = sum(a.pad)
        found: dict[str, list[Any]] = {}
        for patch in problem.details["fixes"]:
            kind = "input" if "input" in patch else patch["option"]
            value = patch["input"][1 + idx[0]] if kind == "input" else patch["value"]
            found.setdefault(kind, []).append(value)
        assert found.pop("rounding") == ["floor", "ceil"]
        if case["padding_mode"] != "same":    # 'same' follows the size and the stride
            below = [v for v in range(a.stride - 1, 0, -1) if tiles(a.size, total, a.eff, v)][:1]
            above = [v for v in range(a.stride + 1, max(a.eff, a.stride) + 1)
                     if tiles(a.size, total, a.eff, v)][:1]
            assert [per_axis_value(v, idx[0]) for v in found.get("stride", [])] == below + above
            below = [v for v in range(a.size - 1, 0, -1) if tiles(v, total, a.eff, a.stride)][:1]
            above = [v for v in range(a.size + 1, a.size + a.stride + 1)
                     if tiles(v, total, a.eff, a.stride)][:1]
            assert found.get("input", []) == below + above
        totals = []
        for value in found.get("padding", []):
            entry = per_axis_value(value, idx[0])
            before, after = (entry, entry) if isinstance(entry, int) else entry
            assert tiles(a.size, before + after, a.eff, a.stride)
            assert before <= max(a.pad[0], a.eff - 1) and after <= max(a.pad[1], a.eff - 1)
            totals.append(before + after)
        nearest = [t for t in range(total - 1, -1, -1) if tiles(a.size, t, a.eff, a.stride)][:1] \
            + [t for t in range(total + 1, total + a.stride + 1)
               if tiles(a.size, t, a.eff, a.stride)][:1]
        assert set(totals) <= set(nearest)
        check_pasted(spec, report, problem, names)


@SETTINGS
@given(st.integers(1, 3).flatmap(lambda dims: st.lists(
    st.fixed_dictionaries({
        "size": st.integers(1, 12), "kernel": st.integers(1, 6), "stride": st.integers(1, 5),
        "dilation": st.integers(1, 3), "pad": st.tuples(st.integers(0, 4), st.integers(0, 4)),
        "output_padding": st.integers(0, 3),
    }), min_size=dims, max_size=dims)))
def test_transposed_size_is_the_scatter_extent(axes: list[dict[str, int]]) -> None:
    layer = {
        "type": "conv_transpose", "filters": 3,
        "kernel": [a["kernel"] for a in axes], "stride": [a["stride"] for a in axes],
        "dilation": [a["dilation"] for a in axes], "padding": [list(a["pad"]) for a in axes],
        "output_padding": [a["output_padding"] for a in axes],
    }
    report = convcalc.analyze({"input": [2, *(a["size"] for a in axes)], "layers": [layer]})
    row = report.layers[0]
    expected = []
    for a in axes:
        # every input i sends tap t to uncropped output i·s + t·d
        reached = {i * a["stride"] + t * a["dilation"]
                   for i in range(a["size"]) for t in range(a["kernel"])}
        uncropped = max(reached) + 1 + a["output_padding"]  # output_padding extends the end
        expected.append(uncropped - a["pad"][0] - a["pad"][1])
    invalid_op = any(a["output_padding"] >= max(a["stride"], a["dilation"]) for a in axes)
    if invalid_op or any(size < 1 for size in expected):
        assert row.output_shape is None and not report.ok
        return
    assert row.output_shape == (3, *expected)
    assert report.ok and not report.problems


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 3))
def test_same_at_stride_one_keeps_the_size(size: int, kernel: int, dilation: int) -> None:
    """BRIEF: 'same' pads so that output = input at stride 1 (even kernels asymmetrically)."""
    report = convcalc.analyze({"input": [1, size], "layers": [
        {"type": "conv", "filters": 1, "kernel": kernel, "dilation": dilation,
         "padding": "same"}]})
    assert report.layers[0].output_shape == (1, size)
    assert not report.problems
    # the field of output 0 starts pad_before = (e − 1) // 2 before the input
    eff = (kernel - 1) * dilation + 1
    assert report.layers[0].receptive_field.axes[0].padding == (eff - 1) // 2


def test_lost_rows_never_exceed_the_input() -> None:
    """A 1-long input padded 2 a side, 1-wide kernel, stride 5: padded length 5, one
    window at 0 (the next would start at 5); the single real position (padded index 2)
    is never covered: 1 lost row, not 2."""
    report = convcalc.analyze({"input": [1, 1], "rounding": "floor", "layers": [
        {"type": "conv", "filters": 1, "kernel": 1, "stride": 5, "padding": 2}]})
    (warning,) = report.problems
    assert report.layers[0].output_shape == (1, 1)
    assert warning.details["uncovered"] == 1
    assert "the last 1 input position is never covered" in warning.message


def test_bug_pool_padding_fix_is_refused_by_the_pool_itself() -> None:
    """A 2-wide pool on a 1-long input with 'full' padding (1 a side): (1 + 2 − 2)/2 + 1
    = 3/2.  Padding totals that tile: 1 and 3; 3 would pad a side by 2, but a pool
    refuses a padding as large as its window (2), so only 1 — the end's padding dropped,
    [[1, 0]] in 1-D syntax — is a usable fix."""
    spec = {"input": [1, 1], "layers": [
        {"type": "maxpool", "kernel": 2, "stride": 2, "padding": "full"}]}
    report = convcalc.analyze(spec)
    (problem,) = report.problems
    assert problem.details["fraction"] == "3/2"
    paddings = [p for p in problem.details["fixes"] if p.get("option") == "padding"]
    assert paddings == [{"layer": "maxpool1", "option": "padding", "value": [[1, 0]],
                         "path": ["layers", 0, "padding"], "output": 1}]
    # and the suggested fix really is accepted:
    fixed = convcalc.analyze(apply_patch(spec, paddings[0]))
    assert fixed.ok and fixed.layers[0].output_shape == (1, 1)
