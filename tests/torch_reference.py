"""PyTorch's CPU ops for every layer type: the independent values the engine is held to.

``REFERENCES[type](layer, params, buffers, inputs, engine_layer)`` computes the layer's
output with ``torch.nn.functional`` from the engine layer's own parameters (as torch
tensors, so autograd gives their gradients), given the batch ``inputs`` (one tensor per
spec input).  ``tests/test_kinds.py`` asks for one reference per type, so a new kind
cannot go without its PyTorch comparison.

Layouts: conv weights are PyTorch's; the dense weight is ``(in, units)`` (the transpose
of ``Linear.weight``); padding the engine resolves (``same``, ``full``, per-axis pairs)
is applied with ``F.pad`` before the op.  Torch is imported when a reference runs.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.padding import per_axis, resolve_padding

Reference = Callable[..., Any]
REFERENCES: dict[str, Reference] = {}


def reference(*tags: str) -> Callable[[Reference], Reference]:
    def register(function: Reference) -> Reference:
        for tag in tags:
            REFERENCES[tag] = function
        return function
    return register


def _functional() -> Any:
    import torch.nn.functional as functional

    return functional


def _torch_pads(pads: tuple[tuple[int, int], ...]) -> list[int]:
    """``((b0, a0), (b1, a1))`` → ``F.pad``'s order: last axis first."""
    return [p for before, after in reversed(pads) for p in (before, after)]


def _window(layer: Any, x: Any, stride: Any) -> tuple:
    sizes = tuple(x.shape[2:])
    dims = len(sizes)
    kernel = per_axis(layer.kernel, dims, "kernel")
    strides = per_axis(stride, dims, "stride")
    dilation = per_axis(layer.dilation, dims, "dilation")
    pads = resolve_padding(layer.padding, sizes, kernel, strides, dilation)
    return kernel, strides, dilation, pads


def _rounding(layer: Any, engine_layer: Any) -> str:
    """The layer's own rounding, else the spec's (the engine layer's)."""
    return getattr(layer, "rounding", None) or engine_layer.rounding


def _ceil_overhang(n: int, pads: tuple[int, int], extent: int, stride: int) -> int:
    """Zeros a ceil rounding reads past the padded input, by PyTorch's ceil_mode rule:
    one more window, unless it would start in the end padding or past it."""
    padded = n + sum(pads)
    out = -(-(padded - extent) // stride) + 1
    if (out - 1) * stride >= n + pads[0]:
        out -= 1
    return max(0, (out - 1) * stride + extent - padded)


@reference("conv")
def conv(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    """``F.pad`` by the padding mode (PyTorch's Conv with ``padding_mode`` does the same:
    ``F.pad(x, …, mode)``, then the convolution without padding); a ceil rounding (which
    PyTorch's Conv does not have) reads zeros past the end, padded on after that."""
    functional = _functional()
    (x,) = inputs
    kernel, stride, dilation, pads = _window(layer, x, layer.stride)
    groups = x.shape[1] if layer.groups == "depthwise" else layer.groups
    op = (functional.conv1d, functional.conv2d, functional.conv3d)[len(kernel) - 1]
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    padded = functional.pad(x, _torch_pads(pads), mode=mode)
    if _rounding(layer, engine_layer) == "ceil":
        extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        overhang = [_ceil_overhang(n, p, e, s) for n, p, e, s in
                    zip(x.shape[2:], pads, extents, stride)]
        padded = functional.pad(padded, _torch_pads([(0, o) for o in overhang]))
    return op(padded, params["weight"], params.get("bias"), stride=stride, dilation=dilation,
              groups=groups)


@reference("conv_transpose")
def conv_transpose(layer: Any, params: dict, buffers: dict, inputs: list,
                   engine_layer: Any) -> Any:
    functional = _functional()
    (x,) = inputs
    kernel, stride, dilation, pads = _window(layer, x, layer.stride)
    extra = per_axis(layer.output_padding, len(kernel), "output_padding", minimum=0)
    op = (functional.conv_transpose1d, functional.conv_transpose2d,
          functional.conv_transpose3d)[len(kernel) - 1]
    full = op(x, params["weight"], params.get("bias"), stride=stride, output_padding=extra,
              groups=layer.groups, dilation=dilation)
    crop = tuple(slice(before, full.shape[2 + axis] - after)
                 for axis, (before, after) in enumerate(pads))
    return full[(slice(None), slice(None), *crop)]


@reference("maxpool", "minpool", "avgpool")
def pool(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    """Symmetric padding goes to torch (its ceil_mode rule needs to know the padding);
    ``min = −max(−x)``; averages count the padding (``count_include_pad``)."""
    functional = _functional()
    (x,) = inputs
    stride_option = layer.kernel if layer.stride is None else layer.stride
    kernel, stride, dilation, pads = _window(layer, x, stride_option)
    if any(before != after for before, after in pads):
        raise NotImplementedError("asymmetric pool padding has no torch reference here")
    padding = tuple(before for before, _ in pads)
    ceil = layer.ceil_mode or _rounding(layer, engine_layer) == "ceil"
    dims = len(kernel)
    if layer.type == "avgpool":
        assert all(d == 1 for d in dilation), "torch's avg_pool has no dilation"
        op = (functional.avg_pool1d, functional.avg_pool2d, functional.avg_pool3d)[dims - 1]
        return op(x, kernel, stride, padding, ceil_mode=ceil, count_include_pad=True)
    op = (functional.max_pool1d, functional.max_pool2d, functional.max_pool3d)[dims - 1]
    sign = 1 if layer.type == "maxpool" else -1
    return sign * op(sign * x, kernel, stride, padding, dilation=dilation, ceil_mode=ceil)


@reference("global_avgpool", "global_maxpool")
def global_pool(layer: Any, params: dict, buffers: dict, inputs: list,
                engine_layer: Any) -> Any:
    (x,) = inputs
    axes = tuple(range(2, x.dim()))
    return x.mean(dim=axes) if layer.type == "global_avgpool" else x.amax(dim=axes)


@reference("flatten")
def flatten(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    return x.reshape(x.shape[0], -1)


@reference("dense")
def dense(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    y = x @ params["weight"]
    return y + params["bias"] if "bias" in params else y


@reference("relu", "sigmoid", "tanh", "softmax", "leaky_relu", "identity")
def pointwise(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    import torch

    functional = _functional()
    (x,) = inputs
    return {
        "relu": functional.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda t: functional.softmax(t, dim=1),
        "leaky_relu": lambda t: functional.leaky_relu(t, layer.negative_slope),
        "identity": lambda t: t,
    }[layer.type](x)


@reference("dropout")
def dropout(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    """The engine's own random mask (torch's generator is another), which must hold
    only 0 and ``1/(1 − rate)``."""
    import torch

    (x,) = inputs
    mask = torch.tensor(engine_layer._mask)
    kept = 1.0 / (1.0 - layer.rate)
    assert bool(((mask == 0) | ((mask - kept).abs() < 1e-12)).all())
    return x * mask


@reference("batchnorm")
def batchnorm(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    """Training mode, from the running statistics the layer had before the pass (they
    are updated in place: the test compares them after)."""
    (x,) = inputs
    return _functional().batch_norm(
        x, buffers["running_mean"], buffers["running_var"], params["gamma"], params["beta"],
        training=True, momentum=layer.momentum, eps=layer.eps)


@reference("lrn")
def lrn(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    flat = x.dim() == 2
    y = _functional().local_response_norm(x[..., None] if flat else x, layer.size,
                                          layer.alpha, layer.beta, layer.k)
    return y[..., 0] if flat else y


@reference("add")
def add(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    total = inputs[0]
    for x in inputs[1:]:
        total = total + x
    return total


@reference("concat")
def concat(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    import torch

    return torch.cat(inputs, dim=1)


def _load_families() -> None:
    """Every ``tests/torch_reference_<family>.py`` registers its references too."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).parent.glob("torch_reference_*.py")):
        importlib.import_module(path.stem)


_load_families()
