"""Gradient checking: back-propagated gradients against centred differences, in float64.

The scalar loss is a fixed random projection of the network's output,
``L = Σ y ⊙ P`` with ``P ~ N(0, 1)`` drawn once, so ``dL/dy = P``.  For every layer
``i`` the check compares, on at most ``samples`` randomly chosen entries each,

- the gradient w.r.t. the layer's *input* — the complete gradient of the output it
  reads, as :meth:`engine.Network.backward` returns it: summed over every layer reading
  that output (a fan-out, e.g. a ResNet shortcut), or the network's input gradient;
  a merge layer has one such tensor per input, ``"input:<name>"``;
- the gradient w.r.t. each of its parameter tensors,

with the centred difference ``(L(θ + h) − L(θ − h)) / 2h``, where ``L`` re-runs the
network from the first layer that sees the perturbed value (every reader of a perturbed
output sees it; outputs computed before stay as they were).  The error of one tensor is
the relative error of the sampled vectors, ``‖a − n‖₂ / (‖a‖₂ + ‖n‖₂)``; a layer's error
is the largest over its tensors.  Correct layers give about 1e-9 or less; a layer
passes below 1e-6.  A wrong ``backward`` shows at its layer, at the layers upstream of
it, and at the other readers of the outputs it reads (they share those gradients).

Two refinements keep the check honest where plain differences are not:

- *Kinks.*  Where the loss is not differentiable — a ReLU input at exactly 0 (common:
  ReLU zeros tie inside the max-pool windows that follow), values tying for a maximum —
  the two one-sided differences disagree.  The entry is re-measured with ``h/100``; if
  they still disagree the kink is at the entry itself, both one-sided derivatives are
  measured, and a back-propagated value between them (a valid choice there) counts as
  correct (:class:`Derivatives`).  The number of such entries is reported.
- *Resolution.*  A difference cannot see a derivative below ``ρ = ε·|L|/h`` (one
  rounding of the loss over the step; about 2e-10·|L| with ``h = 1e-6``), and rounding
  through a deep stack reaches ~20ρ.  The denominator of the relative error is at least
  ``1000·‖ρ‖ / tolerance``: absolute differences below 1000ρ per entry count as noise,
  so a gradient that is exactly zero in theory (a conv bias followed by batchnorm) is
  not failed for its rounding noise.

Randomness and state: every layer's generator is reset before each evaluation, so
dropout draws the same mask every time; batchnorm in training mode recomputes its batch
statistics each time (its running statistics do not affect the output) and its buffers
are restored afterwards.

>>> from convcalc.spec import Spec
>>> spec = Spec.model_validate({"input": [2, 6, 6], "layers": [
...     {"type": "conv", "filters": 3, "kernel": 3}, "tanh", "flatten",
...     {"type": "dense", "units": 4}]})
>>> result = gradcheck(spec, batch=2, seed=0)
>>> result.ok, sorted(result.per_layer)
(True, ['conv1', 'dense1', 'flatten1', 'tanh1'])
>>> result.max_error < 1e-6
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: A layer passes when its relative error is below this.
TOLERANCE = 1e-6
#: Default step of the centred differences.
STEP = 1e-6
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
                h: float = STEP) -> Derivatives:
    """Centred differences ``(L(θ + h) − L(θ − h)) / 2h`` of ``loss()`` for entries of
    ``array`` (flat ``indices``, default all), perturbing it in place and restoring it.

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
            kink = _crosses_kink(base, plus, minus, step)
            value[position] = low[position] = high[position] = (plus - minus) / (2 * step)
            resolution[position] = _EPS * max(abs(base), abs(plus), abs(minus)) / step
            if not kink:
                break
        else:  # the kink is at the entry itself: one-sided derivatives, O(h²)
            plus, minus = at(index, h), at(index, -h)
            forward = (4 * plus - at(index, 2 * h) - 3 * base) / (2 * h)
            backward = (3 * base - 4 * minus + at(index, -2 * h)) / (2 * h)
            value[position] = (forward + backward) / 2
            low[position], high[position] = min(forward, backward), max(forward, backward)
            resolution[position] = _EPS * max(abs(base), abs(plus), abs(minus)) / h
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


def _crosses_kink(base: float, plus: float, minus: float, h: float) -> bool:
    """True when the one-sided slopes differ by more than a smooth loss allows.

    For a smooth loss ``(plus − base)/h − (base − minus)/h = h·L''``, tiny next to the
    slopes; a kink of slope jump ``Δ`` inside ``[−h, h]`` makes it about ``Δ``.
    """
    forward, backward = (plus - base) / h, (base - minus) / h
    scale = abs(forward) + abs(backward)
    noise = 64 * _EPS * (abs(base) + abs(plus) + abs(minus)) / h
    return abs(forward - backward) > 1e-5 * scale + noise


@dataclass(frozen=True)
class TensorCheck:
    """One compared tensor: ``layer``, ``tensor`` (``"input"`` or a parameter name), how
    many ``entries`` were sampled, the relative ``error``, and how many sampled entries
    sat on a kink (where any value between the one-sided derivatives passes)."""

    layer: str
    tensor: str
    entries: int
    error: float
    kinks: int = 0


@dataclass
class GradcheckResult:
    """Every compared tensor, the largest error per layer, and the verdict."""

    tensors: list[TensorCheck] = field(default_factory=list)
    tolerance: float = TOLERANCE

    @property
    def per_layer(self) -> dict[str, float]:
        """``{layer name: largest relative error over its input and parameters}``."""
        out: dict[str, float] = {}
        for check in self.tensors:
            out[check.layer] = max(out.get(check.layer, 0.0), check.error)
        return out

    @property
    def max_error(self) -> float:
        return max((check.error for check in self.tensors), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_error < self.tolerance

    def failing(self) -> dict[str, float]:
        """The layers whose error is not below the tolerance."""
        return {name: err for name, err in self.per_layer.items() if err >= self.tolerance}


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


def gradcheck(net_or_spec: Any, x: np.ndarray | None = None, *, batch: int = 2,
              seed: int = 0, samples: int = 20, h: float = STEP,
              tolerance: float = TOLERANCE,
              progress: Callable[[int, int], None] | None = None) -> GradcheckResult:
    """Check every layer's gradients (input and parameters) by centred differences.

    ``net_or_spec`` is a float64 :class:`engine.Network` or a spec (built in float64
    with ``seed``).  ``x`` defaults to a standard-normal batch of ``batch`` examples.
    ``progress(done, total)`` is called after each layer.  The network's parameters,
    buffers and generators are left as they were.
    """
    from .network import Network, build

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
        return _check(net, np.asarray(x, dtype=np.float64), rng, frozen, samples, h,
                      tolerance, progress)
    finally:
        frozen.restore()


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
