"""Helpers for the conv/pool/im2col tests: centred-difference gradients of a layer.

The loss is a fixed random projection of the layer's output, ``L = Σ y ⊙ R``, so
``dL/dy = R`` and ``backward(R)`` must return ``dL/dx`` and fill ``dL/dθ``.  Each entry of
the input and of every parameter is nudged by ``±h`` and ``(L(+h) − L(−h)) / 2h`` is
compared with the back-propagated value.  The error reported for one tensor is
``max |analytic − numeric| / max |numeric|`` — relative to the gradient's own scale, so
an entry that is exactly 0 analytically (a max-pool loser) and ~1e-10 numerically does
not count as a 100 % error.
"""

from __future__ import annotations

import numpy as np
import pytest
from references import numerical_gradient


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max |a − n| / max |n|`` (0 when both are all zero)."""
    scale = float(np.max(np.abs(numeric), initial=0.0))
    diff = float(np.max(np.abs(analytic - numeric), initial=0.0))
    return diff / scale if scale else diff


def layer_gradient_errors(layer, x: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Relative error of ``dL/dx`` and of every ``dL/dparam`` of ``layer`` at ``x``."""
    rng = np.random.default_rng(seed)
    x = x.astype(np.float64).copy()
    projection = rng.standard_normal(layer.forward(x).shape)
    analytic = {"x": layer.backward(projection)}
    analytic.update({name: grad.copy() for name, grad in layer.grads.items()})

    def loss() -> float:
        return float(np.sum(layer.forward(x) * projection))

    errors = {"x": relative_error(analytic["x"], numerical_gradient(loss, x))}
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(loss, param))
    return errors


@pytest.fixture
def gradient_errors():
    """The :func:`layer_gradient_errors` helper, for tests to call."""
    return layer_gradient_errors


@pytest.fixture
def centred_differences():
    """The :func:`numerical_gradient` helper, for tests to call."""
    return numerical_gradient
