"""Verifying a design: build it as real arrays and check every prediction.

:func:`verify` analyses a spec, estimates the memory a run needs (refusing above a
limit), then builds the network with the NumPy reference engine (:mod:`engine`, imported
only here and only when called: ``import convcalc`` never imports NumPy), runs a random
batch forward and a random output gradient backward, and compares per layer:

- the predicted output shape with the shape of the array the layer produced;
- the predicted parameter (and buffer) count with the sizes of the layer's arrays;
- every parameter's gradient shape with the parameter's shape (and the input gradient's
  shape with the input's);
- with ``gradcheck``: the back-propagated gradients against centred differences, in
  float64 (:func:`engine.gradcheck`), failing any layer whose relative error is not
  below 1e-6 — ``True`` or ``"directions"``: one random direction per tensor, each
  layer against its own forward, and the input and all parameters end to end;
  ``"entries"``: the per-entry check, on sampled entries of every tensor.

>>> import convcalc
>>> result = convcalc.verify(convcalc.validate({"input": [1, 28, 28], "layers": [
...     {"type": "conv", "filters": 30, "kernel": 5}, "relu",
...     {"type": "maxpool", "kernel": 2}, "flatten", {"type": "dense", "units": 10}]}))
>>> result.ok, [row.observed_shape for row in result.layers][2], result.layers[0].observed_params
(True, (30, 12, 12), 780)
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .errors import ArgumentError
from .memory import RUNTIME_BYTES, MemoryEstimate, check_memory, estimate_memory, parse_bytes
from .report import Report, Shape

#: Gradient check threshold: a layer fails at or above this relative error.
GRADCHECK_TOLERANCE = 1e-6
#: ``gradcheck`` methods: one random direction per tensor (``True`` means this), or
#: sampled entries of every tensor.
GRADCHECK_METHODS = ("directions", "entries")
DEFAULT_MAX_MEMORY = 2 * 2**30
#: Bounds of verify's arguments: a batch beyond this is not a check, a seed is 32-bit.
MAX_BATCH = 2**20
MAX_SEED = 2**32 - 1
DTYPES = ("float32", "float64")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LayerCheck:
    """One layer: predicted (by the calculator) against observed (on the engine's arrays)."""

    #: the layer's name, as in the report
    name: str
    #: its ``type``
    type: str
    #: the calculator's output shape (one example)
    predicted_shape: Shape | None
    #: the shape of the engine's output array, without the batch axis (``None``: not reached)
    observed_shape: Shape | None
    #: the calculator's parameter count
    predicted_params: int | None
    #: the sizes of the engine's parameter arrays, added up
    observed_params: int | None
    #: the calculator's buffer count (running statistics)
    predicted_buffers: int | None = None
    #: the sizes of the engine's buffer arrays, added up
    observed_buffers: int | None = None
    #: each parameter whose gradient is missing or has another shape or dtype
    gradient_problems: tuple[str, ...] = ()
    #: the gradient check's largest relative error over this layer's tensors (``None``: not run)
    gradcheck_error: float | None = None
    #: how many of its checks met a kink (and were measured with a smaller step)
    gradcheck_kinks: int = 0
    #: the relative error the gradient check accepts
    tolerance: float = GRADCHECK_TOLERANCE

    @property
    def shape_ok(self) -> bool:
        return self.observed_shape is not None and self.predicted_shape == self.observed_shape

    @property
    def params_ok(self) -> bool:
        return (self.observed_params is not None
                and self.predicted_params == self.observed_params
                and self.predicted_buffers == self.observed_buffers)

    @property
    def gradients_ok(self) -> bool:
        return not self.gradient_problems

    @property
    def gradcheck_ok(self) -> bool:
        """True when not checked, or when the error is below the tolerance."""
        return self.gradcheck_error is None or self.gradcheck_error < self.tolerance

    @property
    def ok(self) -> bool:
        return self.shape_ok and self.params_ok and self.gradients_ok and self.gradcheck_ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "ok": self.ok,
            "predicted_shape": _list(self.predicted_shape),
            "observed_shape": _list(self.observed_shape), "shape_ok": self.shape_ok,
            "predicted_params": self.predicted_params, "observed_params": self.observed_params,
            "predicted_buffers": self.predicted_buffers,
            "observed_buffers": self.observed_buffers, "params_ok": self.params_ok,
            "gradients_ok": self.gradients_ok, "gradient_problems": list(self.gradient_problems),
            "gradcheck_error": self.gradcheck_error, "gradcheck_kinks": self.gradcheck_kinks,
            "gradcheck_ok": self.gradcheck_ok,
        }


def _list(shape: Shape | None) -> list[int] | None:
    return None if shape is None else list(shape)


@dataclass(frozen=True)
class EndToEndCheck:
    """One whole-network check of the directional gradient check: ``tensor`` is
    ``"input"`` (the network's input) or ``"parameters"`` (all of them along one
    direction); ``entries`` the values the direction moved, ``error`` the relative
    error, ``kinks`` 1 when the direction met a kink (measured with a smaller step)."""

    #: ``"input"`` or ``"parameters"``
    tensor: str
    #: the values the direction moved
    entries: int
    #: the relative error between the analytic and the numerical directional derivative
    error: float
    #: 1 when the direction met a kink
    kinks: int = 0
    #: the relative error accepted
    tolerance: float = GRADCHECK_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.error < self.tolerance      # False for NaN

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "entries": self.entries, "error": self.error,
                "kinks": self.kinks, "ok": self.ok}


@dataclass(frozen=True)
class VerificationResult:
    """Everything :func:`verify` compared; ``ok`` when every layer agrees.

    ``engine_error`` is set when the engine refused a spec the calculator accepted (then
    the layers it did not reach have no observed values).  ``seconds`` holds the time of
    each phase (``build``, ``forward``, ``backward``, ``gradcheck``).
    ``gradcheck_method`` is ``"directions"`` or ``"entries"`` when gradients were
    checked (``gradcheck`` is then True); ``gradcheck_end_to_end`` holds the directional
    check's whole-network checks.
    """

    #: the spec's ``name``
    name: str | None
    #: the file the spec was read from
    file: str | None
    #: examples in the random batch the engine ran
    batch: int
    #: the seed of the weights, the batch and the output gradient
    seed: int
    #: the engine's dtype (``float32`` or ``float64``)
    dtype: str
    #: one check per layer, in the report's order
    layers: tuple[LayerCheck, ...]
    #: the estimated peak memory of the engine run (:mod:`convcalc.memory`)
    memory: MemoryEstimate
    #: the limit the estimate was held to, in bytes
    max_memory: int
    #: whether gradients were compared with centred differences
    gradcheck: bool = False
    #: the input gradient has the input's shape
    input_gradient_ok: bool = True
    #: the engine's failure, in one line (``None``: it ran)
    engine_error: str | None = None
    #: seconds per phase: ``build``, ``forward``, ``backward``, ``gradcheck``
    seconds: dict[str, float] = field(default_factory=dict)
    #: the relative error the gradient check accepts
    tolerance: float = GRADCHECK_TOLERANCE
    #: ``"directions"`` or ``"entries"`` (``None``: no gradient check)
    gradcheck_method: str | None = None
    #: the directional check's whole-network checks
    gradcheck_end_to_end: tuple[EndToEndCheck, ...] = ()
    #: the engine run's measured peak (build, forward, backward; tracemalloc: arrays and
    #: Python objects, not the interpreter itself); ``None`` if it was not measured
    measured_peak: int | None = None

    @property
    def ok(self) -> bool:
        return (self.engine_error is None and self.input_gradient_ok
                and all(row.ok for row in self.layers)
                and all(check.ok for check in self.gradcheck_end_to_end))

    @property
    def failing(self) -> tuple[LayerCheck, ...]:
        return tuple(row for row in self.layers if not row.ok)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see ``docs/verifying.rst``)."""
        return {
            "name": self.name, "file": self.file, "ok": self.ok, "batch": self.batch,
            "seed": self.seed, "dtype": self.dtype, "gradcheck": self.gradcheck,
            "gradcheck_tolerance": self.tolerance if self.gradcheck else None,
            "gradcheck_method": self.gradcheck_method,
            "gradcheck_end_to_end": [check.to_dict() for check in self.gradcheck_end_to_end]
            if self.gradcheck_method == "directions" else None,
            "engine_error": self.engine_error, "input_gradient_ok": self.input_gradient_ok,
            "memory": {**self.memory.to_dict(), "limit_bytes": self.max_memory,
                       "runtime_bytes": RUNTIME_BYTES,
                       "measured_peak_bytes": self.measured_peak},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "layers": [row.to_dict() for row in self.layers],
        }



# --- running ---------------------------------------------------------------------------------


def _check_arguments(batch: Any, seed: Any, dtype: Any, gradcheck: Any, max_memory: Any,
                     progress: Any) -> int:
    """Wrong types are a ``TypeError`` naming the argument; bad values an
    :class:`~convcalc.errors.ArgumentError`.  Returns ``max_memory`` in bytes (a size
    like ``"2GiB"`` is read as ``--max-memory`` reads it)."""
    for name, value in (("batch", batch), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"verify({name}): expected int, got {type(value).__name__}")
    if not 1 <= batch <= MAX_BATCH:
        raise ArgumentError(f"batch must be a whole number from 1 to {MAX_BATCH} (got {batch})")
    if not 0 <= seed <= MAX_SEED:
        raise ArgumentError(f"seed must be a whole number from 0 to {MAX_SEED} (got {seed})")
    if not isinstance(dtype, str):
        raise TypeError(f"verify(dtype): expected str, got {type(dtype).__name__}")
    if dtype not in DTYPES:
        raise ArgumentError(f"dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")
    if not isinstance(gradcheck, (bool, str)):
        raise TypeError("verify(gradcheck): expected bool or str ('directions', "
                        f"'entries'), got {type(gradcheck).__name__}")
    if isinstance(gradcheck, str) and gradcheck not in GRADCHECK_METHODS:
        raise ArgumentError(f"gradcheck must be True, False or one of "
                            f"{', '.join(GRADCHECK_METHODS)} (got {gradcheck!r})")
    if progress is not None and not callable(progress):
        raise TypeError("verify(progress): expected a callable (done, total) or None, got "
                        f"{type(progress).__name__}")
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, str)):
        raise TypeError("verify(max_memory): expected int (bytes) or str ('2GiB'), got "
                        f"{type(max_memory).__name__}")
    try:
        return parse_bytes(max_memory)
    except ValueError as error:
        raise ArgumentError(f"max_memory: {error}") from None


def gradcheck_method(gradcheck: bool | str) -> str | None:
    """``verify``'s ``gradcheck`` as a method: ``None`` (no check), ``"directions"``
    (``True``, the default method) or ``"entries"``.

    >>> gradcheck_method(True), gradcheck_method("entries"), gradcheck_method(False)
    ('directions', 'entries', None)
    """
    if gradcheck is True:
        return "directions"
    return gradcheck or None


def verify(spec: Any, batch: int = 2, seed: int = 0, dtype: str = "float32",
           gradcheck: bool | str = False, max_memory: int | str = DEFAULT_MAX_MEMORY,
           progress: Progress | None = None) -> VerificationResult:
    """Build ``spec`` with the reference engine and check every prediction of the report.

    ``spec`` is a :class:`~convcalc.spec.Spec` or anything :func:`convcalc.validate`
    takes.  A spec whose analysis has errors is not run: :class:`~convcalc.ShapeError`.
    A run whose estimated peak memory exceeds ``max_memory`` bytes is refused with
    :class:`~convcalc.ResourceError`, naming the estimate and the largest batch that fits.
    ``gradcheck``: ``False``; ``True`` or ``"directions"`` (one random direction per
    tensor: two forward passes of a layer each, and four of the whole network);
    ``"entries"`` (the per-entry check, on at most 20 entries of every tensor, each
    re-running the network from that layer: slow).
    ``progress(done, total)`` is called as layers finish (forward, backward, and the
    gradient check: ``total`` counts them all).
    """
    from .analysis import analyze
    from .loading import validate

    max_memory = _check_arguments(batch, seed, dtype, gradcheck, max_memory, progress)
    method = gradcheck_method(gradcheck)
    spec = validate(spec)
    report = analyze(spec).raise_for_errors()
    memory = estimate_memory(spec, batch, dtype, report=report)
    check_memory(memory, max_memory, "running this network")
    if method:
        check_memory(estimate_memory(spec, batch, gradcheck=method, report=report),
                     max_memory, "the float64 gradient check")
    run = _EngineRun(spec, report, batch, seed, dtype, progress, method)
    rows = run.compare()
    errors: dict[str, tuple[float, int]] = {}
    end_to_end: tuple[EndToEndCheck, ...] = ()
    if method and run.error is None:
        try:
            errors, end_to_end = run.gradcheck(method)
        except Exception as error:  # the engine failed (it could not allocate, say)
            run.error = _describe(error)
    if errors:
        rows = [_with_gradcheck(row, *errors.get(row.name, (None, 0))) for row in rows]
    return VerificationResult(
        name=spec.name, file=report.file, batch=batch, seed=seed, dtype=dtype,
        layers=tuple(rows), memory=memory, max_memory=max_memory, gradcheck=bool(method),
        input_gradient_ok=run.input_gradient_ok, engine_error=run.error,
        seconds=run.seconds, gradcheck_method=method, gradcheck_end_to_end=end_to_end,
        measured_peak=run.measured_peak)


def _traced_peak(run: Callable[[], None]) -> int | None:
    """Call ``run`` under :mod:`tracemalloc` and return the peak bytes it traced (NumPy
    reports its arrays' data to it) — ``None`` when the caller is already tracing (their
    trace is left alone)."""
    if tracemalloc.is_tracing():
        run()
        return None
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _describe(error: Exception) -> str:
    """One line: the message (which names the layer), with the type unless ValueError."""
    text = str(error).splitlines()[0] if str(error) else ""
    return text if isinstance(error, ValueError) else f"{type(error).__name__}: {text}"


def _with_gradcheck(row: LayerCheck, error: float | None, kinks: int) -> LayerCheck:
    from dataclasses import replace

    return replace(row, gradcheck_error=error, gradcheck_kinks=kinks)


class _EngineRun:
    """One engine build + forward + backward of a spec, and what it observed."""

    def __init__(self, spec: Any, report: Report, batch: int, seed: int, dtype: str,
                 progress: Progress | None, method: str | None):
        self.spec, self.report = spec, report
        self.batch, self.seed = batch, seed
        # (verify accepts these two only)
        self.dtype: Literal["float32", "float64"] = "float64" if dtype == "float64" else "float32"
        self.layer_count = len(spec.layers)
        self.method = method
        # the gradient check reports the layers, plus one step for its end-to-end checks
        self.total_steps = self.layer_count * 2 + (
            0 if method is None else self.layer_count + (method == "directions"))
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.error: str | None = None
        self.input_gradient_ok = True
        self.observed: dict[str, dict[str, Any]] = {}
        # imported before the trace: modules are not the run's (NumPy imports numpy.random
        # lazily, on the engine's first draw)
        import numpy.random  # noqa: F401

        import engine  # noqa: F401

        #: the run's peak of traced allocations (NumPy's arrays and Python's objects)
        self.measured_peak = _traced_peak(self._run)

    def _tick(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, self.total_steps)

    def _run(self) -> None:
        import numpy as np

        import engine

        started = time.perf_counter()
        try:
            net = engine.build(self.spec, seed=self.seed, dtype=self.dtype)
        except Exception as error:  # any engine failure is a failed verification
            self.error = _describe(error)
            return
        self.seconds["build"] = time.perf_counter() - started
        rng = np.random.default_rng(self.seed)
        count = self.layer_count
        try:
            # Drawn in the run's dtype: a float64 draw cast down would briefly hold 3× the
            # input (the memory estimate counts the arrays the run keeps, not that).
            x = rng.standard_normal((self.batch, *self.spec.input), dtype=self.dtype)
            started = time.perf_counter()
            y = net.forward(x, on_layer=lambda i, _layer: self._tick(i + 1))
            self.seconds["forward"] = time.perf_counter() - started
            dout = rng.standard_normal(y.shape, dtype=self.dtype)
            del y
            started = time.perf_counter()
            dx = net.backward(dout, on_layer=lambda i, _layer: self._tick(2 * count - i))
            self.seconds["backward"] = time.perf_counter() - started
            self.input_gradient_ok = dx.shape == x.shape
        except Exception as error:
            self.error = _describe(error)
        self._observe(net)

    def _observe(self, net: Any) -> None:
        for layer in net.layers:
            if layer.name not in net.observed_shapes:
                continue
            problems = []
            for key, value in layer.params.items():
                grad = layer.grads.get(key)
                if grad is None:
                    problems.append(f"{key}: no gradient")
                elif grad.shape != value.shape:
                    problems.append(f"{key}: gradient {list(grad.shape)} ≠ parameter "
                                    f"{list(value.shape)}")
                elif grad.dtype != value.dtype:
                    problems.append(f"{key}: gradient {grad.dtype} ≠ parameter {value.dtype}")
            self.observed[layer.name] = {
                "shape": net.observed_shapes[layer.name],
                "params": net.param_count(layer.name),
                "buffers": net.buffer_count(layer.name),
                "problems": tuple(problems),
            }

    def compare(self) -> list[LayerCheck]:
        rows = []
        for row in self.report.layers:
            seen = self.observed.get(row.name, {})
            rows.append(LayerCheck(
                name=row.name, type=row.type, predicted_shape=row.output_shape,
                observed_shape=seen.get("shape"), predicted_params=row.params,
                observed_params=seen.get("params"), predicted_buffers=row.buffers,
                observed_buffers=seen.get("buffers"),
                gradient_problems=seen.get("problems", ()) if seen else ("not reached",)))
        return rows

    def gradcheck(self, method: str
                  ) -> tuple[dict[str, tuple[float, int]], tuple[EndToEndCheck, ...]]:
        """Per layer: (largest relative error, kinks), float64, same seed; and the
        end-to-end checks (``method``: ``"directions"`` or ``"entries"``)."""
        import engine

        started = time.perf_counter()
        offset = 2 * self.layer_count
        result = engine.gradcheck(self.spec, batch=self.batch, seed=self.seed,
                                  tolerance=GRADCHECK_TOLERANCE, method=method,
                                  progress=lambda done, _total: self._tick(offset + done))
        self.seconds["gradcheck"] = time.perf_counter() - started
        kinks: dict[str, int] = {}
        for check in result.tensors:
            kinks[check.layer] = kinks.get(check.layer, 0) + check.kinks
        end_to_end = tuple(EndToEndCheck(check.tensor, check.entries, check.error,
                                         check.kinks) for check in result.end_to_end)
        return ({name: (error, kinks.get(name, 0)) for name, error in result.per_layer.items()},
                end_to_end)
