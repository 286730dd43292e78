"""PyTorch's CPU ops for the channel norms, the adaptive pools, ``mul`` and the channel
routing kinds (registered in :data:`torch_reference.REFERENCES`).

- ``layernorm``: ``F.layer_norm`` over the channels, the channel axis moved last (as
  ConvNeXt's LayerNorm2d does); ``groupnorm``: ``F.group_norm``; ``instancenorm``:
  ``F.instance_norm`` with the instance statistics (no running ones);
- ``adaptive_avgpool`` / ``adaptive_maxpool``: ``F.adaptive_{avg,max}_pool{1,2,3}d``;
- ``mul``: ``torch.mul``, broadcasting the shapes without the batch axis (each input
  viewed with size-1 axes inserted after the batch, as the spec's rule says);
- ``channel_shuffle``: ``F.channel_shuffle`` (a flat input viewed as ``(N, C, 1)``);
  ``slice``: indexing.
"""

from __future__ import annotations

from typing import Any

from torch_reference import _functional, reference


def _affine(params: dict) -> tuple[Any, Any]:
    return params.get("gamma"), params.get("beta")


@reference("layernorm")
def layernorm(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    gamma, beta = _affine(params)
    last = x.movedim(1, -1)
    return _functional().layer_norm(last, (x.shape[1],), gamma, beta, layer.eps).movedim(-1, 1)


@reference("groupnorm")
def groupnorm(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    (x,) = inputs
    gamma, beta = _affine(params)
    return _functional().group_norm(x, layer.groups, gamma, beta, layer.eps)


@reference("instancenorm")
def instancenorm(layer: Any, params: dict, buffers: dict, inputs: list,
                 engine_layer: Any) -> Any:
    (x,) = inputs
    gamma, beta = _affine(params)
    return _functional().instance_norm(x, weight=gamma, bias=beta, use_input_stats=True,
                                       eps=layer.eps)


@reference("adaptive_avgpool", "adaptive_maxpool")
def adaptive_pool(layer: Any, params: dict, buffers: dict, inputs: list,
                  engine_layer: Any) -> Any:
    functional = _functional()
    (x,) = inputs
    dims = x.dim() - 2
    output = (layer.output,) * dims if isinstance(layer.output, int) else tuple(layer.output)
    if layer.type == "adaptive_avgpool":
        op = (functional.adaptive_avg_pool1d, functional.adaptive_avg_pool2d,
              functional.adaptive_avg_pool3d)[dims - 1]
    else:
        op = (functional.adaptive_max_pool1d, functional.adaptive_max_pool2d,
              functional.adaptive_max_pool3d)[dims - 1]
    return op(x, output)


@reference("mul")
def mul(layer: Any, params: dict, buffers: dict, inputs: list, engine_layer: Any) -> Any:
    import torch

    rank = max(x.dim() for x in inputs)
    views = [x.reshape(x.shape[:1] + (1,) * (rank - x.dim()) + x.shape[1:]) for x in inputs]
    product = views[0]
    for x in views[1:]:
        product = torch.mul(product, x)
    return product


@reference("channel_shuffle")
def channel_shuffle(layer: Any, params: dict, buffers: dict, inputs: list,
                    engine_layer: Any) -> Any:
    (x,) = inputs
    flat = x.dim() == 2
    y = _functional().channel_shuffle(x[..., None] if flat else x, layer.groups)
    return y[..., 0] if flat else y


@reference("slice")
def channel_slice(layer: Any, params: dict, buffers: dict, inputs: list,
                  engine_layer: Any) -> Any:
    (x,) = inputs
    start, stop = layer.channels
    return x[:, start:stop]
