"""Peak memory of an engine run (build, forward, backward), estimated from a report.

:func:`convcalc.verify` runs the NumPy reference engine; before it does, this module
predicts how much memory that run needs, from the *report's* predicted shapes, so a
design too big for the machine is refused instead of swapping.  Pure Python, no NumPy.

The model follows what the engine keeps (``engine/``), in values of the dtype's size;
what one layer keeps and uses is its kind's :meth:`~convcalc.kinds.Kind.cost`, and the
engine decisions it depends on are in :mod:`convcalc.engine_rules`:

- **parameters** and their **gradients** (one array each), **buffers**;
- **activations**: every layer's output (an upper bound: some are freed early).  In a
  graph the engine keeps an output until its last reader has run — a shortcut or an
  inception branch stays alive across the layers in between — and every output counted
  covers that too;
- **branch gradients** (graphs only): in the backward pass, the gradient of an output
  read by several layers is complete only after all of them ran back; meanwhile it
  waits, and adding a second reader's share makes a new sum.  The estimate walks the
  graph in backward order and takes the most values ever waiting (zero for a chain);
- **im2col**: a convolution keeps its column matrix ``N·C·K·P`` (``K`` kernel offsets,
  ``P`` output positions) and, after backward, its column gradient of the same size;
- **caches**: what layers keep besides columns — ReLU masks (1 byte a value), dropout
  masks, batchnorm's normalised input, LRN's scale, padded pool inputs, and the padded
  input (and, when ``dx`` comes by correlation, padded output gradient) a convolution
  keeps as a workspace from call to call;
- **Winograd** (2-D 3×3 stride-1 convs with enough channels, :func:`~convcalc.engine_rules.takes_winograd`):
  instead of columns, tile workspaces (``36`` values per 4×4 output tile and input
  channel, three times; ``2·36 + 2·16`` per tile and filter), and transformed filters
  ``36·F·C`` (part ``winograd_filters``): those of up to 4 Mi values kept from forward to
  backward, plus one layer's transform and its gradient at a time;
- **transient**: the largest set of temporaries of any one layer (padded copies, the
  input gradient, the batched weight-gradient product ``N × weights`` of a conv, the
  output-sized gradient a max/min pool with overlapping windows adds in per offset);
- **runtime**: the interpreter with NumPy and convcalc loaded (64 MiB; it also covers
  NumPy's fixed-size ufunc buffers, ~0.1 MiB).

The random batch of :func:`convcalc.verify` is drawn in the run's dtype, so it is the
input activation and nothing more.

Everything but parameters, gradients, buffers and runtime grows linearly with the batch,
so the largest batch under a limit follows directly.

>>> import convcalc
>>> report_spec = convcalc.validate({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]})
>>> report = convcalc.analyze(report_spec)
>>> estimate = estimate_memory(report_spec, batch=2, report=report)
>>> estimate.parts["parameters"], estimate.parts["im2col"]  # bytes: 760·4; 2·(2·75·1024)·4
(3040, 1228800)
>>> estimate.largest_batch(estimate.total) >= 2
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

from .engine_rules import WINOGRAD_KEEP_TRANSFORMED
from .errors import ResourceError
from .kinds import kind_of
from .kinds.base import Cost
from .report import Report
from .spec import Spec
from .units import format_bytes

#: The Python interpreter with NumPy, pydantic and convcalc imported (measured ~47 MB RSS).
RUNTIME_BYTES = 64 * 2**20
ITEMSIZE = {"float32": 4, "float64": 8}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of one engine run, split into parts (bytes at ``batch``).

    ``fixed`` does not depend on the batch; ``per_example`` is added per example.
    """

    #: the examples the estimate is for
    batch: int
    #: the engine's dtype
    dtype: str
    #: bytes that do not grow with the batch (parameters, gradients, the interpreter)
    fixed: int
    #: bytes added per example (activations, columns, caches, temporaries)
    per_example: int
    #: the estimate's parts by name (``parameters``, ``activations``, ``im2col``, …), in bytes
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.fixed + self.per_example * self.batch

    def largest_batch(self, limit: int) -> int:
        """The largest batch whose estimate is at most ``limit`` bytes (0: none fits)."""
        if self.fixed > limit:
            return 0
        if self.per_example == 0:
            return 2**31
        return (limit - self.fixed) // self.per_example

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "dtype": self.dtype, "total_bytes": self.total,
                "fixed_bytes": self.fixed, "per_example_bytes": self.per_example,
                "parts": dict(self.parts)}


def check_memory(estimate: MemoryEstimate, limit: int, what: str = "running this network"
                 ) -> None:
    """Raise :class:`~convcalc.errors.ResourceError` when ``estimate`` is above ``limit``
    bytes; the error carries the estimate, the limit and the largest batch that fits.

    >>> estimate = MemoryEstimate(batch=4, dtype="float32", fixed=2**20, per_example=2**30)
    >>> check_memory(estimate, 3 * 2**30)
    Traceback (most recent call last):
    ...
    convcalc.errors.ResourceError: running this network needs an estimated 4.00 GiB at batch 4 (float32), more than the limit of 3.00 GiB; the largest batch that fits is 2.
    """
    if estimate.total <= limit:
        return
    fits = estimate.largest_batch(limit)
    found = (f"the largest batch that fits is {fits}" if fits >= 1 else
             f"not even batch 1 fits (parameters, gradients and other fixed costs alone need "
             f"{format_bytes(estimate.fixed)})")
    raise ResourceError(
        f"{what} needs an estimated {format_bytes(estimate.total)} at batch {estimate.batch} "
        f"({estimate.dtype}), more than the limit of {format_bytes(limit)}; {found}.",
        what=what, needed=estimate.total, limit=limit, batch=estimate.batch,
        dtype=estimate.dtype, largest_batch=fits, fixed=estimate.fixed)


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6,
          "mib": 2**20, "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12,
          "tib": 2**40}


#: The largest memory size taken (an estimate beyond it is refused in any case).
MAX_BYTES = 2**60


def parse_bytes(text: str | int) -> int:
    """``"2GiB"``, ``"512 MiB"``, ``"1.5G"``, ``"800MB"`` or a plain number of bytes;
    finite, and at most :data:`MAX_BYTES` (1 EiB).

    >>> parse_bytes("2GiB"), parse_bytes("1.5 G"), parse_bytes("800MB"), parse_bytes(4096)
    (2147483648, 1610612736, 800000000, 4096)
    >>> parse_bytes("lots")
    Traceback (most recent call last):
    ...
    ValueError: not a memory size: 'lots' (examples: 2GiB, 512MiB, 800MB)
    >>> parse_bytes("inf")
    Traceback (most recent call last):
    ...
    ValueError: not a memory size: 'inf' (a finite size of at most 1 EiB, e.g. 2GiB, 512MiB, 800MB)
    """
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise TypeError(f"a memory size is an int (bytes) or a str like '2GiB', "
                        f"not {type(text).__name__}")
    if isinstance(text, int):
        if not 0 <= text <= MAX_BYTES:
            raise ValueError(f"not a memory size: {text} (0 … {MAX_BYTES} bytes)")
        return text
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("kmgtib")
    unit = cleaned[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or value < 0:
        raise ValueError(f"not a memory size: {text!r} (examples: 2GiB, 512MiB, 800MB)")
    if not value * _UNITS[unit] <= MAX_BYTES:     # inf, nan, 1e400, 1e30
        raise ValueError(f"not a memory size: {text!r} (a finite size of at most 1 EiB, "
                         "e.g. 2GiB, 512MiB, 800MB)")
    return int(value * _UNITS[unit])


# --- the whole run ---------------------------------------------------------------------------


def branch_gradients(spec: Spec, sizes: list[int], input_size: int) -> int:
    """The most gradient values waiting at fan-outs at any one step of the backward pass.

    ``sizes[i]`` is layer ``i``'s output size (values per example).  Walking the layers
    last to first, as the engine does: layer ``i`` takes its complete gradient, and hands
    one to each output it reads; an output already holding a gradient (another reader ran
    first) gets a new sum of both.  Counted at each step: gradients held for outputs
    other than layer ``i``'s own and other than the ones it is now returning (those are
    the layer's transient), plus the new sums.  A chain never has any.

    >>> from convcalc.loading import validate
    >>> block = validate({"input": [4, 8, 8], "layers": [                  # relu(f(x) + x)
    ...     {"type": "conv", "filters": 4, "kernel": 3, "padding": 1}, "relu",
    ...     {"type": "conv", "filters": 4, "kernel": 3, "padding": 1},
    ...     {"type": "add", "inputs": ["conv2", "input"]}, "relu"]})
    >>> branch_gradients(block, [256] * 5, 256)   # x's gradient waits, then x's sum
    512
    >>> chain = validate({"input": [4], "layers": ["relu", "tanh"]})
    >>> branch_gradients(chain, [4, 4], 4)
    0
    """
    index = {layer.name: i for i, layer in enumerate(spec.layers)}
    index["input"] = -1
    size = {**dict(enumerate(sizes)), -1: input_size}
    waiting: dict[int, int] = {len(sizes) - 1: sizes[-1]}    # output → gradient values
    held, peak = sizes[-1], 0
    for i in range(len(spec.layers) - 1, -1, -1):
        if i not in waiting:          # nothing reads this output: it gets no gradient
            continue
        held -= waiting.pop(i)
        read = [index[name] for name in spec.layers[i].inputs or ()]
        sources = set(read)
        # a new sum for an output that already holds a gradient, or that this layer reads
        # more than once (add(x, x): the second share is added to the first)
        sums = sum(size[j] for j in sources if j in waiting or read.count(j) > 1)
        peak = max(peak, held + sums)
        for j in sources:
            if j not in waiting:
                waiting[j] = size[j]
                held += size[j]
    return peak


def estimate_memory(spec: Spec, batch: int, dtype: str = "float32",
                    gradcheck: bool | str = False,
                    report: Report | None = None) -> MemoryEstimate:
    """Estimate the peak memory of building ``spec`` and running ``batch`` examples
    forward and backward in ``dtype``; with ``gradcheck``, of the float64 gradient check
    instead (part ``gradcheck``):

    - ``True`` or ``"directions"``: one layer is re-run at a time, inside the backward
      pass; it holds its output's gradient (a contiguous copy), the moved tensor and
      its direction (and a parameter's saved copy), its re-run output and the product
      ``g ⊙ y``, the caches its re-run makes before the old ones go, and its
      temporaries — the largest over the layers counts.  The end-to-end checks then
      keep a copy of every parameter (``max`` of the two phases; the kept outputs are
      dropped before the second).
    - ``"entries"``: the per-entry check also keeps a copy of every gradient, every
      layer's input and input gradient, and the outputs and caches of the forward
      passes it re-runs.

    Shapes and parameter counts come from ``report`` (default: ``analyze(spec)``), which
    must have no errors.
    """
    if report is None:
        from .analysis import analyze

        report = analyze(spec)
    method = "directions" if gradcheck is True else (gradcheck or None)
    if method:
        dtype = "float64"
    size = ITEMSIZE[dtype]
    params = sum(row.params or 0 for row in report.layers)
    buffers = sum(row.buffers or 0 for row in report.layers)
    activations = prod(report.input_shape)          # the input batch (and its gradient)
    kept = masks = transient = 0
    transformed = kept_transformed = 0  # Winograd filter transforms: 36·F·C values each
    costs = []
    sizes = []
    rerun = largest_tensor = 0          # the directional check: one layer re-run at a time
    for layer, row in zip(spec.layers, report.layers):
        if row.output_shape is None or not row.input_shapes:
            raise ValueError(f"{row.name}: the report has no shapes for this layer")
        cost = kind_of(layer).cost(layer, row)
        if cost.transformed:
            transformed = max(transformed, cost.transformed)
            if cost.transformed <= WINOGRAD_KEEP_TRANSFORMED:
                kept_transformed += cost.transformed
        costs.append(cost)
        sizes.append(prod(row.output_shape))
        if method == "directions":
            rerun = max(rerun, _rerun_values(row, cost, sizes[-1]))
            largest_tensor = max(largest_tensor, row.params or 0)   # (bounds its tensors)
        activations += sizes[-1]
        kept += cost.kept
        masks += cost.masks
        transient = max(transient, cost.transient)
    # verify draws the output gradient while the output is still alive: at that moment
    # it is the run's one temporary
    transient = max(transient, sizes[-1])
    im2col = sum(c.columns for c in costs)
    caches = kept - im2col
    waiting = branch_gradients(spec, sizes, prod(report.input_shape))
    parts_values = {
        "parameters": params, "gradients": params, "buffers": buffers,
        "activations": activations * batch, "branch_gradients": waiting * batch,
        "im2col": im2col * batch, "caches": caches * batch, "transient": transient * batch,
    }
    if transformed:  # the kept ones, and one layer's transform and its gradient at a time
        parts_values["winograd_filters"] = kept_transformed + 2 * transformed
    check_fixed = check_per_example = 0
    if method == "directions":
        # re-run: the moved parameter, its saved copy and direction; end to end: a copy
        # of every parameter and one tensor's direction (the larger phase counts); per
        # example the largest re-run, and the output's random projection throughout
        check_fixed = max(3 * largest_tensor, params + largest_tensor)
        check_per_example = max(rerun, 2 * prod(report.input_shape)) + sizes[-1]
    elif method == "entries":  # gradient copies; inputs, input gradients, re-run outputs
        check_fixed, check_per_example = params, 3 * activations + caches   # and caches
    if method:
        parts_values["gradcheck"] = check_fixed + check_per_example * batch
    parts = {name: value * size for name, value in parts_values.items()}
    parts["masks"] = masks * batch
    parts["runtime"] = RUNTIME_BYTES
    fixed = (2 * params + buffers + check_fixed + kept_transformed
             + 2 * transformed) * size + RUNTIME_BYTES
    per_example = (activations + waiting + im2col + caches + transient
                   + check_per_example) * size + masks
    return MemoryEstimate(batch, dtype, fixed, per_example, parts)


def _rerun_values(row: Any, cost: Cost, output: int) -> int:
    """Values per example the directional gradient check holds while it re-runs one
    layer: per input, the moved copy and its direction; the output's gradient (a
    contiguous copy), the re-run output and ``g ⊙ y``; the caches the re-run makes
    before the old ones go (columns are reused workspaces) and its temporaries."""
    largest_input = max((prod(shape) for shape in row.input_shapes), default=0)
    return 2 * largest_input + 3 * output + cost.kept - cost.columns + cost.transient
