"""NumPy reference engine: builds a convcalc spec as real arrays and runs it.

It proves the calculator's predictions independently: every shape and parameter count
is read off the arrays numpy builds, never from the calculator's formulas (the engine
imports only :mod:`convcalc.spec`, the models, and nothing else of convcalc).

>>> import convcalc.spec, engine
>>> net = engine.build({"input": [3, 32, 32], "layers": [
...     {"type": "conv", "filters": 10, "kernel": 5, "padding": 2}]})
>>> net.observed_shapes["conv1"], net.param_count()
((10, 32, 32), 760)
>>> engine.LAYERS[convcalc.spec.Conv].__name__
'Conv'

Public API: :func:`build` → :class:`Network`; :data:`LAYERS` (spec model → layer class,
every layer module below registers its classes); :func:`im2col` / :func:`col2im`;
:func:`softmax_cross_entropy`; :func:`gradcheck` and :func:`numerical_gradient`.
"""

from . import activations, adaptive, conv, layers, merge, normalization, pool, resize, routing  # noqa: F401  (they register)
from .activations import softmax_cross_entropy
from .base import LAYERS, Layer
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient, relative_error
from .im2col import col2im, im2col
from .network import Network, build

__all__ = [
    "build",
    "Network",
    "LAYERS",
    "Layer",
    "im2col",
    "col2im",
    "softmax_cross_entropy",
    "gradcheck",
    "numerical_gradient",
    "relative_error",
    "GradcheckResult",
]
