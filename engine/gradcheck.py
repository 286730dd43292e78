"""Gradient checking: back-propagated gradients against centred differences, in float64.

Two methods compare every layer's gradients — w.r.t. each of its parameter tensors and
w.r.t. its input, the complete gradient of the output it reads as
:meth:`engine.Network.backward` computes it (a merge layer has one tensor per input,
``"input:<name>"``) — with centred differences.

``method="directions"`` (the default) moves each tensor along one random direction
``v`` (standard normal entries, scaled to unit norm, drawn from the seed) and compares
the analytic directional derivative ``⟨∇, v⟩`` with ``(φ(h) − φ(−h)) / 2h``,
``φ(t) = L(θ + t·v)``: two evaluations per tensor, whatever its size.  A wrong
gradient ``a ≠ ∇`` passes only if ``⟨a − ∇, v⟩`` happens to be almost 0, which for a
random direction has probability about ``tolerance · ‖a‖ / ‖a − ∇‖``: it fails for
almost every direction.  The loss is, per ``scope``:

- ``"layer"`` (the default): each layer against its own forward.  With ``g`` the
  gradient that reached the layer's output in the backward pass, ``L = ⟨g, f(x; θ)⟩``
  is re-run on that one layer; its gradient is exactly what the layer's backward must
  return for ``g`` (its share of the input gradient, and its parameter gradients).  A
  wrong backward fails at its own layer only.  Two *end-to-end* checks then cover how
  the network combines the layers (fan-out sums, merge routing): one direction for the
  network's input and one for all parameters together, against the whole network's
  loss (two full forward passes each).
- ``"network"``: every tensor against the whole network's loss, re-running it from the
  first layer the perturbed value reaches (as the per-entry check does); a wrong
  backward then fails at its layer and at every layer upstream.  Slower: a full
  forward pass per tensor of the early layers.

``method="entries"`` is the per-entry check: on at most ``samples`` randomly chosen
entries of every tensor, the centred difference ``(L(θ + h) − L(θ − h)) / 2h`` of the
whole network's loss, re-run from the first layer that sees the perturbed value.  The
error of one tensor is the relative error of the sampled vectors,
``‖a − n‖₂ / (‖a‖₂ + ‖n‖₂)``.

The network's loss is a fixed random projection of the output, ``L = Σ y ⊙ P`` with
``P ~ N(0, 1)`` drawn once, so ``dL/dy = P``.  A layer's error is the largest over its
tensors.  Correct layers give about 1e-9 or less; a layer passes below 1e-6.

Refinements that keep both methods honest where plain differences are not:

- *Kinks.*  Where the loss is not differentiable — a ReLU input at exactly 0, values
  tying for a maximum (ReLU zeros tie inside the max-pool windows that follow) — the
  two one-sided differences disagree.  The difference is re-measured with ``h/100``; if
  they still disagree the kink is at the point itself.  Per entry, both one-sided
  derivatives are then measured and a back-propagated value between them (a valid
  choice there) counts as correct (:class:`Derivatives`).  Along a direction that
  bound does not hold (a sum of kinks of both signs), so the direction is drawn again
  without the entries whose value occurs more than once in the tensor (the exact ties
  that make such kinks); if that still sits on a kink, the tensor is checked per entry.
  Each such tensor counts as a kink (per entry: each sampled entry on a kink).
- *Resolution.*  A difference cannot see a derivative below ``ρ = ε·S/h``, where ``S``
  is the size of the loss's terms (``|L|``, and along a direction at least
  ``‖g ⊙ y‖₂``, whose rounding does not cancel where ``L`` does), and rounding through
  a deep stack reaches ~20ρ.  The denominator of the relative error is at least
  ``1000·‖ρ‖ / tolerance``: absolute differences below 1000ρ count as noise, so a
  gradient that is exactly zero in theory (a conv bias followed by batchnorm) is not
  failed for its rounding noise.
- *The step's own rounding.*  ``θ + t·v`` is rounded; along a direction the analytic
  side uses the step actually taken, ``⟨a, (θ⁺ − θ⁻)⟩ / 2h``, not ``⟨a, v⟩``.
- *Not a number.*  A NaN anywhere (in a gradient, in the loss) makes the error NaN,
  and a NaN error fails (:attr:`GradcheckResult.ok`).

Randomness and state: every layer's generator is reset before each evaluation, so
dropout draws the same mask every time; batchnorm in training mode recomputes its batch
statistics each time (its running statistics do not affect the output) and its buffers
are restored afterwards; perturbed parameters are restored exactly.

>>> from convcalc.spec import Spec
>>> spec = Spec.model_validate({"input": [2, 6, 6], "layers": [
...     {"type": "conv", "filters": 3, "kernel": 3}, "tanh", "flatten",
...     {"type": "dense", "units": 4}]})
>>> result = gradcheck(spec, batch=2, seed=0)
>>> result.ok, sorted(result.per_layer), [c.tensor for c in result.end_to_end]
(True, ['conv1', 'dense1', 'flatten1', 'tanh1'], ['input', 'parameters'])
>>> result.max_error < 1e-6, gradcheck(spec, method="entries").ok
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: A layer passes when its relative error is below this.
TOLERANCE = 1e-6
#: Default step of the centred differences, per entry.
STEP = 1e-6
#: Default step along a (unit) direction: it moves each of ``n`` entries by about
#: ``h/√n``, so kinks are crossed far less often than by a per-entry step, and the
#: larger step resolves ten times smaller derivatives (``ρ = ε·S/h``); the truncation
#: error ``h²·φ'''/6`` stays ~1e-10 relative for smooth layers.
DIRECTION_STEP = 1e-5
#: Differences up to this many times the resolution ``ε·|L|/h`` count as rounding noise
#: (measured: up to ~20× in deep float64 stacks).
NOISE_MARGIN = 1000.0


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 0.0) -> float:
    """``‖a − n‖₂ / max(‖a‖₂ + ‖n‖₂, floor)``, and 0 when that denominator is 0.

    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> round(relative_error(np.array([1.0]), np.array([1.1])), 4)
    0.0476
    >>> relative_error(np.array([0.0]), np.array([1e-10]), floor=1e-3)   # below resolution
    1e-07
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    scale = max(float(np.linalg.norm(a) + np.linalg.norm(n)), floor)
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - n) / scale)


@dataclass(frozen=True)
class Derivatives:
    """Centred-difference estimates for some entries of one array.

    ``value`` is the estimate.  Where the loss is not differentiable at the entry (a
    kink that stays inside the step however small it gets: a ReLU input at exactly 0,
    two values tying for a maximum), ``low``/``high`` are the one-sided derivatives and
    any back-propagated value between them is a valid choice; elsewhere
    ``low == high == value``.  ``resolution`` is the smallest derivative the step can
    see, ``ε·|L|/h`` (one rounding error of the loss over the step).
    """

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    resolution: np.ndarray

    @property
    def kinks(self) -> int:
        """How many entries sit on a kink."""
        return int(np.count_nonzero(self.low != self.high))

    def compare(self, analytic: np.ndarray, tolerance: float = 1e-6) -> float:
        """Relative error of back-propagated values against these estimates.

        At a kink the nearest point of ``[low, high]`` is the reference (so a subgradient
        passes).  The denominator is at least ``NOISE_MARGIN·‖resolution‖ / tolerance``
        (1000·‖ρ‖/tolerance): a gradient
        that is zero up to rounding (a conv bias followed by batchnorm) is judged against
        what the differences can resolve, not against its own rounding noise.
        """
        analytic = np.asarray(analytic, dtype=np.float64).ravel()
        reference = np.clip(analytic, self.low, self.high)
        floor = NOISE_MARGIN * float(np.linalg.norm(self.resolution)) / tolerance
        return relative_error(analytic, reference, floor)


_EPS = float(np.finfo(np.float64).eps)


def derivatives(loss: Callable[[], float], array: np.ndarray, indices: Any = None,
                h: float = STEP, scale: float = 0.0) -> Derivatives:
    """Centred differences ``(L(θ + h) − L(θ − h)) / 2h`` of ``loss()`` for entries of
    ``array`` (flat ``indices``, default all), perturbing it in place and restoring it.
    ``scale`` is the size of the loss's terms when it exceeds ``|L|`` (see
    :func:`_crosses_kink`).

    A step that crosses a kink shows as the one-sided differences disagreeing; the entry
    is then re-measured with ``h/100``.  If they still disagree, the kink is at the entry
    itself, and both one-sided derivatives are measured with second-order formulas
    (``(∓3L(θ) ± 4L(θ ± h) ∓ L(θ ± 2h)) / 2h``), giving ``low`` and ``high``.

    >>> a = np.array([0.0, 2.0])
    >>> found = derivatives(lambda: float(abs(a[0]) + a[1] ** 2), a)   # |x| has a kink at 0
    >>> found.low.round(6).tolist(), found.high.round(6).tolist(), found.kinks
    ([-1.0, 4.0], [1.0, 4.0], 1)
    >>> found.compare(np.array([0.0, 4.0])) < 1e-9     # 0 is a subgradient of |x| at 0
    True
    """
    if array.dtype != np.float64:
        raise ValueError(f"numerical gradients need float64 arrays, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError("numerical gradients perturb the array in place; it must be "
                         "C-contiguous")
    flat = array.reshape(-1)
    chosen = np.arange(array.size) if indices is None else np.asarray(indices, dtype=np.intp)
    value, low, high, resolution = (np.empty(len(chosen)) for _ in range(4))

    def at(index: int, delta: float) -> float:
        original = flat[index]
        flat[index] = original + delta
        try:
            return loss()
        finally:
            flat[index] = original

    base = loss()
    for position, index in enumerate(chosen.tolist()):
        for step in (h, h / 100.0):
            plus, minus = at(index, step), at(index, -step)
            kink = _crosses_kink(base, plus, minus, step, scale)
            value[position] = low[position] = high[position] = (plus - minus) / (2 * step)
            resolution[position] = _EPS * max(abs(base), abs(plus), abs(minus), scale) / step
            if not kink:
                break
        else:  # the kink is at the entry itself: one-sided derivatives, O(h²)
            plus, minus = at(index, h), at(index, -h)
            forward = (4 * plus - at(index, 2 * h) - 3 * base) / (2 * h)
            backward = (3 * base - 4 * minus + at(index, -2 * h)) / (2 * h)
            value[position] = (forward + backward) / 2
            low[position], high[position] = min(forward, backward), max(forward, backward)
            resolution[position] = _EPS * max(abs(base), abs(plus), abs(minus), scale) / h
    return Derivatives(value, low, high, resolution)


def numerical_gradient(loss: Callable[[], float], array: np.ndarray,
                       indices: Any = None, h: float = STEP) -> np.ndarray:
    """Centred differences of ``loss()`` w.r.t. entries of ``array`` (float64 only).

    ``array`` is perturbed in place, one entry at a time, and restored exactly.
    ``indices`` are flat indices (default: every entry, returned in ``array``'s shape).
    Steps that cross a kink are retried smaller (see :func:`derivatives`); at a kink the
    mean of the two one-sided derivatives is returned.

    >>> a = np.array([1.0, 2.0, 3.0])
    >>> grad = numerical_gradient(lambda: float((a ** 2).sum()), a)
    >>> np.allclose(grad, [2.0, 4.0, 6.0]), a.tolist()
    (True, [1.0, 2.0, 3.0])
    >>> g = numerical_gradient(lambda: float(abs(a[0] - 1.0 - 1e-7)), a, [0])  # kink at 1 + 1e-7
    >>> float(np.round(g[0], 6))
    -1.0
    """
    result = derivatives(loss, array, indices, h)
    return result.value.reshape(array.shape) if indices is None else result.value


def _crosses_kink(base: float, plus: float, minus: float, h: float,
                  scale: float = 0.0) -> bool:
    """True when the one-sided slopes differ by more than a smooth loss allows.

    For a smooth loss ``(plus − base)/h − (base − minus)/h = h·L''``, tiny next to the
    slopes; a kink of slope jump ``Δ`` inside ``[−h, h]`` makes it about ``Δ``.  The
    rounding noise allowed is ``64ε`` times the loss's size over ``h``, the size being
    at least ``scale`` (a loss whose terms cancel rounds like its terms, not like ``L``).
    """
    forward, backward = (plus - base) / h, (base - minus) / h
    slopes = abs(forward) + abs(backward)
    noise = 64 * _EPS * (abs(base) + abs(plus) + abs(minus) + 3 * scale) / h
    return abs(forward - backward) > 1e-5 * slopes + noise


@dataclass(frozen=True)
class TensorCheck:
    """One compared tensor: ``layer``, ``tensor`` (``"input"``, ``"input:<name>"`` or a
    parameter name; end to end: ``"input"`` or ``"parameters"``), the relative
    ``error``, and ``kinks``.  ``method`` is ``"direction"`` (``entries``: how many
    entries the direction moved) or ``"entries"`` (``entries`` sampled).  ``kinks``:
    per entry, the sampled entries on a kink (where any value between the one-sided
    derivatives passes); along a direction, 1 when the direction met a kink (a smaller
    step, a direction without the tied entries, or the per-entry check took over)."""

    layer: str
    tensor: str
    entries: int
    error: float
    kinks: int = 0
    method: str = "entries"


def worst(errors: Any) -> float:
    """The largest of ``errors`` where NaN counts as the largest (``max`` would skip
    it); 0.0 for none.

    >>> worst([1e-9, float("nan"), 1e-3]), worst([]), worst([1e-9, 2e-9])
    (nan, 0.0, 2e-09)
    """
    out = 0.0
    for error in errors:
        if error != error:
            return float("nan")
        out = max(out, error)
    return out


@dataclass
class GradcheckResult:
    """Every compared tensor, the largest error per layer, and the verdict.

    ``end_to_end`` holds the whole-network checks of the directional method with layer
    scope (the input, and all parameters along one direction); empty otherwise.
    """

    tensors: list[TensorCheck] = field(default_factory=list)
    tolerance: float = TOLERANCE
    method: str = "entries"
    end_to_end: list[TensorCheck] = field(default_factory=list)

    @property
    def per_layer(self) -> dict[str, float]:
        """``{layer name: largest relative error over its input and parameters}`` (NaN
        when any of them is NaN)."""
        grouped: dict[str, list[float]] = {}
        for check in self.tensors:
            grouped.setdefault(check.layer, []).append(check.error)
        return {name: worst(errors) for name, errors in grouped.items()}

    @property
    def max_error(self) -> float:
        """The largest error of all (NaN when any is NaN), end to end included."""
        return worst(check.error for check in self.tensors + self.end_to_end)

    @property
    def ok(self) -> bool:
        return self.max_error < self.tolerance   # False for NaN

    def failing(self) -> dict[str, float]:
        """The layers whose error is not below the tolerance (or is NaN)."""
        return {name: err for name, err in self.per_layer.items()
                if not err < self.tolerance}


def _sample(rng: np.random.Generator, size: int, samples: int) -> np.ndarray:
    if size <= samples:
        return np.arange(size)
    return np.sort(rng.choice(size, samples, replace=False))


class _Frozen:
    """Saves every layer's generator state and buffers; resets / restores them."""

    def __init__(self, net: Any):
        self.layers = list(net.layers)
        self.states = [layer.rng.bit_generator.state for layer in self.layers]
        self.buffers = [{k: v.copy() for k, v in layer.buffers.items()} for layer in self.layers]

    def reset_randomness(self) -> None:
        for layer, state in zip(self.layers, self.states):
            layer.rng.bit_generator.state = state

    def restore(self) -> None:
        self.reset_randomness()
        for layer, saved in zip(self.layers, self.buffers):
            for key, value in saved.items():
                layer.buffers[key][...] = value


#: ``method``: one random direction per tensor (default), or sampled entries.
METHODS = ("directions", "entries")
#: ``scope`` of the directional method: each layer against its own forward (default),
#: or every tensor against the whole network.
SCOPES = ("layer", "network")


def gradcheck(net_or_spec: Any, x: np.ndarray | None = None, *, batch: int = 2,
              seed: int = 0, samples: int = 20, h: float | None = None,
              tolerance: float = TOLERANCE,
              progress: Callable[[int, int], None] | None = None,
              method: str = "directions", scope: str = "layer") -> GradcheckResult:
    """Check every layer's gradients (input and parameters) by centred differences.

    ``net_or_spec`` is a float64 :class:`engine.Network` or a spec (built in float64
    with ``seed``).  ``x`` defaults to a standard-normal batch of ``batch`` examples.
    ``method`` and ``scope``: see the module docstring; ``samples`` is the number of
    entries per tensor the per-entry check compares (also where a direction stays on a
    kink); ``h`` the step (default :data:`DIRECTION_STEP` along directions,
    :data:`STEP` per entry).  ``progress(done, total)`` is called after each layer
    (``total``: the layers, plus one for the directional method's last step, the
    end-to-end checks).  The network's parameters, buffers and generators are left as
    they were.
    """
    from .network import Network, build

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)} (got {scope!r})")
    net = net_or_spec if isinstance(net_or_spec, Network) else build(net_or_spec, seed,
                                                                      "float64")
    if net.dtype != np.float64:
        raise ValueError(f"gradcheck needs a float64 network (got {net.dtype}); build it "
                         "with dtype='float64'")
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal((batch, *net.input_shape))
    frozen = _Frozen(net)
    try:
        x = np.asarray(x, dtype=np.float64)
        if method == "entries":
            return _check(net, x, rng, frozen, samples, STEP if h is None else h,
                          tolerance, progress)
        return _Directions(net, rng, frozen, seed, samples,
                           DIRECTION_STEP if h is None else h, tolerance, progress,
                           scope).run(x)
    finally:
        frozen.restore()


def progress_steps(layers: int, method: str = "directions") -> int:
    """The ``total`` that :func:`gradcheck` reports progress against."""
    return layers + (method == "directions")


# --- one random direction per tensor -----------------------------------------------------


def _unit(z: np.ndarray) -> np.ndarray:
    """``z / ‖z‖₂`` in place (``z`` must not be all zeros)."""
    z /= np.linalg.norm(z.reshape(-1))
    return z


def _tied(a: np.ndarray) -> np.ndarray:
    """Where ``a`` holds a value that occurs more than once in it (ReLU zeros, clamped
    values): the exact ties that put a direction on a kink.

    >>> _tied(np.array([0.0, 1.5, 0.0, 2.0, -0.0])).tolist()
    [True, False, True, False, True]
    """
    flat = a.reshape(-1)
    order = np.argsort(flat, kind="stable")
    same = flat[order][1:] == flat[order][:-1]
    tied = np.zeros(flat.size, bool)
    tied[1:] |= same
    tied[:-1] |= same
    out = np.empty(flat.size, bool)
    out[order] = tied
    return out.reshape(a.shape)


@dataclass(frozen=True)
class _Along:
    """One direction measured: the analytic and the numerical directional derivative
    and the resolution ``ε·S/step``.  ``kinked``: a kink crossed at the first step
    (measured again with ``h/100``); ``at_kink``: the kink is at the point (``numeric``
    is then the mean of the one-sided derivatives ``low`` and ``high``)."""

    analytic: float
    numeric: float
    resolution: float
    kinked: bool = False
    at_kink: bool = False
    low: float = 0.0
    high: float = 0.0

    def error(self, tolerance: float) -> float:
        """Relative error, with the noise floor ``1000·ρ / tolerance``; at a kink the
        nearest point of ``[low, high]`` is the reference."""
        reference = np.clip(self.analytic, self.low, self.high) if self.at_kink \
            else self.numeric
        floor = NOISE_MARGIN * self.resolution / tolerance
        return relative_error(np.array([self.analytic]), np.array([reference]), floor)


#: ``at(t) → (L(θ + t·v), ⟨a, Δ⟩)``: the loss with the tensor(s) moved by ``t·v`` and the
#: analytic gradient against the step ``Δ`` actually taken (``θ + t·v`` is rounded).
Move = Callable[[float], tuple[float, float]]


def _along(at: Move, h: float, base: float, scale: float) -> _Along:
    """Centred differences of ``t ↦ L(θ + t·v)`` with ``h``, then ``h/100`` if the step
    crossed a kink; if it still does, the one-sided derivatives (``O(h²)``)."""
    for step in (h, h / 100.0):
        (plus, a_plus), (minus, a_minus) = at(step), at(-step)
        resolution = _EPS * max(abs(base), abs(plus), abs(minus), scale) / step
        if not _crosses_kink(base, plus, minus, step, scale):
            return _Along((a_plus - a_minus) / (2 * step), (plus - minus) / (2 * step),
                          resolution, kinked=step != h)
    (plus, a_plus), (minus, a_minus) = at(h), at(-h)
    (plus2, _), (minus2, _) = at(2 * h), at(-2 * h)
    forward = (4 * plus - plus2 - 3 * base) / (2 * h)
    backward = (3 * base - 4 * minus + minus2) / (2 * h)
    resolution = _EPS * max(abs(base), abs(plus), abs(minus), scale) / h
    return _Along((a_plus - a_minus) / (2 * h), (forward + backward) / 2, resolution,
                  kinked=True, at_kink=True, low=min(forward, backward),
                  high=max(forward, backward))


def _moving(target: np.ndarray, saved: np.ndarray, v: np.ndarray, analytic: np.ndarray,
            loss: Callable[[], float]) -> Move:
    """:data:`Move` for one array ``target`` that ``loss()`` reads: set to
    ``saved + t·v``, then put back to ``saved`` exactly."""
    def at(t: float) -> tuple[float, float]:
        np.multiply(v, t, out=target)
        np.add(target, saved, out=target)
        try:
            value = loss()
            np.subtract(target, saved, out=target)  # the step taken (exact: Sterbenz)
            return value, float(np.vdot(analytic, target))
        finally:
            target[...] = saved
    return at


class _Directions:
    """The directional check of one network (see the module docstring).

    The analytic gradients come from one backward pass; each layer is checked inside
    it, as soon as its own backward has returned (a hook on each layer's ``backward``):
    the gradient ``g`` of its output and its share of its inputs' gradients are at
    hand then, and re-running that layer (or, with network scope, the layers after it)
    disturbs no cache the rest of the pass still needs.
    """

    def __init__(self, net: Any, rng: np.random.Generator, frozen: _Frozen, seed: int,
                 samples: int, h: float, tolerance: float,
                 progress: Callable[[int, int], None] | None, scope: str):
        self.net, self.rng, self.frozen, self.seed = net, rng, frozen, seed
        self.samples, self.h, self.tolerance = samples, h, tolerance
        self.progress, self.scope = progress, scope
        self.output = net.layers[-1].name
        self.total = progress_steps(len(net.layers))
        self.done = 0
        self.checked: dict[int, list[TensorCheck]] = {}
        self.nodes: dict[str, tuple[int, float, int, str]] = {}   # network scope

    # --- running -----------------------------------------------------------------------

    def run(self, x: np.ndarray) -> GradcheckResult:
        net = self.net
        self.frozen.reset_randomness()
        self.values = net.evaluate({"input": x})            # every output, kept
        y = self.values[self.output]
        self.projection = self.rng.standard_normal(y.shape)
        self.base = float(np.vdot(y, self.projection))
        self.scale = float(np.linalg.norm((y * self.projection).reshape(-1)))
        del y
        with _hooked(net.layers, self._layer_done):
            dx = net.backward(self.projection)
        for index in range(len(net.layers)):                 # nothing reached them
            if index not in self.checked:
                self._unreached(index)
        result = GradcheckResult(tolerance=self.tolerance, method="directions")
        if self.scope == "network":
            self.nodes["input"] = self._node("input", dx)
        for index, layer in enumerate(net.layers):
            sources = list(dict.fromkeys(net.sources[index]))
            if self.scope == "network":
                for source in sources:
                    tensor = "input" if len(sources) == 1 else f"input:{source}"
                    result.tensors.append(TensorCheck(layer.name, tensor,
                                                      *self.nodes[source]))
            result.tensors.extend(self.checked[index])
        x = self.values["input"]
        del self.values                                     # the end-to-end passes drop
        if self.scope == "layer":                           # outputs as they go
            result.end_to_end = [self._end_to_end_input(x, dx), self._end_to_end_params(x)]
        self._tick()
        return result

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _layer_done(self, index: int, dout: np.ndarray, result: Any,
                    before: bool) -> None:
        """The hook: before layer ``index``'s backward (network scope: its output's
        check), and after it, with what it returned (its own checks)."""
        layer = self.net.layers[index]
        if before:
            if self.scope == "network" and self.net.readers[layer.name]:
                self.nodes[layer.name] = self._node(layer.name, dout)
            return
        shares = list(result) if layer.many_inputs else [result]
        sources = self.net.sources[index]
        base_args = [self.values[name] for name in sources]
        dout = np.ascontiguousarray(dout)        # read by every evaluation's np.vdot
        checks = []
        if self.scope == "layer":
            base, scale = self._layer_base(self.values[layer.name], dout)
            for source in dict.fromkeys(sources):
                analytic = _share(shares, sources, source)
                target = np.array(self.values[source], dtype=np.float64, order="C")
                args = [target if name == source else value
                        for name, value in zip(sources, base_args)]
                found = self._measure((1, index, sources.index(source)), target,
                                      self.values[source], analytic,
                                      self._layer_loss(index, args, dout), base, scale)
                tensor = "input" if len(set(sources)) == 1 else f"input:{source}"
                checks.append(TensorCheck(layer.name, tensor, *found))
        else:
            base, scale = self.base, self.scale
        for slot, (key, array) in enumerate(layer.params.items()):
            loss = self._layer_loss(index, base_args, dout) if self.scope == "layer" \
                else self._network_loss(index, {})
            found = self._measure((2, index, slot), array, array.copy(), layer.grads[key],
                                  loss, base, scale)
            checks.append(TensorCheck(layer.name, key, *found))
        self.checked[index] = checks
        self._tick()

    def _unreached(self, index: int) -> None:
        """A layer whose output nothing reads: no gradient reached it, so the loss does
        not depend on its input or parameters and every gradient must be 0."""
        layer = self.net.layers[index]
        sources = list(dict.fromkeys(self.net.sources[index]))
        checks = [] if self.scope == "network" else [
            TensorCheck(layer.name, "input" if len(sources) == 1 else f"input:{s}",
                        0, 0.0, 0, "direction") for s in sources]
        for key, grad in layer.grads.items():
            zero = not np.any(grad) and not np.isnan(grad).any()
            checks.append(TensorCheck(layer.name, key, grad.size, 0.0 if zero else 1.0, 0,
                                      "direction"))
        self.checked[index] = checks
        self._tick()

    # --- losses ------------------------------------------------------------------------

    @staticmethod
    def _layer_base(y: np.ndarray, dout: np.ndarray) -> tuple[float, float]:
        """``⟨g, y⟩`` at the point (``y``: the layer's output as the first evaluation
        computed it, as a re-run does), and the size of its terms ``‖g ⊙ y‖₂``."""
        return float(np.vdot(dout, y)), float(np.linalg.norm((dout * y).reshape(-1)))

    def _layer_loss(self, index: int, args: list[np.ndarray], dout: np.ndarray
                    ) -> Callable[[], float]:
        """``L = ⟨g, f(args)⟩``: layer ``index`` alone, ``g`` its output's gradient."""
        def loss() -> float:
            self.frozen.reset_randomness()
            return float(np.vdot(dout, self.net._apply(index, args)))
        return loss

    def _network_loss(self, start: int, overrides: dict[str, np.ndarray]
                      ) -> Callable[[], float]:
        """``L`` with layers ``start…`` re-run; earlier outputs as computed, but
        ``overrides`` (a perturbed output: every layer reading it sees the probe)."""
        def loss() -> float:
            self.frozen.reset_randomness()
            y = self.net.evaluate({**self.values, **overrides}, start)[self.output]
            return float(np.vdot(y, self.projection))
        return loss

    def _node(self, name: str, grad: np.ndarray) -> tuple[int, float, int, str]:
        """Network scope: the complete gradient of output ``name`` against ``L``."""
        target = np.array(self.values[name], dtype=np.float64, order="C")
        start = self.net.readers[name][0]
        return self._measure((1, start, name == "input"), target, self.values[name], grad,
                             self._network_loss(start, {name: target}), self.base,
                             self.scale)

    def _full_loss(self, x: np.ndarray) -> Callable[[], float]:
        def loss() -> float:
            self.frozen.reset_randomness()
            return float(np.vdot(self.net.forward(x), self.projection))
        return loss

    # --- measuring ---------------------------------------------------------------------

    def _measure(self, key: tuple[int, ...], target: np.ndarray, saved: np.ndarray,
                 analytic: np.ndarray, loss: Callable[[], float], base: float,
                 scale: float) -> tuple[int, float, int, str]:
        """``(entries, error, kinks, method)`` of one tensor: ``target`` (an array
        ``loss()`` reads, equal to ``saved``) moved along a random direction; at a kink
        at the point, along one without the tied entries; if that too, per entry."""
        if target.size == 0:
            return 0, 0.0, 0, "direction"
        rng = np.random.default_rng([self.seed, *key])
        v = _unit(rng.standard_normal(target.shape))
        found = _along(_moving(target, saved, v, analytic, loss), self.h, base, scale)
        if found.at_kink:
            free = ~_tied(saved)
            if free.any():
                v = rng.standard_normal(target.shape)
                v *= free
                found = _along(_moving(target, saved, _unit(v), analytic, loss), self.h,
                               base, scale)
            if not free.any() or found.at_kink:
                chosen = _sample(rng, target.size, self.samples)
                numeric = derivatives(loss, target, chosen, self.h, scale)
                error = numeric.compare(analytic.reshape(-1)[chosen], self.tolerance)
                return len(chosen), error, max(numeric.kinks, 1), "entries"
            return int(np.count_nonzero(free)), found.error(self.tolerance), 1, "direction"
        return target.size, found.error(self.tolerance), int(found.kinked), "direction"

    def _end_to_end_input(self, x: np.ndarray, dx: np.ndarray) -> TensorCheck:
        """The network's input along one direction, against the whole network."""
        target = np.array(x, dtype=np.float64, order="C")
        found = self._measure((3,), target, x, dx, self._full_loss(target), self.base,
                              self.scale)
        return TensorCheck("", "input", *found)

    def _end_to_end_params(self, x: np.ndarray) -> TensorCheck:
        """Every parameter at once along one direction (unit norm over all of them),
        against the whole network: ``Σ ⟨∂L/∂θₖ, vₖ⟩``."""
        arrays = [(index, key, layer.params[key], layer.grads[key])
                  for index, layer in enumerate(self.net.layers) for key in layer.params
                  if layer.params[key].size]
        if not arrays:
            return TensorCheck("", "parameters", 0, 0.0, 0, "direction")

        def draw(index: int, key: str, shape: tuple[int, ...]) -> np.ndarray:
            # drawn again for each step rather than kept: one tensor at a time in memory
            # (float32 draws are faster; the step actually taken is measured anyway)
            return np.random.default_rng([self.seed, 4, index, len(key), *key.encode()]
                                         ).standard_normal(shape, dtype=np.float32)

        norm = float(np.sqrt(sum(np.linalg.norm(draw(i, k, a.shape).reshape(-1)
                                                .astype(np.float64)) ** 2
                                 for i, k, a, _ in arrays)))
        saved = [array.copy() for _, _, array, _ in arrays]
        loss = self._full_loss(x)

        def at(t: float) -> tuple[float, float]:
            try:
                for (index, key, array, _), original in zip(arrays, saved):
                    np.multiply(draw(index, key, array.shape), t / norm, out=array)
                    np.add(array, original, out=array)
                value = loss()
                moved = 0.0
                for (_, _, array, grad), original in zip(arrays, saved):
                    array -= original
                    moved += float(np.vdot(grad, array))
                return value, moved
            finally:
                for (_, _, array, _), original in zip(arrays, saved):
                    array[...] = original

        found = _along(at, self.h, self.base, self.scale)
        entries = sum(array.size for _, _, array, _ in arrays)
        return TensorCheck("", "parameters", entries, found.error(self.tolerance),
                           int(found.kinked), "direction")


def _share(shares: list[np.ndarray], sources: tuple[str, ...], source: str) -> np.ndarray:
    """A layer's part of the gradient of ``source``: its returned gradient for each
    position it reads ``source`` at, summed (``add(x, x)`` reads it twice)."""
    parts = [grad for grad, name in zip(shares, sources) if name == source]
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0].copy())


_MISSING = object()


class _hooked:
    """Within the block, each layer's ``backward`` (whatever it is now: the class's, or
    one set on the instance) calls ``hook(index, dout, None, True)`` before and
    ``hook(index, dout, result, False)`` after it; restored exactly afterwards."""

    def __init__(self, layers: list[Any], hook: Callable[..., None]):
        self.layers, self.hook = layers, hook

    def __enter__(self) -> None:
        self.own = [layer.__dict__.get("backward", _MISSING) for layer in self.layers]
        for index, layer in enumerate(self.layers):
            layer.backward = self._wrap(index, layer.backward)

    def _wrap(self, index: int, real: Callable[[np.ndarray], Any]) -> Callable[..., Any]:
        def backward(dout: np.ndarray) -> Any:
            self.hook(index, dout, None, True)
            result = real(dout)
            self.hook(index, dout, result, False)
            return result
        return backward

    def __exit__(self, *exc: Any) -> None:
        for layer, own in zip(self.layers, self.own):
            if own is _MISSING:
                del layer.backward
            else:
                layer.backward = own


def _check(net: Any, x: np.ndarray, rng: np.random.Generator, frozen: _Frozen,
           samples: int, h: float, tolerance: float,
           progress: Callable[[int, int], None] | None) -> GradcheckResult:
    layers = net.layers
    output = layers[-1].name
    frozen.reset_randomness()
    values = net.evaluate({"input": x})          # every layer's output, kept
    projection = rng.standard_normal(values[output].shape)
    # The complete gradient of every output (summed over its readers), as the network's
    # own backward computes it; the arrays are fresh or a layer's result, never reused.
    node_grads: dict[str, np.ndarray] = {}
    net.backward(projection, on_gradient=node_grads.__setitem__)
    param_grads = [{k: v.copy() for k, v in layer.grads.items()} for layer in layers]

    def loss_from(start: int, overrides: dict[str, np.ndarray]) -> Callable[[], float]:
        """``L`` with layers ``start…`` re-run; earlier outputs as computed, but
        ``overrides`` (a perturbed output: every layer reading it sees the probe)."""
        def loss() -> float:
            frozen.reset_randomness()
            y = net.evaluate({**values, **overrides}, start)[output]
            return float(np.sum(y * projection))
        return loss

    result = GradcheckResult(tolerance=tolerance)

    def measure(analytic: np.ndarray, probe: np.ndarray,
                loss: Callable[[], float]) -> tuple[int, float, int]:
        chosen = _sample(rng, probe.size, samples)
        numeric = derivatives(loss, probe, chosen, h)
        error = numeric.compare(analytic.reshape(-1)[chosen], tolerance)
        return len(chosen), error, numeric.kinks

    checked: dict[str, tuple[int, float, int]] = {}   # per output read: measured once

    for index, layer in enumerate(layers):
        sources = list(dict.fromkeys(net.sources[index]))
        for source in sources:
            if source not in checked:
                value = values[source]
                probe = np.array(value, dtype=np.float64, order="C", copy=True)
                analytic = node_grads.get(source)
                if analytic is None:             # read by dead branches only
                    analytic = np.zeros_like(probe)
                checked[source] = measure(analytic, probe,
                                          loss_from(net.readers[source][0], {source: probe}))
            tensor = "input" if len(sources) == 1 else f"input:{source}"
            result.tensors.append(TensorCheck(layer.name, tensor, *checked[source]))
        for key, array in layer.params.items():
            entries, error, kinks = measure(param_grads[index][key], array,
                                            loss_from(index, {}))
            result.tensors.append(TensorCheck(layer.name, key, entries, error, kinks))
        if progress is not None:
            progress(index + 1, len(layers))
    return result
