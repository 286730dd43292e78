"""Fixes for a problem, as patches written in the spec's own syntax.

A *patch* changes one thing, so that a tool (or a person, pasting) can apply it:

- a layer's option: ``{"layer": name, "option": key, "value": value, "path": [...]}``,
  the value written as the spec writes it for the layer's number of axes
  (``padding: [[0, 1], [0, 1]]`` in 2-D, ``[[0, 1]]`` in 1-D, ``[[0, 1], 1]`` when one
  axis changes), ``path`` the place in the file where it goes (inside a block: the
  block's layer, so every instance of it changes);
- the network input: ``{"input": [C, *sizes]}``.

A window fix also says the layer's output size it gives along the problem's axes
(``output``).  Rules propose patches relative to their layer (:func:`window_fixes`);
the analysis locates them (:func:`locate`: the layer's name and where its option is
written, and a size of the layer's own input turned into the network input that gives
it) and writes them into the message with :func:`describe`, so the text and the JSON
say the same.  :func:`apply_patch` applies one to spec data.

For a window that does not tile, ``(n + P − e) / s + 1`` is whole exactly when ``s``
divides ``n + P − e``.  The fixes are the nearest sensible values, below and above:

- **padding**: the nearest totals that tile, the change made at the end first (so the
  first window keeps its place), each side at most ``e − 1`` (more pads a window
  that sees nothing but padding);
- **stride**: the nearest that tile, at most ``max(e, s)`` (a larger stride skips
  input between windows);
- **input**: the nearest sizes that tile;
- **rounding**: ``floor`` or ``ceil`` on the layer (declared there: a note).

Every candidate is checked by resolving the layer's window again with it (``same``
padding follows the size and the stride), so the promised output is the output.

>>> from convcalc.axes import resolve_window
>>> window = resolve_window(3, 3, 1, 0, (7, 7))         # 3×3/3 on 7×7: 7/3 windows
>>> patches = locate(window_fixes(window, (7, 7), (0, 1)), layer="conv1",
...                  origin=("layers", 0), network=[1, 7, 7], reads_input=True, prober=None)
>>> describe(patches)
'padding: 1 (→ 3); stride: 2 (→ 3); input: [1, 6, 6] (→ 2) or [1, 9, 9] (→ 3); rounding: floor (→ 2) or ceil (→ 3)'
>>> patches[0]
{'layer': 'conv1', 'option': 'padding', 'value': 1, 'path': ['layers', 0, 'padding'], 'output': 3}
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Iterable, Sequence

from . import geometry
from .axes import Pads, Window, resolve_padding

Patch = dict[str, Any]

#: Candidates scanned one by one at most this far from the current value (a stride or
#: an input size); beyond, only the arithmetic's nearest are tried.
_SCAN = 512
#: Analyses one report may spend on its fixes (network inputs, patches of shared
#: layers): this many layers' worth, at least 50, at most 400.
PROBE_BUDGET = 40_000


# --- values as the spec writes them ------------------------------------------------------


def spec_value(values: Sequence[int]) -> int | list[int]:
    """Per-axis ints as the spec writes them: one int when every axis agrees.

    >>> spec_value((2, 2)), spec_value((1, 2)), spec_value((3,))
    (2, [1, 2], 3)
    """
    return values[0] if len(set(values)) == 1 else list(values)


def spec_padding(pads: Pads) -> int | list[Any]:
    """Per-axis ``(before, after)`` pairs as the spec writes them: one int when every
    axis is padded alike on both sides, else one entry per axis (an int, or
    ``[before, after]``) — never a bare pair, which would mean one int per axis.

    >>> spec_padding(((1, 1), (1, 1))), spec_padding(((0, 1), (0, 1)))
    (1, [[0, 1], [0, 1]])
    >>> spec_padding(((0, 1), (1, 1))), spec_padding(((0, 1),)), spec_padding(((2, 2), (1, 1)))
    ([[0, 1], 1], [[0, 1]], [2, 1])
    """
    if len(set(pads)) == 1 and pads[0][0] == pads[0][1]:
        return pads[0][0]
    return [before if before == after else [before, after] for before, after in pads]


def spec_text(value: Any) -> str:
    """A value as YAML (and JSON) writes it: ``true``, ``floor``, ``[[0, 1], 1]``.

    >>> spec_text(True), spec_text("floor"), spec_text([[0, 1], 1])
    ('true', 'floor', '[[0, 1], 1]')
    """
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def describe(patches: Iterable[Patch]) -> str:
    """The patches in one line, grouped by what they change:
    ``padding: [[1, 0], [1, 0]] (→ 28); input: [3, 55, 55] (→ 28) or [3, 57, 57] (→ 29)``."""
    groups: dict[str, list[str]] = {}
    for patch in patches:
        key = "input" if "input" in patch else patch["option"]
        text = spec_text(patch["input"] if "input" in patch else patch["value"])
        if "output" in patch:
            text += f" (→ {patch['output']})"
        groups.setdefault(key, []).append(text)
    return "; ".join(f"{key}: {' or '.join(texts)}" for key, texts in groups.items())


# --- window fixes --------------------------------------------------------------------------


def _split(pads: tuple[int, int], total: int, extent: int) -> tuple[int, int] | None:
    """``pads`` changed to ``total``: shrunk at the end first, grown on both sides (the
    odd one at the end); no side grows past ``e − 1`` (``None`` when it would have to).

    >>> _split((1, 1), 1, 3), _split((0, 0), 2, 3), _split((0, 1), 2, 2), _split((0, 0), 3, 2)
    ((1, 0), (1, 1), (1, 1), None)
    """
    before, after = pads
    if total < before + after:
        cut = before + after - total
        return before - max(0, cut - after), max(0, after - cut)
    extra = total - before - after
    new_before, new_after = before + extra // 2, after + extra - extra // 2
    cap_after, cap_before = max(after, extent - 1), max(before, extent - 1)
    if new_after > cap_after:
        new_before, new_after = new_before + new_after - cap_after, cap_after
    return None if new_before > cap_before else (new_before, new_after)


def _mode_allows(mode: str, pads: Pads, sizes: Sequence[int]) -> bool:
    """Whether ``padding_mode`` can pad so: reflect pads less than the size, circular at
    most the size (:func:`convcalc.kinds.resize.check_mode_padding`)."""
    for n, (before, after) in zip(sizes, pads):
        widest = max(before, after)
        if (mode == "reflect" and widest >= n) or (mode == "circular" and widest > n):
            return False
    return True


class _Layer:
    """What checking a window fix needs to know of the layer: its padding as written
    (``None``: the window's own pairs), its padding mode, and whether it is a pool."""

    def __init__(self, window: Window, sizes: Sequence[int], padding: Any, mode: str,
                 is_pool: bool):
        self.window, self.mode, self.is_pool = window, mode, is_pool
        self.padding = window.padding if padding is None else padding
        self.tiling = {i for i in range(len(sizes)) if self._tiles(window, sizes, i)}

    @staticmethod
    def _tiles(window: Window, sizes: Sequence[int], i: int) -> bool:
        span = sizes[i] + sum(window.padding[i]) - window.extent[i]
        return span >= 0 and span % window.stride[i] == 0

    def resolved(self, stride: Sequence[int], sizes: Sequence[int]) -> Window:
        """The window with ``stride``, on ``sizes``, padded as the layer's option says."""
        w = self.window
        return Window(w.kernel, tuple(stride), w.dilation,
                      resolve_padding(self.padding, tuple(sizes), w.extent, tuple(stride)))

    def output(self, window: Window, sizes: Sequence[int], indices: Sequence[int]) -> int | None:
        """The output along ``indices`` when ``window`` on ``sizes`` tiles there, keeps
        tiling wherever it did, and is a padding the layer accepts; else ``None``."""
        if not all(self._tiles(window, sizes, i) for i in {*indices, *self.tiling}):
            return None
        if self.is_pool and any(max(p) >= e for p, e in zip(window.padding, window.extent)):
            return None
        if not _mode_allows(self.mode, window.padding, sizes):
            return None
        outs = {(sizes[i] + sum(window.padding[i]) - window.extent[i]) // window.stride[i] + 1
                for i in indices}
        return outs.pop() if len(outs) == 1 else None


def _nearest(valid: Callable[[int], Any], start: int, lowest: int, highest: int | None,
             guesses: Sequence[int]) -> list[tuple[int, Any]]:
    """The nearest value below and above ``start`` (within ``lowest`` … ``highest``)
    for which ``valid`` gives something: every value within :data:`_SCAN` steps, then
    the arithmetic's ``guesses`` further away (huge strides and sizes)."""
    found = []
    for direction in (-1, 1):
        end = lowest if direction < 0 else highest
        near = start + direction * _SCAN
        near = near if end is None else (max(near, end) if direction < 0 else min(near, end))
        further = sorted((g for g in guesses if (g - near) * direction > 0
                          and (end is None or (end - g) * direction >= 0)),
                         key=lambda g: abs(g - start))
        for value in [*range(start + direction, near + direction, direction), *further]:
            result = valid(value)
            if result is not None:
                found.append((value, result))
                break
    return found


def window_fixes(window: Window, sizes: Sequence[int], indices: Sequence[int], *,
                 padding: Any = None, padding_mode: str = "zeros", is_pool: bool = False
                 ) -> list[Patch]:
    """The nearest fixes for axes ``indices`` of ``window`` on spatial ``sizes``, which
    share one geometry and do not tile: patches of the layer's ``padding``, ``stride``
    and ``rounding``, and ``{"layer_input": {axis: size}}`` for its input (which
    :func:`locate` turns into the network input).  ``padding`` is the option as
    written (``same`` follows the stride and the size)."""
    layer = _Layer(window, sizes, padding, padding_mode, is_pool)
    i = indices[0]
    n, (before, after), e, s = sizes[i], window.padding[i], window.extent[i], window.stride[i]
    patches: list[Patch] = []

    rest = (n + before + after - e) % s
    for total in (before + after - rest, before + after + s - rest):
        pair = _split((before, after), total, e) if total >= 0 else None
        if pair is None:
            continue
        pads = tuple(pair if a in indices else p for a, p in enumerate(window.padding))
        out = layer.output(Window(window.kernel, window.stride, window.dilation, pads),
                           sizes, indices)
        if out is not None:
            patches.append({"option": "padding", "value": spec_padding(pads), "output": out})

    def with_stride(value: int) -> int | None:
        stride = [value if a in indices else t for a, t in enumerate(window.stride)]
        return layer.output(layer.resolved(stride, sizes), sizes, indices)

    span = n + before + after - e
    divisors = [d for d in (span // q for q in range(1, 64) if q <= span) if span % d == 0]
    for value, out in _nearest(with_stride, s, 1, max(e, s), divisors):
        stride = [value if a in indices else t for a, t in enumerate(window.stride)]
        patches.append({"option": "stride", "value": spec_value(stride), "output": out})

    def with_size(value: int) -> int | None:
        new = [value if a in indices else m for a, m in enumerate(sizes)]
        return layer.output(layer.resolved(window.stride, new), new, indices)

    for value, out in _nearest(with_size, n, 1, None, (n - rest, n + s - rest)):
        patches.append({"layer_input": {a: value for a in indices}, "output": out})

    floor = span // s + 1
    ceil = geometry.ceil_positions(n, before, after, e, s)
    patches.append({"option": "rounding", "value": "floor", "output": floor})
    patches.append({"option": "rounding", "value": "ceil", "output": ceil})
    return patches


# --- locating patches in the spec ----------------------------------------------------------


class Prober:
    """Answers what a fix needs of the whole network by analysing the spec again (shapes
    only): the network input that gives a layer an input size (:meth:`network_input`),
    and whether a patch of a layer written once for several (a block's, a repeat's)
    still fixes it (:meth:`holds`).  Within a budget of :data:`PROBE_BUDGET` layers
    analysed (at least 50 analyses, at most 400); a fix that needs more is left out."""

    #: Sizes tried past the nearest one that gives a layer its size, for one that makes
    #: fewer errors elsewhere (the layers before it tiling too).
    ALTERNATIVES = 16

    def __init__(self, spec: Any):
        self.spec = spec
        self.left = min(400, max(50, PROBE_BUDGET // max(1, len(spec.layers))))
        self._reports: dict[tuple[Any, ...], Any] = {}

    def report(self, shape: Sequence[Any], spec: Any = None) -> Any:
        """The report (shapes only) of the spec on input ``shape`` (cached)."""
        from .analysis import analyze

        key = tuple(shape)
        if spec is None and key in self._reports:
            return self._reports[key]
        if self.left <= 0:
            raise _OutOfBudget
        self.left -= 1
        report = analyze((spec or self.spec).with_input(list(shape)), fields=False)
        if spec is None:
            self._reports[key] = report
        return report

    def _shape(self, axes: Sequence[int], n: int, base: Sequence[Any]) -> list[Any]:
        shape = list(base)
        for a in axes:
            shape[1 + a] = n
        return shape

    def input_size(self, layer: str, axes: Sequence[int], n: int,
                   base: Sequence[Any] | None = None) -> int | None:
        """Layer ``layer``'s input size along ``axes[0]`` when the network input is ``n``
        along every axis of ``axes`` (``None``: not computed there)."""
        row = self.report(self._shape(axes, n, base or self.spec.input)).layer(layer)
        return None if row.input_shape is None else row.input_shape[1 + axes[0]]

    def network_input(self, layer: str, wanted: dict[int, int]) -> list[int] | None:
        """The network input nearest the spec's that gives ``layer`` the input sizes
        ``wanted`` (axis → size), assuming its input grows with the network's — of the
        sizes that do, the nearest that makes the fewest errors — checked by one more
        analysis (``None`` when none is found)."""
        shape = list(self.spec.input)
        groups: dict[tuple[int, int], list[int]] = {}
        for axis, size in wanted.items():
            groups.setdefault((shape[1 + axis], size), []).append(axis)
        try:
            for (start, size), axes in groups.items():
                def size_at(m: int, axes: list[int] = axes) -> int | None:
                    return self.input_size(layer, axes, m, shape)

                found = _search(size_at, start, size)
                if found is None:
                    return None
                found = self._fewest_errors(size_at, axes, shape, found, 1 if found > start
                                            else -1, size)
                for axis in axes:
                    shape[1 + axis] = found
            row = self.report(shape).layer(layer)
        except _OutOfBudget:
            return None
        if row.input_shape is None or any(row.input_shape[1 + a] != m for a, m in wanted.items()):
            return None
        return shape

    def _fewest_errors(self, size_at: Callable[[int], int | None], axes: Sequence[int],
                       base: Sequence[Any], found: int, direction: int, size: int) -> int:
        """Of ``found`` and the sizes past it (going ``direction``) that give the same
        ``size``, the first with the fewest errors."""
        def errors(m: int) -> int:
            return len(self.report(self._shape(axes, m, base)).errors)

        best, fewest = found, errors(found)
        m = found
        for _ in range(self.ALTERNATIVES):
            if fewest == 0:
                break
            m += direction
            if m < 1 or size_at(m) != size:
                break
            if errors(m) < fewest:
                best, fewest = m, errors(m)
        return best

    def holds(self, layer: str, origin: Sequence[Any], patch: Patch, axes: Sequence[str]) -> bool:
        """Whether an option ``patch`` of ``layer``, written at ``origin`` (and so for
        every layer written there), leaves ``layer`` without an error or warning on
        ``axes``: a patch of a block changes its other instances too, and so maybe this
        layer's input."""
        origins = self.spec.origins()
        layers = []
        for index, each in enumerate(self.spec.layers):
            if tuple(origins[index]) == tuple(origin):
                each = type(each).model_validate({**each.model_dump(),
                                                  patch["option"]: patch["value"]})
            layers.append(each)
        try:
            report = self.report(self.spec.input, self.spec.model_copy(update={"layers": layers}))
        except _OutOfBudget:
            return False
        return not any(p.layer == layer and p.severity != "note" and
                       set(p.details.get("axes", ())) & set(axes) for p in report.problems)


class _OutOfBudget(Exception):
    pass


def _search(size_at: Callable[[int], int | None], start: int, wanted: int) -> int | None:
    """The network size nearest ``start`` at which ``size_at`` (non-decreasing; ``None``
    counts as too small) is ``wanted``: the smallest such above, or the largest below."""
    current = size_at(start)
    if current is None or current == wanted:
        return start if current == wanted else None
    up = wanted > current

    def reached(m: int) -> bool:      # past the wanted size, going the search's way
        value = size_at(m)
        return value is not None and value >= wanted if up else value is None or value <= wanted

    near, step = start, 1
    while True:
        far = start + step if up else max(1, start - step)
        if reached(far):
            break
        if far == 1 or step > 8 * start + 64:
            return None
        near, step = far, 2 * step
    while abs(far - near) > 1:        # near has not reached, far has
        middle = (near + far) // 2
        if reached(middle):
            far = middle
        else:
            near = middle
    return far if size_at(far) == wanted else None


def locate(patches: list[Patch], *, layer: str, origin: Sequence[Any],
           network: Sequence[Any], reads_input: bool, prober: Prober | None,
           shared: bool = False, axes: Sequence[str] = ()) -> list[Patch]:
    """A rule's patches made applicable: each option patch names the layer and where the
    option is written (``path``); a layer-input patch becomes the ``network`` input that
    gives it — directly when the layer reads the network input, else found by the
    ``prober`` (dropped without one, or when none is found).  A patch of a layer
    written once for several (``shared``: in a block used more than once, or repeated)
    is kept only if the ``prober`` finds that it fixes the layer's ``axes`` still."""
    out: list[Patch] = []
    for patch in patches:
        rest = {k: v for k, v in patch.items() if k not in ("option", "value", "layer_input")}
        if "layer_input" not in patch:
            if shared and axes and (prober is None or not prober.holds(layer, origin, patch,
                                                                       axes)):
                continue
            out.append({"layer": layer, "option": patch["option"], "value": patch["value"],
                        "path": [*origin, patch["option"]], **rest})
            continue
        wanted = patch["layer_input"]
        shape: list[Any] | None = None
        if reads_input:
            shape = list(network)
            for axis, size in wanted.items():
                shape[1 + axis] = size
        elif prober is not None:
            shape = prober.network_input(layer, wanted)
        if shape is not None:
            out.append({"input": shape, **rest})
    return out


# --- applying a patch -----------------------------------------------------------------------


def apply_patch(data: dict[str, Any], patch: Patch) -> dict[str, Any]:
    """A copy of spec ``data`` (as loaded from YAML or JSON) with ``patch`` applied.

    >>> data = {"input": [1, 7, 7], "layers": [{"type": "conv", "filters": 1, "kernel": 3}]}
    >>> apply_patch(data, {"layer": "conv1", "option": "padding", "value": 1,
    ...                    "path": ["layers", 0, "padding"]})["layers"]
    [{'type': 'conv', 'filters': 1, 'kernel': 3, 'padding': 1}]
    >>> apply_patch(data, {"input": [1, 6, 6]})["input"]
    [1, 6, 6]
    """
    out = copy.deepcopy(data)
    if "input" in patch:
        out["input"] = list(patch["input"])
        return out
    *where, key = patch["path"]
    target: Any = out
    for step in where[:-1]:
        target = target[step]
    last = where[-1]
    if isinstance(target[last], str):          # "- maxpool" is {type: maxpool}
        target[last] = {"type": target[last]}
    target[last][key] = copy.deepcopy(patch["value"])
    return out
