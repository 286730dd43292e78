"""A spec as a PyTorch module: ``convcalc export net.yaml --to pytorch``.

:func:`to_pytorch` writes a self-contained Python file that imports only torch and
defines ``Net``, an ``nn.Module`` built with no arguments.  Every layer of the spec is
one module, built in ``__init__`` from standard ``torch.nn`` modules where PyTorch has
one (``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.MaxPool2d``, ``nn.Linear``, …) and from a
few small modules written out in the file where it has none (``Add``, ``Concat``,
``Crop``, ``DropPath``, … — only those the network uses); ``forward`` calls them in
file order, following the graph.  The output of layer ``i`` is held in ``x`` when only
layer ``i + 1`` reads it, else in a variable of its own.

**Names.**  A layer is reached by its spec name (:func:`module_path`): a name that is
a plain identifier is an attribute of ``Net`` (``self.conv1``); a name with dots, as
blocks make them (``layer1.0.conv1``), is a path through ``nn.ModuleDict`` containers
(``self.layer1["0"]["conv1"]``), so ``dict(model.named_modules())`` holds every layer
under its spec name.  A name that cannot be one — a first part that is not an ASCII
identifier, a Python keyword or a name ``nn.Module`` uses (``forward``, ``training``,
``eval``, …); a part that is empty, starts with ``_`` or is a name ``nn.ModuleDict``
uses (``keys``, ``items``, …); a path through another layer — becomes an identifier of
its own: every character but ``A–Z a–z 0–9 _`` replaced by ``_``, ``layer_`` in front
when that is still not usable, ``_2``, ``_3``, … after it when it is taken.  Names
reach the code only as identifiers checked against that rule or as ``repr`` string
literals, and in comments and the docstring with every non-printable character
escaped: no name can inject code.

**Windows.**  PyTorch pads symmetrically and floors (pools: ``ceil_mode``).  A layer's
padding is PyTorch's ``padding`` when that computes the same windows — the ``before``
amount on every axis, the same number of windows, and the padding after the input
read no further than the spec's (``[3, 2]`` on a 7×7/2 window over 224 is PyTorch's
``padding=3``: the last padded row is never read) — and an explicit ``F.pad`` before the
layer otherwise: asymmetric padding, a ``padding_mode`` or pool padding PyTorch cannot
state, and the ceil rounding's overhang (zeros a convolution reads, ``-inf`` a max pool
ignores).  A pool's ``ceil_mode`` is the spec's (``ceil_mode``, or the rounding ``ceil``)
when PyTorch's rule then gives the same windows; exact specs tile, so PyTorch's floor
is right for them.  Average pools divide as convcalc's do (padding counted, the ceil
overhang not).

**Weights.**  The engine's parameter layouts are PyTorch's but for the dense weight,
``(in, units)`` = ``nn.Linear.weight`` transposed, and the norms' ``gamma``/``beta``,
which are ``weight``/``bias``; each template declares where its layer's arrays go
(:class:`Weight`), and :func:`load_engine_weights` copies an engine network's into a
module (it needs neither torch nor NumPy imported here: it uses the module's tensors).

The templates, one per spec model, are in :data:`TEMPLATES` (a model without one is
failed by ``tests/test_export_pytorch.py``); :func:`mapping_rows` gives the kind →
PyTorch table of the docs.

>>> code = to_pytorch_text({"input": [1, 28, 28], "layers": [
...     {"type": "conv", "filters": 6, "kernel": 5, "padding": [[2, 2], [2, 2]]}, "relu",
...     {"type": "maxpool", "kernel": 2}]})
>>> print(code[code.index("    def __init__"):].rstrip())
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.relu1 = nn.ReLU()
        self.maxpool1 = nn.MaxPool2d(kernel_size=2)
<BLANKLINE>
    def forward(self, x):
        x = self.conv1(x)  # (6, 28, 28)
        x = self.relu1(x)  # (6, 28, 28)
        x = self.maxpool1(x)  # (6, 14, 14)
        return x
"""

from __future__ import annotations

import keyword
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .. import spec as specs
from ..errors import printable

Shape = tuple[int, ...]


# --- literals ----------------------------------------------------------------------------


def literal(value: Any) -> str:
    """Python source for an option's value: ints, floats (exact: ``repr``, infinities as
    ``float("inf")``), booleans, None, strings (``repr``), tuples.

    >>> literal((3, 3)), literal((4,)), literal(1e-05), literal(float("-inf")), literal("x'y")
    ('(3, 3)', '(4,)', '1e-05', 'float("-inf")', '"x\\'y"')
    """
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f'float("{value}")'
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = ", ".join(literal(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    raise TypeError(f"no literal for {type(value).__name__}")


def call(function: str, *args: Any, **kwargs: Any) -> str:
    """``function(arg, …, key=value, …)`` with every value a :func:`literal`
    (``Code`` values are written as they are).

    >>> call("nn.Conv2d", 3, 8, kernel_size=3, padding=(1, 2))
    'nn.Conv2d(3, 8, kernel_size=3, padding=(1, 2))'
    """
    parts = [_source(a) for a in args] + [f"{k}={_source(v)}" for k, v in kwargs.items()]
    return f"{function}({', '.join(parts)})"


class Code(str):
    """Source text written into a :func:`call` as it is (a nested constructor)."""


def _source(value: Any) -> str:
    return str(value) if isinstance(value, Code) else literal(value)


def per_axis(values: Sequence[int]) -> int | tuple[int, ...]:
    """One int when every axis has the same value (PyTorch's spelling), else a tuple.

    >>> per_axis((3, 3)), per_axis((1, 7))
    (3, (1, 7))
    """
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def torch_pads(pairs: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """``((before, after) per axis)`` in ``F.pad``'s order: the last axis first.

    >>> torch_pads(((1, 2), (0, 3)))
    (0, 3, 1, 2)
    """
    return tuple(p for before, after in reversed(pairs) for p in (before, after))


def comment_text(text: str) -> str:
    """``text`` safe in a comment: every non-printable character (a newline, a line
    separator, a terminal escape) written as its escape.

    >>> print(comment_text("conv\\nimport os"))
    conv\\nimport os
    """
    return printable(text)


def docstring_text(text: str) -> str:
    """``text`` safe in a docstring: as :func:`comment_text`, with backslashes doubled
    and every double quote next to another escaped (so three cannot end it).

    >>> print(docstring_text('a "b" ' + '"' * 3 + 'c\\\\'))
    a "b" \\"\\"\\"c\\\\
    """
    text = re.sub(r'"(?=")|(?<=")"', '\\\\"', text.replace("\\", "\\\\"))
    return printable(text)


# --- names -------------------------------------------------------------------------------

#: What ``nn.Module`` (and so ``Net``) and ``nn.ModuleDict`` already use (torch 2.13;
#: tests/test_export_pytorch.py holds this to the installed torch).  A layer name that is
#: one of them cannot be an attribute or a container key.
MODULE_NAMES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
    training type xpu zero_grad
""".split())
MODULE_DICT_NAMES = MODULE_NAMES | frozenset("clear items keys pop update values".split())

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _attribute_ok(name: str) -> bool:
    """Whether ``name`` can be an attribute of ``Net`` written ``self.name``."""
    return (bool(_IDENTIFIER.fullmatch(name)) and not keyword.iskeyword(name)
            and not name.startswith("_") and name not in MODULE_NAMES)


def _key_ok(key: str) -> bool:
    """Whether ``key`` can be a key of an ``nn.ModuleDict`` (any text but these)."""
    return bool(key) and "." not in key and not key.startswith("_") \
        and key not in MODULE_DICT_NAMES


def sanitized(name: str) -> str:
    """An attribute name made of ``name``: other characters than ``A–Z a–z 0–9 _``
    replaced by ``_``, ``layer_`` in front when that is still not a usable attribute.

    >>> sanitized("conv 1"), sanitized("1x1"), sanitized("forward"), sanitized("")
    ('conv_1', 'layer_1x1', 'layer_forward', 'layer_')
    """
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return text if _attribute_ok(text) else f"layer_{text}"


def module_paths(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each layer name → its path of attribute and ``nn.ModuleDict`` keys in ``Net``
    (the module docstring's rule), in file order.

    >>> module_paths(["conv1", "layer1.0.conv1", "layer1.0.bn1", "fc 1", "layer1.0"])
    {'conv1': ('conv1',), 'layer1.0.conv1': ('layer1', '0', 'conv1'), 'layer1.0.bn1': ('layer1', '0', 'bn1'), 'fc 1': ('fc_1',), 'layer1.0': ('layer1_0',)}
    """
    names = list(names)
    leaves: set[tuple[str, ...]] = set()
    containers: set[tuple[str, ...]] = set()
    paths: dict[str, tuple[str, ...]] = {}
    for name in names:                 # tree paths first, in file order
        parts = tuple(name.split("."))
        if not (_attribute_ok(parts[0]) and all(_key_ok(p) for p in parts[1:])):
            continue
        prefixes = [parts[:i] for i in range(1, len(parts))]
        if parts in leaves or parts in containers or any(p in leaves for p in prefixes):
            continue
        leaves.add(parts)
        containers.update(prefixes)
        paths[name] = parts
    taken = {path[0] for path in paths.values()}
    for name in names:                 # then the others, each a single attribute
        if name in paths:
            continue
        base = sanitized(name)
        attribute, count = base, 1
        while attribute in taken:
            count += 1
            attribute = f"{base}_{count}"
        taken.add(attribute)
        paths[name] = (attribute,)
    return {name: paths[name] for name in names}


def module_path(path: tuple[str, ...]) -> str:
    """The name ``named_modules()`` gives the module at ``path``: its parts joined by dots."""
    return ".".join(path)


def module_ref(path: tuple[str, ...]) -> str:
    """Source text reaching the module at ``path`` from ``self``.

    >>> module_ref(("layer1", "0", "conv1"))
    'self.layer1["0"]["conv1"]'
    """
    return "self." + path[0] + "".join(f"[{_key(p)}]" for p in path[1:])


def _key(text: str) -> str:
    """A ``repr`` string literal, in double quotes when it has no double quote."""
    return f'"{text}"' if text.isprintable() and '"' not in text and "\\" not in text \
        else repr(text)


#: Names a forward variable may not take (they are used, or would shadow what is).
_RESERVED_VARIABLES = frozenset(("x", "input", "self", "torch", "nn", "F", "broadcast",
                                 "super"))


def variable_names(names: Iterable[str]) -> dict[str, str]:
    """Each layer name → a local variable name of its own (a Python identifier).

    >>> variable_names(["layer1.0.relu", "layer1_0_relu", "x", "1"])
    {'layer1.0.relu': 'layer1_0_relu', 'layer1_0_relu': 'layer1_0_relu_2', 'x': 'x_', '1': 'v_1'}
    """
    import builtins

    taken: set[str] = set()
    out = {}
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "v"
        if base[0].isdigit():
            base = f"v_{base}"
        if keyword.iskeyword(base) or base in _RESERVED_VARIABLES or hasattr(builtins, base):
            base += "_"
        variable, count = base, 1
        while variable in taken:
            count += 1
            variable = f"{base}_{count}"
        taken.add(variable)
        out[name] = variable
    return out


# --- what a layer becomes ----------------------------------------------------------------


@dataclass(frozen=True)
class Weight:
    """Where one engine array goes: ``attr`` of the layer's module (``"0.weight"`` in a
    submodule), transposed (the dense weight) or not."""

    engine: str
    attr: str
    transpose: bool = False


@dataclass(frozen=True)
class Piece:
    """What one layer becomes: the module's constructor (source), what ``forward``
    passes it (source: the inputs' variables, maybe padded), the helper modules of the
    file it uses, and where the engine's arrays go."""

    module: str
    args: str
    helpers: tuple[str, ...] = ()
    weights: tuple[Weight, ...] = ()


@dataclass(frozen=True)
class Site:
    """A layer as a template sees it: the spec model, its report row (shapes and the
    resolved window), the variables holding its inputs, and its rounding."""

    layer: Any
    row: Any
    args: tuple[str, ...]
    rounding: str

    @property
    def x(self) -> str:
        return self.args[0]

    @property
    def in_shape(self) -> Shape:
        shape: Shape = self.row.input_shapes[0]    # an error-free report's row: shapes known
        return shape

    @property
    def out_shape(self) -> Shape:
        shape: Shape = self.row.output_shape
        return shape

    @property
    def dims(self) -> int:
        """Spatial axes of the first input (0: a flat vector)."""
        return len(self.in_shape) - 1


Template = Callable[[Site], Piece]


@dataclass(frozen=True)
class Entry:
    """One kind's template and what the docs table says of it."""

    template: Template
    pytorch: str
    note: str = ""


#: spec model class → its template (every model of :data:`convcalc.spec.LAYER_MODELS`).
TEMPLATES: dict[type, Entry] = {}


def template(*models: type, pytorch: str, note: str = "") -> Callable[[Template], Template]:
    """Register ``function`` as the template of ``models``; ``pytorch`` and ``note`` are
    its row of the docs' mapping table."""
    def register(function: Template) -> Template:
        for model in models:
            if model in TEMPLATES:
                raise TypeError(f"{model.__name__} has two PyTorch templates")
            TEMPLATES[model] = Entry(function, pytorch, note)
        return function
    return register


def mapping_rows() -> list[tuple[str, str, str]]:
    """``(types, PyTorch, note)`` per spec model, in :data:`~convcalc.spec.LAYER_MODELS`
    order: the docs' mapping table."""
    rows = []
    for model in specs.LAYER_MODELS:
        entry = TEMPLATES.get(model)
        if entry is not None:
            rows.append((", ".join(specs.layer_types(model)), entry.pytorch, entry.note))
    return rows


def _nd(name: str, dims: int) -> str:
    """``nn.Conv2d`` for ``_nd("Conv", 2)``; flat inputs take the 1-d module."""
    return f"nn.{name}{max(dims, 1)}d"


def _pad(x: str, pairs: Sequence[tuple[int, int]], mode: str = "zeros",
         value: float | None = None) -> str:
    """``F.pad(x, …)`` by ``pairs`` (per axis, first axis first), or ``x`` for none."""
    if not any(a or b for a, b in pairs):
        return x
    pads = literal(torch_pads(pairs))
    if mode != "zeros":
        return f'F.pad({x}, {pads}, mode="{mode}")'
    if value:
        return f"F.pad({x}, {pads}, value={literal(value)})"
    return f"F.pad({x}, {pads})"


# --- windows -----------------------------------------------------------------------------


def _axes(site: Site) -> list[tuple[int, int, int, int, int, int, int]]:
    """Per spatial axis ``(n, before, after, kernel, stride, dilation, out)``."""
    w = site.row.window
    return [(n, pb, pa, k, s, d, o) for n, (pb, pa), k, s, d, o in
            zip(site.in_shape[1:], w.padding, w.kernel, w.stride, w.dilation,
                site.out_shape[1:])]


def _overhang(n: int, pb: int, pa: int, e: int, s: int, o: int) -> int:
    """Positions the last window reaches past the padded input (the ceil rounding's)."""
    return max(0, (o - 1) * s + e - (n + pb + pa))


def _symmetric_conv(axes: list[Any], fill_matters: bool) -> tuple[int, ...] | None:
    """PyTorch's ``padding`` per axis for a convolution that computes the spec's windows
    (floor, padding ``before`` at both ends), or None.  The windows start at the same
    places; they must be as many, and read past the input no further than the spec's
    padding when what the padding holds matters (a ``padding_mode``; past the spec's
    padding there are only the zeros of a ceil overhang)."""
    out = []
    for n, pb, pa, k, s, d, o in axes:
        e = d * (k - 1) + 1
        if n + 2 * pb < e or (n + 2 * pb - e) // s + 1 != o:
            return None
        if fill_matters and (o - 1) * s - pb + e > n + pa:
            return None
        out.append(pb)
    return tuple(out)


def _torch_pool_size(n: int, p: int, e: int, s: int, ceil: bool) -> int:
    """PyTorch's pooling output size (``pooling_output_shape``)."""
    size = (n + 2 * p - e + (s - 1 if ceil else 0)) // s + 1
    if ceil and (size - 1) * s >= n + p:
        size -= 1
    return size


def _symmetric_pool(kind: str, axes: list[Any], ceil: bool) -> tuple[int, ...] | None:
    """PyTorch's ``padding`` per axis for a pool with ``ceil_mode=ceil`` that computes
    the spec's windows and values, or None: padding ``before`` at both ends, at most
    half the kernel (PyTorch's limit, undilated), as many windows; for an average the same
    divisors (PyTorch counts the padding up to ``n + P``, convcalc up to ``n + after``),
    no dilation (PyTorch's average pools have none) and, in 3-D, an input at least as
    large as the window (``AvgPool3d`` checks it before padding)."""
    out = []
    for n, pb, pa, k, s, d, o in axes:
        e = d * (k - 1) + 1
        if 2 * pb > k or _torch_pool_size(n, pb, e, s, ceil) != o or o < 1:
            return None
        if kind == "avgpool":
            end = (o - 1) * s - pb + k
            if d != 1 or (pa != pb and end > n + min(pb, pa)) or (len(axes) == 3 and n < k):
                return None
        out.append(pb)
    return tuple(out)


# --- templates: convolutions -------------------------------------------------------------


def _conv_weights(subpath: str = "", bias: bool = True) -> tuple[Weight, ...]:
    prefix = f"{subpath}." if subpath else ""
    return (Weight("weight", f"{prefix}weight"),) + (
        (Weight("bias", f"{prefix}bias"),) if bias else ())


@template(specs.Conv, pytorch="``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Conv3d``",
          note="``F.pad`` before it for padding PyTorch's cannot state (asymmetric, by "
               "mode, the ceil overhang as zeros)")
def conv(site: Site) -> Piece:
    layer, axes = site.layer, _axes(site)
    channels, filters = site.in_shape[0], site.out_shape[0]
    groups = channels if layer.groups == "depthwise" else layer.groups
    mode = layer.padding_mode
    padding = _symmetric_conv(axes, fill_matters=mode != "zeros")
    x = site.x
    if padding is None:
        padding = (0,) * len(axes)
        pairs = [(pb, pa) for _, pb, pa, *_ in axes]
        overhang = [(0, _overhang(n, pb, pa, d * (k - 1) + 1, s, o))
                    for n, pb, pa, k, s, d, o in axes]
        if mode == "zeros":
            x = _pad(x, [(pb, pa + ov) for (pb, pa), (_, ov) in zip(pairs, overhang)])
        else:
            x = _pad(_pad(x, pairs, mode), overhang)
    kwargs: dict[str, Any] = {"kernel_size": per_axis([a[3] for a in axes])}
    options = (("stride", [a[4] for a in axes], 1), ("padding", padding, 0),
               ("dilation", [a[5] for a in axes], 1))
    kwargs.update({key: per_axis(values) for key, values, default in options
                   if any(v != default for v in values)})
    if groups != 1:
        kwargs["groups"] = groups
    if not layer.bias:
        kwargs["bias"] = False
    if mode != "zeros" and any(padding):
        kwargs["padding_mode"] = mode
    module = call(_nd("Conv", site.dims), channels, filters, **kwargs)
    return Piece(module, x, weights=_conv_weights(bias=layer.bias))


@template(specs.ConvTranspose,
          pytorch="``nn.ConvTranspose1d`` / ``2d`` / ``3d``",
          note="padding ``[before, after]`` as ``padding=before`` and a larger "
               "``output_padding``, or else in ``nn.Sequential`` with a ``Crop``")
def conv_transpose(site: Site) -> Piece:
    layer, axes = site.layer, _axes(site)
    channels, filters = site.in_shape[0], site.out_shape[0]
    extra = layer.output_padding
    extras = (extra,) * len(axes) if isinstance(extra, int) else tuple(extra)
    kwargs: dict[str, Any] = {"kernel_size": per_axis([a[3] for a in axes])}
    if any(a[4] != 1 for a in axes):
        kwargs["stride"] = per_axis([a[4] for a in axes])
    # PyTorch crops `padding` from both ends; output_padding adds back at the end
    padding = [pb for _, pb, *_ in axes]
    output_padding = [op + pb - pa for (_, pb, pa, *_), op in zip(axes, extras)]
    fits = all(0 <= op < max(s, d) for op, (_, _, _, _, s, d, _) in
               zip(output_padding, axes))
    if not fits:
        padding, output_padding = [0] * len(axes), list(extras)
    if any(padding):
        kwargs["padding"] = per_axis(padding)
    if any(output_padding):
        kwargs["output_padding"] = per_axis(output_padding)
    if layer.groups != 1:
        kwargs["groups"] = layer.groups
    if not layer.bias:
        kwargs["bias"] = False
    if any(a[5] != 1 for a in axes):
        kwargs["dilation"] = per_axis([a[5] for a in axes])
    module = call(_nd("ConvTranspose", site.dims), channels, filters, **kwargs)
    if fits:
        return Piece(module, site.x, weights=_conv_weights(bias=layer.bias))
    crop = call("Crop", size=tuple(site.out_shape[1:]),
                offset=tuple(pb for _, pb, *_ in axes))
    return Piece(call("nn.Sequential", Code(module), Code(crop)), site.x, ("Crop",),
                 _conv_weights("0", layer.bias))


# --- templates: pools --------------------------------------------------------------------


@template(specs.Pool, pytorch="``nn.MaxPool1d`` / ``2d`` / ``3d``, ``nn.AvgPool1d`` / "
          "``2d`` / ``3d``; ``minpool``: ``MinPool`` (``−max(−x)``)",
          note="``ceil_mode`` as the spec states it; padding PyTorch cannot state by "
               "``F.pad`` (``-inf``, ``+inf`` or zeros); dilated or overhanging "
               "averages: ``AveragePool``")
def pool(site: Site) -> Piece:
    layer, axes = site.layer, _axes(site)
    kind = layer.type
    stated = layer.ceil_mode or site.rounding == "ceil"
    kernels = [a[3] for a in axes]
    for ceil in (stated, not stated):
        padding = _symmetric_pool(kind, axes, ceil)
        if padding is not None:
            return _pool_piece(kind, axes, padding, ceil, site.x, site.dims)
    pairs = [(pb, pa) for _, pb, pa, *_ in axes]
    overhang = [_overhang(n, pb, pa, d * (k - 1) + 1, s, o) for n, pb, pa, k, s, d, o in axes]
    if kind == "avgpool" and (any(overhang) or any(a[5] != 1 for a in axes)):
        module = call("AveragePool", kernel_size=tuple(kernels),
                      stride=tuple(a[4] for a in axes), dilation=tuple(a[5] for a in axes),
                      padding=torch_pads(pairs),
                      overhang=torch_pads([(0, ov) for ov in overhang]))
        return Piece(module, site.x, ("AveragePool",))
    fill = {"maxpool": float("-inf"), "minpool": float("inf"), "avgpool": 0.0}[kind]
    x = _pad(site.x, [(pb, pa + ov) for (pb, pa), ov in zip(pairs, overhang)], value=fill)
    return _pool_piece(kind, axes, (0,) * len(axes), False, x, site.dims)


def _pool_piece(kind: str, axes: list[Any], padding: Sequence[int], ceil: bool, x: str,
                dims: int) -> Piece:
    kernel = per_axis([a[3] for a in axes])
    kwargs: dict[str, Any] = {"kernel_size": kernel}
    stride = per_axis([a[4] for a in axes])
    if stride != kernel:
        kwargs["stride"] = stride
    if any(padding):
        kwargs["padding"] = per_axis(padding)
    if kind != "avgpool" and any(a[5] != 1 for a in axes):
        kwargs["dilation"] = per_axis([a[5] for a in axes])
    if ceil:
        kwargs["ceil_mode"] = True
    if kind == "avgpool":
        return Piece(call(_nd("AvgPool", dims), **kwargs), x)
    module = call(_nd("MaxPool", dims), **kwargs)
    if kind == "minpool":
        return Piece(call("MinPool", Code(module)), x, ("MinPool",))
    return Piece(module, x)


@template(specs.GlobalPool, pytorch="``nn.Sequential(nn.AdaptiveAvgPool2d(1), "
          "nn.Flatten())`` (``Max`` for ``global_maxpool``; 1d / 3d by the axes)")
def global_pool(site: Site) -> Piece:
    name = "AdaptiveAvgPool" if site.layer.type == "global_avgpool" else "AdaptiveMaxPool"
    return Piece(call("nn.Sequential", Code(call(_nd(name, site.dims), 1)),
                      Code("nn.Flatten()")), site.x)


@template(specs.AdaptivePool, pytorch="``nn.AdaptiveAvgPool1d`` / ``2d`` / ``3d``, "
          "``nn.AdaptiveMaxPool1d`` / ``2d`` / ``3d``")
def adaptive_pool(site: Site) -> Piece:
    name = "AdaptiveAvgPool" if site.layer.type == "adaptive_avgpool" else "AdaptiveMaxPool"
    return Piece(call(_nd(name, site.dims), per_axis(site.out_shape[1:])), site.x)


# --- templates: flat vectors -------------------------------------------------------------


@template(specs.Flatten, pytorch="``nn.Flatten()``")
def flatten(site: Site) -> Piece:
    return Piece("nn.Flatten()", site.x)


@template(specs.Dense, pytorch="``nn.Linear``",
          note="the engine's weight ``(in, units)`` is ``Linear.weight`` transposed")
def dense(site: Site) -> Piece:
    layer = site.layer
    kwargs = {} if layer.bias else {"bias": False}
    return Piece(call("nn.Linear", site.in_shape[0], layer.units, **kwargs), site.x,
                 weights=(Weight("weight", "weight", transpose=True),)
                 + ((Weight("bias", "bias"),) if layer.bias else ()))


# --- templates: element-wise -------------------------------------------------------------

#: type → (module, {spec option: (PyTorch argument, PyTorch's default)})
ELEMENTWISE: dict[str, tuple[str, dict[str, tuple[str, Any]]]] = {
    "relu": ("nn.ReLU", {}),
    "sigmoid": ("nn.Sigmoid", {}),
    "tanh": ("nn.Tanh", {}),
    "softmax": ("nn.Softmax", {}),
    "log_softmax": ("nn.LogSoftmax", {}),
    "leaky_relu": ("nn.LeakyReLU", {"negative_slope": ("negative_slope", 0.01)}),
    "dropout": ("nn.Dropout", {"rate": ("p", 0.5)}),
    "identity": ("nn.Identity", {}),
    "relu6": ("nn.ReLU6", {}),
    "hardswish": ("nn.Hardswish", {}),
    "hardsigmoid": ("nn.Hardsigmoid", {}),
    "silu": ("nn.SiLU", {}),
    "mish": ("nn.Mish", {}),
    "selu": ("nn.SELU", {}),
    "gelu": ("nn.GELU", {"approximate": ("approximate", "none")}),
    "elu": ("nn.ELU", {"alpha": ("alpha", 1.0)}),
    "softplus": ("nn.Softplus", {"beta": ("beta", 1.0), "threshold": ("threshold", 20.0)}),
}


@template(specs.ReLU, specs.Sigmoid, specs.Tanh, specs.Softmax, specs.LogSoftmax,
          specs.LeakyRelu, specs.Dropout, specs.Identity, specs.ReLU6, specs.Hardswish,
          specs.Hardsigmoid, specs.SiLU, specs.Mish, specs.SELU, specs.GELU, specs.ELU,
          specs.Softplus, pytorch="the module of the same name: " + ", ".join(
              f"``{m}``" for m, _ in ELEMENTWISE.values()),
          note="softmax and log_softmax over the channels (``dim=1``)")
def elementwise(site: Site) -> Piece:
    layer = site.layer
    module, options = ELEMENTWISE[layer.type]
    kwargs = {"dim": 1} if layer.type in ("softmax", "log_softmax") else {}
    for option, (argument, default) in options.items():
        value = getattr(layer, option)
        if value != default:
            kwargs[argument] = value
    return Piece(call(module, **kwargs), site.x)


@template(specs.DropPath, pytorch="``DropPath`` (in the file)",
          note="each example zeroed with probability ``rate`` in training, the others "
               "scaled by 1/(1 − rate)")
def drop_path(site: Site) -> Piece:
    return Piece(call("DropPath", site.layer.rate), site.x, ("DropPath",))


@template(specs.PReLU, pytorch="``nn.PReLU``")
def prelu(site: Site) -> Piece:
    kwargs = {"num_parameters": site.in_shape[0]} if site.layer.per_channel else {}
    return Piece(call("nn.PReLU", **kwargs), site.x, weights=(Weight("weight", "weight"),))


@template(specs.Scale, pytorch="``Scale`` (in the file)",
          note="a weight (and bias) per channel")
def scale(site: Site) -> Piece:
    bias = site.layer.bias
    kwargs = {"bias": True} if bias else {}
    return Piece(call("Scale", site.in_shape[0], **kwargs), site.x, ("Scale",),
                 (Weight("weight", "weight"),) + ((Weight("bias", "bias"),) if bias else ()))


# --- templates: normalisation ------------------------------------------------------------

_AFFINE = (Weight("gamma", "weight"), Weight("beta", "bias"))


def _eps(layer: Any) -> dict[str, Any]:
    return {} if layer.eps == 1e-5 else {"eps": layer.eps}


@template(specs.BatchNorm, pytorch="``nn.BatchNorm1d`` / ``2d`` / ``3d``",
          note="PyTorch adds a ``num_batches_tracked`` counter buffer, which convcalc "
               "does not count (it is no statistic)")
def batchnorm(site: Site) -> Piece:
    layer = site.layer
    kwargs = _eps(layer)
    if layer.momentum != 0.1:
        kwargs["momentum"] = layer.momentum
    module = call(_nd("BatchNorm", site.dims), site.in_shape[0], **kwargs)
    return Piece(module, site.x, weights=_AFFINE + (
        Weight("running_mean", "running_mean"), Weight("running_var", "running_var")))


def _flat_wrapped(module: str, site: Site) -> str:
    """``module`` for a feature map; for a flat ``(N, C)`` input between an
    ``nn.Unflatten`` to ``(N, C, 1)`` and an ``nn.Flatten`` (its op needs an axis more)."""
    if site.dims:
        return module
    unflatten = call("nn.Unflatten", 1, (site.in_shape[0], 1))
    return call("nn.Sequential", Code(unflatten), Code(module), Code("nn.Flatten()"))


@template(specs.LRN, pytorch="``nn.LocalResponseNorm``",
          note="a flat input through ``nn.Unflatten``/``nn.Flatten``")
def lrn(site: Site) -> Piece:
    layer = site.layer
    kwargs = {key: getattr(layer, key) for key, default in
              (("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)) if getattr(layer, key) != default}
    return Piece(_flat_wrapped(call("nn.LocalResponseNorm", layer.size, **kwargs), site),
                 site.x)


@template(specs.LayerNorm, pytorch="``nn.LayerNorm`` (flat inputs), ``ChannelLayerNorm`` "
          "(in the file: ``nn.LayerNorm`` over the channel axis)")
def layernorm(site: Site) -> Piece:
    layer = site.layer
    kwargs = _eps(layer)
    if not layer.affine:
        kwargs["elementwise_affine"] = False
    name = "nn.LayerNorm" if not site.dims else "ChannelLayerNorm"
    return Piece(call(name, site.in_shape[0], **kwargs), site.x,
                 () if not site.dims else ("ChannelLayerNorm",),
                 _AFFINE if layer.affine else ())


@template(specs.GroupNorm, pytorch="``nn.GroupNorm``")
def groupnorm(site: Site) -> Piece:
    layer = site.layer
    kwargs = _eps(layer)
    if not layer.affine:
        kwargs["affine"] = False
    return Piece(call("nn.GroupNorm", layer.groups, site.in_shape[0], **kwargs), site.x,
                 weights=_AFFINE if layer.affine else ())


@template(specs.InstanceNorm, pytorch="``nn.InstanceNorm1d`` / ``2d`` / ``3d``")
def instancenorm(site: Site) -> Piece:
    layer = site.layer
    kwargs = _eps(layer)
    if layer.affine:
        kwargs["affine"] = True
    return Piece(call(_nd("InstanceNorm", site.dims), site.in_shape[0], **kwargs), site.x,
                 weights=_AFFINE if layer.affine else ())


# --- templates: routing and merges -------------------------------------------------------


@template(specs.ChannelShuffle, pytorch="``nn.ChannelShuffle``",
          note="a flat input through ``nn.Unflatten``/``nn.Flatten``")
def channel_shuffle(site: Site) -> Piece:
    return Piece(_flat_wrapped(call("nn.ChannelShuffle", site.layer.groups), site), site.x)


@template(specs.Slice, pytorch="``Slice`` (in the file): ``x[:, start:stop]``")
def channel_slice(site: Site) -> Piece:
    start, stop = site.layer.channels
    return Piece(call("Slice", start, stop), site.x, ("Slice",))


@template(specs.Add, pytorch="``Add`` (in the file)",
          note="broadcast as convcalc's: shapes without the batch aligned at the last axis")
def add(site: Site) -> Piece:
    return Piece("Add()", ", ".join(site.args), ("Add",))


@template(specs.Mul, pytorch="``Mul`` (in the file)",
          note="broadcast as ``add``")
def mul(site: Site) -> Piece:
    return Piece("Mul()", ", ".join(site.args), ("Mul",))


@template(specs.Concat, pytorch="``Concat`` (in the file): ``torch.cat(inputs, dim=1)``")
def concat(site: Site) -> Piece:
    return Piece("Concat()", ", ".join(site.args), ("Concat",))


# --- templates: resizing -----------------------------------------------------------------


def _power_of_two(numerator: int, denominator: int) -> bool:
    """Whether ``numerator / denominator`` is ``2**k`` for an integer ``k`` (any sign)."""
    big, small = max(numerator, denominator), min(numerator, denominator)
    if big % small:
        return False
    ratio = big // small
    return ratio & (ratio - 1) == 0


@template(specs.Upsample, pytorch="``nn.Upsample``; ``Resize`` (in the file) with a "
          "reference input, for nearest at other ratios than powers of two, and for cubic "
          "in 1-D or 3-D",
          note="PyTorch's nearest computes ``in/out`` in single precision (one short at "
               "some sizes): ``Resize`` indexes ``floor(i·in/out)`` in integers; cubic in "
               "1-D and 3-D from 2-D bicubic (separable)")
def upsample(site: Site) -> Piece:
    layer = site.layer
    sizes, out = site.in_shape[1:], site.out_shape[1:]
    mode = layer.mode
    align = {"align_corners": layer.align_corners} if mode != "nearest" else {}
    exact_nearest = all(_power_of_two(n, m) for n, m in zip(sizes, out))
    standard = (len(site.args) == 1 and (mode == "linear" or (mode == "cubic" and site.dims == 2)
                                         or (mode == "nearest" and exact_nearest)))
    if not standard:
        kwargs: dict[str, Any] = {} if len(site.args) > 1 else {"size": tuple(out)}
        if mode != "nearest":
            kwargs.update(mode=mode, **align)
        return Piece(call("Resize", **kwargs), ", ".join(site.args), ("Resize",))
    torch_mode = {"nearest": "nearest", "cubic": "bicubic",
                  "linear": ("linear", "bilinear", "trilinear")[site.dims - 1]}[mode]
    target: dict[str, Any] = {"size": per_axis(out)}
    scales = layer.scale if isinstance(layer.scale, tuple) else (layer.scale,) * site.dims
    if layer.scale is not None and len(set(scales)) == 1:
        factor = scales[0]
        whole = all(n * factor == m for n, m in zip(sizes, out))
        if whole and _power_of_two(*float(factor).as_integer_ratio()):
            target = {"scale_factor": int(factor) if factor == int(factor) else factor}
    return Piece(call("nn.Upsample", **target, mode=torch_mode, **align), site.x)


@template(specs.PixelShuffle, pytorch="``nn.PixelShuffle`` (2-D); ``PixelShuffleNd`` "
          "(in the file) for 1-D and 3-D", note="the same channel order in every dimension")
def pixel_shuffle(site: Site) -> Piece:
    if site.dims == 2:
        return Piece(call("nn.PixelShuffle", site.layer.factor), site.x)
    return Piece(call("PixelShuffleNd", site.layer.factor), site.x, ("PixelShuffleNd",))


@template(specs.PixelUnshuffle, pytorch="``nn.PixelUnshuffle`` (2-D); "
          "``PixelUnshuffleNd`` (in the file) for 1-D and 3-D")
def pixel_unshuffle(site: Site) -> Piece:
    if site.dims == 2:
        return Piece(call("nn.PixelUnshuffle", site.layer.factor), site.x)
    return Piece(call("PixelUnshuffleNd", site.layer.factor), site.x, ("PixelUnshuffleNd",))


#: pad mode → the PyTorch module's name (``ZeroPad`` for zeros of value 0)
_PAD_MODULES = {"zeros": "ConstantPad", "reflect": "ReflectionPad",
                "replicate": "ReplicationPad", "circular": "CircularPad"}


@template(specs.Pad, pytorch="``nn.ZeroPad2d``, ``nn.ConstantPad2d``, "
          "``nn.ReflectionPad2d``, ``nn.ReplicationPad2d``, ``nn.CircularPad2d`` (1d / 3d "
          "by the axes)")
def pad(site: Site) -> Piece:
    layer = site.layer
    sizes, out = site.in_shape[1:], site.out_shape[1:]
    padding = layer.padding
    entries = (padding,) * len(sizes) if isinstance(padding, int) else padding
    pairs = [p if isinstance(p, tuple) else (p, p) for p in entries]
    assert all(n + a + b == m for n, (a, b), m in zip(sizes, pairs, out))
    amounts = torch_pads(pairs)
    amount = amounts[0] if len(set(amounts)) == 1 else amounts
    if layer.mode == "zeros" and layer.value == 0:
        return Piece(call(_nd("ZeroPad", site.dims), amount), site.x)
    if layer.mode == "zeros":
        return Piece(call(_nd("ConstantPad", site.dims), amount, layer.value), site.x)
    return Piece(call(_nd(_PAD_MODULES[layer.mode], site.dims), amount), site.x)


@template(specs.Crop, pytorch="``Crop`` (in the file): slicing",
          note="with ``inputs: [x, ref]`` it is called with both and takes ``ref``'s size")
def crop(site: Site) -> Piece:
    kwargs: dict[str, Any] = {} if len(site.args) > 1 else {
        "size": tuple(site.out_shape[1:])}
    if site.layer.anchor != "center":
        kwargs["anchor"] = site.layer.anchor
    return Piece(call("Crop", **kwargs), ", ".join(site.args), ("Crop",))


# --- the helper modules ------------------------------------------------------------------


@dataclass(frozen=True)
class Helper:
    """Source of a module (or function) the file defines when a layer uses it."""

    code: str
    needs: tuple[str, ...] = ()


HELPERS: dict[str, Helper] = {
    "broadcast": Helper('''
def broadcast(inputs):
    """The inputs with size-1 axes inserted after the batch axis, so that their shapes
    without it line up at the last axis (convcalc's broadcasting; PyTorch's own would
    count the batch axis)."""
    rank = max(x.dim() for x in inputs)
    return [x.reshape(x.shape[:1] + (1,) * (rank - x.dim()) + x.shape[1:]) for x in inputs]
'''),
    "Add": Helper('''
class Add(nn.Module):
    """The sum of the inputs, broadcast (see broadcast)."""

    def forward(self, *inputs):
        total, *rest = broadcast(inputs)
        for x in rest:
            total = total + x
        return total
''', ("broadcast",)),
    "Mul": Helper('''
class Mul(nn.Module):
    """The product of the inputs, broadcast (see broadcast)."""

    def forward(self, *inputs):
        product, *rest = broadcast(inputs)
        for x in rest:
            product = product * x
        return product
''', ("broadcast",)),
    "Concat": Helper('''
class Concat(nn.Module):
    """The inputs joined along the channel axis."""

    def forward(self, *inputs):
        return torch.cat(inputs, dim=1)
'''),
    "Slice": Helper('''
class Slice(nn.Module):
    """Channels start … stop − 1 of the input."""

    def __init__(self, start, stop):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x):
        return x[:, self.start:self.stop]

    def extra_repr(self):
        return f"start={self.start}, stop={self.stop}"
'''),
    "Crop": Helper('''
class Crop(nn.Module):
    """The spatial axes cut to `size`, or to the spatial size of a second input: the
    middle (anchor "center": offset floor((n - size) / 2)), the beginning ("start"), or
    from the given offsets."""

    def __init__(self, size=None, anchor="center", offset=None):
        super().__init__()
        self.size, self.anchor, self.offset = size, anchor, offset

    def forward(self, x, ref=None):
        size = tuple(ref.shape[2:]) if ref is not None else self.size
        offset = self.offset or [(n - m) // 2 if self.anchor == "center" else 0
                                 for n, m in zip(x.shape[2:], size)]
        return x[(..., *(slice(o, o + m) for o, m in zip(offset, size)))]
'''),
    "Resize": Helper('''
class Resize(nn.Module):
    """The spatial axes resized to `size`, or to the spatial size of a second input.
    nearest: output i reads input floor(i * n / size), in integers (F.interpolate's
    nearest computes n / size in single precision, one short at some sizes); linear:
    F.interpolate's; cubic: its bicubic, along (H, W) and then D for 3 axes, with a
    size-1 axis for 1 (it is separable)."""

    def __init__(self, size=None, mode="nearest", align_corners=False):
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners

    def forward(self, x, ref=None):
        size = tuple(ref.shape[2:]) if ref is not None else tuple(self.size)
        if self.mode == "nearest":
            for axis, (n, m) in enumerate(zip(x.shape[2:], size), start=2):
                if n != m:
                    x = x.index_select(axis, torch.arange(m, device=x.device) * n // m)
            return x
        if self.mode == "linear":
            mode = ("linear", "bilinear", "trilinear")[len(size) - 1]
            return F.interpolate(x, size=size, mode=mode, align_corners=self.align_corners)
        if len(size) == 2:
            return self.bicubic(x, size)
        if len(size) == 1:
            return self.bicubic(x[..., None], (size[0], 1))[..., 0]
        n, c, d, h, w = x.shape
        planes = self.bicubic(x.reshape(n, c * d, h, w), size[1:])
        depth = self.bicubic(planes.reshape(n, c, d, size[1] * size[2]),
                             (size[0], size[1] * size[2]))
        return depth.reshape(n, c, *size)

    def bicubic(self, x, size):
        return F.interpolate(x, size=size, mode="bicubic", align_corners=self.align_corners)
'''),
    "PixelShuffleNd": Helper('''
class PixelShuffleNd(nn.Module):
    """(N, C * r**d, *S) -> (N, C, *(S * r)) for d spatial axes, in nn.PixelShuffle's
    channel order: channel c * r**d + (i1 * r**(d - 1) + ... + id) goes to offsets
    (i1, ..., id) of each position."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        n, c, *sizes = x.shape
        d, r = len(sizes), self.factor
        x = x.reshape(n, c // r**d, *[r] * d, *sizes)
        order = [0, 1] + [axis for k in range(d) for axis in (2 + d + k, 2 + k)]
        return x.permute(order).reshape(n, c // r**d, *(s * r for s in sizes))
'''),
    "PixelUnshuffleNd": Helper('''
class PixelUnshuffleNd(nn.Module):
    """(N, C, *S) -> (N, C * r**d, *(S / r)), the inverse of PixelShuffleNd."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        n, c, *sizes = x.shape
        d, r = len(sizes), self.factor
        x = x.reshape(n, c, *[v for s in sizes for v in (s // r, r)])
        order = [0, 1] + [3 + 2 * k for k in range(d)] + [2 + 2 * k for k in range(d)]
        return x.permute(order).reshape(n, c * r**d, *(s // r for s in sizes))
'''),
    "DropPath": Helper('''
class DropPath(nn.Module):
    """Stochastic depth: in training each example is zeroed with probability `rate` and
    the others scaled by 1 / (1 - rate); the identity in evaluation."""

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        shape = x.shape[:1] + (1,) * (x.dim() - 1)
        kept = torch.rand(shape, dtype=x.dtype, device=x.device) >= self.rate
        return x * kept / (1.0 - self.rate)

    def extra_repr(self):
        return f"rate={self.rate}"
'''),
    "Scale": Helper('''
class Scale(nn.Module):
    """A learned factor per channel (and a shift, with bias), as ConvNeXt's layer scale."""

    def __init__(self, channels, bias=False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x):
        shape = (-1,) + (1,) * (x.dim() - 2)
        y = x * self.weight.reshape(shape)
        return y if self.bias is None else y + self.bias.reshape(shape)
'''),
    "MinPool": Helper('''
class MinPool(nn.Module):
    """Min pooling: -max(-x) over the windows of the max pool it wraps."""

    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        return -self.pool(-x)
'''),
    "AveragePool": Helper('''
class AveragePool(nn.Module):
    """Average pooling PyTorch's AvgPool cannot state (dilated windows, or a last window
    that hangs past the padding): each window's sum over the padded input, divided by
    how many of its positions are input or padding (the overhang does not count).
    `padding` and `overhang` are in F.pad's order, the last axis first."""

    def __init__(self, kernel_size, stride, dilation, padding, overhang):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding, self.overhang = padding, overhang

    def forward(self, x):
        conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
        inside = F.pad(torch.ones_like(x[:1, :1]), self.padding, value=1.0)
        inside = F.pad(inside, self.overhang)
        x = F.pad(x, [p + o for p, o in zip(self.padding, self.overhang)])
        ones = x.new_ones((x.shape[1], 1, *self.kernel_size))
        total = conv(x, ones, stride=self.stride, dilation=self.dilation, groups=x.shape[1])
        count = conv(inside, ones[:1], stride=self.stride, dilation=self.dilation)
        return total / count
'''),
    "ChannelLayerNorm": Helper('''
class ChannelLayerNorm(nn.LayerNorm):
    """nn.LayerNorm over the channel axis at every position (ConvNeXt's LayerNorm2d)."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)
'''),
}


def _with_needs(names: Iterable[str]) -> list[str]:
    """The helpers ``names`` and those they need, in :data:`HELPERS` order."""
    wanted = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(HELPERS[name].needs)
    return [name for name in HELPERS if name in wanted]


# --- the plan and the file ---------------------------------------------------------------


@dataclass(frozen=True)
class LayerPlan:
    """One layer of the exported module: its spec name, module path, piece, the
    variable holding its output, and its report row."""

    name: str
    path: tuple[str, ...]
    piece: Piece
    variable: str
    row: Any
    frozen: bool


@dataclass
class Plan:
    """What :func:`to_pytorch` writes: the layers in file order, the input's variable."""

    spec: Any
    report: Any
    layers: list[LayerPlan] = field(default_factory=list)
    input_variable: str = "x"

    def helpers(self) -> list[str]:
        return _with_needs(h for layer in self.layers for h in layer.piece.helpers)


def _readers(spec: Any) -> dict[str, list[int]]:
    readers: dict[str, list[int]] = {"input": []}
    for index, layer in enumerate(spec.layers):
        readers.setdefault(layer.name, [])
        for name in layer.inputs:
            if index not in readers.setdefault(name, []):
                readers[name].append(index)
    return readers


def plan(spec: Any, report: Any = None) -> Plan:
    """The export plan of a validated, error-free ``spec`` (analysed if ``report`` is
    not given)."""
    if report is None:
        from . import prepare

        spec, report = prepare(spec)
    names = [layer.name for layer in spec.layers]
    paths = module_paths(names)
    variables = variable_names(names)
    readers = _readers(spec)
    last = len(spec.layers) - 1

    def holder(name: str, index: int) -> str:
        """``x`` when only the next layer reads the value (or it is the output)."""
        read_by = readers.get(name, [])
        if read_by == [index + 1] or (index == last and not read_by):
            return "x"
        return "input" if name == "input" else variables[name]

    result = Plan(spec, report, input_variable=holder("input", -1))
    held = {"input": result.input_variable}
    for index, (layer, row) in enumerate(zip(spec.layers, report.layers)):
        rounding = getattr(layer, "rounding", None) or spec.rounding
        site = Site(layer, row, tuple(held[name] for name in layer.inputs), rounding)
        piece = TEMPLATES[type(layer)].template(site)
        held[layer.name] = holder(layer.name, index)
        frozen = not layer.trainable and bool(piece.weights)
        result.layers.append(LayerPlan(layer.name, paths[layer.name], piece,
                                       held[layer.name], row, frozen))
    return result


def _tree(layers: list[LayerPlan]) -> dict[str, Any]:
    """The module paths as a tree: key → a LayerPlan (a leaf) or a dict (a container)."""
    root: dict[str, Any] = {}
    for layer in layers:
        node = root
        for part in layer.path[:-1]:
            node = node.setdefault(part, {})
        node[layer.path[-1]] = layer
    return root


def _renamed(layer: LayerPlan) -> bool:
    return module_path(layer.path) != layer.name


def _init_lines(tree: dict[str, Any]) -> list[str]:
    lines = []
    for attribute, node in tree.items():
        if isinstance(node, LayerPlan):
            note = f"  # {comment_text(node.name)}" if _renamed(node) else ""
            lines.append(f"        self.{attribute} = {node.piece.module}{note}")
        else:
            lines.append(f"        self.{attribute} = nn.ModuleDict({{")
            lines += _dict_lines(node, 3)
            lines.append("        })")
    return lines


def _dict_lines(tree: dict[str, Any], depth: int) -> list[str]:
    indent = "    " * depth
    lines = []
    for key, node in tree.items():
        if isinstance(node, LayerPlan):
            lines.append(f"{indent}{_key(key)}: {node.piece.module},")
        else:
            lines.append(f"{indent}{_key(key)}: nn.ModuleDict({{")
            lines += _dict_lines(node, depth + 1)
            lines.append(f"{indent}}}),")
    return lines


def _shape(shape: Shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _paragraph(text: str) -> list[str]:
    return textwrap.wrap(text, width=88, break_long_words=False, break_on_hyphens=False)


def _docstring(result: Plan, source: str | None) -> str:
    spec, report = result.spec, result.report
    title = docstring_text(spec.name) if spec.name else "A network"
    origin = f" from {docstring_text(source)}" if source else ""
    shape_in = "(N, " + _shape(tuple(spec.input))[1:]
    shape_out = "(N, " + _shape(report.output_shape)[1:].replace(",)", ")")
    counts = (f"{report.total_params:,} parameters"
              + (f" ({report.trainable_params:,} trainable)"
                 if report.trainable_params != report.total_params else ""))
    if report.total_buffers:
        counts += (f", {report.total_buffers:,} buffers (running statistics; PyTorch adds a "
                   "num_batches_tracked counter to each batchnorm)")
    lines = _paragraph(f"{title}, as a PyTorch module (generated by convcalc export"
                       f"{origin}).") + [""]
    lines += _paragraph(f"Net() builds it; forward takes a batch {shape_in} and returns "
                        f"{shape_out}. {counts} and {report.total_macs:,} "
                        "multiply-accumulates per example, as convcalc counts them. The "
                        "comments give each layer's output shape without the batch axis.")
    nested = next((layer for layer in result.layers if len(layer.path) > 1), None)
    if nested is not None:
        example = docstring_text(f"{nested.name} is {module_ref(nested.path)}")
        lines += [""] + _paragraph(
            "Each layer is the module of its spec name in named_modules(): a name with "
            f"dots through nn.ModuleDict containers ({example}).")
    if any(_renamed(layer) for layer in result.layers):
        lines += [""] + _paragraph("Names that cannot be attributes are made identifiers "
                                   "(the spec's name in a comment where they are built).")
    return '"""' + "\n".join(lines) + '\n"""'


def _forward_lines(result: Plan) -> list[str]:
    lines = [f"    def forward(self, {result.input_variable}):"]
    for layer in result.layers:
        shape = _shape(layer.row.output_shape)
        unread = layer.variable != "x" and layer is not result.layers[-1] and not any(
            layer.name in other.row.inputs for other in result.layers)
        note = f"  # {shape}" + ("; read by no layer" if unread else "")
        if _renamed(layer):
            note += f"; {comment_text(layer.name)}"
        lines.append(f"        {layer.variable} = {module_ref(layer.path)}"
                     f"({layer.piece.args}){note}")
    lines.append(f"        return {result.layers[-1].variable}")
    return lines


def render(result: Plan, source: str | None = None) -> str:
    """The Python file of an export plan."""
    helpers = result.helpers()
    code = [HELPERS[name].code for name in helpers] + [
        f"{layer.piece.module} {layer.piece.args}" for layer in result.layers]
    imports = [line for line, used in (
        ("import torch", any("torch." in text for text in code)),
        ("from torch import nn", True),
        ("from torch.nn import functional as F", any("F." in text for text in code)))
        if used]
    body = [_docstring(result, source), "", *imports, ""]
    for name in helpers:
        body += ["", HELPERS[name].code.strip("\n"), ""]
    body += ["", "class Net(nn.Module):", "    def __init__(self):",
             "        super().__init__()"]
    body += _init_lines(_tree(result.layers))
    for layer in result.layers:
        if layer.frozen:
            body.append(f"        {module_ref(layer.path)}.requires_grad_(False)  "
                        "# trainable: false")
    body += [""] + _forward_lines(result)
    return "\n".join(body) + "\n"


def to_pytorch(spec: Any, report: Any, source: str | None = None) -> str:
    """The PyTorch file of a validated, error-free ``spec`` and its ``report``
    (:func:`convcalc.export.export` makes both); ``source`` names the spec file in the
    file's docstring."""
    return render(plan(spec, report), source)


def to_pytorch_text(spec: Any, source: str | None = None) -> str:
    """:func:`to_pytorch` of any spec (a dict or a Spec; errors raise
    :class:`~convcalc.export.ExportError`)."""
    from . import export

    text: str = export(spec, "pytorch", source=source)   # export gives str or bytes by target
    return text


# --- weights -----------------------------------------------------------------------------


def load_engine_weights(module: Any, net: Any) -> Any:
    """Copy the parameters and buffers of ``net`` (an :class:`engine.Network` of the same
    spec) into ``module`` (its exported ``Net``, in any dtype); returns ``module``.
    Every engine array goes where its layer's template says (:class:`Weight`); a shape
    that differs, or an array with no place, raises ``ValueError``."""
    exported = plan(net.spec)
    places = {layer.name: layer for layer in exported.layers}
    for engine_layer in net.layers:
        arrays = {**engine_layer.params, **engine_layer.buffers}
        if not arrays:
            continue
        layer = places[engine_layer.name]
        target = module.get_submodule(module_path(layer.path))
        declared = {weight.engine: weight for weight in layer.piece.weights}
        missing = sorted(set(arrays) - set(declared))
        if missing:
            raise ValueError(f"{engine_layer.name}: no place for the engine's "
                             f"{', '.join(missing)}")
        for key, array in arrays.items():
            weight = declared[key]
            tensor = target.get_parameter(weight.attr) if weight.attr in dict(
                target.named_parameters()) else target.get_buffer(weight.attr)
            value = tensor.new_tensor(array.T if weight.transpose else array)
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"{engine_layer.name}: the engine's {key} has shape "
                                 f"{tuple(value.shape)}, {weight.attr} {tuple(tensor.shape)}")
            tensor.data.copy_(value)
    return module


__all__ = ["TEMPLATES", "HELPERS", "Weight", "Piece", "Site", "Plan", "plan", "render",
           "to_pytorch", "to_pytorch_text", "load_engine_weights", "module_paths",
           "module_path", "mapping_rows", "literal", "call"]
