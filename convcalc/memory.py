"""Peak memory of an engine run (build, forward, backward), estimated from a report.

:func:`convcalc.verify` runs the NumPy reference engine; before it does, this module
predicts how much memory that run needs, from the *report's* predicted shapes, so a
design too big for the machine is refused instead of swapping.  Pure Python, no NumPy.

The model follows what the engine keeps (``engine/``), in values of the dtype's size:

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
- **Winograd** (2-D 3×3 stride-1 convs with enough channels, :func:`takes_winograd`):
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

from dataclasses import dataclass, field, replace
from math import prod
from typing import Any

from . import geometry
from .errors import ResourceError
from .report import Report
from .spec import Spec

#: The Python interpreter with NumPy, pydantic and convcalc imported (measured ~47 MB RSS).
RUNTIME_BYTES = 64 * 2**20
ITEMSIZE = {"float32": 4, "float64": 8}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of one engine run, split into parts (bytes at ``batch``).

    ``fixed`` does not depend on the batch; ``per_example`` is added per example.
    """

    batch: int
    dtype: str
    fixed: int
    per_example: int
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


def format_bytes(count: int) -> str:
    """Binary units with two decimals.

    >>> format_bytes(1536), format_bytes(2 * 2**30), format_bytes(512)
    ('1.50 KiB', '2.00 GiB', '512 B')
    """
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{count} B" if unit == "B" else f"{value:.2f} {unit}"


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


def parse_bytes(text: str | int) -> int:
    """``"2GiB"``, ``"512 MiB"``, ``"1.5G"``, ``"800MB"`` or a plain number of bytes.

    >>> parse_bytes("2GiB"), parse_bytes("1.5 G"), parse_bytes("800MB"), parse_bytes(4096)
    (2147483648, 1610612736, 800000000, 4096)
    >>> parse_bytes("lots")
    Traceback (most recent call last):
    ...
    ValueError: not a memory size: 'lots' (examples: 2GiB, 512MiB, 800MB)
    """
    if isinstance(text, int):
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
    return int(value * _UNITS[unit])


# --- per-layer model ----------------------------------------------------------------------


@dataclass
class _Cost:
    """Values per example: kept until the run ends, and temporaries of this layer alone."""

    kept: int = 0
    columns: int = 0        # the part of ``kept`` that is im2col columns / Winograd tiles
    masks: int = 0          # bytes (bool arrays)
    transient: int = 0


def _per_axis(value: Any, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _pads(layer: Any, sizes: tuple[int, ...], kernel: tuple[int, ...],
          stride: tuple[int, ...], dilation: tuple[int, ...]) -> list[tuple[int, int]]:
    effs = [geometry.effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    padding = layer.padding
    if padding == "valid":
        return [(0, 0)] * len(sizes)
    if padding == "same":
        return [geometry.same_padding(n, e, s) for n, e, s in zip(sizes, effs, stride)]
    if padding == "full":
        return [geometry.full_padding(e) for e in effs]
    return [p if isinstance(p, tuple) else (p, p) for p in _per_axis(padding, len(sizes))]


def _padded_sizes(layer: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                  stride_value: Any) -> tuple[list[int], list[int]]:
    """Per spatial axis: the padded input's size (incl. ceil overhang) and the padding
    before it."""
    sizes, out = in_shape[1:], out_shape[1:]
    dims = len(sizes)
    kernel = _per_axis(layer.kernel, dims)
    stride = _per_axis(stride_value, dims)
    dilation = _per_axis(layer.dilation, dims)
    pads = _pads(layer, sizes, kernel, stride, dilation)
    padded = [max(n + pb + pa, (o - 1) * s + geometry.effective_kernel(k, d))
              for n, (pb, pa), o, s, k, d in zip(sizes, pads, out, stride, kernel, dilation)]
    return padded, [pb for pb, _ in pads]


def _window_sizes(layer: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                  stride_value: Any) -> tuple[int, int, bool]:
    """(kernel offsets K, values of the padded input incl. ceil overhang, padded?)."""
    padded, _ = _padded_sizes(layer, in_shape, out_shape, stride_value)
    grown = any(p != n for p, n in zip(padded, in_shape[1:]))
    return prod(_per_axis(layer.kernel, len(padded))), in_shape[0] * prod(padded), grown


def dx_by_correlation(layer: Any, in_shape: tuple[int, ...],
                      out_shape: tuple[int, ...]) -> bool:
    """Whether the engine's im2col path gets a conv's input gradient by correlating
    ``dy`` with the flipped kernel rather than by col2im: stride 1 on every axis, and
    ``dy``'s columns no bigger than the column gradient.  The calculator cannot import
    the engine's rule (``engine.conv.Conv.uses_correlation_for_dx``), so it restates it;
    ``tests/test_verify.py`` holds the two together."""
    return (all(s == 1 for s in _per_axis(layer.stride, len(in_shape) - 1))
            and out_shape[0] * prod(in_shape[1:]) <= in_shape[0] * prod(out_shape[1:]))


def _correlation_input(layer: Any, in_shape: tuple[int, ...],
                       out_shape: tuple[int, ...]) -> int:
    """Values of ``dy`` grown by ``e − 1 − p`` on each side (where positive), the padded
    output gradient the correlation path keeps as a workspace (0 if nothing grows)."""
    padded, before = _padded_sizes(layer, in_shape, out_shape, layer.stride)
    dims = len(padded)
    extents = [geometry.effective_kernel(k, d) for k, d in
               zip(_per_axis(layer.kernel, dims), _per_axis(layer.dilation, dims))]
    grows = [(max(e - 1 - pb, 0), max(e - 1 - (p - n - pb), 0)) for e, p, n, pb in
             zip(extents, padded, in_shape[1:], before)]
    if not any(b or a for b, a in grows):
        return 0
    return out_shape[0] * prod(o + b + a for o, (b, a) in zip(out_shape[1:], grows))


def _overlapping(layer: Any, dims: int, stride_value: Any) -> bool:
    """Whether neighbouring windows share input values on some axis (stride < extent)."""
    return any(s < geometry.effective_kernel(k, d) for k, s, d in zip(
        _per_axis(layer.kernel, dims), _per_axis(stride_value, dims),
        _per_axis(layer.dilation, dims)))


def _layer_cost(layer: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                params: int) -> _Cost:
    kind = layer.type
    n_in, n_out = prod(in_shape), prod(out_shape)
    if kind == "conv":
        offsets, padded, grown = _window_sizes(layer, in_shape, out_shape, layer.stride)
        # Either path: the layer keeps its padded input as a workspace between calls.
        cost = _conv_cost(layer, in_shape, out_shape, params, offsets, padded, grown)
        return replace(cost, kept=cost.kept + (padded if grown else 0))
    if kind == "conv_transpose":
        dims = len(in_shape) - 1
        offsets = prod(_per_axis(layer.kernel, dims))
        columns = layer.filters * offsets * prod(in_shape[1:])
        uncropped = n_out + _uncropped_extra(layer, out_shape)
        weights = params - (layer.filters if layer.bias else 0)
        return _Cost(transient=max(columns + uncropped + n_out,
                                   uncropped + columns + weights + n_in))
    if kind in ("maxpool", "avgpool", "minpool"):
        stride = layer.kernel if layer.stride is None else layer.stride
        offsets, padded, grown = _window_sizes(layer, in_shape, out_shape, stride)
        # max/min backward routes dy through one more output-sized array when windows
        # overlap (it is added, not copied, into the input gradient)
        routed = n_out if kind != "avgpool" and _overlapping(layer, len(in_shape) - 1,
                                                              stride) else 0
        return _Cost(kept=padded if grown else 0, masks=2 * n_out,
                     transient=padded + (n_in if grown else 0) + n_out + routed)
    if kind in ("relu", "leaky_relu"):
        return _Cost(masks=n_in, transient=n_in)
    if kind in ("sigmoid", "tanh"):
        return _Cost(transient=2 * n_in)
    if kind == "softmax":
        return _Cost(transient=3 * n_in)
    if kind == "dropout":
        return _Cost(kept=n_in, masks=n_in, transient=n_in)
    if kind == "batchnorm":
        return _Cost(kept=n_in, transient=4 * n_in)
    if kind == "lrn":
        return _Cost(kept=n_in, transient=5 * n_in)
    if kind in ("global_avgpool", "global_maxpool"):
        return _Cost(kept=2 * in_shape[0], transient=n_in)
    if kind == "dense":
        return _Cost(transient=n_in)
    return _Cost()  # flatten: a view


#: The engine's Winograd F(4×4, 3×3) path (``engine/winograd.py``, ``suits``): 2-D 3×3
#: convolutions with stride 1, no dilation, one group and at least this many input
#: channels and filters.  tests/engine/test_winograd.py holds this rule to the engine's.
WINOGRAD_MIN_CHANNELS = 16
#: Transformed filters (``36·F·C`` values) up to this size are kept from forward to
#: backward, bigger ones transformed again (``engine/winograd.py``, ``KEEP_TRANSFORMED``).
WINOGRAD_KEEP_TRANSFORMED = 4 * 2**20


def takes_winograd(layer: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
    """Whether the engine runs this conv layer with Winograd rather than im2col."""
    dims = len(in_shape) - 1
    return (layer.type == "conv" and dims == 2 and _per_axis(layer.kernel, 2) == (3, 3)
            and _per_axis(layer.stride, 2) == (1, 1) and _per_axis(layer.dilation, 2) == (1, 1)
            and layer.groups == 1 and min(in_shape[0], out_shape[0]) >= WINOGRAD_MIN_CHANNELS)


def _conv_cost(layer: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
               params: int, offsets: int, padded: int, grown: bool) -> _Cost:
    """A convolution's cost besides its padded input (Winograd or im2col)."""
    n_in, n_out = prod(in_shape), prod(out_shape)
    if takes_winograd(layer, in_shape, out_shape):
        return _winograd_cost(in_shape, out_shape)
    columns = in_shape[0] * offsets * prod(out_shape[1:])
    weights = params - (layer.filters if layer.bias else 0)
    # Workspaces the layer keeps: columns, column gradient and (by correlation) the
    # padded output gradient.  Backward's temporaries: the weight product per example,
    # and the input gradient — by correlation its product and the batch-first copy; by
    # col2im dy laid out twice (as rows for the weight product: matmul copies a strided
    # view; as matrices), the padded input gradient and its cropped copy.
    if dx_by_correlation(layer, in_shape, out_shape):
        return _Cost(kept=2 * columns + _correlation_input(layer, in_shape, out_shape),
                     columns=2 * columns, transient=weights + 2 * n_in)
    return _Cost(kept=2 * columns, columns=2 * columns,
                 transient=weights + 2 * n_out + padded + (n_in if grown else 0))


def _winograd_cost(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> _Cost:
    """Values per example of the Winograd path, with ``T`` 4×4 output tiles per example:
    kept — the tile workspaces ``36·T`` per input channel (tiles, transformed tiles, their
    gradient) and ``(2·36 + 2·16)·T`` per filter (products and their gradient, output
    tiles and output-gradient tiles); transient — the padded input grown to whole tiles,
    the uncropped output (or grown output gradient), the output, and the input gradient
    before cropping (one tile row and column more)."""
    channels, filters = in_shape[0], out_shape[0]
    rows, cols = (-(-n // 4) for n in out_shape[1:])
    tiles = rows * cols
    kept = (3 * 36 * channels + (2 * 36 + 2 * 16) * filters) * tiles
    transient = (channels * (4 * rows + 2) * (4 * cols + 2) + 16 * filters * tiles
                 + prod(out_shape) + channels * 16 * (rows + 1) * (cols + 1))
    return _Cost(kept=kept, columns=kept, transient=transient)


def _uncropped_extra(layer: Any, out_shape: tuple[int, ...]) -> int:
    """Values a transposed conv crops away (its uncropped output minus its output)."""
    dims = len(out_shape) - 1
    pads = _per_axis(layer.padding, dims) if layer.padding != "valid" else (0,) * dims
    pairs = [p if isinstance(p, tuple) else (p, p) for p in pads]
    full = [o + pb + pa for o, (pb, pa) in zip(out_shape[1:], pairs)]
    return out_shape[0] * (prod(full) - prod(out_shape[1:]))


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
        sources = {index[name] for name in spec.layers[i].inputs or ()}
        sums = sum(size[j] for j in sources if j in waiting)
        peak = max(peak, held + sums)
        for j in sources:
            if j not in waiting:
                waiting[j] = size[j]
                held += size[j]
    return peak


def estimate_memory(spec: Spec, batch: int, dtype: str = "float32", gradcheck: bool = False,
                    report: Report | None = None) -> MemoryEstimate:
    """Estimate the peak memory of building ``spec`` and running ``batch`` examples
    forward and backward in ``dtype``; with ``gradcheck``, of the float64 gradient check
    instead (which also keeps a copy of every gradient, every layer's input and input
    gradient, and the outputs and caches of the forward passes it re-runs).

    Shapes and parameter counts come from ``report`` (default: ``analyze(spec)``), which
    must have no errors.
    """
    if report is None:
        from .analysis import analyze

        report = analyze(spec)
    if gradcheck:
        dtype = "float64"
    size = ITEMSIZE[dtype]
    params = sum(row.params or 0 for row in report.layers)
    buffers = sum(row.buffers or 0 for row in report.layers)
    activations = prod(report.input_shape)          # the input batch (and its gradient)
    kept = masks = transient = 0
    transformed = kept_transformed = 0  # Winograd filter transforms: 36·F·C values each
    costs = []
    sizes = []
    for layer, row in zip(spec.layers, report.layers):
        if row.output_shape is None or not row.input_shapes:
            raise ValueError(f"{row.name}: the report has no shapes for this layer")
        if layer.type in ("add", "concat"):
            cost = _Cost()
        else:
            cost = _layer_cost(layer, tuple(row.input_shapes[0]), tuple(row.output_shape),
                               row.params or 0)
            if takes_winograd(layer, tuple(row.input_shapes[0]), tuple(row.output_shape)):
                size_u = 36 * row.output_shape[0] * row.input_shapes[0][0]
                transformed = max(transformed, size_u)
                kept_transformed += size_u if size_u <= WINOGRAD_KEEP_TRANSFORMED else 0
        costs.append(cost)
        sizes.append(prod(row.output_shape))
        activations += sizes[-1]
        kept += cost.kept
        masks += cost.masks
        transient = max(transient, cost.transient)
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
    if gradcheck:  # gradient copies; inputs, input gradients, re-run outputs and caches
        parts_values["gradcheck"] = params + (3 * activations + caches) * batch
    parts = {name: value * size for name, value in parts_values.items()}
    parts["masks"] = masks * batch
    parts["runtime"] = RUNTIME_BYTES
    fixed = (2 * params + buffers + (params if gradcheck else 0) + kept_transformed
             + 2 * transformed) * size + RUNTIME_BYTES
    per_example = (activations + waiting + im2col + caches + transient
                   + (3 * activations + caches if gradcheck else 0)) * size + masks
    return MemoryEstimate(batch, dtype, fixed, per_example, parts)
