"""NumPy reference engine: builds a convcalc spec as real arrays and runs it.

It proves the calculator's predictions independently: every shape and parameter count
is read off the arrays numpy builds, never from the calculator's formulas (the engine
imports only :mod:`convcalc.spec`, the models).

>>> import engine
>>> net = engine.build({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]})
>>> net.observed_shapes["conv1"], net.param_count()
((10, 32, 32), 760)

Public API: :func:`build` → :class:`Network`; :func:`im2col` / :func:`col2im`; the layer
classes; :func:`softmax_cross_entropy`; :func:`gradcheck` and :func:`numerical_gradient`.
"""

from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, softmax_cross_entropy
from .base import Layer
from .conv import Conv, ConvTranspose
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient, relative_error
from .im2col import col2im, im2col
from .layers import Dense, Dropout, Flatten, GlobalPool
from .merge import Add, Concat
from .network import LAYER_CLASSES, Network, build
from .normalization import LRN, BatchNorm
from .pool import Pool

__all__ = [
    "build",
    "Network",
    "LAYER_CLASSES",
    "im2col",
    "col2im",
    "Layer",
    "Conv",
    "ConvTranspose",
    "Pool",
    "GlobalPool",
    "Flatten",
    "Dense",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Dropout",
    "BatchNorm",
    "LRN",
    "Add",
    "Concat",
    "softmax_cross_entropy",
    "gradcheck",
    "numerical_gradient",
    "relative_error",
    "GradcheckResult",
]
