"""Which input sizes does a network accept?  The exact answer, per spatial axis.

:func:`valid_sizes` returns, for every spatial axis of the input, the exact set of
sizes ``n ≥ 1`` at which the network analyses without an error (under the spec's
rounding: every layer's output ≥ 1; under ``exact`` every window tiles; every merge's
inputs agree; every crop fits …), written as residues modulo a period from a threshold
on, plus the exceptions below it (:class:`AxisSizes`).

>>> import convcalc
>>> spec = convcalc.validate({"input": [1, None], "layers": [
...     {"type": "conv", "filters": 2, "kernel": 3, "stride": 2},
...     {"type": "conv", "filters": 2, "kernel": 3, "stride": 2}]})
>>> (axis,) = valid_sizes(spec)
>>> axis.describe()
'L = 4k + 3, k ≥ 1'
>>> axis.smallest, axis.contains(11), axis.contains(12), axis.nearest(12)
(7, True, False, (11, 15))
>>> axis.output(15), axis.output_formula()
(3, 'L_out = (L − 3)/4')

Why a period and a threshold always exist.  Along one axis every kind maps its input
size ``n`` to an output size of the form ``floor((a·n + b)/c)`` (a window, a transposed
window, a resize by a rational factor, a pad or crop by a constant) or to a constant (a
fixed-size resize or crop, an adaptive pool).  Composed over the network, every layer's
size is, for ``n = r + M·t`` in a residue class ``r`` modulo a period ``M`` (the least
common multiple of the denominators of the layers' overall scale factors), an affine
function ``α·t + β`` of ``t`` with integer coefficients — exactly, for every ``t``.
Every condition a layer puts on its input is then, within a class, either a
divisibility that does not depend on ``t`` (a window tiles or not), an inequality
between two such affine functions or one and a constant (an output is at least 1, a
crop fits, a reflect padding is smaller than its input), or an equality between two of
them (a merge).  So within a class the valid ``t`` are an interval ``[t₀, ∞)`` (all
conditions eventually hold), or a bounded set (some condition eventually fails): the
valid sizes are periodic from a threshold on, with finitely many exceptions below it.

How it is computed, exactly and without sampling.  The scale factors are read off two
analyses at very large sizes, which gives ``M``; then, per class, two more analyses at
very large ``t`` give every layer's ``α`` and ``β`` and whether the class is valid in the
end.  A class that is valid in the end is valid from ``t₀`` on, and ``t₀`` is found by a
search guided by the affine sizes (every output at least 1); a class that is invalid in
the end because a window does not tile is invalid everywhere; any other class is
analysed at every ``t`` up to the bound the affine sizes give for a condition between
two of them (``|β| + |β'| + c`` for integer slopes that differ).  The answer is checked
against analysing every size from 1 to 2,048 in the tests.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import gcd, lcm
from typing import Any, Callable, Iterable, Sequence, cast

from .analysis import analyze
from .axes import axis_names
from .report import Report
from .spec import Spec

#: Sizes at which a network is analysed to read its scale factors (huge, so that every
#: condition that holds in the end already holds there).
HUGE = 1 << 40
#: Periods above this are not followed (a resize by 0.1 in floating point has one of 2**55).
MAX_PERIOD = 1 << 16
#: At most this many sizes of one class are analysed one by one (a bounded class).
MAX_SCAN = 1 << 14


class SizesTooComplex(ValueError):
    """The valid sizes have a period or a bound larger than this module follows."""


@dataclass(frozen=True)
class AxisSizes:
    """The exact set of valid sizes along one spatial axis of the input.

    For ``n ≥ threshold``, ``n`` is valid exactly when ``n % period`` is in
    ``residues``; below the threshold the valid sizes are ``exceptions``.  A finite set
    has ``period`` 0 and is all exceptions.  ``assumed`` gives the sizes of the other
    spatial axes the answer assumes; ``reason`` says why no size works when none does.
    """

    #: the axis' name (``H``, ``W``, ``D``, or ``L`` in 1-D)
    axis: str
    #: its position among the spatial axes (0 first)
    index: int
    #: from ``threshold`` on, validity repeats with this period (0: a finite set)
    period: int
    #: the valid remainders of ``n`` modulo ``period``
    residues: tuple[int, ...]
    #: the size from which the periodic rule holds
    threshold: int
    #: the valid sizes below ``threshold``
    exceptions: tuple[int, ...]
    #: the other spatial axes' sizes the answer assumes, by name
    assumed: dict[str, int] = field(default_factory=dict)
    #: why no size works, when none does
    reason: str | None = None
    #: per residue modulo ``output_period``: the output's size along this axis as
    #: ``(slope, intercept)`` of ``n`` (Fractions), or None when the output is flat
    outputs: dict[int, tuple[Fraction, Fraction]] | None = None
    #: the period (of ``n``) of the output's size formulas in ``outputs``
    output_period: int = 1
    #: the output's size along this axis at each exception
    exception_outputs: dict[int, int | None] = field(default_factory=dict)
    #: for a single residue: ``(offset, k0, layer)`` — from the threshold on the valid
    #: sizes are ``period·k + offset`` for ``k ≥ k0``, where ``k`` is the size along this
    #: axis of ``layer`` (the last layer that grows by one per period)
    form: tuple[int, int, str] | None = None

    def contains(self, n: int) -> bool:
        """Whether an input of size ``n`` along this axis is valid."""
        if n < 1:
            return False
        if n < self.threshold or not self.period:
            return n in self.exceptions
        return n % self.period in self.residues

    @property
    def empty(self) -> bool:
        return not self.exceptions and not self.residues

    @property
    def smallest(self) -> int | None:
        """The smallest valid size (``None`` if none is)."""
        if self.exceptions:
            return self.exceptions[0]
        return self._next_periodic(self.threshold)

    def _next_periodic(self, start: int) -> int | None:
        """The smallest valid size ≥ ``start`` (≥ the threshold) of the periodic part."""
        if not self.residues:
            return None
        base = start - start % self.period
        for turn in (0, 1):
            for r in self.residues:
                n = base + turn * self.period + r
                if n >= start:
                    return n
        return None  # pragma: no cover - a residue always comes round

    def _previous_periodic(self, end: int) -> int | None:
        """The largest valid size ≤ ``end`` of the periodic part (≥ the threshold)."""
        if not self.residues or end < self.threshold:
            return None
        base = end - end % self.period
        for turn in (0, 1):
            for r in reversed(self.residues):
                n = base - turn * self.period + r
                if self.threshold <= n <= end:
                    return n
        return None

    def nearest(self, n: int) -> tuple[int | None, int | None]:
        """The valid sizes just below and just above ``n`` (``None`` where there is none)."""
        below = self._previous_periodic(n - 1)
        if below is None:
            index = bisect.bisect_left(self.exceptions, n)
            below = self.exceptions[index - 1] if index else None
        above_exception = next((m for m in self.exceptions if m > n), None)
        above = above_exception if above_exception is not None else \
            self._next_periodic(max(n + 1, self.threshold))
        return below, above

    def output(self, n: int) -> int | None:
        """The network output's size along this axis for a valid input size ``n``
        (``None`` when ``n`` is not valid or the output has no such axis)."""
        if not self.contains(n):
            return None
        if n in self.exception_outputs:
            return self.exception_outputs[n]
        if self.outputs is None:
            return None
        slope, intercept = self.outputs[n % self.output_period]
        return int(slope * n + intercept)

    def output_formula(self) -> str | None:
        """The output size as a formula of the input size (one per residue class when
        they differ), e.g. ``"H_out = H − 184"``."""
        if not self.outputs:
            return None
        texts = dict.fromkeys(_affine_text(self.axis, *affine) for affine in self.outputs.values())
        return "; ".join(texts)

    def describe(self) -> str:
        """One line, e.g. ``"H = 16k + 124, k ≥ 4"``, ``"every H ≥ 32"``, ``"{16, 17}"``."""
        name = self.axis
        if self.empty:
            return f"no {name} works" + (f": {self.reason}" if self.reason else "")
        parts = []
        if self.residues:
            parts.append(_periodic_text(name, self.period, self.residues, self.threshold,
                                        self.form))
        if self.exceptions:
            shown = ", ".join(map(str, self.exceptions[:12]))
            more = f", … ({len(self.exceptions)} in all)" if len(self.exceptions) > 12 else ""
            prefix = "also " if self.residues else ""
            parts.append(f"{prefix}{name} ∈ {{{shown}{more}}}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "axis": self.axis, "period": self.period, "residues": list(self.residues),
            "threshold": self.threshold, "exceptions": list(self.exceptions),
            "smallest": self.smallest, "description": self.describe(),
            "output": self.output_formula(), "assumed": dict(self.assumed),
            "reason": self.reason,
        }


def _affine_text(name: str, slope: Fraction, intercept: Fraction) -> str:
    """``H_out = H − 184``, ``H_out = (H − 3)/4``, ``H_out = 2·H``, ``H_out = 7``."""
    out = f"{name}_out = "
    if slope == 0:
        return out + str(intercept)
    # slope·n + intercept = (p·n + q)/d with integers
    d = lcm(slope.denominator, intercept.denominator)
    p, q = int(slope * d), int(intercept * d)
    common = gcd(p, gcd(q, d)) if q else gcd(p, d)
    p, q, d = p // common, q // common, d // common
    if d == 1:
        head = name if p == 1 else f"{p}·{name}"
        return out + head + (f" + {q}" if q > 0 else f" − {-q}" if q < 0 else "")
    if q % p == 0:          # (n + q/p)·p/d
        shift = q // p
        inner = name + (f" + {shift}" if shift > 0 else f" − {-shift}" if shift < 0 else "")
        scale = "" if p == 1 else f"{p}·"
        return out + (f"{scale}({inner})/{d}" if shift else f"{scale}{name}/{d}")
    return out + f"({p}·{name} + {q})/{d}".replace("+ -", "− ")


def _periodic_text(name: str, period: int, residues: tuple[int, ...], threshold: int,
                   form: tuple[int, int, str] | None = None) -> str:
    if period == 1 or len(residues) == period:
        return f"every {name} ≥ {max(threshold, 1)}"
    if len(residues) == 1:
        if form is not None:
            offset, k0, _ = form
        else:
            offset = residues[0]
            first = threshold + (offset - threshold) % period
            k0 = (first - offset) // period
        text = f"{period}k" + (f" + {offset}" if offset > 0 else f" − {-offset}" if offset else "")
        return f"{name} = {text}, k ≥ {k0}"
    listed = ", ".join(map(str, residues))
    return f"{name} mod {period} ∈ {{{listed}}}, {name} ≥ {threshold}"


def _natural_form(probe: "_Probe", period: int, residue: int, threshold: int
                  ) -> tuple[int, int, str] | None:
    """Where the valid sizes are ``period·k + offset``: take ``k`` to be the size of the
    last layer that grows by exactly one per period (U-Net: its bottleneck, so
    ``16k + 124, k ≥ 4``), and ``k0`` its size at the first valid size from the
    threshold on."""
    first = threshold + (residue - threshold) % period
    sizes = [probe.sizes(first + i * period) for i in range(3)]
    names = [row.name for row in probe.report(first).layers]
    for index in range(len(sizes[0]) - 1, -1, -1):
        a, b, c = (column[index] for column in sizes)
        if a is not None and b is not None and c is not None and b - a == 1 and c - b == 1:
            return first - period * a, a, names[index]
    return None


# --- evaluation -------------------------------------------------------------------------


class _Probe:
    """Analyses of the spec at sizes ``n`` of one axis: ``make(n)`` gives the spec at
    ``n``, and layer sizes are read along spatial axis ``index``."""

    def __init__(self, make: Callable[[int], Spec], index: int, dims: int):
        self.make, self.index, self.dims = make, index, dims
        self.cache: dict[int, Report] = {}

    def report(self, n: int) -> Report:
        if n not in self.cache:
            self.cache[n] = analyze(self.make(n), fields=False)
        return self.cache[n]

    def valid(self, n: int) -> bool:
        return n >= 1 and self.report(n).ok

    def sizes(self, n: int) -> list[int | None]:
        """Every layer's output size along the axis (``None``: not computed, or the
        output has no such axis), in file order."""
        rank = self.dims + 1
        return [row.output_shape[1 + self.index]
                if row.output_shape is not None and len(row.output_shape) == rank else None
                for row in self.report(n).layers]

    def shapes(self, n: int) -> list[tuple[int | None, ...] | None]:
        """Every layer's output shape (padded with ``None`` to four entries)."""
        return [None if row.output_shape is None else
                tuple(row.output_shape) + (None,) * (4 - len(row.output_shape))
                for row in self.report(n).layers]


def _period(probe: _Probe) -> int:
    """The least common multiple of the denominators of every layer's scale factor
    along the axis, read off analyses at huge sizes."""
    samples = [HUGE, 2 * HUGE, 3 * HUGE + 1, 5 * HUGE + 2]
    # every entry of every shape: the probed axis, others that follow it (a square probe
    # sets them all), and flat widths that grow with it — those that grow linearly (a
    # flat width of a square probe grows as its square, and follows the others)
    sizes = [[m for shape in probe.shapes(n) for m in (shape or (None,) * 4)[:4]]
             for n in samples]
    period = 1
    for column in zip(*sizes):
        points = [(n, m) for n, m in zip(samples, column) if m is not None]
        slopes = {Fraction(m2 - m1, n2 - n1).limit_denominator(MAX_PERIOD)
                  for (n1, m1), (n2, m2) in zip(points, points[1:])}
        if len(slopes) == 1:
            period = lcm(period, slopes.pop().denominator)
    if period > MAX_PERIOD:
        raise SizesTooComplex(f"the sizes repeat only every {period} (more than {MAX_PERIOD})")
    return period


def _fails_only_by_tiling(report: Report) -> bool:
    """Whether every error is a window that does not tile (no layer left uncomputed):
    within a residue class that does not change with the size."""
    return all("fraction" in p.details for p in report.errors) and \
        all(row.output_shape is not None for row in report.layers)


def _first_valid(valid: Callable[[int], bool], estimate: int, limit: int) -> int:
    """The smallest ``t`` in ``[0, limit]`` with ``valid(t)``, for a ``valid`` that is
    monotone (false, then true) and true at ``limit``; ``estimate`` is a first guess."""
    t = min(max(estimate, 0), limit)
    if valid(t):
        low, high, step = t - 1, t, 1
        while low >= 0 and valid(low):      # gallop down
            high, step = low, step * 2
            low = max(high - step, -1) if high - step >= 0 else -1
            if low < 0:
                break
    else:
        low, high, step = t, limit, 1
        while low + step < high and not valid(low + step):   # gallop up
            low, step = low + step, step * 2
        high = min(low + step, high)
    if low >= 0 and valid(low):
        high = low
        low = -1
    while high - low > 1:
        middle = (low + high) // 2
        if valid(middle):
            high = middle
        else:
            low = middle
    return high


@dataclass
class _Class:
    """One residue class ``r`` modulo the period: valid from ``start`` on, or valid at
    finitely many ``points``; ``output`` is the output size's (slope, intercept) in n."""

    r: int
    start: int | None = None
    points: tuple[int, ...] = ()
    output: tuple[Fraction, Fraction] | None = None


def _solve_class(probe: _Probe, r: int, period: int) -> _Class:
    t1 = HUGE // period
    n1, n2 = r + period * t1, r + period * (t1 + 1)
    first, second = probe.sizes(n1), probe.sizes(n2)
    affine = [(b - a, a - (b - a) * t1) if a is not None and b is not None else None
              for a, b in zip(first, second)]   # (α, β) per layer: size = α·t + β
    output = None
    if affine and affine[-1] is not None:
        alpha, beta = affine[-1]
        output = (Fraction(alpha, period), beta - Fraction(alpha * r, period))
    if probe.valid(n1) and probe.valid(n2):
        # every output ≥ 1 is a first guess of where the class becomes valid
        estimate = max([-(-(1 - beta) // alpha) for item in affine if item is not None
                        for alpha, beta in [item] if alpha > 0], default=0)
        t0 = _first_valid(lambda t: probe.valid(r + period * t), estimate, t1)
        start = r + period * t0
        return _Class(r, start=start if start >= 1 else start + period, output=output)
    report = probe.report(n1)
    if _fails_only_by_tiling(report) or all(row.output_shape is not None
                                             for row in report.layers):
        # a window that does not tile (the same in the whole class), or errors of the
        # file rather than of a layer's sizes (duplicate names): never valid
        return _Class(r)
    bound = _crossing_bound(probe, n1, n2, t1)
    if bound is None:      # it fails for a reason no size changes: never valid
        return _Class(r)
    if bound > MAX_SCAN:
        raise SizesTooComplex(f"sizes ≡ {r} (mod {period}) would need {bound} analyses")
    points = tuple(n for n in (r + period * t for t in range(bound + 1)) if probe.valid(n))
    return _Class(r, points=points)


def _crossing_bound(probe: _Probe, n1: int, n2: int, t1: int) -> int | None:
    """For a class that fails in the end at some layer: a ``t`` past which that layer's
    condition fails for good.  Its condition compares its inputs' sizes with each other
    or with a combination of its own options; those are affine in ``t`` (α·t + β), so
    it can change only where two of them cross, or where one passes the sum ``S`` of
    the layer's whole-number options (+ 2): past every such point it fails as it does
    at ``n1``."""
    report = probe.report(n1)
    rows = {row.name: index for index, row in enumerate(report.layers)}
    failing = next((index for index, row in enumerate(report.layers) if row.output_shape is None
                    and all(name == "input" or report.layers[rows[name]].output_shape is not None
                            for name in row.inputs)), None)
    if failing is None:   # names that do not say which layer a layer reads (duplicates):
        return None       # an error of the file, not of the sizes
    layer = probe.make(n1).layers[failing]
    first, second = probe.shapes(n1), probe.shapes(n2)

    third = probe.shapes(n2 + (n2 - n1))

    def affine_of(name: str, which: list[tuple[int | None, ...] | None],
                  other: list[tuple[int | None, ...] | None]
                  ) -> list[tuple[int, int] | None]:
        """Per entry of an input's shape, ``(α, β)`` where it is affine in ``t``, else
        ``None`` (a flat width of a square probe is not)."""
        a: Sequence[int | None]
        b: Sequence[int | None]
        c: Sequence[int | None]
        if name == "input":
            a, b, c = (probe.make(n).input for n in (n1, n2, n2 + (n2 - n1)))
        else:   # an input of the failing layer: computed at n1, so in the whole class
            rank = len(report.layers[rows[name]].output_shape or ())   # without the
            a, b, c = (cast("tuple[int | None, ...]", shapes[rows[name]])[:rank]   # padding
                       for shapes in (which, other, third))
        return [(y - x, x - (y - x) * t1)
                if x is not None and y is not None and z is not None and z - y == y - x
                else None for x, y, z in zip(a, b, c)]

    inputs = [affine_of(name, first, second) for name in layer.inputs or ()]
    limit = sum(_whole_numbers(layer)) + 2
    candidates = [0]
    for dims in inputs:
        for alpha, beta in filter(None, dims):
            if alpha > 0:
                candidates.append(-(-(limit + abs(beta)) // alpha))
    for x, y in ((x, y) for i, x in enumerate(inputs) for y in inputs[i + 1:]):
        # entries compared where the layer lines them up: concat's shapes have one
        # rank, and add and mul broadcast from the last axis
        for p, q in zip(reversed(x), reversed(y)):
            if p is not None and q is not None and p[0] != q[0]:
                (a1, b1), (a2, b2) = p, q
                candidates.append(-(-abs(b2 - b1) // abs(a1 - a2)))
    return max(candidates) + 1


def _whole_numbers(layer: Any) -> list[int]:
    """Every whole number written in a layer's options (absolute values)."""
    def walk(value: Any) -> Iterable[int]:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, int):
            yield abs(value)
        elif isinstance(value, float):
            yield int(min(abs(value), 2.0**62)) + 1
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from walk(item)

    return [n for name in type(layer).model_fields for n in walk(getattr(layer, name))]


def _answer(probe: _Probe, name: str, index: int, assumed: dict[str, int]) -> AxisSizes:
    period = _period(probe)
    classes = [_solve_class(probe, r, period) for r in range(period)]
    threshold = 1
    for c in classes:
        if c.start is not None:
            threshold = max(threshold, c.start - period + 1)
        elif c.points:
            threshold = max(threshold, c.points[-1] + 1)
    exceptions = sorted([n for c in classes for n in c.points] + [
        n for c in classes if c.start is not None for n in range(c.start, threshold, period)])
    ending = [c.r for c in classes if c.start is not None]
    small, residues = _smallest_period(period, ending)
    outputs: dict[int, tuple[Fraction, Fraction]] | None = None
    if all(c.output is not None for c in classes if c.start is not None) and ending:
        outputs = {c.r: c.output for c in classes if c.start is not None}  # type: ignore[misc]
    reason = None
    if not residues and not exceptions:
        errors = probe.report(HUGE).errors
        reason = errors[0].format(tag=False) if errors else None
    exception_outputs = {}
    for n in exceptions:
        sizes = probe.sizes(n)
        exception_outputs[n] = sizes[-1] if sizes else None
    form = None
    if not residues:
        small, threshold = 0, (exceptions[-1] + 1) if exceptions else 1
    elif len(residues) == 1 and small > 1:
        form = _natural_form(probe, small, residues[0], threshold)
    return AxisSizes(name, index, small, tuple(residues), threshold, tuple(exceptions),
                     assumed, reason, outputs, period, exception_outputs, form)


def _symmetric(spec: Spec, dims: int, report: Report) -> bool:
    """Whether the spatial axes are interchangeable: no layer option gives different
    values to different axes (a list of ``dims`` entries that are not all equal), and no
    layer reads inputs of different ranks (broadcasting a flat vector lines it up with
    the last axis only) — judged on ``report``, an analysis of the spec."""
    if dims < 2:
        return False
    for layer in spec.layers:
        for name in type(layer).model_fields:
            value = getattr(layer, name)
            if isinstance(value, tuple) and len(value) == dims and len(set(value)) > 1:
                return False
    return all(len({len(shape) for shape in row.input_shapes}) <= 1 for row in report.layers)


def _smallest_period(period: int, residues: list[int]) -> tuple[int, list[int]]:
    """The smallest divisor ``d`` of ``period`` for which the residues repeat every ``d``."""
    chosen = set(residues)
    for d in (d for d in range(1, period + 1) if period % d == 0):
        if all(((r + d) % period in chosen) == (r in chosen) for r in range(period)):
            return d, sorted({r % d for r in residues})
    return period, sorted(residues)  # pragma: no cover - d = period always repeats


def valid_sizes(spec: Any) -> tuple[AxisSizes, ...]:
    """Per spatial axis of the input, in order, the exact set of valid sizes.

    ``spec`` may leave sizes open (``null``) or give them.  A given size is ignored for
    its own axis; each axis's set assumes the other axes take a valid size — the given
    one when it is valid, else their smallest (open axes: the smallest size valid for
    all of them at once).
    """
    from .loading import validate

    return _valid_sizes(validate(spec))


def _valid_sizes(spec: Spec) -> tuple[AxisSizes, ...]:
    """:func:`valid_sizes` of a validated spec."""
    dims = len(spec.input) - 1
    names = axis_names(dims)
    given = {i: n for i, n in enumerate(spec.input[1:]) if n is not None}

    def shape(sizes: dict[int, int]) -> list[int | None]:
        return [spec.input[0], *(sizes[i] for i in range(dims))]

    def solve(sizes: dict[int, int]) -> list[AxisSizes]:
        symmetric = _symmetric(spec, dims, analyze(spec.with_input(shape(sizes)),
                                                   fields=False))
        answers: list[AxisSizes] = []
        for index in range(dims):
            others = sorted(m for i, m in sizes.items() if i != index)
            assumed = {names[i]: m for i, m in sizes.items() if i != index}
            twin = next((a for a in answers if symmetric
                         and sorted(a.assumed.values()) == others), None)
            if twin is not None:    # the same network along an equivalent axis
                answers.append(replace(twin, axis=names[index], index=index, assumed=assumed))
                continue

            def at(n: int, index: int = index) -> Spec:
                return spec.with_input(shape({**sizes, index: n}))
            answers.append(_answer(_Probe(at, index, dims), names[index], index, assumed))
        return answers

    if len(given) == dims:       # every size given: they are what the others assume
        answers = solve(given)
        if all(a.contains(given[i]) for i, a in enumerate(answers)):
            return tuple(answers)
    # else begin from the smallest size that works on every axis at once
    def square(n: int) -> Spec:
        return spec.with_input(shape({i: n for i in range(dims)}))
    together = _answer(_Probe(square, 0, dims), names[0], 0, {})
    start = {i: together.smallest or 1 for i in range(dims)}
    answers = solve(start)
    fill = {i: given[i] if i in given and answers[i].contains(given[i])
            else (answers[i].smallest or start[i]) for i in range(dims)}
    if fill != start:
        answers = solve(fill)
    return tuple(answers)


def near(answer: AxisSizes, n: int) -> dict[str, Any]:
    """The valid sizes just below and above ``n`` (and whether ``n`` is valid), with the
    output size at each."""
    below, above = answer.nearest(n)
    return {"size": n, "valid": answer.contains(n), "below": below, "above": above,
            "output": {str(m): answer.output(m) for m in (below, n, above)
                       if m is not None and answer.contains(m)}}


def input_advice(spec: Spec, report: Report) -> Any:
    """For a report with errors whose input sizes do not suit the network: a diagnostic
    on ``input`` naming, per axis, the nearest valid sizes of the whole network (or
    ``None`` when the sizes are not the problem, or cannot be worked out), and as its
    fixes the inputs with every such axis at its nearest valid size below, or above,
    where the network analyses without an error there (:mod:`convcalc.fixes`)."""
    from .errors import Diagnostic
    from .fixes import describe

    if report.ok or spec.open_axes or len(spec.input) < 2:
        return None
    try:
        answers = valid_sizes(spec)
    except SizesTooComplex:
        return None
    parts = []
    shapes: list[list[Any] | None] = [list(spec.input), list(spec.input)]
    for answer, n in zip(answers, cast("list[int]", spec.input[1:])):   # none open (above)
        if answer.contains(n) or answer.empty:
            continue
        nearest = answer.nearest(n)
        options = " or ".join(str(m) for m in nearest if m is not None)
        parts.append(f"{answer.axis} = {n}: nearest valid {options} ({answer.describe()})")
        for side, m in enumerate(nearest):
            shape = shapes[side]
            if shape is not None:
                shape[1 + answer.index] = m
            if m is None:
                shapes[side] = None
    if not parts or any(a.empty for a in answers):
        return None
    fixes = [{"input": shape} for shape in shapes
             if shape is not None and analyze(spec.with_input(shape), fields=False).ok]
    source = spec.source
    shown = "[" + ", ".join(map(str, spec.input)) + "]"
    message = f"the input {shown} does not suit this network: " + "; ".join(parts)
    if fixes:
        message += f". Fix: {describe(fixes)}"
    return Diagnostic("error", message, file=source.filename if source else None,
                      line=source.line_of(("input",)) if source else None, field="input",
                      details={"fixes": fixes} if fixes else {})


def at_smallest(spec: Spec, answers: tuple[AxisSizes, ...]) -> Spec | None:
    """The spec on its smallest valid size along every open axis (``None`` if some open
    axis has none)."""
    shape = list(spec.input)
    for index in spec.open_axes:
        smallest = answers[index].smallest
        if smallest is None:
            return None
        shape[1 + index] = smallest
    return spec.with_input(shape)


@dataclass(frozen=True)
class Checked:
    """What ``convcalc check`` reports on a spec: the spec as analysed (at its smallest
    valid size along open axes), the report (with the input's nearest valid sizes
    added when the given ones are why it fails), and the sizes when some were open."""

    spec: Spec
    report: Report
    sizes: tuple[AxisSizes, ...] | None = None
    sizes_problem: str | None = None


def check(spec: Spec) -> Checked:
    """Analyse ``spec`` as ``convcalc check`` does (the CLI and the service share it)."""
    from dataclasses import replace as replaced

    answers = None
    if spec.open_axes:
        try:
            answers = valid_sizes(spec)
        except SizesTooComplex as error:
            return Checked(spec, analyze(spec), None, str(error))
        chosen = at_smallest(spec, answers)
        if chosen is not None:
            spec = chosen
    report = analyze(spec)
    if not report.ok and answers is None:
        advice = input_advice(spec, report)
        if advice is not None:
            report = replaced(report, problems=tuple(sorted(
                (*report.problems, advice), key=lambda p: p.line or 0)))
    return Checked(spec, report, answers)
