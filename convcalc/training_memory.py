"""Training memory as a framework would need it, from a report's counts (analytic,
exact integers of bytes) — what torchinfo prints after its table, and what a training
step adds on top: gradients and the optimizer's state.

For a batch of ``N`` examples in a dtype of ``b`` bytes a value:

- **input**: ``N · prod(input_shape) · b``;
- **forward**: every layer's output, ``N · Σ prod(output_shape) · b`` — what autograd
  keeps for the backward pass, counted as torchinfo counts it (an upper bound: a
  framework frees some early, and keeps some inputs besides);
- **backward**: a gradient of the same size for every output (the same figure again);
- **params** ``P · b`` and **buffers** ``B · b`` (batchnorm's running statistics);
- **gradients**: one per trainable parameter, ``T · b`` (frozen layers have none);
- **optimizer state**: values kept per trainable parameter — ``sgd`` none, ``momentum``
  one (the velocity), ``adam`` two (the first and second moments): ``k · T · b``
  (PyTorch's Adam also keeps one step counter per tensor, a few bytes, not counted);
- **training total**: the sum of all the above.

Everything is in one dtype (no mixed precision: an AMP run keeps float32 master weights
beside float16 activations).  The NumPy engine's own peak, which :func:`convcalc.verify`
refuses above a limit, is :mod:`convcalc.memory`'s estimate.

>>> import convcalc
>>> report = convcalc.analyze({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]})
>>> memory = footprint(report, batch=2, dtype="float32", optimizer="adam")
>>> memory.input, memory.forward, memory.params, memory.optimizer_state   # 2·3072·4, 2·10240·4, 760·4, 2·760·4
(24576, 81920, 3040, 6080)
>>> memory.total == 24576 + 2 * 81920 + 3040 + 0 + 3040 + 6080
True
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, Literal

from .report import LayerRow, Report, with_exact

Dtype = Literal["float32", "float16", "bfloat16", "float64"]
Optimizer = Literal["sgd", "momentum", "adam"]

#: Bytes of one value of each dtype the estimate knows.
DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
#: Values of optimizer state kept per trainable parameter.
OPTIMIZER_STATE: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class Footprint:
    """Bytes of a training step of ``batch`` examples in ``dtype`` with ``optimizer``
    (see the module docstring for each figure's formula).

    ``layers`` holds each layer's output size in bytes (``None`` where the report could
    not compute the shape), in the report's layer order.
    """

    #: examples per step
    batch: int
    #: the element type of every tensor (``float32``, ``float16``, ``bfloat16``, ``float64``)
    dtype: str
    #: whose state is counted: ``sgd`` (none), ``momentum`` (one value a parameter), ``adam`` (two)
    optimizer: str
    #: the input batch (``None`` for an input with sizes left open: a report on a spec
    #: no size suits)
    input: int | None
    #: every layer's output for the batch (what the backward pass needs)
    forward: int
    #: a gradient for every output (the same size as ``forward``)
    backward: int
    #: every parameter, trainable or frozen
    params: int
    #: batchnorm's running statistics
    buffers: int
    #: one gradient per trainable parameter
    gradients: int
    #: the optimizer's values per trainable parameter
    optimizer_state: int
    #: each layer's output for the batch (``None`` without a shape), in the report's order
    layers: tuple[int | None, ...]

    @property
    def total(self) -> int | None:
        """The estimated training total: input, forward and backward activations,
        parameters, buffers, gradients and optimizer state (``None`` when the input's
        size is not known)."""
        if self.input is None:
            return None
        return (self.input + self.forward + self.backward + self.params + self.buffers
                + self.gradients + self.optimizer_state)

    def to_dict(self) -> dict[str, Any]:
        """Exact bytes (``exact`` strings beside integers a double would round)."""
        return with_exact({
            "batch": self.batch, "dtype": self.dtype, "optimizer": self.optimizer,
            "bytes_per_value": DTYPE_BYTES[self.dtype],
            "input_bytes": self.input, "forward_bytes": self.forward,
            "backward_bytes": self.backward, "params_bytes": self.params,
            "buffers_bytes": self.buffers, "gradients_bytes": self.gradients,
            "optimizer_state_bytes": self.optimizer_state, "total_bytes": self.total,
        })


def check_footprint_arguments(batch: Any, dtype: Any, optimizer: Any) -> None:
    """Raise :class:`~convcalc.errors.ArgumentError` (or ``TypeError``) naming the
    argument a caller got wrong."""
    from .errors import ArgumentError

    if isinstance(batch, bool) or not isinstance(batch, int):
        raise TypeError(f"footprint(batch): expected int, got {type(batch).__name__}")
    if batch < 1:
        raise ArgumentError(f"batch: expected at least 1, got {batch}")
    if dtype not in DTYPE_BYTES:
        raise ArgumentError(f"dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    if optimizer not in OPTIMIZER_STATE:
        raise ArgumentError(f"optimizer: expected one of {', '.join(OPTIMIZER_STATE)}, "
                            f"got {optimizer!r}")


def layer_bytes(row: LayerRow, batch: int, dtype: str) -> int | None:
    """One layer's output for ``batch`` examples, in bytes (``None`` without a shape)."""
    values = row.activations
    return None if values is None else values * batch * DTYPE_BYTES[dtype]


def footprint(report: Report, batch: int = 1, dtype: str = "float32",
              optimizer: str = "sgd") -> Footprint:
    """The training memory of ``report``'s network at ``batch``, ``dtype`` and
    ``optimizer`` (``sgd``, ``momentum`` or ``adam``).  Layers whose shape could not be
    computed count zero; an input whose sizes are left open has no input size nor total."""
    check_footprint_arguments(batch, dtype, optimizer)
    size = DTYPE_BYTES[dtype]
    layers = tuple(layer_bytes(row, batch, dtype) for row in report.layers)
    forward = sum(value for value in layers if value is not None)
    trainable = report.trainable_params
    open_input = None in report.input_shape   # (analyze's report on open sizes)
    return Footprint(
        batch=batch, dtype=dtype, optimizer=optimizer,
        input=None if open_input else prod(report.input_shape) * batch * size,
        forward=forward, backward=forward,
        params=report.total_params * size, buffers=report.total_buffers * size,
        gradients=trainable * size, optimizer_state=OPTIMIZER_STATE[optimizer] * trainable * size,
        layers=layers)
