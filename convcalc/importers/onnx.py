"""An ONNX model as a convcalc spec: ``convcalc import model.onnx [-o net.yaml]``.

:func:`import_onnx` reads a serialized ``ModelProto`` with the ``onnx`` package (the
optional extra ``pip install convcalc[onnx]``) and turns its graph into a spec: a dict
(:attr:`Imported.data`) and readable YAML (:attr:`Imported.text`: a header naming the
file and its opset, one layer per line, the layers named after the graph's nodes).

**The graph.**  Nodes are taken in a topological order (a cycle is an error).  The
one graph input that is not an initializer is the spec's ``input``: its first axis is
the batch and is dropped (fixed or symbolic), a dynamic spatial size becomes an open
size (``null``); the one graph output is the last layer's.  Initializers give the
weights' shapes (filters, groups, bias and parameter counts come from the file; their
data is never needed, nor read from external files); constant subgraphs are folded —
``Constant`` nodes, ``Identity`` of an initializer, and the ``Shape`` → ``Gather`` →
``Unsqueeze`` → ``Concat`` → ``Reshape`` chains ``torch.onnx.export`` writes for
``x.view(x.size(0), -1)``; a size only the running graph knows (an open input size, the
batch) stays symbolic.  Each node, or a fused group of nodes (:data:`OPERATORS`, the
table of the docs), becomes one layer; a group is named after its last node.

**Windows.**  ONNX's rules are followed exactly: ``pads`` as begin and end per axis,
``auto_pad`` ``SAME_UPPER`` (convcalc's ``same``), ``SAME_LOWER`` (the odd padding
before, resolved on the input's size), ``VALID``; a window count that is not whole is
floored (the spec's ``rounding: floor``: convcalc warns about what it drops) and a pool
with ``ceil_mode`` rounds up — where the last window would start in the right padding,
ONNX's operator text, onnxruntime and PyTorch drop it (convcalc's ``ceil_mode``) while
``onnx.shape_inference`` keeps it (onnx #5711, pytorch #116420): the import says which
of the two the file's own shape annotation states, in a comment and a warning.
``AveragePool`` with ``count_include_pad: 0`` over padding is refused: convcalc's
average pool divides by the whole window, as PyTorch's default.

**What cannot be expressed** — an operator convcalc has no kind for, an attribute it
cannot follow (a Resize mode whose sampling differs, DCR channel order, an even-size
``LRN``, a ``Gemm`` with ``alpha``, …) — is an error that lists every such node with
its operator, never skipped.

Limits: the file at most :data:`MAX_ONNX_BYTES` (1 GiB; an ONNX protobuf cannot exceed
2 GiB), at most :data:`MAX_NODES` nodes, one input and one output; the layers at most
:data:`convcalc.blocks.MAX_LAYERS`.  Unknown domains and model-local functions are
refused; nothing is ever executed.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from ..errors import Diagnostic, SpecError
from ..spec import MAX_INT, MODEL_BY_TYPE, LayerBase, Spec

if TYPE_CHECKING:
    from ..kinds import State

T = TypeVar("T")

#: Files larger than this are refused before they are parsed.
MAX_ONNX_BYTES = 1 << 30
#: Nodes a graph may have (constants and shape arithmetic included).
MAX_NODES = 100_000
#: Values a constant may have to be folded (shape arithmetic, not weights).
MAX_FOLDED = 1 << 16
#: Probe sizes of open input sizes: a size that differs between the two is open.
PROBES = (509, 1031)
SUPPORTED_DOMAINS = ("", "ai.onnx")
#: Graph names exporters give every model: the spec is named after the file instead.
GENERIC_GRAPH_NAMES = ("main_graph", "torch_jit", "torch-jit-export", "tf2onnx", "graph")
#: HardSigmoid's alpha that is convcalc's (and PyTorch's) hardsigmoid: 1/6 in float32.
SIXTH = 1 / 6


class OnnxImportError(SpecError):
    """The file is not an ONNX model convcalc can read, or its graph holds what no
    convcalc layer expresses (every such node is listed)."""


# --- values -----------------------------------------------------------------------------------


class Sym:
    """A whole number only the running graph knows: the batch, or an open size
    (``tensor``'s axis ``axis``)."""

    __slots__ = ("tensor", "axis")

    def __init__(self, tensor: str | None, axis: int):
        self.tensor, self.axis = tensor, axis

    def __repr__(self) -> str:
        return "N" if self.tensor is None else f"{self.tensor}[{self.axis}]"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Sym) and (self.tensor, self.axis) == (other.tensor, other.axis)

    def __hash__(self) -> int:
        return hash((self.tensor, self.axis))


BATCH = Sym(None, 0)


@dataclass
class Const:
    """A constant tensor: its dims, its values (flat, row-major; ``None`` when the file
    holds only dims, or when they are too many to fold) and whether it is a learned
    parameter (an initializer)."""

    dims: tuple[int, ...]
    values: list[Any] | None
    dtype: str = "float"
    learned: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.dims)


@dataclass
class Tensor:
    """A value the network computes: the layer that makes it (``"input"``) and its
    shape without the batch axis (an entry ``None``: open)."""

    layer: str
    shape: tuple[int | None, ...]

    @property
    def channels(self) -> int | None:
        return self.shape[0]


@dataclass
class PendingPad:
    """A ``Pad`` by mode whose only reader is a ``Conv``: folded into the conv's
    ``padding_mode`` when it has no zero padding of its own, else made a layer."""

    node: Any
    source: Tensor
    pairs: list[tuple[int, int]]
    mode: str
    value: float


class Unknown:
    """The output of a node that could not be imported (its problem is reported)."""


UNKNOWN = Unknown()

#: What a tensor name is bound to while the graph is read.
Value = Const | Tensor | PendingPad | Unknown


def _tensors(values: Sequence[object]) -> list[Tensor] | None:
    """``values`` when every one is a computed :class:`Tensor`, else ``None``."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    return tensors if len(tensors) == len(values) else None


def _known(shape: tuple[int | None, ...]) -> tuple[int, ...] | None:
    """``shape`` when none of its sizes is open, else ``None``."""
    known = tuple(n for n in shape if n is not None)
    return known if len(known) == len(shape) else None


def _whole(values: list[int | Sym] | None) -> list[int] | None:
    """``values`` when none of them is a size only the running graph knows, else ``None``."""
    if values is None:
        return None
    whole = [v for v in values if not isinstance(v, Sym)]
    return whole if len(whole) == len(values) else None


# --- reading tensors ------------------------------------------------------------------------

_FORMATS = {1: ("f", "float"), 11: ("d", "float"), 7: ("q", "int"), 6: ("i", "int"),
            9: ("?", "bool"), 10: ("e", "float"), 2: ("B", "int"), 3: ("b", "int"),
            4: ("H", "int"), 5: ("h", "int"), 12: ("I", "int"), 13: ("Q", "int")}


def tensor_const(tensor: Any, learned: bool) -> Const:
    """A ``TensorProto`` as a :class:`Const` — its values only when there are few and
    they are in the file (external data is never read)."""
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"tensor {tensor.name!r} has a negative dimension {list(dims)}")
    code, kind = _FORMATS.get(tensor.data_type, (None, "other"))
    count = math.prod(dims)
    values: list[Any] | None = None
    external = tensor.data_location == 1
    if code is not None and not external and count <= MAX_FOLDED:
        if tensor.raw_data:
            width = struct.calcsize(code)
            if len(tensor.raw_data) == width * count:
                values = list(struct.unpack(f"<{count}{code}", tensor.raw_data))
        else:
            typed = {1: tensor.float_data, 11: tensor.double_data, 7: tensor.int64_data,
                     13: tensor.uint64_data}.get(tensor.data_type, tensor.int32_data)
            if len(typed) == count:
                values = list(typed)
                if kind == "bool":
                    values = [bool(v) for v in values]
    return Const(dims, values, kind, learned)


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32 (attributes are float32: 0.9
    reads as 0.8999999761…).

    >>> shortest_float32(0.8999999761581421), shortest_float32(9.999999747378752e-06)
    (0.9, 1e-05)
    """
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return float(text)
    return value


def one_minus(value: float) -> float:
    """``1 − value`` in decimal, ``value`` read as the shortest float32 (ONNX's
    batchnorm momentum is ``1 − PyTorch's``).

    >>> one_minus(0.8999999761581421), one_minus(0.9900000095367432)
    (0.1, 0.01)
    """
    return float(Decimal(1) - Decimal(repr(shortest_float32(value))))


# --- names ------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]+")


def layer_name(node: Any, index: int) -> str:
    """A readable name for a node: its own, with ``torch.onnx.export``'s scope path
    turned into a module path (``/layer1/layer1.0/conv1/Conv`` → ``layer1.0.conv1``;
    the operator is kept when the scope alone would not name the node), spaces and
    control characters replaced by ``_``; an unnamed node is called after its operator.

    >>> class N:  # a stand-in NodeProto
    ...     def __init__(self, name, op_type): self.name, self.op_type = name, op_type
    >>> layer_name(N("/layer1/layer1.0/conv1/Conv", "Conv"), 0), layer_name(N("/Flatten", "Flatten"), 3)
    ('layer1.0.conv1', 'flatten')
    >>> layer_name(N("", "Relu"), 7), layer_name(N("conv 1", "Conv"), 0)
    ('relu7', 'conv_1')
    """
    name = _UNSAFE.sub("_", node.name or "").strip("_")
    if name.startswith("/"):
        parts = [p for p in name.split("/") if p]
        op = parts[-1] if parts and re.fullmatch(rf"{re.escape(node.op_type)}(_\d+)?",
                                                  parts[-1]) else None
        scope = parts[:-1] if op else parts
        kept: list[str] = []
        for part in scope:                      # /layer1/layer1.0/…: the deeper one says all
            if kept and part.startswith(kept[-1] + "."):
                kept[-1] = part
            else:
                kept.append(part)
        name = ".".join(kept) if kept else (op or "").lower()
    return name or f"{node.op_type.lower()}{index}"


# --- the model as a whole ----------------------------------------------------------------------


def require_onnx() -> Any:
    from ..export.onnx import require_onnx as require

    try:
        return require()
    except Exception as error:
        raise OnnxImportError([Diagnostic("error", str(error))]) from None


def _fail(message: str, filename: str | None, layer: str | None = None) -> OnnxImportError:
    return OnnxImportError([Diagnostic("error", message, file=filename, layer=layer)])


def parse_model(data: bytes, filename: str | None = None) -> Any:
    """The ``ModelProto`` in ``data``, or one line saying why it is not one."""
    if len(data) > MAX_ONNX_BYTES:
        raise _fail(f"file too large: {len(data):,} bytes (an ONNX model convcalc reads "
                    f"is at most {MAX_ONNX_BYTES:,})", filename)
    onnx = require_onnx()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(data))
    except Exception as error:    # google.protobuf's DecodeError, or a RuntimeError
        reason = " ".join(str(error).split()) or type(error).__name__
        raise _fail(f"not an ONNX model: the bytes are not a serialized ModelProto "
                    f"(truncated or another format: {reason[:120]})", filename) from None
    if not model.ir_version or not model.HasField("graph"):
        raise _fail("not an ONNX model: no IR version or no graph", filename)
    return model


def read_onnx_file(path: str) -> bytes:
    """The bytes of ``path``, refused above :data:`MAX_ONNX_BYTES` before reading."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_ONNX_BYTES:
                raise _fail(f"file too large: {size:,} bytes (an ONNX model convcalc reads "
                            f"is at most {MAX_ONNX_BYTES:,})", path)
            return handle.read(MAX_ONNX_BYTES + 1)
    except OSError as error:
        raise _fail(f"cannot read: {error.strerror or error}", path) from None


@dataclass
class Imported:
    """An imported model: the spec as data, its YAML text, and the import's warnings."""

    data: dict[str, Any]
    text: str
    warnings: list[str]
    opset: int
    source: str

    def spec(self) -> Spec:
        """The validated :class:`~convcalc.spec.Spec` (messages name the ONNX file)."""
        from ..loading import SourceMap, validate

        return validate(self.data, source=SourceMap(self.source))


def import_onnx(data: bytes, filename: str | None = None) -> Imported:
    """The spec of the ONNX model in ``data`` (see the module docstring)."""
    model = parse_model(data, filename)
    return Importer(model, filename).run()


def import_onnx_file(path: str) -> Imported:
    return import_onnx(read_onnx_file(path), path)


def load_onnx(path: str) -> Spec:
    """:func:`convcalc.load` of an ONNX file: the imported, validated spec."""
    return import_onnx_file(path).spec()


# --- the importer ------------------------------------------------------------------------------


def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    out = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        out[attribute.name] = value
    return out


def _per_axis(values: list[T]) -> T | list[T]:
    """One value when every axis has it, else the list."""
    return values[0] if values and all(v == values[0] for v in values) else list(values)


def _padding(pairs: list[tuple[int, int]]) -> int | list[int] | list[int | list[int]]:
    """ONNX's begin/end pads as convcalc's padding: an int, or per axis an int or a pair."""
    axes: list[int | list[int]] = [b if b == e else [b, e] for b, e in pairs]
    same = [a for a in axes if isinstance(a, int)]
    if len(same) == len(axes):
        return _per_axis(same)
    return axes


class Importer:
    """One import: the graph walked once, node by node (see the module docstring)."""

    def __init__(self, model: Any, filename: str | None):
        self.onnx = require_onnx()
        self.model, self.graph, self.filename = model, model.graph, filename
        self.opset = next((o.version for o in model.opset_import
                           if o.domain in SUPPORTED_DOMAINS), 0)
        self.env: dict[str, Value] = {}
        self.layers: list[dict[str, Any]] = []
        self.comments: dict[str, list[str]] = {}
        self.warnings: list[str] = []
        self.problems: list[Diagnostic] = []
        self.names: set[str] = {"input"}
        self.absorbed: set[int] = set()
        self.models: dict[str, LayerBase] = {}   # layer name → validated spec model
        self.states: dict[str, list[State]] = {}  # layer name → per probe, its State
        self.annotated: dict[str, tuple[int | None, ...]] = {}

    # --- problems ---

    def problem(self, node: Any, message: str) -> Unknown:
        label = node.name or node.op_type
        self.problems.append(Diagnostic(
            "error", f"{node.op_type}: {message}", file=self.filename, layer=label))
        return UNKNOWN

    def warn(self, layer: str, message: str) -> None:
        self.warnings.append(f"{layer}: {message}")
        self.comments.setdefault(layer, []).append(message)

    # --- the walk ---

    def run(self) -> Imported:
        self.check_graph()
        order = self.topological_order()
        self.consumers: dict[str, list[int]] = {}
        for index in order:
            for name in self.graph.node[index].input:
                if name:
                    self.consumers.setdefault(name, []).append(index)
        self.outputs = {o.name for o in self.graph.output}
        self.read_annotations()
        self.read_initializers()
        self.read_input()
        unsupported = [index for index in order
                       if self.graph.node[index].op_type not in HANDLERS]
        for index in unsupported:
            node = self.graph.node[index]
            self.problem(node, "no convcalc layer expresses this operator")
        for index in unsupported:     # their outputs are unknown; the rest is still read
            self.absorbed.add(index)
            for name in self.graph.node[index].output:
                self.env[name] = UNKNOWN
        for index in order:           # constants first: fused groups look ahead at them
            node = self.graph.node[index]
            if node.op_type == "Constant" and index not in self.absorbed:
                self.index = index
                self.convert(node)
                self.absorbed.add(index)
        for index in order:
            if index in self.absorbed:
                continue
            self.index = index
            self.convert(self.graph.node[index])
        if len(self.problems) == 1:
            raise OnnxImportError(self.problems)
        if self.problems:
            head = Diagnostic("error", f"{len(self.problems)} nodes of the graph cannot be "
                              "expressed in convcalc:", file=self.filename)
            raise OnnxImportError([head, *self.problems])
        self.finish_output()
        return self.result()

    def check_graph(self) -> None:
        graph, filename = self.graph, self.filename
        if len(graph.node) > MAX_NODES:
            raise _fail(f"too many nodes: {len(graph.node):,} (at most {MAX_NODES:,})", filename)
        domains = sorted({n.domain for n in graph.node if n.domain not in SUPPORTED_DOMAINS})
        if domains:
            nodes = [n for n in graph.node if n.domain not in SUPPORTED_DOMAINS]
            listed = ", ".join(f"{n.name or '?'} ({n.domain}.{n.op_type})" for n in nodes[:5])
            more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
            raise _fail(f"operators from domains convcalc does not know "
                        f"({', '.join(map(repr, domains))}): {listed}{more}", filename)
        if self.model.functions:
            raise _fail(f"the model defines its own functions "
                        f"({', '.join(f.name for f in self.model.functions[:5])}): convcalc "
                        "reads the standard operators only", filename)
        if not self.opset:
            raise _fail("the model imports no opset of the default domain", filename)
        if len(graph.output) != 1:
            names = ", ".join(o.name for o in graph.output[:5])
            raise _fail(f"a convcalc network has one output; the graph has "
                        f"{len(graph.output)}{': ' + names if names else ''}", filename)

    def topological_order(self) -> list[int]:
        """The nodes in a topological order — of those ready, the first in the file (so
        a sorted file keeps its order); a cycle, or a tensor made twice, is refused."""
        import heapq

        graph = self.graph
        maker: dict[str, int] = {}
        for index, node in enumerate(graph.node):
            for name in node.output:
                if name in maker:
                    raise _fail(f"tensor {name!r} is made by two nodes", self.filename)
                if name:
                    maker[name] = index
        waiting = [0] * len(graph.node)
        readers: dict[int, list[int]] = {}
        for index, node in enumerate(graph.node):
            for name in set(node.input):
                source = maker.get(name)
                if source is not None:
                    waiting[index] += 1
                    readers.setdefault(source, []).append(index)
        ready = [i for i, count in enumerate(waiting) if count == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            index = heapq.heappop(ready)
            order.append(index)
            for reader in readers.get(index, ()):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, reader)
        if len(order) < len(graph.node):
            stuck = [graph.node[i].name or graph.node[i].op_type
                     for i, count in enumerate(waiting) if count][:5]
            raise _fail(f"the graph has a cycle (through {', '.join(stuck)}): an ONNX graph "
                        "is acyclic", self.filename)
        return order

    def read_annotations(self) -> None:
        for info in list(self.graph.value_info) + list(self.graph.output):
            if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
                dims = info.type.tensor_type.shape.dim
                self.annotated[info.name] = tuple(
                    d.dim_value if d.HasField("dim_value") else None for d in dims)

    def read_initializers(self) -> None:
        for tensor in self.graph.initializer:
            try:
                self.env[tensor.name] = tensor_const(tensor, learned=True)
            except ValueError as error:
                raise _fail(str(error), self.filename) from None
        for sparse in self.graph.sparse_initializer:
            raise _fail(f"sparse initializer {sparse.values.name!r}: convcalc reads dense "
                        "tensors only", self.filename)

    def read_input(self) -> None:
        inputs = [i for i in self.graph.input if i.name not in self.env]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs[:5])
            raise _fail(f"a convcalc network has one input; the graph has {len(inputs)}"
                        f"{': ' + names if names else ''}", self.filename)
        info = inputs[0]
        if not info.type.HasField("tensor_type") or not info.type.tensor_type.HasField("shape"):
            raise _fail(f"the input {info.name!r} has no shape", self.filename)
        dims = info.type.tensor_type.shape.dim
        if not 2 <= len(dims) <= 5:
            raise _fail(f"the input {info.name!r} has {len(dims)} axes: convcalc reads (N, C), "
                        "(N, C, L), (N, C, H, W) or (N, C, D, H, W)", self.filename)
        shape: list[int | None] = []
        for axis, dim in enumerate(dims[1:], start=1):
            value = dim.dim_value if dim.HasField("dim_value") else None
            if value is not None and not 1 <= value <= MAX_INT:
                raise _fail(f"the input {info.name!r}: axis {axis} has size {value} (sizes "
                            f"are 1 … {MAX_INT})", self.filename)
            if value is None and axis == 1:
                raise _fail(f"the input {info.name!r} has no fixed channel count (axis 1 is "
                            f"{dim.dim_param or 'dynamic'})", self.filename)
            shape.append(value)
        self.input_name = info.name
        self.input_dims = [d.dim_param or d.dim_value or "?" for d in dims]
        self.input_shape = shape
        self.env[info.name] = Tensor("input", tuple(shape))
        probes = PROBES if any(n is None for n in shape) else PROBES[:1]   # none open: one
        self.probe_inputs = [tuple(n if n is not None else p for n in shape) for p in probes]
        from ..kinds import State
        from ..receptive import ReceptiveField

        self.states["input"] = [State(s, ReceptiveField(None)) for s in self.probe_inputs]

    # --- layers ---

    def name_for(self, node: Any) -> str:
        base = layer_name(node, self.index)
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def add(self, node: Any, layer_type: str, options: dict[str, Any],
            given: Sequence[Tensor | Unknown], output: str | None = None) -> Tensor | Unknown:
        """A layer made of ``node`` (the last of its group) reading ``given``: validated,
        its output shape worked out on every probe input, and bound to ``output``
        (default: the node's first output).  An input that is no computed tensor (a
        constant) is a problem."""
        from ..kinds import REGISTRY, Context, Fatal, Kind

        inputs = _tensors(given)
        if inputs is None:
            return self.problem(node, f"as {layer_type}: an input that is a constant, not "
                                      "computed from the network's input (convcalc folds "
                                      "shape arithmetic only)")
        name = self.name_for(node)
        layer = {"name": name, "type": layer_type, **options,
                 "inputs": [t.layer for t in inputs]}
        model = MODEL_BY_TYPE[layer_type]
        try:
            built = model.model_validate(layer)
        except Exception as error:
            from ..loading import _message

            errors: list[dict[str, Any]] = getattr(error, "errors", lambda: [])()
            text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {_message(e)}"
                             for e in errors) or str(error)
            self.names.discard(name)
            return self.problem(node, f"as {layer_type}: {text}")
        kind = REGISTRY[model]
        states: list[State] = []
        for probe in range(len(self.probe_inputs)):
            incoming = tuple(self.states[t.layer][probe] for t in inputs)
            messages: list[str] = []

            def sink(severity: str, message: str, option: Any, details: Any) -> None:
                if severity == "error":
                    messages.append(message)
            ctx = Context.of(built, "floor", sink)
            try:
                static = getattr(type(kind), "static_problems", None)
                if static is not None and static is not getattr(Kind, "static_problems", None):
                    ctx.dims = len(incoming[0].shape) - 1
                    kind.static_problems(built, ctx)   # (checks that need no input)
                outcome = kind.rule(built, incoming, ctx)
                if getattr(ctx, "failed", False) or messages:
                    raise Fatal()
            except Fatal:
                self.names.discard(name)
                detail = "; ".join(messages) or "its input does not fit it"
                return self.problem(node, f"as {layer_type} on {self._shape_text(inputs)}: "
                                          f"{detail}")
            from ..kinds import State

            states.append(State(outcome.shape, outcome.field))
        self.states[name] = states
        self.models[name] = built
        self.layers.append(layer)
        shapes = [s.shape for s in states]
        shape = tuple(a if all(s[i] == a for s in shapes) else None
                      for i, a in enumerate(shapes[0]))
        tensor = Tensor(name, shape)
        self.env[output or node.output[0]] = tensor
        return tensor

    def _shape_text(self, inputs: list[Tensor]) -> str:
        return ", ".join("(" + ", ".join("?" if n is None else str(n) for n in t.shape) + ")"
                         for t in inputs)

    # --- reading a node's inputs ---

    def value(self, name: str) -> Value | None:
        if not name:
            return None
        return self.env.get(name, UNKNOWN)

    def tensor(self, name: str) -> Tensor | Unknown:
        """Input ``name`` as a computed tensor (a pending pad made a layer first)."""
        value = self.value(name)
        if isinstance(value, PendingPad):
            value = self.pad_layer(value)
            self.env[name] = value
        return value if isinstance(value, (Tensor, Unknown)) else UNKNOWN

    def only_reader(self, tensor: str) -> Any | None:
        """The one node that reads ``tensor`` (which is no graph output), or ``None``."""
        readers = self.consumers.get(tensor, [])
        if len(readers) != 1 or tensor in self.outputs:
            return None
        return self.graph.node[readers[0]]

    def reader_index(self, node: Any) -> int:
        for name in node.input:
            for index in self.consumers.get(name, []):
                if self.graph.node[index] is node:
                    return index
        raise KeyError(node.name)

    def sizes(self, name: str) -> list[int | Sym] | None:
        """The whole numbers of constant ``name``, sizes only the running graph knows
        among them (a shape, a target shape); ``None`` when it is not a constant."""
        value = self.value(name)
        if isinstance(value, Const) and value.values is not None:
            return [int(v) if not isinstance(v, Sym) else v for v in value.values]
        return None

    def ints(self, name: str) -> list[int] | None:
        """The whole numbers of constant ``name`` (axes, pads, split sizes); ``None`` when
        it is not a constant or holds a size only the running graph knows."""
        return _whole(self.sizes(name))

    def floats(self, name: str) -> list[float] | None:
        value = self.value(name)
        if isinstance(value, Const) and value.values is not None:
            return [float(v) for v in value.values if not isinstance(v, Sym)]
        return None

    # --- dispatch ---

    def convert(self, node: Any) -> None:
        attrs = _attrs(self.onnx, node)
        inputs = [self.value(name) for name in node.input]
        if any(isinstance(v, Unknown) for v in inputs):     # after a node that failed
            for name in node.output:
                self.env[name] = UNKNOWN
            return
        handler = HANDLERS[node.op_type]
        result = handler(self, node, attrs)
        if isinstance(result, Unknown):
            for name in node.output:
                self.env.setdefault(name, UNKNOWN)

    # --- the end ---

    def finish_output(self) -> None:
        """The layer that makes the graph's output last (moved there when nothing reads
        it; else an identity after everything, named after the output)."""
        output = self.graph.output[0].name
        value = self.tensor(output) if isinstance(self.env.get(output), PendingPad) \
            else self.env.get(output)
        if not isinstance(value, Tensor):
            raise _fail(f"the graph's output {output!r} is not computed from its input "
                        "(a constant)", self.filename)
        if value.layer == "input":
            raise _fail("the graph's output is its input: no layers", self.filename)
        if self.layers[-1]["name"] == value.layer:
            return
        if any(value.layer in layer["inputs"] for layer in self.layers):
            name = self._fresh(re.sub(r"\W+", "_", output).strip("_") or "output")
            self.layers.append({"name": name, "type": "identity", "inputs": [value.layer]})
            return
        index = next(i for i, layer in enumerate(self.layers) if layer["name"] == value.layer)
        self.layers.append(self.layers.pop(index))

    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def result(self) -> Imported:
        name = self.graph.name or None
        if name in GENERIC_GRAPH_NAMES and self.filename and not self.filename.startswith("<"):
            name = os.path.splitext(os.path.basename(self.filename))[0]
        data: dict[str, Any] = {}
        if name:
            data["name"] = name
        data["input"] = list(self.input_shape)
        data["rounding"] = "floor"
        previous = "input"
        for layer in self.layers:       # a layer reading only the one before says nothing
            if layer["inputs"] == [previous]:
                del layer["inputs"]
            previous = layer["name"]
        data["layers"] = self.layers
        return Imported(data, self.yaml_text(data), self.warnings, self.opset,
                        self.filename or "<onnx>")

    def yaml_text(self, data: dict[str, Any]) -> str:
        import yaml

        from .. import __version__

        def flow(value: Any) -> str:
            return yaml.safe_dump(value, default_flow_style=True, sort_keys=False,
                                  width=1 << 30, allow_unicode=True).strip()

        model = self.model
        producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
        source = os.path.basename(self.filename) if self.filename else "an ONNX model"
        lines = [f"# Imported by convcalc {__version__} (convcalc import) from {source}",
                 f"# ONNX IR version {model.ir_version}, opset {self.opset} (ai.onnx)"
                 + (f", written by {producer}" if producer else ""),
                 "# rounding: floor — ONNX floors a window count that is not whole (a pool "
                 "with ceil_mode rounds up)"]
        lines = [_comment(line) for line in lines]
        if "name" in data:
            lines.append(flow({"name": data["name"]})[1:-1])
        dims = ", ".join(map(str, self.input_dims))
        lines.append(f"input: {flow(data['input'])}   "
                     + _comment(f"# {self.input_name!r}: ({dims}), the batch axis dropped"))
        lines.append("rounding: floor")
        lines.append("layers:")
        for layer in data["layers"]:
            for comment in self.comments.get(layer["name"], []):
                lines.append("  " + _comment(f"# {layer['name']}: {comment}"))
            lines.append(f"  - {flow(layer)}")
        return "\n".join(lines) + "\n"

    # --- shared conversions ---

    def pad_layer(self, pending: PendingPad) -> Tensor | Unknown:
        mode = {"constant": "zeros", "reflect": "reflect", "edge": "replicate",
                "wrap": "circular"}[pending.mode]
        options: dict[str, Any] = {"padding": _padding(pending.pairs), "mode": mode}
        if mode == "zeros" and pending.value:
            options["value"] = pending.value
        return self.add(pending.node, "pad", options, [pending.source])


def _comment(text: str) -> str:
    """A YAML comment line with no character that could end it."""
    return "".join(c if c.isprintable() else "?" for c in text)


# --- handlers: one per operator ------------------------------------------------------------------

#: What a handler gives: the tensor of the layer it made, :data:`UNKNOWN` (its problem
#: is reported), or ``None`` (it bound its outputs itself: a folded constant, …).
Handled = Tensor | Unknown | None
#: A handler: the importer, the node and its attributes.
Handler = Callable[[Importer, Any, dict[str, Any]], Handled]
H = TypeVar("H", bound=Handler)

HANDLERS: dict[str, Handler] = {}
#: operator(s) → (convcalc layer, how) for the docs' table
OPERATORS: list[tuple[str, str, str]] = []


def handles(*ops: str, layer: str = "", how: str = "") -> Callable[[H], H]:
    def register(function: H) -> H:
        for op in ops:
            HANDLERS[op] = function
        if layer or how:
            OPERATORS.append((", ".join(ops), layer, how))
        return function
    return register


def _spatial_count(t: Tensor) -> int:
    return len(t.shape) - 1


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# constants and shape arithmetic


@handles("Constant", layer="(folded)", how="a constant")
def constant(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    if "value" in a:
        im.env[node.output[0]] = tensor_const(a["value"], learned=False)
    elif "value_float" in a or "value_int" in a:
        v = a.get("value_float", a.get("value_int"))
        im.env[node.output[0]] = Const((), [v], "float" if "value_float" in a else "int")
    elif "value_floats" in a or "value_ints" in a:
        v = list(a["value_floats"] if "value_floats" in a else a["value_ints"])
        im.env[node.output[0]] = Const((len(v),), v,
                                       "float" if "value_floats" in a else "int")
    else:
        return im.problem(node, "a Constant of a kind convcalc does not read (sparse, "
                                "strings)")
    return None


@handles("Identity", layer="identity", how="(of a constant: folded)")
def identity(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    value = im.value(node.input[0])
    if isinstance(value, Const):
        im.env[node.output[0]] = value
        return None
    return im.add(node, "identity", {}, [im.tensor(node.input[0])])


@handles("Shape", layer="(folded)", how="the sizes it reads; open ones stay symbolic")
def shape(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    values: list[Any] = [BATCH] + [n if n is not None else Sym(t.layer, i + 1)
                                   for i, n in enumerate(t.shape)]
    start, end = a.get("start", 0), a.get("end", len(values))
    values = values[slice(start, end)]
    im.env[node.output[0]] = Const((len(values),), values, "int")
    return None


def _fold(im: Importer, node: Any, values: list[Any], dims: tuple[int, ...],
          dtype: str = "int") -> None:
    im.env[node.output[0]] = Const(dims, values, dtype)


@handles("Gather")
def gather(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    data, index = im.value(node.input[0]), im.value(node.input[1])
    if isinstance(data, Const) and isinstance(index, Const) and data.values is not None \
            and index.values is not None and len(data.dims) == 1 and a.get("axis", 0) == 0:
        picked = [data.values[int(i)] for i in index.values]
        _fold(im, node, picked, index.dims, data.dtype)
        return None
    return im.problem(node, "Gather of computed values: convcalc gathers constants only")


@handles("Unsqueeze", "Squeeze")
def squeeze(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    data = im.value(node.input[0])
    if isinstance(data, Const) and data.values is not None:
        count = len(data.values)
        _fold(im, node, data.values, (count,) if node.op_type == "Unsqueeze" or count != 1
              else (), data.dtype)
        return None
    t = im.tensor(node.input[0])
    reader = im.only_reader(node.output[0])
    axes = im.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("axes")
    if node.op_type == "Unsqueeze" and isinstance(t, Tensor) and reader is not None and \
            reader.op_type in ("Add", "Mul", "Sum") and axes is not None and \
            sorted(axes) == list(range(1, len(axes) + 1)):
        # size-1 axes after the batch, for a merge: convcalc's broadcasting aligns the
        # shapes at their last axis anyway, so the merge reads the tensor as it is
        im.env[node.output[0]] = t
        return None
    return im.problem(node, f"{node.op_type} of a computed tensor: convcalc's layers keep "
                            "their axes")


@handles("Cast")
def cast(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    data = im.value(node.input[0])
    if isinstance(data, Const):
        im.env[node.output[0]] = data
        return None
    if a.get("to") in (1, 10, 11, 16):     # to a float type: the same values
        im.env[node.output[0]] = im.tensor(node.input[0])
        return None
    return im.problem(node, "a Cast of the network's values to a non-float type")


def _arith(op: str, x: Any, y: Any) -> Any:
    if isinstance(x, Sym) or isinstance(y, Sym):
        return Sym(f"({x} {op} {y})", -1)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    return x // y if isinstance(x, int) and isinstance(y, int) else x / y


def _fold_arith(im: Importer, node: Any, op: str) -> bool:
    values = [im.value(name) for name in node.input]
    consts = [v for v in values if isinstance(v, Const) and v.values is not None
              and v.size <= MAX_FOLDED and not v.learned]
    if len(consts) == len(values):
        x, y = consts
        xv, yv = x.values or [], y.values or []
        if len(xv) == 1 and len(yv) != 1:
            xs, ys = xv * len(yv), yv
        elif len(yv) == 1:
            xs, ys = xv, yv * len(xv)
        else:
            xs, ys = xv, yv
        if len(xs) == len(ys):
            big = x if x.size >= y.size else y
            _fold(im, node, [_arith(op, p, q) for p, q in zip(xs, ys)], big.dims, big.dtype)
            return True
    return False


@handles("Concat", layer="concat", how="axis 1; of constants: folded")
def concat(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    values = [im.value(name) for name in node.input]
    consts = [v for v in values if isinstance(v, Const)]
    if len(consts) == len(values):
        held = [v.values for v in consts if v.values is not None]
        if len(held) == len(consts):
            joined = [item for v in held for item in v]
            _fold(im, node, joined, (len(joined),), consts[0].dtype)
            return None
        return im.problem(node, "Concat of constants without values")
    tensors = _tensors([im.tensor(name) for name in node.input])
    if tensors is None:
        return im.problem(node, "Concat of computed values and constants")
    rank = len(tensors[0].shape) + 1
    if _axis(a.get("axis", 1), rank) != 1:
        return im.problem(node, f"Concat along axis {a.get('axis')}: convcalc concatenates "
                                "channels (axis 1)")
    if len(tensors) == 1:      # torch.cat([x]): x itself
        return im.add(node, "identity", {}, tensors)
    return im.add(node, "concat", {}, tensors)


# element-wise


def _simple(op: str, layer: str, how: str = "") -> None:
    def convert(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
        return im.add(node, layer, {}, [im.tensor(node.input[0])])
    handles(op, layer=layer, how=how)(convert)


_simple("Relu", "relu")
_simple("Tanh", "tanh")
_simple("HardSwish", "hardswish")
_simple("Mish", "mish")
_simple("Softplus", "softplus", "beta 1, threshold 20 (log(1 + eˣ) rounds to x past 20)")


def _gate(im: Importer, node: Any, fused_type: str) -> Tensor | Unknown | None:
    """``x · f(x)``: a Sigmoid (HardSigmoid) whose only reader multiplies it by its own
    input — SiLU (hardswish) as exporters write it."""
    mul = im.only_reader(node.output[0])
    if mul is not None and mul.op_type == "Mul" and sorted(mul.input) == \
            sorted([node.input[0], node.output[0]]) and node.input[0] != node.output[0]:
        im.absorbed.add(im.reader_index(mul))
        return im.add(mul, fused_type, {}, [im.tensor(node.input[0])])
    return None


@handles("Sigmoid", layer="sigmoid", how="x · Sigmoid(x) (a Mul reading both): silu")
def sigmoid(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    return _gate(im, node, "silu") or im.add(node, "sigmoid", {}, [im.tensor(node.input[0])])


@handles("HardSigmoid", layer="hardsigmoid",
         how="alpha 1/6, beta 0.5; x · HardSigmoid(x): hardswish")
def hardsigmoid(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
    if not (math.isclose(alpha, SIXTH, rel_tol=1e-6) and beta == 0.5):
        return im.problem(node, f"alpha {shortest_float32(alpha)}, beta "
                                f"{shortest_float32(beta)}: convcalc's hardsigmoid is "
                                "relu6(x + 3)/6 (alpha 1/6, beta 0.5)")
    return _gate(im, node, "hardswish") or im.add(node, "hardsigmoid", {},
                                                  [im.tensor(node.input[0])])


@handles("LeakyRelu", layer="leaky_relu", how="alpha → negative_slope")
def leaky_relu(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    return im.add(node, "leaky_relu", {"negative_slope": shortest_float32(a.get("alpha", 0.01))},
                  [im.tensor(node.input[0])])


@handles("Elu", layer="elu")
def elu(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    return im.add(node, "elu", {"alpha": shortest_float32(a.get("alpha", 1.0))},
                  [im.tensor(node.input[0])])


@handles("Selu", layer="selu", how="PyTorch's alpha and gamma only")
def selu(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    alpha, gamma = a.get("alpha", 1.67326319217681884765625), a.get("gamma", 1.05070102214813232421875)
    if not (math.isclose(alpha, 1.6732632, rel_tol=1e-6) and math.isclose(gamma, 1.050701, rel_tol=1e-6)):
        return im.problem(node, f"alpha {alpha}, gamma {gamma}: convcalc's selu has "
                                "PyTorch's constants")
    return im.add(node, "selu", {}, [im.tensor(node.input[0])])


@handles("Gelu", layer="gelu", how="approximate none | tanh")
def gelu(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    return im.add(node, "gelu", {"approximate": a.get("approximate", "none")},
                  [im.tensor(node.input[0])])


@handles("Softmax", "LogSoftmax", layer="softmax, log_softmax", how="over the channels (axis 1)")
def softmax(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    rank = len(t.shape) + 1
    axis = _axis(a.get("axis", -1 if im.opset >= 13 else 1), rank)
    if axis != 1 or (im.opset < 13 and rank > 2):
        return im.problem(node, f"over axis {a.get('axis', 'default')} of a rank-{rank} "
                                "tensor: convcalc's is over the channels (axis 1)"
                          + (" (before opset 13 it spans every axis from it)"
                             if im.opset < 13 and rank > 2 else ""))
    return im.add(node, "softmax" if node.op_type == "Softmax" else "log_softmax", {}, [t])


@handles("Clip", layer="relu6, relu", how="(0, 6): relu6; (0, none): relu")
def clip(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    if im.opset >= 11:
        low = im.floats(node.input[1]) if len(node.input) > 1 and node.input[1] else [None]
        high = im.floats(node.input[2]) if len(node.input) > 2 and node.input[2] else [None]
    else:
        low, high = [a.get("min")], [a.get("max")]
    if low is None or high is None:
        return im.problem(node, "Clip bounds that are not constants")
    bounds = (low[0] if low else None, high[0] if high else None)
    t = im.tensor(node.input[0])
    if bounds == (0.0, 6.0):
        return im.add(node, "relu6", {}, [t])
    if bounds[0] == 0.0 and (bounds[1] is None or bounds[1] == math.inf):
        return im.add(node, "relu", {}, [t])
    return im.problem(node, f"Clip to {bounds}: convcalc clips to (0, 6) (relu6) only")


@handles("PRelu", layer="prelu", how="one slope, or one per channel")
def prelu(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t, slope = im.tensor(node.input[0]), im.value(node.input[1])
    if not isinstance(t, Tensor) or not isinstance(slope, Const):
        return im.problem(node, "a slope that is not a constant")
    if slope.size == 1:
        return im.add(node, "prelu", {}, [t])
    if slope.size == t.channels and [d for d in slope.dims if d != 1] == [t.channels]:
        return im.add(node, "prelu", {"per_channel": True}, [t])
    return im.problem(node, f"a slope of dims {list(slope.dims)}: convcalc's are one, or one "
                            "per channel")


@handles("Dropout", layer="dropout", how="ratio → rate (inference: the identity)")
def dropout(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    if len(node.output) > 1 and node.output[1] and im.consumers.get(node.output[1]):
        return im.problem(node, "its mask is read: convcalc's dropout has one output")
    ratio = a.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        values = im.floats(node.input[1])
        if values is None:
            return im.problem(node, "a ratio that is not a constant")
        ratio = values[0]
    return im.add(node, "dropout", {"rate": shortest_float32(ratio)}, [im.tensor(node.input[0])])


# windows


def _window(im: Importer, node: Any, a: dict[str, Any], t: Tensor, kernel: list[int],
            pool: bool) -> dict[str, Any] | Unknown:
    """kernel, stride, dilation and padding of a Conv or a pool, as convcalc options."""
    dims = len(kernel)
    if _spatial_count(t) != dims or dims == 0:
        return im.problem(node, f"a {dims}-D window on {im._shape_text([t])}")
    strides = list(a.get("strides", [1] * dims))
    dilations = list(a.get("dilations", [1] * dims))
    pads = list(a.get("pads", [0] * 2 * dims))
    auto = a.get("auto_pad", "NOTSET")
    options: dict[str, Any] = {"kernel": _per_axis(kernel), "stride": _per_axis(strides)}
    if any(d != 1 for d in dilations):
        options["dilation"] = _per_axis(dilations)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if pool and a.get("ceil_mode", 0):
            return im.problem(node, f"auto_pad {auto} with ceil_mode (ONNX gives two rules)")
        if auto == "SAME_UPPER":
            options["padding"] = "same"
        else:
            sizes = _known(t.shape[1:])
            if sizes is None:
                return im.problem(node, "auto_pad SAME_LOWER on an open size (its padding "
                                        "depends on the size)")
            pairs = []
            for n, k, s, d in zip(sizes, kernel, strides, dilations):
                e = d * (k - 1) + 1
                total = max((-(-n // s) - 1) * s + e - n, 0)
                pairs.append((total - total // 2, total // 2))   # the odd one before
            options["padding"] = _padding(pairs)
    elif auto == "VALID":
        pass
    elif auto != "NOTSET":
        return im.problem(node, f"auto_pad {auto!r}")
    else:
        if len(pads) != 2 * dims or any(p < 0 for p in pads):
            return im.problem(node, f"pads {pads}: convcalc pads by begin and end per axis, "
                                    "≥ 0")
        pairs = list(zip(pads[:dims], pads[dims:]))
        if any(b or e for b, e in pairs):
            options["padding"] = _padding(pairs)
    return options


@handles("Conv", layer="conv",
         how="weights' dims give filters and kernel; group; pads begin/end; auto_pad; "
             "a Pad by mode before it: padding_mode")
def conv(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    source = im.value(node.input[0])
    weight = im.value(node.input[1])
    if not isinstance(weight, Const):
        return im.problem(node, "weights that are computed: convcalc's conv learns them")
    pending = source if isinstance(source, PendingPad) else None
    t = pending.source if pending else im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    filters, per_group, *kernel = weight.dims
    kernel = list(a.get("kernel_shape", kernel))
    group = a.get("group", 1)
    options = _window(im, node, a, t, kernel, pool=False)
    if isinstance(options, Unknown):
        return options
    if pending and ("padding" in options):
        t = im.tensor(node.input[0])          # its own zero padding too: the pad a layer
        pending = None
        if not isinstance(t, Tensor):
            return UNKNOWN
    if pending:
        options["padding"] = _padding(pending.pairs)
        options["padding_mode"] = {"reflect": "reflect", "edge": "replicate",
                                   "wrap": "circular"}[pending.mode]
    channels = t.channels
    if channels is not None and per_group * group != channels:
        return im.problem(node, f"weights of dims {list(weight.dims)} with group {group} "
                                f"read {per_group * group} channels; the input has {channels}")
    layer = {"filters": filters, **options}
    if group != 1:
        layer["groups"] = "depthwise" if group == channels and per_group == 1 else group
    has_bias = len(node.input) > 2 and bool(node.input[2])
    if not has_bias:
        layer["bias"] = False
    order = {"filters": 0, "kernel": 1, "stride": 2, "padding": 3, "dilation": 4,
             "groups": 5, "bias": 6, "padding_mode": 7}
    return im.add(node, "conv", dict(sorted(layer.items(), key=lambda kv: order[kv[0]])), [t])


@handles("ConvTranspose", layer="conv_transpose", how="output_padding, pads; group")
def conv_transpose(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t, weight = im.tensor(node.input[0]), im.value(node.input[1])
    if not isinstance(t, Tensor) or not isinstance(weight, Const):
        return im.problem(node, "weights that are computed")
    if "output_shape" in a:
        return im.problem(node, "output_shape: convcalc takes pads and output_padding")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return im.problem(node, f"auto_pad {a['auto_pad']}: give the pads")
    channels, per_group, *kernel = weight.dims
    group = a.get("group", 1)
    options = _window(im, node, a, t, list(a.get("kernel_shape", kernel)), pool=False)
    if isinstance(options, Unknown):
        return options
    layer: dict[str, Any] = {"filters": per_group * group, **options}
    out_pad = list(a.get("output_padding", [0] * len(kernel)))
    if any(out_pad):
        layer["output_padding"] = _per_axis(out_pad)
    if group != 1:
        layer["groups"] = group
    if not (len(node.input) > 2 and node.input[2]):
        layer["bias"] = False
    return im.add(node, "conv_transpose", layer, [t])


def _ceil_note(im: Importer, node: Any, t: Tensor, options: dict[str, Any],
               kernel: list[int], a: dict[str, Any]) -> str | None:
    """When a ceil_mode pool's last window would start in the right padding on some axis:
    what ONNX's two rules give, and which the file's annotation states."""
    dims = len(kernel)
    strides = list(a.get("strides", [1] * dims))
    dilations = list(a.get("dilations", [1] * dims))
    pads = list(a.get("pads", [0] * 2 * dims))
    sizes = _known(t.shape[1:])
    if a.get("auto_pad", "NOTSET") != "NOTSET" or sizes is None:
        return None
    from ..axes import axis_names

    dropped, kept, axes = [], [], []
    for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dilations)):
        b, e_ = pads[i], pads[i + dims]
        e = d * (k - 1) + 1
        naive = -(-(n + b + e_ - e) // s) + 1
        torch = naive - 1 if (naive - 1) * s >= n + b else naive
        dropped.append(torch)
        kept.append(naive)
        if torch != naive:
            axes.append(axis_names(dims)[i])
    if not axes:
        return None
    stated = im.annotated.get(node.output[0])
    spatial = tuple(stated[2:]) if stated and len(stated) == dims + 2 else None
    if spatial == tuple(kept):
        says = (f"the file's annotation states {list(kept)}: ONNX shape inference's rule, "
                "which keeps it; convcalc (and onnxruntime) compute the smaller size")
    elif spatial == tuple(dropped):
        says = f"the file's annotation states {list(dropped)}: the same rule"
    else:
        says = "the file states no size for it"
    return (f"ceil_mode: along {', '.join(axes)} the last window would start in the right "
            f"padding; ONNX's operator text, onnxruntime and PyTorch drop it (output "
            f"{dropped}, as convcalc computes), onnx.shape_inference keeps it ({kept}) — "
            f"{says}")


@handles("MaxPool", "AveragePool", layer="maxpool, avgpool",
         how="strides, pads begin/end, dilations, auto_pad, ceil_mode; AveragePool with "
             "count_include_pad 1, or 0 without padding")
def pool(im: Importer, node: Any, a: dict[str, Any], source: Tensor | None = None,
         minimum: bool = False) -> Handled:
    t = source or im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    if node.op_type == "MaxPool" and len(node.output) > 1 and im.consumers.get(node.output[1]):
        return im.problem(node, "its Indices output is read: convcalc's maxpool has one output")
    kernel = list(a["kernel_shape"]) if "kernel_shape" in a else None
    if kernel is None:
        return im.problem(node, "no kernel_shape")
    options = _window(im, node, a, t, kernel, pool=True)
    if isinstance(options, Unknown):
        return options
    if node.op_type == "AveragePool" and not a.get("count_include_pad", 0) and \
            options.get("padding") not in (None, 0):
        return im.problem(node, "count_include_pad 0 over padding: convcalc's avgpool divides "
                                "by the whole window, padding included (PyTorch's default)")
    if a.get("ceil_mode", 0):
        options["ceil_mode"] = True
    layer_type = "minpool" if minimum else "maxpool" if node.op_type == "MaxPool" else "avgpool"
    result = im.add(node, layer_type, options, [t])
    if isinstance(result, Tensor) and options.get("ceil_mode"):
        note = _ceil_note(im, node, t, options, kernel, a)
        if note:
            im.warn(result.layer, note)
    return result


@handles("GlobalAveragePool", "GlobalMaxPool", layer="adaptive_avgpool, adaptive_maxpool",
         how="output 1: the (N, C, 1, …) ONNX makes (a Flatten after it is a flatten)")
def global_pool(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    if _spatial_count(t) == 0:
        return im.problem(node, "on a flat input")
    average = node.op_type == "GlobalAveragePool"
    return im.add(node, "adaptive_avgpool" if average else "adaptive_maxpool",
                  {"output": 1}, [t])


@handles("ReduceMean", "ReduceMax", layer="global_avgpool / adaptive_avgpool output 1",
         how="over every spatial axis (keepdims 0 / 1)")
def reduce(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    rank = len(t.shape) + 1
    axes = a.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = im.ints(node.input[1])
    if axes is None:
        return im.problem(node, "no constant axes (every axis: the batch too)")
    axes = sorted(_axis(int(x), rank) for x in axes)
    if axes != list(range(2, rank)) or rank < 3:
        return im.problem(node, f"over axes {axes}: convcalc pools over every spatial axis")
    average = node.op_type == "ReduceMean"
    if a.get("keepdims", 1):
        return im.add(node, "adaptive_avgpool" if average else "adaptive_maxpool",
                      {"output": 1}, [t])
    return im.add(node, "global_avgpool" if average else "global_maxpool", {}, [t])


# shapes


@handles("Flatten", layer="flatten", how="axis 1")
def flatten(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    if _axis(a.get("axis", 1), len(t.shape) + 1) != 1:
        return im.problem(node, f"axis {a.get('axis')}: convcalc flattens all but the batch")
    return im.add(node, "flatten", {}, [t])


def _rearranged(im: Importer, node: Any, t: Tensor) -> Tensor | Unknown | None:
    """Reshape → Transpose → Reshape that is a channel shuffle or a pixel (un)shuffle
    as :func:`convcalc.export.onnx.shuffle_layout` writes it."""
    from ..export.onnx import shuffle_layout

    transpose = im.only_reader(node.output[0])
    shape = _known(t.shape)
    if transpose is None or transpose.op_type != "Transpose" or shape is None:
        return None
    back = im.only_reader(transpose.output[0])
    if back is None or back.op_type != "Reshape":
        return None
    split = im.sizes(node.input[1])
    final = im.sizes(back.input[1])
    perm = list(_attrs(im.onnx, transpose).get("perm", []))
    if split is None or final is None:
        return None
    wanted = [int(s) for s in split[1:] if not isinstance(s, Sym)] if split and \
        (split[0] in (0, BATCH) or split[0] == -1) else None
    if wanted is None:
        return None
    c = shape[0]
    candidates = [("channel_shuffle", "groups", g) for g in range(2, c + 1) if c % g == 0]
    dims = len(shape) - 1
    for r in range(2, 17):
        if dims and c % r**dims == 0:
            candidates.append(("pixel_shuffle", "factor", r))
        if dims and all(n % r == 0 for n in shape[1:]):
            candidates.append(("pixel_unshuffle", "factor", r))
    for kind, option, value in candidates:
        want_split, want_perm = shuffle_layout(kind, shape, value)
        if want_split == wanted and want_perm == perm:
            im.absorbed.add(im.reader_index(transpose))
            im.absorbed.add(im.reader_index(back))
            return im.add(back, kind, {option: value}, [t])
    return None


@handles("Reshape", layer="flatten", how="to (N, −1); Reshape–Transpose–Reshape: "
         "channel_shuffle, pixel_shuffle, pixel_unshuffle")
def reshape(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    data = im.value(node.input[0])
    target = im.sizes(node.input[1])
    if isinstance(data, Const):
        if data.values is not None and target is not None:
            _fold(im, node, data.values, tuple(int(x) for x in target if not isinstance(x, Sym)),
                  data.dtype)
            return None
        return im.problem(node, "a Reshape of a constant without values")
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    if target is None:
        return im.problem(node, "a target shape that is not a constant")
    batch_first = len(target) == 2 and (target[0] in (0, BATCH) or
                                        (target[0] == -1 and target[1] != -1))
    known = _known(t.shape)
    features = None if known is None else math.prod(known)
    if batch_first and (target[1] == -1 or target[1] == features):
        return im.add(node, "flatten", {}, [t])
    rearranged = _rearranged(im, node, t) or _lrn_view(im, node, t, target)
    if rearranged is not None:
        return rearranged
    same = [t.shape[i - 1] if x == 0 and i > 0 else x for i, x in enumerate(target)]
    if same[1:] == list(t.shape) and same[0] in (0, BATCH, -1):
        im.env[node.output[0]] = t           # a reshape to the shape it has
        return None
    return im.problem(node, f"to {target} from {im._shape_text([t])}: convcalc reshapes to "
                            "(N, −1) only (flatten)")


def _lrn_view(im: Importer, node: Any, t: Tensor, target: list[int | Sym]) -> Handled:
    """Reshape to ``(N, C, positions, 1)`` → LRN → Reshape back: an lrn on a feature map
    of another rank (onnxruntime's LRN takes 4-D tensors only)."""
    norm = im.only_reader(node.output[0])
    shape = _known(t.shape)
    if norm is None or norm.op_type != "LRN" or shape is None or len(target) != 4:
        return None
    back = im.only_reader(norm.output[0])
    view = [shape[0], math.prod(shape[1:]), 1]
    if back is None or back.op_type != "Reshape" or target[1:] != view:
        return None
    final = im.sizes(back.input[1])
    if final is None or final[1:] != list(t.shape):
        return None
    im.absorbed.update({im.reader_index(norm), im.reader_index(back)})
    result = lrn(im, _Renamed(norm, back), _attrs(im.onnx, norm), source=t)
    return result


class _Renamed:
    """A node read as ``node`` but named (and writing) as ``last``: a fused group."""

    def __init__(self, node: Any, last: Any):
        self.name, self.op_type, self.input, self.output = (last.name, node.op_type,
                                                             node.input, last.output)


@handles("Neg", layer="minpool", how="Neg → MaxPool → Neg")
def neg(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    pooled = im.only_reader(node.output[0])
    back = im.only_reader(pooled.output[0]) if pooled is not None and \
        pooled.op_type == "MaxPool" and len([o for o in pooled.output if o]) == 1 else None
    if not isinstance(t, Tensor) or back is None or back.op_type != "Neg":
        return im.problem(node, "a Neg that is not around a MaxPool (a minpool)")
    im.absorbed.update({im.reader_index(pooled), im.reader_index(back)})
    return pool(im, _Renamed(pooled, back), _attrs(im.onnx, pooled), source=t, minimum=True)


@handles("Transpose", layer="layernorm", how="Transpose to channels last, "
         "LayerNormalization over the last axis, Transpose back")
def transpose(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    rank = len(t.shape) + 1
    perm = list(a.get("perm", reversed(range(rank))))
    norm = im.only_reader(node.output[0])
    if perm == [0, *range(2, rank), 1] and norm is not None and \
            norm.op_type == "LayerNormalization" and \
            _axis(_attrs(im.onnx, norm).get("axis", -1), rank) == rank - 1:
        back = im.only_reader(norm.output[0])
        if back is not None and back.op_type == "Transpose" and \
                list(_attrs(im.onnx, back).get("perm", [])) == [0, rank - 1, *range(1, rank - 1)]:
            options = _norm_affine(im, norm, t.channels, "layernorm")
            if isinstance(options, Unknown):
                return options
            im.absorbed.update({im.reader_index(norm), im.reader_index(back)})
            return im.add(back, "layernorm", options, [t])
    return im.problem(node, f"a Transpose by {perm}: convcalc's layers keep channels first")


# dense


@handles("Gemm", layer="dense", how="on a flat input; transB; C → bias")
def gemm(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t, weight = im.tensor(node.input[0]), im.value(node.input[1])
    if not isinstance(t, Tensor) or not isinstance(weight, Const):
        return im.problem(node, "a product of two computed values (convcalc's dense learns "
                                "its weights)")
    if len(t.shape) != 1:
        return im.problem(node, f"on {im._shape_text([t])}: dense reads a flat input")
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or \
            (a.get("beta", 1.0) != 1.0 and len(node.input) > 2 and node.input[2]):
        return im.problem(node, "transA, alpha or beta: convcalc's dense is x·W + b")
    units = weight.dims[0] if a.get("transB", 0) else weight.dims[-1]
    options: dict[str, Any] = {"units": units}
    if not (len(node.input) > 2 and node.input[2]):
        options["bias"] = False
    return im.add(node, "dense", options, [t])


@handles("MatMul", layer="dense", how="on a flat input, by a constant; + Add of a bias")
def matmul(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t, weight = im.tensor(node.input[0]), im.value(node.input[1])
    if not isinstance(t, Tensor) or not isinstance(weight, Const) or len(weight.dims) != 2:
        return im.problem(node, "not a flat input times a constant matrix")
    if len(t.shape) != 1:
        return im.problem(node, f"on {im._shape_text([t])}: dense reads a flat input")
    units = weight.dims[1]
    add = im.only_reader(node.output[0])
    if add is not None and add.op_type == "Add":
        other = [name for name in add.input if name != node.output[0]]
        bias = im.value(other[0]) if len(other) == 1 else None
        if isinstance(bias, Const) and bias.size == units:
            im.absorbed.add(im.reader_index(add))
            return im.add(add, "dense", {"units": units}, [t])
    return im.add(node, "dense", {"units": units, "bias": False}, [t])


# norms


def _identity_values(const: Const, value: float) -> bool:
    return const.values is not None and all(v == value for v in const.values)


def _norm_affine(im: Importer, node: Any, channels: int | None, kind: str
                 ) -> dict[str, Any] | Unknown:
    """eps and affine of a norm: learned scale and shift (initializers, or constants
    that are not 1 and 0) make it affine."""
    a = _attrs(im.onnx, node)
    options: dict[str, Any] = {}
    eps = shortest_float32(a.get("epsilon", 1e-5))
    if eps != 1e-5:
        options["eps"] = eps
    scale = im.value(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    shift = im.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    given: list[tuple[Const, float]] = []     # (scale or shift, its identity value)
    for const, identity in ((scale, 1.0), (shift, 0.0)):
        if const is None:
            continue
        if not isinstance(const, Const):
            return im.problem(node, "a scale or shift that is computed")
        if channels is not None and const.size != channels:
            return im.problem(node, f"a scale or shift of {const.size} values for "
                                    f"{channels} channels")
        given.append((const, identity))
    learned = any(c.learned or not _identity_values(c, v) for c, v in given)
    if kind == "instancenorm":
        if learned:
            options["affine"] = True
    elif not learned:
        options["affine"] = False
    return options


@handles("BatchNormalization", layer="batchnorm", how="epsilon → eps, momentum → 1 − momentum")
def batchnorm(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    if any(im.consumers.get(name) for name in node.output[1:] if name):
        return im.problem(node, "its running statistics outputs are read")
    options: dict[str, Any] = {}
    eps = shortest_float32(a.get("epsilon", 1e-5))
    if eps != 1e-5:
        options["eps"] = eps
    momentum = one_minus(a.get("momentum", 0.9))
    if momentum != 0.1:
        options["momentum"] = momentum
    return im.add(node, "batchnorm", options, [t])


@handles("InstanceNormalization", layer="instancenorm", how="learned scale and B: affine")
def instancenorm(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    options = _norm_affine(im, node, t.channels, "instancenorm")
    if isinstance(options, Unknown):
        return options
    return im.add(node, "instancenorm", options, [t])


@handles("LayerNormalization", layer="layernorm", how="over the channels of a flat input")
def layernorm(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    rank = len(t.shape) + 1
    if rank != 2 or _axis(a.get("axis", -1), rank) != 1:
        return im.problem(node, f"over axis {a.get('axis', -1)} of {im._shape_text([t])}: "
                                "convcalc's layernorm normalises the channels (a flat input, "
                                "or Transpose to channels last around it)")
    if any(im.consumers.get(name) for name in node.output[1:] if name):
        return im.problem(node, "its mean or inverse deviation output is read")
    options = _norm_affine(im, node, t.channels, "layernorm")
    if isinstance(options, Unknown):
        return options
    return im.add(node, "layernorm", options, [t])


@handles("GroupNormalization", layer="groupnorm", how="num_groups → groups (opset 21's "
         "per-channel scale; opset 18's per-group one when groups = channels)")
def groupnorm(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    groups = a.get("num_groups")
    if groups is None:
        return im.problem(node, "no num_groups")
    if im.opset < 21 and groups != t.channels:
        return im.problem(node, f"opset {im.opset}: GroupNormalization-18 scales per group "
                                f"({groups} values), convcalc's groupnorm per channel")
    options = _norm_affine(im, node, t.channels, "groupnorm")
    if isinstance(options, Unknown):
        return options
    return im.add(node, "groupnorm", {"groups": groups, **options}, [t])


@handles("LRN", layer="lrn", how="odd size; bias → k")
def lrn(im: Importer, node: Any, a: dict[str, Any], source: Tensor | None = None) -> Handled:
    size = a.get("size")
    if not size or size % 2 == 0:
        return im.problem(node, f"size {size}: ONNX centres an even window on channels "
                                "c − (size − 2)/2 … c + size/2, convcalc (as PyTorch) on "
                                "c − size/2 … c + (size − 2)/2")
    options = {"size": size}
    for key, name, default in (("alpha", "alpha", 1e-4), ("beta", "beta", 0.75),
                               ("bias", "k", 1.0)):
        value = shortest_float32(a.get(key, default))
        if value != default:
            options[name] = value
    return im.add(node, "lrn", options, [source or im.tensor(node.input[0])])


# merges and per-channel constants


def _per_channel_const(const: Const, t: Tensor) -> bool:
    """A constant of one value per channel, shaped to broadcast over ``(N, *t.shape)``:
    aligned at the last axis, its one entry other than 1 on the channel axis."""
    rank, dims = len(t.shape), list(const.dims)
    if not rank <= len(dims) <= rank + 1 or t.channels is None:
        return False
    channel = len(dims) - rank
    return dims[channel] == t.channels and all(d == 1 for i, d in enumerate(dims)
                                               if i != channel)


@handles("Add", "Mul", "Sum", layer="add, mul", how="of computed values (broadcasting size-1 "
         "axes); Mul by a learned per-channel constant (+ Add of one): scale")
def merge(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    op = {"Add": "+", "Mul": "*", "Sum": "+"}[node.op_type]
    if node.op_type != "Sum" and _fold_arith(im, node, op):
        return None
    values = [im.value(name) for name in node.input]
    consts = [v for v in values if isinstance(v, Const)]
    if not consts:
        return _merge_chain(im, node)
    if len(values) != 2 or len(consts) != 1:
        return im.problem(node, f"{node.op_type} of constants and computed values")
    t = im.tensor(next(name for name, v in zip(node.input, values) if not isinstance(v, Const)))
    if not isinstance(t, Tensor):
        return UNKNOWN
    const = consts[0]
    if node.op_type == "Mul" and _per_channel_const(const, t):
        add = im.only_reader(node.output[0])
        if add is not None and add.op_type == "Add":
            other = [im.value(name) for name in add.input if name != node.output[0]]
            if len(other) == 1 and isinstance(other[0], Const) and \
                    _per_channel_const(other[0], t):
                im.absorbed.add(im.reader_index(add))
                return im.add(add, "scale", {"bias": True}, [t])
        return im.add(node, "scale", {}, [t])
    return im.problem(node, f"{node.op_type} of a constant of dims {list(const.dims)}: "
                            "convcalc has no layer that adds or multiplies by a constant "
                            "(a per-channel Mul is scale)")


def _merge_chain(im: Importer, node: Any) -> Tensor | Unknown:
    """An add (mul) of every input of a chain of Add (Mul) nodes, each an inner node of
    the next (named ``next/…``, as convcalc's export names a layer's nodes) that only
    the next reads: ``(a · b) · c`` written for one mul of three.  Other chains stay a
    layer per node, as the file has them."""
    op = "Add" if node.op_type in ("Add", "Sum") else "Mul"
    names, last = list(node.input), node
    while True:
        reader = im.only_reader(last.output[0])
        if reader is None or reader.op_type not in (op, "Sum" if op == "Add" else op) or \
                not reader.name or not last.name.startswith(reader.name + "/") or \
                any(isinstance(im.value(n), Const) for n in reader.input if n != last.output[0]):
            break
        im.absorbed.add(im.reader_index(reader))
        names += [n for n in reader.input if n != last.output[0]]
        last = reader
    tensors = _tensors([im.tensor(name) for name in names])
    if tensors is None:
        return UNKNOWN
    if len(tensors) == 1:      # a Sum of one input
        return im.add(last, "identity", {}, tensors)
    return im.add(last, "add" if op == "Add" else "mul", {}, tensors)


@handles("Sub", "Div")
def arith(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    if _fold_arith(im, node, "-" if node.op_type == "Sub" else "/"):
        return None
    if node.op_type == "Div":
        gelu = _erf_gelu(im, node)
        if gelu is not None:
            return gelu
    return im.problem(node, f"{node.op_type} of computed values: no convcalc layer")


def _scalar(im: Importer, name: str) -> float | None:
    value = im.value(name)
    if isinstance(value, Const) and value.values is not None and len(value.values) == 1 \
            and not isinstance(value.values[0], Sym):
        return float(value.values[0])
    return None


def _other(node: Any, name: str) -> str | None:
    """The input of a two-input node that is not ``name``."""
    others = [n for n in node.input if n != name]
    return others[0] if len(node.input) == 2 and len(others) == 1 else None


def _erf_gelu(im: Importer, div: Any) -> Tensor | Unknown | None:
    """``x · ½(1 + erf(x/√2))`` as ``torch.onnx.export`` writes GELU before opset 20:
    Div(x, √2) → Erf → Add(1) → Mul(x, ·) → Mul(½)."""
    x = div.input[0]
    root = _scalar(im, div.input[1])
    erf = im.only_reader(div.output[0])
    if root is None or not math.isclose(root, math.sqrt(2), rel_tol=1e-6) or erf is None \
            or erf.op_type != "Erf":
        return None
    add = im.only_reader(erf.output[0])
    one = _scalar(im, _other(add, erf.output[0]) or "") if add is not None and \
        add.op_type == "Add" else None
    if add is None or one != 1.0:
        return None
    times = im.only_reader(add.output[0])
    if times is None or times.op_type != "Mul" or _other(times, add.output[0]) != x:
        return None
    half = im.only_reader(times.output[0])
    if half is None or half.op_type != "Mul" or _scalar(im, _other(half, times.output[0])
                                                         or "") != 0.5:
        return None
    im.absorbed.update(im.reader_index(n) for n in (erf, add, times, half))
    return im.add(half, "gelu", {}, [im.tensor(x)])


@handles("Erf", layer="gelu", how="Div(x, √2) → Erf → Add(1) → Mul(x) → Mul(½): GELU as "
         "torch.onnx.export writes it before opset 20")
def erf(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    return im.problem(node, "an Erf that is not GELU's x·½(1 + erf(x/√2))")


# slicing and splitting


def _slice_args(im: Importer, node: Any, a: dict[str, Any]
                ) -> tuple[list[int | Sym], list[int | Sym], list[int], list[int | Sym]] | None:
    """A Slice's starts, ends, axes and steps (defaults filled in), or ``None`` when one
    it is given is not a constant; starts, ends and steps may hold sizes only the
    running graph knows."""
    if im.opset >= 10:
        names = list(node.input[1:]) + [""] * 4
        starts, ends = im.sizes(names[0]), im.sizes(names[1])
        axes = im.ints(names[2]) if names[2] else None
        steps = im.sizes(names[3]) if names[3] else None
        if (names[2] and axes is None) or (names[3] and steps is None):
            return None
    else:
        starts, ends, axes, steps = a.get("starts"), a.get("ends"), a.get("axes"), None
    if starts is None or ends is None:
        return None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    return starts, ends, axes, steps


def _clamp(index: int, size: int) -> int:
    index = index + size if index < 0 else index
    return max(0, min(index, size))


@handles("Slice", layer="slice, crop", how="on the channels (step 1): slice; on spatial "
         "axes, centred or from the start: crop; of constants: folded")
def slice_(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    args = _slice_args(im, node, a)
    data = im.value(node.input[0])
    if args is None:
        return im.problem(node, "starts, ends, axes or steps that are not constants")
    starts, ends, axes, steps = args
    if isinstance(data, Const):
        first, last, by = _whole(starts), _whole(ends), _whole(steps)
        if data.values is not None and len(data.dims) == 1 and axes in ([0], [-1]) \
                and first is not None and last is not None and by is not None:
            picked = data.values[slice(first[0], last[0], by[0])]
            _fold(im, node, picked, (len(picked),), data.dtype)
            return None
        return im.problem(node, "a Slice of a constant convcalc cannot fold")
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    rank = len(t.shape) + 1
    cuts = {}
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(int(axis), rank)
        size = t.shape[axis - 1] if axis >= 1 else None
        if axis == 0 or step != 1 or size is None or isinstance(start, Sym) or \
                isinstance(end, Sym):
            return im.problem(node, f"along axis {axis} (step {step}): convcalc slices "
                                    "channels and crops known sizes")
        cuts[axis] = (_clamp(start, size), _clamp(end, size))
    if set(cuts) == {1}:
        start, stop = cuts[1]
        return im.add(node, "slice", {"channels": [start, stop]}, [t])
    if 1 in cuts:
        return im.problem(node, "a Slice of channels and spatial axes at once")
    sizes, anchors = [], set()
    for axis in range(2, rank):
        n = t.shape[axis - 1]
        if n is None:
            return im.problem(node, f"a crop of an input whose axis {axis} is open: "
                                    "convcalc's crop gives every spatial size")
        start, stop = cuts.get(axis, (0, n))
        out = stop - start
        sizes.append(out)
        anchor = {"start"} if start == 0 else set()
        if start == (n - out) // 2:
            anchor.add("center")
        anchors.add(frozenset(anchor))
    common = frozenset.intersection(*anchors) if anchors else frozenset()
    if not common:
        return im.problem(node, "a crop neither centred nor from the start")
    options: dict[str, Any] = {"size": _per_axis(sizes)}
    if "center" not in common:
        options["anchor"] = "start"
    return im.add(node, "crop", options, [t])


@handles("Split", layer="slice", how="along the channels: one slice per output")
def split(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    rank = len(t.shape) + 1
    if _axis(a.get("axis", 0), rank) != 1 or t.channels is None:
        return im.problem(node, f"along axis {a.get('axis', 0)}: convcalc splits channels")
    sizes = a.get("split")
    if len(node.input) > 1 and node.input[1]:
        sizes = im.ints(node.input[1])
        if sizes is None:
            return im.problem(node, "split sizes that are not constants")
    if sizes is None:
        count = a.get("num_outputs", len(node.output))
        step = -(-t.channels // count)
        sizes = [min(step, t.channels - i * step) for i in range(count)]
    start = 0
    for output, size in zip(node.output, sizes):
        stop = start + int(size)
        part = _NamedNode(node, output)
        result = im.add(part, "slice", {"channels": [start, stop]}, [t], output=output)
        if isinstance(result, Unknown):
            return result
        start = stop
    return None


class _NamedNode:
    """One output of a multi-output node, named after it (``split`` → ``split.0``)."""

    def __init__(self, node: Any, output: str):
        index = list(node.output).index(output)
        self.name = f"{node.name}.{index}" if node.name else ""
        self.op_type, self.input, self.output = node.op_type, node.input, [output]


# resizing


@handles("Resize", "Upsample", layer="upsample",
         how="nearest: asymmetric + floor; linear, cubic (A −0.75, exclude_outside 0): "
             "half_pixel, pytorch_half_pixel (outputs > 1), align_corners; sizes, or "
             "scales with whole in·scale; sizes of another tensor: inputs [x, ref]")
def resize(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    dims = _spatial_count(t)
    mode = a.get("mode", "nearest")
    legacy = node.op_type == "Upsample" or im.opset < 11
    ctm = "asymmetric" if legacy else a.get("coordinate_transformation_mode", "half_pixel")
    if a.get("antialias", 0):
        return im.problem(node, "antialias")
    options: dict[str, Any] = {}
    if mode == "nearest":
        nearest = "floor" if legacy else a.get("nearest_mode", "round_prefer_floor")
        if (ctm, nearest) != ("asymmetric", "floor"):
            return im.problem(node, f"nearest with {ctm} and {nearest}: convcalc's nearest "
                                    "reads floor(dst·in/out) (asymmetric, floor)")
    elif mode in ("linear", "cubic"):
        if mode == "cubic" and (a.get("cubic_coeff_a", -0.75) != -0.75 or
                                a.get("exclude_outside", 0)):
            return im.problem(node, "cubic with a coefficient other than −0.75 or "
                                    "exclude_outside")
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            return im.problem(node, f"{mode} with coordinate_transformation_mode {ctm}: "
                                    "convcalc's sources are half_pixel or align_corners")
        options["mode"] = mode
        if ctm == "align_corners":
            options["align_corners"] = True
    else:
        return im.problem(node, f"mode {mode}")
    axes = a.get("axes")
    if axes is not None:
        axes = sorted(_axis(x, dims + 2) for x in axes)
        if axes != list(range(2, dims + 2)):
            return im.problem(node, f"axes {axes}: convcalc resizes every spatial axis")
    names = list(node.input) + [""] * 4
    scales_name = names[1] if legacy and node.op_type == "Upsample" else names[2]
    sizes_name = "" if legacy and node.op_type == "Upsample" else names[3]
    ref: str | None = None
    sizes = im.sizes(sizes_name) if sizes_name else None
    if sizes_name and sizes is None:
        return im.problem(node, "sizes that are not constants")
    if sizes is not None:
        spatial = sizes[-dims:]
        syms = [s for s in spatial if isinstance(s, Sym)]
        if syms:
            sources = {s.tensor for s in syms}
            if len(syms) != dims or len(sources) != 1 or \
                    [s.axis for s in syms] != list(range(2, dims + 2)):
                return im.problem(node, "sizes only the running graph knows")
            ref = sources.pop()
        else:
            options["size"] = _per_axis([s for s in spatial if not isinstance(s, Sym)])
    else:
        scales = im.floats(scales_name) if scales_name else None
        if not scales:
            return im.problem(node, "neither sizes nor constant scales")
        spatial_scales = scales[-dims:]
        if any(s != 1.0 for s in scales[:-dims]):
            return im.problem(node, "scales the batch or channel axes")
        for n, s in zip(t.shape[1:], spatial_scales):
            if n is not None and not float(n * s).is_integer():
                return im.problem(node, f"scale {s} on size {n}: ONNX then samples at 1/scale, "
                                        "convcalc at in/out; give sizes")
        options["scale"] = _per_axis([int(s) if float(s).is_integer() else s
                                      for s in spatial_scales])
    if ctm == "pytorch_half_pixel" and mode != "nearest":
        outs = options.get("size")
        if outs is None or 1 in ([outs] if isinstance(outs, int) else outs):
            if outs is not None or ref is not None or "scale" in options:
                pass
            if outs is not None:
                return im.problem(node, "pytorch_half_pixel to an output of 1 (ONNX samples "
                                        "0, half_pixel the centre)")
    if ref is not None:
        if ref == t.layer:
            return im.problem(node, "sizes of its own input")
        reference = Tensor(ref, ())
        return im.add(node, "upsample", options, [t, reference])
    return im.add(node, "upsample", options, [t])


@handles("Pad", layer="pad", how="constant, reflect, edge, wrap on spatial axes; before a "
         "Conv: its padding_mode")
def pad(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    mode = a.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        return im.problem(node, f"mode {mode}")
    if im.opset >= 11:
        pads = im.ints(node.input[1]) if len(node.input) > 1 else None
        value = im.floats(node.input[2]) if len(node.input) > 2 and node.input[2] else [0.0]
        axes = im.ints(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        if axes is None and len(node.input) > 3 and node.input[3]:
            return im.problem(node, "axes that are not constants")
    else:
        pads, value, axes = a.get("pads"), [a.get("value", 0.0)], None
    if pads is None or value is None:
        return im.problem(node, "pads that are not constants")
    rank = len(t.shape) + 1
    axes = [_axis(x, rank) for x in axes] if axes is not None else list(range(rank))
    pairs = {axis: (pads[i], pads[i + len(axes)]) for i, axis in enumerate(axes)}
    if any(pairs.get(axis, (0, 0)) != (0, 0) for axis in (0, 1)):
        return im.problem(node, "pads the batch or the channels")
    if any(p < 0 for pair in pairs.values() for p in pair):
        return im.problem(node, "negative pads (a crop)")
    spatial = [pairs.get(axis, (0, 0)) for axis in range(2, rank)]
    pending = PendingPad(node, t, spatial, mode, (value or [0.0])[0])
    reader = im.only_reader(node.output[0])
    if mode != "constant" and reader is not None and reader.op_type == "Conv":
        im.env[node.output[0]] = pending
        return None
    result = im.pad_layer(pending)
    return result


@handles("DepthToSpace", layer="pixel_shuffle", how="CRD (DCR only with one output channel)")
def depth_to_space(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    r = a.get("blocksize", 0)
    if a.get("mode", "DCR") != "CRD" and (t.channels is None or t.channels != r * r):
        return im.problem(node, "DCR order (depth, then blocks): convcalc's pixel_shuffle "
                                "takes channels c·r² + i·r + j (CRD)")
    return im.add(node, "pixel_shuffle", {"factor": r}, [t])


@handles("SpaceToDepth", layer="pixel_unshuffle", how="with one input channel (its order "
         "is blocks first)")
def space_to_depth(im: Importer, node: Any, a: dict[str, Any]) -> Handled:
    t = im.tensor(node.input[0])
    if not isinstance(t, Tensor):
        return UNKNOWN
    if t.channels != 1:
        return im.problem(node, "SpaceToDepth puts the blocks first (channel i·r·C + j·C + "
                                "c), convcalc's pixel_unshuffle the channels (c·r² + i·r + j)")
    return im.add(node, "pixel_unshuffle", {"factor": a.get("blocksize", 0)}, [t])


def mapping_rows() -> list[tuple[str, str, str]]:
    """``(ONNX operators, convcalc layer, how)`` for the docs' table."""
    return list(OPERATORS)


__all__ = ["HANDLERS", "Imported", "MAX_NODES", "MAX_ONNX_BYTES", "OnnxImportError",
           "import_onnx", "import_onnx_file", "load_onnx", "mapping_rows", "parse_model"]
