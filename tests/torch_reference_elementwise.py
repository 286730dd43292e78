"""PyTorch's ops for the element-wise kinds of modern CNNs (relu6 … scale): the values
the engine's layers in ``engine/activations.py`` are held to (tests/test_kinds.py).

Each reference is the ``torch.nn.functional`` op (``F.relu6``, ``F.gelu``, ``F.prelu``,
…) on the inputs and the engine layer's own parameters.  Two kinds have no
``torch.nn.functional`` op: ``drop_path`` (timm's and torchvision's ``x · mask``, with
the engine's own per-example mask: torch's generator is another) and ``scale``
(ConvNeXt's layer scale, written here as the depthwise 1×1 convolution it is,
``F.conv1d`` with ``groups = C``).
"""

from __future__ import annotations

from typing import Any

from torch_reference import reference


def _functional() -> Any:
    import torch.nn.functional as functional

    return functional


@reference("relu6", "hardswish", "silu", "mish", "selu", "log_softmax", "gelu", "elu",
           "softplus")
def activation(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    functional = _functional()
    (x,) = inputs
    return {
        "relu6": functional.relu6,
        "hardswish": functional.hardswish,
        "silu": functional.silu,
        "mish": functional.mish,
        "selu": functional.selu,
        "log_softmax": lambda t: functional.log_softmax(t, dim=1),
        "gelu": lambda t: functional.gelu(t, approximate=getattr(layer, "approximate", "none")),
        "elu": lambda t: functional.elu(t, alpha=getattr(layer, "alpha", 1.0)),
        "softplus": lambda t: functional.softplus(t, beta=getattr(layer, "beta", 1.0),
                                                  threshold=getattr(layer, "threshold", 20.0)),
    }[layer.type](x)


@reference("hardsigmoid")
def hardsigmoid(layer: Any, params: dict, buffers: dict, inputs: list,
                engine_layer: Any) -> Any:
    """``F.hardsigmoid``'s values, with the gradient of ``F.relu6(x + 3) / 6``: torch's
    ``hardsigmoid_backward`` multiplies by 1/6 rounded to float32 (0.1666666716…) even in
    float64, 3e-8 off the derivative; ``relu6(x + 3) / 6`` is the same forward, bit for
    bit (checked here), with an exact backward."""
    import torch

    functional = _functional()
    (x,) = inputs
    y = functional.relu6(x + 3.0) / 6.0
    assert torch.equal(y.detach(), functional.hardsigmoid(x.detach()))
    return y


@reference("drop_path")
def drop_path(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    """``x · mask`` with the engine's mask, which must be one factor per example, 0 or
    ``1/(1 − rate)`` (or no mask at all: the identity)."""
    import torch

    (x,) = inputs
    factor = engine_layer._factor
    if factor is None:
        assert layer.rate == 0 or not engine_layer.training
        return x * 1.0
    mask = torch.tensor(factor)
    assert tuple(mask.shape) == (x.shape[0],) + (1,) * (x.dim() - 1)
    kept = 1.0 / (1.0 - layer.rate)
    assert bool(((mask == 0) | ((mask - kept).abs() < 1e-12)).all())
    return x * mask


@reference("prelu")
def prelu(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    return _functional().prelu(x, params["weight"])


@reference("scale")
def scale(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    """``w_c·x + b_c`` as a depthwise 1×1 convolution over the positions flattened (a flat
    input is one position)."""
    (x,) = inputs
    channels = x.shape[1]
    flat = x.reshape(x.shape[0], channels, -1)
    y = _functional().conv1d(flat, params["weight"].reshape(channels, 1, 1), params.get("bias"),
                             groups=channels)
    return y.reshape(x.shape)
