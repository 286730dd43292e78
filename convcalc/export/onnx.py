"""A spec as an ONNX model: ``convcalc export net.yaml --to onnx -o net.onnx``.

:func:`to_onnx` builds the model with the ``onnx`` package's helper API (the optional
extra ``pip install convcalc[onnx]``) and returns its bytes:

- one graph input ``input`` of shape ``(N, *spec.input)`` (``N`` a symbolic batch axis)
  and one output, the last layer's;
- every layer one node, or a few (:data:`EXPORTERS`: one function per spec model; a
  model without one is failed by ``tests/test_onnx.py``): its last node is named after
  the layer and writes the tensor of the layer's name, the others are named
  ``layer/Op…``;
- every tensor annotated (``value_info``) with the shape convcalc predicts, batch axis
  ``N`` — so ``onnx.shape_inference`` can be held to convcalc's arithmetic;
- learned parameters as initializers named ``layer.weight``, ``layer.bias`` (PyTorch's
  names), constants (shapes, axes, a norm's fixed scale) as ``Constant`` nodes;
- opset :data:`OPSET` of the default domain only (IR version :data:`IR_VERSION`).

**Weights.**  ``weights`` (``{layer: {name: array}}``, an engine network's
``parameters()`` and ``buffers()``) are copied in, in the engine's layouts (the dense
weight is ``(in, units)``: ``Gemm`` without ``transB``); otherwise weights and biases
are random from ``seed`` — each value a random sign times a magnitude uniform in
``[b/2, b)``, ``b`` the power of two nearest ``1/√fan_in`` — or zero with ``zeros``;
the norms start as PyTorch's (scale 1, shift 0, running mean 0, variance 1), a PReLU
slope at 0.25 and a ``scale`` layer at 1.  No NumPy: the random bits are drawn with
:mod:`random` and set in bulk as whole-number bit patterns.

**Evaluation graph.**  ``dropout`` is ``Dropout`` (the identity in inference) and
``drop_path`` ``Identity``; ``batchnorm`` uses its running statistics (ONNX's
``momentum`` is ``1 − convcalc's``).

**Windows.**  Convs and pools get convcalc's resolved padding as ``pads`` (begin and
end per axis).  ONNX floors a window count; a conv whose spec rounds up gets the
overhang as extra end padding.  A pool that rounds up has ``ceil_mode: 1``, which
onnxruntime computes as PyTorch (a last window that would start in the right padding
is dropped) but ``onnx.shape_inference`` does not (it keeps it: onnx #5711,
pytorch #116420); where that window would exist the pool says what it reads instead —
its input cut to the positions it reads and no ceil — so the rule the file states is
the one every reader applies.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable

from .. import spec as specs
from ..errors import ConvCalcError
from ..kinds.adaptive import windows as adaptive_windows

#: The default domain's opset the exported models import (GroupNormalization-21 with
#: per-channel scale, Pad's ``wrap``, Resize's ``axes``, Gelu, AveragePool dilations).
OPSET = 21
#: The IR version of opset 21 (onnx.helper.VERSION_TABLE).
IR_VERSION = 10
BATCH = "N"
INT64_MAX = 2**63 - 1


class OnnxUnavailable(ConvCalcError):
    """The ``onnx`` package is not installed."""


def require_onnx() -> Any:
    """The ``onnx`` module, or :class:`OnnxUnavailable` naming the extra to install."""
    try:
        import onnx
    except ImportError as error:
        raise OnnxUnavailable(
            "ONNX needs the onnx package: pip install 'convcalc[onnx]' "
            f"({error.msg})") from None
    return onnx


# --- random weights without NumPy -----------------------------------------------------------

_CHUNK = 1 << 20   # values drawn at a time


def random_floats(count: int, bound: float, rng: random.Random) -> bytes:
    """``count`` little-endian float32 values, each a random sign times a magnitude
    uniform in ``[b/2, b)`` for ``b`` the power of two nearest ``bound``: the sign bit
    and the 23 mantissa bits random, the exponent fixed.

    >>> values = struct.unpack("<4f", random_floats(4, 0.3, random.Random(0)))
    >>> all(0.125 <= abs(v) < 0.25 for v in values)
    True
    """
    exponent = round(math.log2(bound)) if bound > 0 else 0
    pattern = (exponent + 126) << 23            # [2^(e−1), 2^e)
    chunks = []
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        keep = int.from_bytes(struct.pack("<I", 0x807FFFFF) * n, "little")
        fixed = int.from_bytes(struct.pack("<I", pattern) * n, "little")
        bits = int.from_bytes(rng.randbytes(4 * n), "little")
        chunks.append(((bits & keep) | fixed).to_bytes(4 * n, "little"))
    return b"".join(chunks)


# --- the graph being built -------------------------------------------------------------------


@dataclass
class Builder:
    """Nodes, initializers and shape annotations of the model being exported."""

    onnx: Any
    seed: int
    zeros: bool
    weights: dict[str, dict[str, Any]] | None
    as_inputs: bool = False
    nodes: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    value_info: list[Any] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)

    def fresh(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3``, … when taken (node and tensor names)."""
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def annotate(self, tensor: str, shape: tuple[int, ...] | None, dtype: str = "float"
                 ) -> None:
        if shape is None:
            return
        kind = self.onnx.TensorProto.BOOL if dtype == "bool" else self.onnx.TensorProto.FLOAT
        self.value_info.append(self.onnx.helper.make_tensor_value_info(
            tensor, kind, [BATCH, *shape]))


@dataclass
class Layer:
    """One layer being exported: its spec model, report row, input tensors, and the
    builder; :meth:`node` adds nodes named after it."""

    g: Builder
    spec: Any
    row: Any
    inputs: list[str]
    count: int = 0

    @property
    def name(self) -> str:
        name: str = self.spec.name     # spec: the kind's own model, any of them
        return name

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.row.input_shapes[0])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.row.output_shape)

    def node(self, op: str, inputs: list[str], shape: tuple[int, ...] | None = None, *,
             last: bool = False, doc: str = "", dtype: str = "float", **attrs: Any) -> str:
        """Add an ``op`` node; its output tensor (annotated with ``shape``, a shape
        without the batch axis) is returned.  The ``last`` node of a layer is named after
        it, and so is its output."""
        if last:
            name = output = self.name
            shape = self.out_shape
        else:
            self.count += 1
            name = self.g.fresh(f"{self.name}/{op}{self.count}")
            output = name
        node = self.g.onnx.helper.make_node(op, inputs, [output], name=name, **attrs)
        if doc:
            node.doc_string = doc
        self.g.nodes.append(node)
        self.g.annotate(output, shape, dtype)
        return output

    def const(self, values: list[Any], dtype: str = "int64", dims: list[int] | None = None
              ) -> str:
        """A ``Constant`` node holding ``values`` (int64, or float32 with ``"float"``);
        ``dims=[]`` a scalar."""
        tp = self.g.onnx.TensorProto
        kind = tp.INT64 if dtype == "int64" else tp.FLOAT
        self.count += 1
        name = self.g.fresh(f"{self.name}/const{self.count}")
        tensor = self.g.onnx.helper.make_tensor(
            name, kind, [len(values)] if dims is None else dims, list(values))
        self.g.nodes.append(self.g.onnx.helper.make_node(
            "Constant", [], [name], name=name, value=tensor))
        return name

    def param(self, key: str, dims: list[int], fill: float | None = None,
              fan_in: int = 1, engine_key: str | None = None) -> str:
        """A learned tensor ``layer.key`` (an initializer): the engine's array
        ``engine_key`` (default ``key``) when weights were given, else ``fill`` (norms'
        scales and statistics), else random from the seed (zero with ``zeros``)."""
        onnx = self.g.onnx
        name = self.g.fresh(f"{self.name}.{key}")
        if self.g.as_inputs:
            self.g.inputs.append(onnx.helper.make_tensor_value_info(
                name, onnx.TensorProto.FLOAT, dims))
            return name
        given = (self.g.weights or {}).get(self.name, {}).get(engine_key or key)
        if given is not None:
            array = given.astype("float32").reshape(dims)
            tensor = onnx.numpy_helper.from_array(array, name)
        else:
            count = prod(dims)
            if fill is not None or self.g.zeros:
                value = 0.0 if fill is None else fill
                raw = struct.pack("<f", value) * count
            else:
                rng = random.Random(f"{self.g.seed}:{name}")
                raw = random_floats(count, 1 / math.sqrt(max(fan_in, 1)), rng)
            tensor = onnx.helper.make_tensor(name, onnx.TensorProto.FLOAT, dims, raw, raw=True)
        self.g.initializers.append(tensor)
        return name


def spatial_axes(shape: tuple[int, ...]) -> list[int]:
    """The ONNX axes of the spatial sizes of a shape without the batch axis."""
    return list(range(2, len(shape) + 1))


# --- the registry ------------------------------------------------------------------------------

Exporter = Callable[[Layer], str]
#: spec model class → the function that writes its nodes and returns the output tensor
EXPORTERS: dict[type, Exporter] = {}
#: spec model class → the ONNX operators it is written with (the docs' table)
OPERATORS: dict[type, str] = {}


def exports(model: type, operators: str) -> Callable[[Exporter], Exporter]:
    def register(function: Exporter) -> Exporter:
        if model in EXPORTERS:
            raise TypeError(f"{model.__name__} has two ONNX exporters")
        EXPORTERS[model] = function
        OPERATORS[model] = operators
        return function
    return register


# --- windows -----------------------------------------------------------------------------------


def _window_attrs(window: Any) -> dict[str, Any]:
    return {"kernel_shape": list(window.kernel), "strides": list(window.stride),
            "dilations": list(window.dilation)}


def _pads(before: list[int], after: list[int]) -> list[int]:
    return list(before) + list(after)


def _reach(n_out: int, stride: int, extent: int) -> int:
    """How far ``n_out`` windows reach into the padded input: ``(out − 1)·s + e``."""
    return (n_out - 1) * stride + extent


@exports(specs.Conv, "Conv (Pad first for a padding_mode)")
def conv(L: Layer) -> str:
    window, x = L.row.window, L.inputs[0]
    sizes, out = L.in_shape[1:], L.out_shape[1:]
    before = [pb for pb, _ in window.padding]
    after = [pa for _, pa in window.padding]
    if L.spec.padding_mode != "zeros":
        mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[L.spec.padding_mode]
        padded = (L.in_shape[0], *(n + b + a for n, b, a in zip(sizes, before, after)))
        x = L.node("Pad", [x, L.const([0, 0, *before, 0, 0, *after])], padded, mode=mode)
        sizes, before, after = padded[1:], [0] * len(sizes), [0] * len(sizes)
    # a ceil rounding's overhang: zeros the last window reads past the padded input
    after = [max(a, _reach(o, s, e) - n - b) for n, b, a, o, s, e in
             zip(sizes, before, after, out, window.stride, window.extent)]
    channels = L.in_shape[0]
    groups = channels if L.spec.groups == "depthwise" else L.spec.groups
    fan_in = channels // groups * prod(window.kernel)
    inputs = [x, L.param("weight", [L.spec.filters, channels // groups, *window.kernel],
                         fan_in=fan_in)]
    if L.spec.bias:
        inputs.append(L.param("bias", [L.spec.filters], fan_in=fan_in))
    return L.node("Conv", inputs, last=True, group=groups, pads=_pads(before, after),
                  **_window_attrs(window))


@exports(specs.ConvTranspose, "ConvTranspose (output_padding ≥ stride: less end padding, "
         "or Pad and Add of the bias)")
def conv_transpose(L: Layer) -> str:
    window, channels = L.row.window, L.in_shape[0]
    before = [b for b, _ in window.padding]
    after = [a for _, a in window.padding]
    out_pad = list(_per_axis(L.spec.output_padding, len(window.kernel)))
    # onnxruntime takes output_padding < stride only (PyTorch: < stride or dilation):
    # the rest is less end padding, and past the full output, zeros (and the bias)
    extra = [0] * len(out_pad)
    for i, s in enumerate(window.stride):
        if out_pad[i] >= s:
            take = min(after[i], out_pad[i])
            after[i] -= take
            out_pad[i] -= take
            if out_pad[i] >= s:
                extra[i], out_pad[i] = out_pad[i], 0
    fan_in = L.spec.filters // L.spec.groups * prod(window.kernel)
    inputs = [L.inputs[0], L.param("weight", [channels, L.spec.filters // L.spec.groups,
                                              *window.kernel], fan_in=fan_in)]
    attrs = dict(group=L.spec.groups, pads=_pads(before, after), output_padding=out_pad,
                 **_window_attrs(window))
    if not any(extra):
        if L.spec.bias:
            inputs.append(L.param("bias", [L.spec.filters], fan_in=fan_in))
        return L.node("ConvTranspose", inputs, last=True, **attrs)
    out = L.out_shape
    short = (out[0], *(o - e for o, e in zip(out[1:], extra)))
    x = L.node("ConvTranspose", inputs, short, **attrs)
    dims = len(extra)
    x = L.node("Pad", [x, L.const([0, 0, *[0] * dims, 0, 0, *extra])], out, last=not L.spec.bias,
               mode="constant")
    if L.spec.bias:
        x = L.node("Add", [x, L.param("bias", _channel_dims(out), fan_in=fan_in)], last=True)
    return x


def _per_axis(value: Any, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def pool_geometry(window: Any, sizes: tuple[int, ...], out: tuple[int, ...]
                  ) -> tuple[list[int], list[int], list[int | None], bool]:
    """``(pads before, pads after, input ends to cut to, ceil_mode)`` that give convcalc's
    windows and output sizes under ONNX's rules — as onnxruntime and as
    ``onnx.shape_inference`` compute them.

    Per axis the output is the floor count of windows, or one more (a ceil rounding:
    then ``ceil_mode``).  Where ``ceil_mode`` is on but an axis takes the floor count
    while ONNX's plain ceiling would add a window (one that starts in the right padding,
    which onnxruntime and PyTorch drop and shape inference keeps), that axis is cut to
    the positions its windows read and its end padding to what they read of it, so that
    every reader counts the same windows.

    >>> from convcalc.axes import Window
    >>> pool_geometry(Window((2,), (2,), (1,), ((1, 1),)), (5,), (3,))   # 6/2 + 1 = 3 (floor)
    ([1], [1], [None], False)
    >>> pool_geometry(Window((2, 2), (2, 2), (1, 1), ((0, 0), (1, 1))), (5, 5), (3, 3))
    ([0, 1], [0, 0], [None, None], True)
    >>> pool_geometry(Window((2, 1), (2, 2), (1, 1), ((0, 0), (0, 0))), (5, 12), (3, 6))
    ([0, 0], [0, 0], [None, 11], True)
    """
    before = [pb for pb, _ in window.padding]
    after = [pa for _, pa in window.padding]
    floors = [(n + b + a - e) // s + 1
              for n, b, a, e, s in zip(sizes, before, after, window.extent, window.stride)]
    ceil = any(o > f for o, f in zip(out, floors))
    ends: list[int | None] = [None] * len(sizes)
    if not ceil:
        return before, after, ends, False
    for i, (n, b, a, e, s, o) in enumerate(zip(sizes, before, after, window.extent,
                                                window.stride, out)):
        naive = -(-(n + b + a - e) // s) + 1
        if o < naive:                     # the window ceil would add is dropped
            reach = _reach(o, s, e) - b   # positions of the input (and after it) read
            if reach < n:
                ends[i], after[i] = reach, 0
            else:
                after[i] = reach - n
    return before, after, ends, True


def _cut(L: Layer, x: str, shape: tuple[int, ...], ends: list[int | None]) -> tuple[str, tuple[int, ...]]:
    """``x`` cut to ``ends`` on the spatial axes that have one (Slice)."""
    axes = [i for i, end in enumerate(ends) if end is not None]
    if not axes:
        return x, shape
    cut = (shape[0], *(n if end is None else end for n, end in zip(shape[1:], ends)))
    x = L.node("Slice", [x, L.const([0] * len(axes)), L.const([ends[i] for i in axes]),
                         L.const([i + 2 for i in axes])], cut)
    return x, cut


@exports(specs.Pool, "MaxPool, AveragePool (count_include_pad 1); minpool: Neg, MaxPool, Neg")
def pool(L: Layer) -> str:
    window = L.row.window
    before, after, ends, ceil = pool_geometry(window, L.in_shape[1:], L.out_shape[1:])
    x, shape = _cut(L, L.inputs[0], L.in_shape, ends)
    attrs = dict(_window_attrs(window), pads=_pads(before, after), ceil_mode=int(ceil))
    if L.spec.type == "avgpool":
        return L.node("AveragePool", [x], last=True, count_include_pad=1, **attrs)
    if L.spec.type == "maxpool":
        return L.node("MaxPool", [x], last=True, **attrs)
    negated = L.node("Neg", [x], shape)
    pooled = L.node("MaxPool", [negated], L.out_shape, **attrs)
    return L.node("Neg", [pooled], last=True)


@exports(specs.GlobalPool, "ReduceMean, ReduceMax over the spatial axes (keepdims 0)")
def global_pool(L: Layer) -> str:
    op = "ReduceMean" if L.spec.type == "global_avgpool" else "ReduceMax"
    return L.node(op, [L.inputs[0], L.const(spatial_axes(L.in_shape))], last=True, keepdims=0)


@exports(specs.AdaptivePool, "GlobalAveragePool, GlobalMaxPool (output 1), AveragePool, "
         "MaxPool (even windows), else per axis Slice, ReduceMean/ReduceMax, Concat")
def adaptive_pool(L: Layer) -> str:
    average = L.spec.type == "adaptive_avgpool"
    sizes, out = L.in_shape[1:], L.out_shape[1:]
    x = L.inputs[0]
    if all(o == 1 for o in out):
        return L.node("GlobalAveragePool" if average else "GlobalMaxPool", [x], last=True)
    if all(n % o == 0 for n, o in zip(sizes, out)):
        if all(n == o for n, o in zip(sizes, out)):
            return L.node("Identity", [x], last=True)
        kernel = [n // o for n, o in zip(sizes, out)]
        return L.node("AveragePool" if average else "MaxPool", [x], last=True,
                      kernel_shape=kernel, strides=kernel)
    shape = list(L.in_shape)
    uneven = [i for i, (n, o) in enumerate(zip(sizes, out)) if n != o]
    for count, i in enumerate(uneven):
        parts = []
        for start, last in adaptive_windows(sizes[i], out[i]):
            stop = last + 1
            part_shape = tuple(shape[:i + 1] + [1] + shape[i + 2:])
            piece = L.node("Slice", [x, L.const([start]), L.const([stop]), L.const([i + 2])],
                           tuple(shape[:i + 1] + [stop - start] + shape[i + 2:]))
            parts.append(L.node("ReduceMean" if average else "ReduceMax",
                                [piece, L.const([i + 2])], part_shape, keepdims=1))
        shape[i + 1] = out[i]
        x = L.node("Concat", parts, tuple(shape), last=count == len(uneven) - 1, axis=i + 2)
    return x


# --- shapes and routing ------------------------------------------------------------------------


@exports(specs.Flatten, "Flatten (axis 1)")
def flatten(L: Layer) -> str:
    return L.node("Flatten", [L.inputs[0]], last=True, axis=1)


@exports(specs.Dense, "Gemm (no transB: the weight is (in, units))")
def dense(L: Layer) -> str:
    features = L.in_shape[0]
    inputs = [L.inputs[0], L.param("weight", [features, L.spec.units], fan_in=features)]
    if L.spec.bias:
        inputs.append(L.param("bias", [L.spec.units], fan_in=features))
    return L.node("Gemm", inputs, last=True)


@exports(specs.Slice, "Slice (axis 1)")
def slice_channels(L: Layer) -> str:
    start, stop = L.spec.channels
    return L.node("Slice", [L.inputs[0], L.const([start]), L.const([stop]), L.const([1])],
                  last=True)


@exports(specs.Crop, "Slice (spatial axes)")
def crop(L: Layer) -> str:
    sizes, out = L.in_shape[1:], L.out_shape[1:]
    starts = [(n - o) // 2 if L.spec.anchor == "center" else 0 for n, o in zip(sizes, out)]
    return L.node("Slice", [L.inputs[0], L.const(starts),
                            L.const([s + o for s, o in zip(starts, out)]),
                            L.const(spatial_axes(L.in_shape))], last=True)


@exports(specs.Pad, "Pad (constant, reflect, edge, wrap)")
def pad(L: Layer) -> str:
    dims = len(L.in_shape) - 1
    pairs = [p if isinstance(p, tuple) else (p, p) for p in _per_axis(L.spec.padding, dims)]
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
            "circular": "wrap"}[L.spec.mode]
    inputs = [L.inputs[0], L.const([0, 0, *(b for b, _ in pairs), 0, 0, *(a for _, a in pairs)])]
    if mode == "constant":
        inputs.append(L.const([L.spec.value], "float", dims=[]))
    return L.node("Pad", inputs, last=True, mode=mode)


def _resize(L: Layer, x: str, shape: tuple[int, ...], sizes: list[int], mode: str,
            last: bool) -> str:
    """One Resize of ``x`` (shape without the batch) to spatial ``sizes``."""
    attrs: dict[str, Any] = {"axes": spatial_axes(shape)}
    if mode == "nearest":
        attrs.update(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        attrs.update(mode="linear" if mode == "linear" else "cubic",
                     coordinate_transformation_mode="align_corners" if L.spec.align_corners
                     else "half_pixel")
        if mode == "cubic":
            attrs.update(cubic_coeff_a=-0.75, exclude_outside=0)
    out = (shape[0], *sizes)
    if last:
        return L.node("Resize", [x, "", "", L.const(sizes)], last=True, **attrs)
    return L.node("Resize", [x, "", "", L.const(sizes)], out, **attrs)


@exports(specs.Upsample, "Resize (sizes on the spatial axes; nearest: asymmetric, floor; "
         "linear, cubic: half_pixel or align_corners; cubic A = −0.75)")
def upsample(L: Layer) -> str:
    x, shape, out = L.inputs[0], L.in_shape, L.out_shape
    channels, sizes = shape[0], shape[1:]
    if L.spec.mode != "cubic" or len(sizes) == 2:
        return _resize(L, x, shape, list(out[1:]), L.spec.mode, last=True)
    # onnxruntime's cubic takes two spatial axes: 1-D as (L, 1), 3-D one plane at a time
    if len(sizes) == 1:
        x = L.node("Reshape", [x, L.const([0, channels, sizes[0], 1])], (channels, sizes[0], 1))
        x = _resize(L, x, (channels, sizes[0], 1), [out[1], 1], "cubic", last=False)
        return L.node("Reshape", [x, L.const([0, *out])], last=True)
    d, h, w = sizes
    od, oh, ow = out[1:]
    x = L.node("Reshape", [x, L.const([0, channels * d, h, w])], (channels * d, h, w))
    x = _resize(L, x, (channels * d, h, w), [oh, ow], "cubic", last=False)
    x = L.node("Reshape", [x, L.const([0, channels, d, oh * ow])], (channels, d, oh * ow))
    x = _resize(L, x, (channels, d, oh * ow), [od, oh * ow], "cubic", last=False)
    return L.node("Reshape", [x, L.const([0, *out])], last=True)


def _rearrange(L: Layer, split: list[int], perm: list[int]) -> str:
    """Reshape to ``(N, *split)``, Transpose by ``perm`` (the batch axis 0 stays),
    Reshape to the output: channel shuffles and pixel (un)shuffles."""
    x = L.node("Reshape", [L.inputs[0], L.const([0, *split])], tuple(split))
    moved = tuple(split[p - 1] for p in perm[1:])
    x = L.node("Transpose", [x], moved, perm=perm)
    return L.node("Reshape", [x, L.const([0, *L.out_shape])], last=True)


def shuffle_layout(kind: str, shape: tuple[int, ...], factor: int) -> tuple[list[int], list[int]]:
    """``(split, perm)`` of the Reshape–Transpose–Reshape that does ``kind``
    (``channel_shuffle`` with ``factor`` groups, ``pixel_shuffle``, ``pixel_unshuffle``)
    on an input of ``shape`` (without the batch); the importer recognises the same.

    >>> shuffle_layout("channel_shuffle", (6, 4, 4), 3)
    ([3, 2, 4, 4], [0, 2, 1, 3, 4])
    >>> shuffle_layout("pixel_shuffle", (8, 3), 2)
    ([4, 2, 3], [0, 1, 3, 2])
    >>> shuffle_layout("pixel_unshuffle", (2, 4, 6), 2)
    ([2, 2, 2, 3, 2], [0, 1, 3, 5, 2, 4])
    """
    c, sizes, r = shape[0], list(shape[1:]), factor
    d = len(sizes)
    if kind == "channel_shuffle":
        return [r, c // r, *sizes], [0, 2, 1, *range(3, d + 3)]
    if kind == "pixel_shuffle":        # (C, r, …, r, S…) → (C, S1, r, S2, r, …)
        split = [c // r**d] + [r] * d + sizes
        perm = [0, 1] + [p for i in range(d) for p in (2 + d + i, 2 + i)]
        return split, perm
    split = [c] + [p for n in sizes for p in (n // r, r)]   # (C, S1, r, S2, r, …)
    perm = [0, 1] + [3 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)]
    return split, perm


@exports(specs.ChannelShuffle, "Reshape, Transpose, Reshape")
def channel_shuffle(L: Layer) -> str:
    return _rearrange(L, *shuffle_layout("channel_shuffle", L.in_shape, L.spec.groups))


@exports(specs.PixelShuffle, "DepthToSpace (CRD) in 2-D; else Reshape, Transpose, Reshape")
def pixel_shuffle(L: Layer) -> str:
    if len(L.in_shape) == 3:
        return L.node("DepthToSpace", [L.inputs[0]], last=True, blocksize=L.spec.factor,
                      mode="CRD")
    return _rearrange(L, *shuffle_layout("pixel_shuffle", L.in_shape, L.spec.factor))


@exports(specs.PixelUnshuffle, "Reshape, Transpose, Reshape (SpaceToDepth's channel order "
         "is not PyTorch's)")
def pixel_unshuffle(L: Layer) -> str:
    return _rearrange(L, *shuffle_layout("pixel_unshuffle", L.in_shape, L.spec.factor))


# --- element-wise --------------------------------------------------------------------------


def _simple(model: type, op: str, **attrs: Any) -> None:
    def export(L: Layer) -> str:
        return L.node(op, [L.inputs[0]], last=True, **attrs)
    exports(model, op)(export)


_simple(specs.ReLU, "Relu")
_simple(specs.Sigmoid, "Sigmoid")
_simple(specs.Tanh, "Tanh")
_simple(specs.Hardswish, "HardSwish")
_simple(specs.Mish, "Mish")
_simple(specs.SELU, "Selu")
_simple(specs.Identity, "Identity")
_simple(specs.Softmax, "Softmax", axis=1)
_simple(specs.LogSoftmax, "LogSoftmax", axis=1)


@exports(specs.Hardsigmoid, "HardSigmoid (alpha 1/6, beta 0.5)")
def hardsigmoid(L: Layer) -> str:
    return L.node("HardSigmoid", [L.inputs[0]], last=True, alpha=1 / 6, beta=0.5)


@exports(specs.LeakyRelu, "LeakyRelu")
def leaky_relu(L: Layer) -> str:
    return L.node("LeakyRelu", [L.inputs[0]], last=True, alpha=L.spec.negative_slope)


@exports(specs.ELU, "Elu")
def elu(L: Layer) -> str:
    return L.node("Elu", [L.inputs[0]], last=True, alpha=L.spec.alpha)


@exports(specs.GELU, "Gelu")
def gelu(L: Layer) -> str:
    return L.node("Gelu", [L.inputs[0]], last=True, approximate=L.spec.approximate)


@exports(specs.ReLU6, "Clip (0, 6)")
def relu6(L: Layer) -> str:
    return L.node("Clip", [L.inputs[0], L.const([0.0], "float", []), L.const([6.0], "float", [])],
                  last=True)


@exports(specs.SiLU, "Sigmoid, Mul")
def silu(L: Layer) -> str:
    gate = L.node("Sigmoid", [L.inputs[0]], L.in_shape)
    return L.node("Mul", [L.inputs[0], gate], last=True)


@exports(specs.Softplus, "Softplus (beta 1, threshold 20); else Mul, Softplus, Div, Greater, Where")
def softplus(L: Layer) -> str:
    x, beta, threshold = L.inputs[0], L.spec.beta, L.spec.threshold
    if beta == 1.0 and threshold == 20.0:   # log(1 + e^x) rounds to x past 20 in float32
        return L.node("Softplus", [x], last=True)
    scaled = L.node("Mul", [x, L.const([beta], "float", [])], L.in_shape)
    soft = L.node("Softplus", [scaled], L.in_shape)
    soft = L.node("Div", [soft, L.const([beta], "float", [])], L.in_shape)
    linear = L.node("Greater", [scaled, L.const([threshold], "float", [])], L.in_shape,
                    dtype="bool")
    return L.node("Where", [linear, x, soft], last=True)


@exports(specs.Dropout, "Dropout (inference: the identity)")
def dropout(L: Layer) -> str:
    return L.node("Dropout", [L.inputs[0], L.const([L.spec.rate], "float", [])], last=True)


@exports(specs.DropPath, "Identity (stochastic depth is the identity in evaluation)")
def drop_path(L: Layer) -> str:
    return L.node("Identity", [L.inputs[0]], last=True)


def _channel_dims(shape: tuple[int, ...]) -> list[int]:
    """A per-channel tensor's dims that broadcast over ``(N, *shape)``: ``(C, 1, …)``."""
    return [shape[0]] + [1] * (len(shape) - 1)


@exports(specs.PReLU, "PRelu")
def prelu(L: Layer) -> str:
    dims = _channel_dims(L.in_shape) if L.spec.per_channel else [1]
    return L.node("PRelu", [L.inputs[0], L.param("weight", dims, fill=0.25)], last=True)


@exports(specs.Scale, "Mul (+ Add)")
def scale(L: Layer) -> str:
    dims = _channel_dims(L.in_shape)
    x = L.node("Mul", [L.inputs[0], L.param("weight", dims, fill=1.0)], L.in_shape,
               last=not L.spec.bias)
    if L.spec.bias:
        x = L.node("Add", [x, L.param("bias", dims, fill=0.0)], last=True)
    return x


# --- normalisation -----------------------------------------------------------------------------


def _affine(L: Layer, channels: int, affine: bool, engine: tuple[str, str] = ("gamma", "beta")
            ) -> list[str]:
    """The scale and shift of a norm: learned (initializers) or fixed (Constants)."""
    if affine:
        return [L.param("weight", [channels], fill=1.0, engine_key=engine[0]),
                L.param("bias", [channels], fill=0.0, engine_key=engine[1])]
    return [L.const([1.0] * channels, "float"), L.const([0.0] * channels, "float")]


@exports(specs.BatchNorm, "BatchNormalization (momentum 1 − convcalc's)")
def batchnorm(L: Layer) -> str:
    c = L.in_shape[0]
    inputs = [L.inputs[0], *_affine(L, c, True),
              L.param("running_mean", [c], fill=0.0), L.param("running_var", [c], fill=1.0)]
    return L.node("BatchNormalization", inputs, last=True, epsilon=L.spec.eps,
                  momentum=1.0 - L.spec.momentum)


@exports(specs.InstanceNorm, "InstanceNormalization")
def instancenorm(L: Layer) -> str:
    inputs = [L.inputs[0], *_affine(L, L.in_shape[0], L.spec.affine)]
    return L.node("InstanceNormalization", inputs, last=True, epsilon=L.spec.eps)


@exports(specs.GroupNorm, "GroupNormalization (opset 21: per-channel scale)")
def groupnorm(L: Layer) -> str:
    x, shape = L.inputs[0], L.in_shape
    inputs = _affine(L, shape[0], L.spec.affine)
    if len(shape) == 1:       # a flat (N, C): one position
        x = L.node("Unsqueeze", [x, L.const([2])], (shape[0], 1))
        x = L.node("GroupNormalization", [x, *inputs], (shape[0], 1),
                   num_groups=L.spec.groups, epsilon=L.spec.eps)
        return L.node("Squeeze", [x, L.const([2])], last=True)
    return L.node("GroupNormalization", [x, *inputs], last=True, num_groups=L.spec.groups,
                  epsilon=L.spec.eps)


@exports(specs.LayerNorm, "LayerNormalization over the channels (Transpose to channels "
         "last and back on a feature map)")
def layernorm(L: Layer) -> str:
    x, shape = L.inputs[0], L.in_shape
    inputs = _affine(L, shape[0], L.spec.affine)
    if len(shape) == 1:
        return L.node("LayerNormalization", [x, *inputs], last=True, axis=-1,
                      epsilon=L.spec.eps)
    rank = len(shape) + 1
    last = (*shape[1:], shape[0])
    x = L.node("Transpose", [x], last, perm=[0, *range(2, rank), 1])
    x = L.node("LayerNormalization", [x, *inputs], last, axis=-1, epsilon=L.spec.eps)
    return L.node("Transpose", [x], last=True, perm=[0, rank - 1, *range(1, rank - 1)])


@exports(specs.LRN, "LRN on a 4-D view (odd size); even size: Mul, Pad, AveragePool, "
         "Mul, Add, Pow, Mul (ONNX's even window is the mirror of PyTorch's)")
def lrn(L: Layer) -> str:
    x, shape = L.inputs[0], L.in_shape
    if L.spec.size % 2 == 0:
        return _lrn_even(L)
    reshape = len(shape) != 3          # onnxruntime's LRN takes 4-D tensors only
    view = (shape[0], prod(shape[1:]), 1) if reshape else shape
    if reshape:
        x = L.node("Reshape", [x, L.const([0, *view])], view)
    x = L.node("LRN", [x], view, last=not reshape, size=L.spec.size, alpha=L.spec.alpha,
               beta=L.spec.beta, bias=L.spec.k)
    if reshape:
        x = L.node("Reshape", [x, L.const([0, *shape])], last=True)
    return x


def _lrn_even(L: Layer) -> str:
    """``x / (k + alpha·mean)^beta`` with the mean of ``x²`` over channels ``c − size/2
    … c + size/2 − 1`` (PyTorch's window; ONNX's LRN centres an even window the other
    way, and onnxruntime refuses one): an average pool over the channels of ``x²`` seen
    as ``(N, 1, C, positions)``, zero-padded ``size/2`` before and ``size/2 − 1`` after."""
    x, shape, size = L.inputs[0], L.in_shape, L.spec.size
    c, positions = shape[0], prod(shape[1:])
    squares = L.node("Mul", [x, x], shape)
    planes = L.node("Reshape", [squares, L.const([0, 1, c, positions])], (1, c, positions))
    padded = L.node("Pad", [planes, L.const([0, 0, size // 2, 0, 0, 0, (size - 1) // 2, 0])],
                    (1, c + size - 1, positions))
    mean = L.node("AveragePool", [padded], (1, c, positions), kernel_shape=[size, 1])
    mean = L.node("Reshape", [mean, L.const([0, *shape])], shape)
    scaled = L.node("Mul", [mean, L.const([L.spec.alpha], "float", [])], shape)
    base = L.node("Add", [scaled, L.const([L.spec.k], "float", [])], shape)
    power = L.node("Pow", [base, L.const([-L.spec.beta], "float", [])], shape)
    return L.node("Mul", [x, power], last=True)


# --- merges ------------------------------------------------------------------------------------


def _aligned(L: Layer) -> list[str]:
    """The inputs, each of lower rank given size-1 axes after the batch so that all
    align at their last axis (convcalc's broadcasting; ONNX aligns whole shapes, batch
    included)."""
    shapes = L.row.input_shapes
    rank = max(len(s) for s in shapes)
    out = []
    for tensor, shape in zip(L.inputs, shapes):
        if len(shape) < rank:
            missing = rank - len(shape)
            tensor = L.node("Unsqueeze", [tensor, L.const(list(range(1, missing + 1)))],
                            (1,) * missing + tuple(shape))
        out.append(tensor)
    return out


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of an element-wise result, aligned at the last axis (NumPy's rule).

    >>> broadcast((3, 1, 1), (3, 4, 4)), broadcast((4,), (2, 1, 4))
    ((3, 4, 4), (2, 1, 4))
    """
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    return tuple(max(x, y) for x, y in zip(a, b))


def _merge(op: str, variadic: str | None) -> Exporter:
    def export(L: Layer) -> str:
        inputs = _aligned(L)
        if len(inputs) > 2 and variadic:
            return L.node(variadic, inputs, last=True)
        x, shape = inputs[0], tuple(L.row.input_shapes[0])
        for i, (other, other_shape) in enumerate(zip(inputs[1:], L.row.input_shapes[1:])):
            shape = broadcast(shape, tuple(other_shape))
            x = L.node(op, [x, other], shape, last=i == len(inputs) - 2)
        return x
    return export


exports(specs.Add, "Add (Sum for three or more)")(_merge("Add", "Sum"))
exports(specs.Mul, "Mul")(_merge("Mul", None))


@exports(specs.Concat, "Concat (axis 1)")
def concat(L: Layer) -> str:
    return L.node("Concat", list(L.inputs), last=True, axis=1)


# --- the model ---------------------------------------------------------------------------------


def missing_exporters() -> list[str]:
    """The spec models no ONNX exporter writes (none, when every kind has one)."""
    return [model.__name__ for model in specs.LAYER_MODELS if model not in EXPORTERS]


def build_model(spec: Any, report: Any, *, seed: int = 0, zeros: bool = False,
                weights: dict[str, dict[str, Any]] | None = None,
                weights_as_inputs: bool = False) -> Any:
    """The ``onnx.ModelProto`` of an analysed spec without errors (see the module).
    ``weights_as_inputs``: the learned tensors are graph inputs (their shapes declared)
    instead of initializers — the graph without its weights, as small as the spec."""
    onnx = require_onnx()
    import onnx.numpy_helper  # noqa: F401  (from_array, for given weights)

    g = Builder(onnx, seed, zeros or weights_as_inputs, weights, weights_as_inputs)
    g.taken.update({"input"} | {layer.name for layer in spec.layers})
    rows = {row.name: row for row in report.layers}
    for layer in spec.layers:
        function = EXPORTERS.get(type(layer))
        if function is None:
            raise ConvCalcError(f"{layer.name}: no ONNX exporter for {layer.type}")
        L = Layer(g, layer, rows[layer.name], list(layer.inputs or ["input"]))
        function(L)
    helper = onnx.helper
    float_type = onnx.TensorProto.FLOAT
    last = spec.layers[-1]
    graph = helper.make_graph(
        g.nodes, _graph_name(spec),
        [helper.make_tensor_value_info("input", float_type, [BATCH, *spec.input]), *g.inputs],
        [helper.make_tensor_value_info(last.name, float_type,
                                       [BATCH, *rows[last.name].output_shape])],
        g.initializers,
        value_info=[v for v in g.value_info if v.name != last.name])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="convcalc", ir_version=IR_VERSION)
    from .. import __version__

    model.producer_version = __version__
    if spec.name:
        model.doc_string = spec.name
    return model


def _graph_name(spec: Any) -> str:
    return spec.name or "convcalc"


def to_onnx(spec: Any, report: Any, *, seed: int = 0, zeros: bool = False,
            weights: dict[str, dict[str, Any]] | None = None) -> bytes:
    """The serialized ONNX model of an analysed spec (see the module docstring)."""
    model = build_model(spec, report, seed=seed, zeros=zeros, weights=weights)
    data: bytes = model.SerializeToString()    # a ModelProto (onnx is imported at run time)
    return data


def mapping_rows() -> list[tuple[str, str]]:
    """``(layer types, ONNX operators)`` per spec model, in the docs' order."""
    return [(" | ".join(specs.layer_types(model)), OPERATORS[model])
            for model in specs.LAYER_MODELS if model in OPERATORS]


__all__ = ["EXPORTERS", "OPSET", "OnnxUnavailable", "build_model", "mapping_rows",
           "missing_exporters", "pool_geometry", "random_floats", "require_onnx",
           "shuffle_layout", "to_onnx"]
