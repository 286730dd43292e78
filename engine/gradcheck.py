"""Gradient checking: back-propagated gradients against centred differences, in float64.

The scalar loss is a fixed random projection of the network's output,
``L = Σ y ⊙ P`` with ``P ~ N(0, 1)`` drawn once, so ``dL/dy = P``.  For every layer
``i`` the check compares, on at most ``samples`` randomly chosen entries each,

- the gradient w.r.t. the layer's *input* (what ``backward`` returned into layer ``i``),
- the gradient w.r.t. each of its parameter tensors,

with the centred difference ``(L(θ + h) − L(θ − h)) / 2h``, where ``L`` re-runs layers
``i …`` from the perturbed value.  The error of one tensor is the relative error of the
sampled vectors, ``‖a − n‖₂ / (‖a‖₂ + ‖n‖₂)`` (0 when both are zero); a layer's error is
the largest over its tensors.  Well-implemented layers give about 1e-9 or less.

Randomness and state: every layer's generator is reset before each evaluation, so
dropout draws the same mask every time; batchnorm in training mode recomputes its batch
statistics each time (its running statistics do not affect the output) and its buffers
are restored afterwards.  Max/ReLU kinks: a perturbation that crosses a point where the
loss is not differentiable (a ReLU input at 0, two values tying for a maximum) makes
the centred difference wrong; such a crossing shows as the two one-sided differences
disagreeing, and the entry is then re-measured with ``h`` a hundred times smaller (up to
twice).

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


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``‖a − n‖₂ / (‖a‖₂ + ‖n‖₂)``, and 0 when both vectors are zero.

    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> round(relative_error(np.array([1.0]), np.array([1.1])), 4)
    0.0476
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    scale = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - n) / scale)


def _centred(loss: Callable[[], float], array: np.ndarray, index: int, h: float
             ) -> tuple[float, float, float]:
    """The centred difference at flat ``index``, and the losses at ``+h`` and ``−h``."""
    flat = array.reshape(-1)
    original = flat[index]
    flat[index] = original + h
    plus = loss()
    flat[index] = original - h
    minus = loss()
    flat[index] = original
    return (plus - minus) / (2 * h), plus, minus


def numerical_gradient(loss: Callable[[], float], array: np.ndarray,
                       indices: Any = None, h: float = STEP) -> np.ndarray:
    """Centred differences of ``loss()`` w.r.t. entries of ``array`` (float64).

    ``array`` is perturbed in place, one entry at a time, and restored exactly.
    ``indices`` are flat indices (default: every entry, returned in ``array``'s shape).
    When the two one-sided differences disagree — the step crossed a kink of the loss —
    the entry is re-measured with ``h/100`` (then ``h/10⁴``), keeping the estimate whose
    one-sided differences agree best.

    >>> a = np.array([1.0, 2.0, 3.0])
    >>> grad = numerical_gradient(lambda: float((a ** 2).sum()), a)
    >>> np.allclose(grad, [2.0, 4.0, 6.0]), a.tolist()
    (True, [1.0, 2.0, 3.0])
    >>> g = numerical_gradient(lambda: float(abs(a[0] - 1.0 - 1e-7)), a, [0])  # kink at 1 + 1e-7
    >>> float(np.round(g[0], 6))
    -1.0
    """
    if array.dtype != np.float64:
        raise ValueError(f"numerical gradients need float64 arrays, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient perturbs the array in place; it must be "
                         "C-contiguous")
    whole = indices is None
    flat_indices = np.arange(array.size) if whole else np.asarray(indices, dtype=np.intp)
    base = loss()
    out = np.empty(len(flat_indices))
    for position, index in enumerate(flat_indices):
        best_gap, step = np.inf, h
        for _ in range(3):
            slope, plus, minus = _centred(loss, array, int(index), step)
            gap = abs((plus - base) - (base - minus)) / step   # forward − backward slope
            if gap < best_gap:
                best_gap, out[position] = gap, slope
            if not _crosses_kink(base, plus, minus, step):
                break
            step /= 100.0
    return out.reshape(array.shape) if whole else out


def _crosses_kink(base: float, plus: float, minus: float, h: float) -> bool:
    """True when the one-sided slopes differ by more than a smooth loss allows.

    For a smooth loss ``(plus − base)/h − (base − minus)/h = h·L''``, tiny next to the
    slopes; a kink of slope jump ``Δ`` inside ``[−h, h]`` makes it about ``Δ``.
    """
    forward, backward = (plus - base) / h, (base - minus) / h
    scale = abs(forward) + abs(backward)
    noise = 64 * np.finfo(np.float64).eps * (abs(base) + abs(plus) + abs(minus)) / h
    return abs(forward - backward) > 1e-5 * scale + noise


@dataclass(frozen=True)
class TensorCheck:
    """One compared tensor: ``layer``, ``tensor`` (``"input"`` or a parameter name), how
    many ``entries`` were sampled, and the relative ``error``."""

    layer: str
    tensor: str
    entries: int
    error: float


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
    frozen.reset_randomness()
    inputs = []
    out = x
    for layer in layers:
        inputs.append(out)
        out = layer.forward(out)
    projection = rng.standard_normal(out.shape)
    input_grads: list[np.ndarray] = [np.empty(0)] * len(layers)
    param_grads: list[dict[str, np.ndarray]] = [{}] * len(layers)
    grad = projection
    for index in range(len(layers) - 1, -1, -1):
        grad = layers[index].backward(grad)
        input_grads[index] = grad
        param_grads[index] = {k: v.copy() for k, v in layers[index].grads.items()}

    def loss_from(start: int, value: np.ndarray) -> Callable[[], float]:
        def loss() -> float:
            frozen.reset_randomness()
            y = value
            for layer in layers[start:]:
                y = layer.forward(y)
            return float(np.sum(y * projection))
        return loss

    result = GradcheckResult(tolerance=tolerance)
    for index, layer in enumerate(layers):
        probe = inputs[index].copy()
        chosen = _sample(rng, probe.size, samples)
        numeric = numerical_gradient(loss_from(index, probe), probe, chosen, h)
        result.tensors.append(TensorCheck(layer.name, "input", len(chosen), relative_error(
            input_grads[index].reshape(-1)[chosen], numeric)))
        for key, array in layer.params.items():
            chosen = _sample(rng, array.size, samples)
            numeric = numerical_gradient(loss_from(index, inputs[index]), array, chosen, h)
            result.tensors.append(TensorCheck(layer.name, key, len(chosen), relative_error(
                param_grads[index][key].reshape(-1)[chosen], numeric)))
        if progress is not None:
            progress(index + 1, len(layers))
    return result
