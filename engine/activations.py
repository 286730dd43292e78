"""Element-wise activations, (log-)softmax over channels, stochastic depth, the
per-channel ``prelu`` and ``scale``, and the softmax cross-entropy loss.

Every layer here keeps its output shape: ``(N, C, *spatial) → (N, C, *spatial)`` or
``(N, F) → (N, F)`` (``C`` is axis 1, the features of a flat vector).  Only
:class:`PReLU` and :class:`Scale` have parameters.  ``forward`` returns a new array
(the eval-mode :class:`DropPath` returns its input) and keeps what ``backward`` needs;
neither modifies its argument.  Each pass allocates its result and computes in place
from there; the docstrings say what else a layer keeps or allocates (the memory
estimate, :mod:`convcalc.kinds.elementwise`, restates it).  The formulas, and the order
of their operations, are PyTorch's (``torch.nn.functional``).

>>> import numpy as np
>>> from convcalc.spec import ReLU as ReLUSpec
>>> relu = ReLU(ReLUSpec(type="relu", name="relu1"), np.random.default_rng(0), "float64")
>>> relu.forward(np.array([[-1.0, 0.0, 2.0]]))
array([[0., 0., 2.]])
>>> relu.backward(np.array([[5.0, 5.0, 5.0]]))
array([[0., 0., 5.]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcalc import spec as specs

from .base import Layer


class ReLU(Layer):
    """``y = max(x, 0)``; ``dx = dy`` where ``x > 0``, else 0 (the subgradient at 0 is 0)."""

    spec_model = specs.ReLU

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._positive = x > 0
        return np.where(self._positive, x, x.dtype.type(0))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self._positive, dout, dout.dtype.type(0))


class LeakyReLU(Layer):
    """``y = x`` where ``x > 0``, else ``negative_slope · x``; ``dx`` likewise.

    >>> import numpy as np
    >>> from convcalc.spec import LeakyRelu as LeakyReluSpec
    >>> layer = LeakyReLU(LeakyReluSpec(type="leaky_relu", name="lrelu", negative_slope=0.1),
    ...                   np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[-2.0, 3.0]]))
    array([[-0.2,  3. ]])
    """

    spec_model = specs.LeakyRelu

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.negative_slope = float(spec.negative_slope)

    # Each pass allocates its result only (the memory estimate counts no more).
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._positive = x > 0
        # For a slope ≤ 1, x where x > 0 else slope·x is max(x, slope·x) (min above 1):
        # the same numbers as a masked select, and about 9× faster.
        y: np.ndarray = np.multiply(x, self.negative_slope)
        (np.maximum if self.negative_slope <= 1 else np.minimum)(y, x, out=y)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx: np.ndarray = np.where(self._positive, dout.dtype.type(1),
                                  dout.dtype.type(self.negative_slope))
        dx *= dout
        return dx


class Sigmoid(Layer):
    """``y = 1 / (1 + e^(−x))``, computed as ``(1 + tanh(x/2)) / 2`` (no overflow);
    ``dx = dy · y · (1 − y)``.

    >>> import numpy as np
    >>> from convcalc.spec import Sigmoid as SigmoidSpec
    >>> layer = Sigmoid(SigmoidSpec(type="sigmoid", name="s"), np.random.default_rng(0),
    ...                 "float64")
    >>> layer.forward(np.array([[0.0, -1000.0, 1000.0]]))
    array([[0.5, 0. , 1. ]])
    """

    spec_model = specs.Sigmoid

    def forward(self, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = np.multiply(x, 0.5)     # in place from here: one array in all
        np.tanh(y, out=y)
        y += 1.0
        y *= 0.5
        self._y = y
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx: np.ndarray = np.subtract(1.0, self._y)
        dx *= self._y
        dx *= dout
        return dx


class Tanh(Layer):
    """``y = tanh(x)``; ``dx = dy · (1 − y²)``.

    >>> import numpy as np
    >>> from convcalc.spec import Tanh as TanhSpec
    >>> layer = Tanh(TanhSpec(type="tanh", name="t"), np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[0.0, np.arctanh(0.5)]]))
    array([[0. , 0.5]])
    >>> layer.backward(np.array([[1.0, 1.0]]))
    array([[1.  , 0.75]])
    """

    spec_model = specs.Tanh

    def forward(self, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = np.tanh(x)
        self._y = y
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx: np.ndarray = np.multiply(self._y, self._y)  # in place from here: one array in all
        np.subtract(1.0, dx, out=dx)
        dx *= dout
        return dx


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over axis 1, shifted by the maximum so ``exp`` never overflows."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return y


class Softmax(Layer):
    """Softmax over axis 1 (the channels, or the features of a flat vector):
    ``y_c = e^(x_c) / Σ_c' e^(x_c')`` at every batch entry and spatial position.

    ``backward`` is the Jacobian-vector product ``dx = y ⊙ (dy − Σ_c dy_c·y_c)``.

    >>> import numpy as np
    >>> from convcalc.spec import Softmax as SoftmaxSpec
    >>> layer = Softmax(SoftmaxSpec(type="softmax", name="softmax1"),
    ...                 np.random.default_rng(0), "float64")
    >>> layer.forward(np.log(np.array([[1.0, 3.0]])))
    array([[0.25, 0.75]])
    """

    spec_model = specs.Softmax

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = _softmax(x)
        return self._y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        y = self._y
        dx: np.ndarray = y * (dout - (dout * y).sum(axis=1, keepdims=True))
        return dx


# --- the activations of modern CNNs (MobileNet, EfficientNet, ConvNeXt, ...) ------------


def _between(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """``low < x < high`` as one boolean array (the second comparison's mask is freed)."""
    inside: np.ndarray = np.greater(x, low)
    inside &= np.less(x, high)
    return inside


def _per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """``(C,)`` (or ``(1,)``) → ``(1, C, 1, ...)``, broadcastable against the input."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def _all_but_channels(ndim: int) -> tuple[int, ...]:
    """The axes a per-channel parameter's gradient sums over: batch and spatial."""
    return (0,) + tuple(range(2, ndim))


class ReLU6(Layer):
    """``y = min(max(x, 0), 6)``; ``dx = dy`` where ``0 < x < 6``, else 0 (PyTorch's
    ``hardtanh`` rule: 0 at both kinks).  Keeps that mask (1 byte a value).

    >>> import numpy as np
    >>> from convcalc.spec import ReLU6 as ReLU6Spec
    >>> layer = ReLU6(ReLU6Spec(type="relu6", name="r"), np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[-1.0, 3.0, 7.0]]))
    array([[0., 3., 6.]])
    >>> layer.backward(np.array([[5.0, 5.0, 5.0]]))
    array([[0., 5., 0.]])
    """

    spec_model = specs.ReLU6

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._inside = _between(x, 0.0, 6.0)
        y: np.ndarray = np.clip(x, 0.0, 6.0)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self._inside, dout, dout.dtype.type(0))


class Hardsigmoid(Layer):
    """``y = min(max(x + 3, 0), 6) / 6``; ``dx = dy / 6`` where ``−3 < x < 3``, else 0.
    Keeps that mask (1 byte a value).

    >>> import numpy as np
    >>> from convcalc.spec import Hardsigmoid as HardsigmoidSpec
    >>> layer = Hardsigmoid(HardsigmoidSpec(type="hardsigmoid", name="h"),
    ...                     np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[-4.0, 0.0, 1.5, 4.0]]))
    array([[0.  , 0.5 , 0.75, 1.  ]])
    >>> layer.backward(np.array([[6.0, 6.0, 6.0, 6.0]]))
    array([[0., 1., 1., 0.]])
    """

    spec_model = specs.Hardsigmoid

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._inside = _between(x, -3.0, 3.0)
        y: np.ndarray = np.add(x, 3.0)
        np.clip(y, 0.0, 6.0, out=y)
        y /= 6.0
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx: np.ndarray = np.where(self._inside, dout, dout.dtype.type(0))
        dx /= 6.0
        return dx


class Hardswish(Layer):
    """``y = x · min(max(x + 3, 0), 6) / 6``; ``dx = 0`` where ``x ≤ −3``,
    ``dy · (x/3 + 1/2)`` where ``−3 < x < 3``, ``dy`` where ``x ≥ 3`` (PyTorch's
    branches: at the kinks ±3, the slope of the outer side).  Keeps its input; backward
    compares it with ±3 into one temporary mask (1 byte a value) at a time.

    >>> import numpy as np
    >>> from convcalc.spec import Hardswish as HardswishSpec
    >>> layer = Hardswish(HardswishSpec(type="hardswish", name="h"),
    ...                   np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[-4.0, -1.5, 0.0, 1.5, 4.0]]))
    array([[-0.   , -0.375,  0.   ,  1.125,  4.   ]])
    >>> layer.backward(np.ones((1, 5)))
    array([[0. , 0. , 0.5, 1. , 1. ]])
    """

    spec_model = specs.Hardswish

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y: np.ndarray = np.add(x, 3.0)
        np.clip(y, 0.0, 6.0, out=y)
        y *= x
        y /= 6.0
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x
        dx: np.ndarray = np.divide(x, 3.0)
        dx += 0.5
        dx *= dout
        np.copyto(dx, 0.0, where=x <= -3.0)
        np.copyto(dx, dout, where=x >= 3.0)
        return dx


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^(−x))`` as PyTorch writes it, in one new array (``e^(−x)`` overflows
    to ``inf`` for very negative ``x``, giving the right limit 0)."""
    s: np.ndarray = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(s, out=s)
    s += 1.0
    np.reciprocal(s, out=s)
    return s


def _tanh_softplus(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``tanh(log(1 + e^x))`` into ``out`` (``e^x`` overflows to ``inf`` for large ``x``:
    the limit 1, as PyTorch)."""
    with np.errstate(over="ignore"):
        np.exp(x, out=out)
    np.log1p(out, out=out)
    np.tanh(out, out=out)
    return out


class SiLU(Layer):
    """``y = x / (1 + e^(−x))`` (``x · sigmoid(x)``, swish);
    ``dx = dy · s · (1 + x·(1 − s))`` with ``s = sigmoid(x)``.  Keeps its input; backward
    allocates ``s`` besides ``dx``.

    >>> import numpy as np
    >>> from convcalc.spec import SiLU as SiLUSpec
    >>> layer = SiLU(SiLUSpec(type="silu", name="s"), np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[0.0, 1000.0, -1000.0]]))
    array([[ 0.,  1000.,   -0.]])
    >>> layer.backward(np.array([[1.0, 1.0, 1.0]])) + 0.0
    array([[0.5, 1. , 0. ]])
    """

    spec_model = specs.SiLU

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y: np.ndarray = np.negative(x)
        with np.errstate(over="ignore"):
            np.exp(y, out=y)
        y += 1.0
        np.divide(x, y, out=y)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x
        s = _sigmoid(x)
        dx: np.ndarray = np.subtract(1.0, s)
        dx *= x
        dx += 1.0
        dx *= s
        dx *= dout
        return dx


class Mish(Layer):
    """``y = x · tanh(softplus(x))``, ``softplus(x) = log(1 + e^x)``;
    ``dx = dy · (t + x·s·(1 − t²))`` with ``t = tanh(softplus(x))``, ``s = sigmoid(x)``.
    Keeps its input; backward allocates one array besides ``dx`` (``t`` is computed
    twice rather than kept beside ``1 − t²``).

    >>> import numpy as np
    >>> from convcalc.spec import Mish as MishSpec
    >>> layer = Mish(MishSpec(type="mish", name="m"), np.random.default_rng(0), "float64")
    >>> y = layer.forward(np.array([[0.0, 1000.0, 1.0]]))
    >>> y[0, :2], round(float(y[0, 2]), 6)
    (array([   0., 1000.]), 0.865098)
    """

    spec_model = specs.Mish

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = _tanh_softplus(x, np.empty_like(x))
        y *= x
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x
        dx = _sigmoid(x)
        dx *= x
        t = _tanh_softplus(x, np.empty_like(dx))
        np.multiply(t, t, out=t)
        np.subtract(1.0, t, out=t)
        dx *= t
        dx += _tanh_softplus(x, out=t)
        dx *= dout
        return dx


class _ExponentialLinear(Layer):
    """``y = scale · x`` for ``x > 0``, ``scale · alpha · (e^x − 1)`` for ``x ≤ 0``
    (``expm1``, as PyTorch's ``elu``); ``dx = scale · dy`` for ``x > 0``,
    ``dy · scale · alpha · e^x`` for ``x ≤ 0``.  Keeps its input and the mask
    ``x ≤ 0`` (1 byte a value)."""

    alpha: float = 1.0
    scale: float = 1.0

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        self._negative = np.less_equal(x, 0.0)
        y: np.ndarray = np.multiply(x, self.scale)
        negative, factor = self._negative, self.alpha * self.scale
        np.expm1(x, out=y, where=negative)
        np.multiply(y, factor, out=y, where=negative)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx: np.ndarray = np.multiply(dout, self.scale)
        negative, factor = self._negative, self.alpha * self.scale
        np.exp(self._x, out=dx, where=negative)
        np.multiply(dx, factor, out=dx, where=negative)
        np.multiply(dx, dout, out=dx, where=negative)
        return dx


class ELU(_ExponentialLinear):
    """ELU: ``x`` for ``x > 0``, ``alpha · (e^x − 1)`` for ``x ≤ 0`` (``scale`` 1).

    >>> import numpy as np
    >>> from convcalc.spec import ELU as ELUSpec
    >>> layer = ELU(ELUSpec(type="elu", name="e", alpha=0.5), np.random.default_rng(0),
    ...             "float64")
    >>> layer.forward(np.array([[2.0, 0.0, -np.log(2.0)]]))
    array([[ 2.  ,  0.  , -0.25]])
    >>> layer.backward(np.array([[1.0, 1.0, 1.0]]))
    array([[1.  , 0.5 , 0.25]])
    """

    spec_model = specs.ELU

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.alpha = float(spec.alpha)


class SELU(_ExponentialLinear):
    """SELU: the ELU times ``scale = λ ≈ 1.0507`` with ``alpha ≈ 1.6733`` (Klambauer et
    al. 2017; PyTorch's constants).

    >>> import numpy as np
    >>> from convcalc.spec import SELU as SELUSpec
    >>> layer = SELU(SELUSpec(type="selu", name="s"), np.random.default_rng(0), "float64")
    >>> np.round(layer.forward(np.array([[1.0, -1000.0]])), 4)
    array([[ 1.0507, -1.7581]])
    """

    spec_model = specs.SELU
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946


class Softplus(Layer):
    """``y = log(1 + e^(beta·x)) / beta``, and ``y = x`` where ``beta·x > threshold``
    (PyTorch's rule); ``dx = dy · sigmoid(beta·x)``, and ``dy`` where ``beta·x >
    threshold``.  Keeps its input and that mask (1 byte a value).  (Below a threshold
    over ~88 in float32, ~709 in float64, PyTorch's ``e^(βx)/(e^(βx) + 1)`` overflows to
    NaN; ``1/(1 + e^(−βx))`` here gives 1.)

    >>> import numpy as np
    >>> from convcalc.spec import Softplus as SoftplusSpec
    >>> layer = Softplus(SoftplusSpec(type="softplus", name="s", beta=2.0, threshold=1.5),
    ...                  np.random.default_rng(0), "float64")
    >>> y = layer.forward(np.array([[0.0, 1.0]]))         # 2·1 > 1.5: x itself
    >>> bool(y[0, 0] == np.log(2.0) / 2), float(y[0, 1])
    (True, 1.0)
    >>> layer.backward(np.array([[1.0, 1.0]]))
    array([[0.5, 1. ]])
    """

    spec_model = specs.Softplus

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.beta = float(spec.beta)
        self.threshold = float(spec.threshold)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y: np.ndarray = np.multiply(x, self.beta)
        self._linear = np.greater(y, self.threshold)
        with np.errstate(over="ignore"):    # e^(βx) = inf only where y = x is taken
            np.exp(y, out=y)
        np.log1p(y, out=y)
        y /= self.beta
        np.copyto(y, x, where=self._linear)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        # sigmoid(βx) = e^(βx) / (e^(βx) + 1), written as 1 / (1 + e^(−βx)): one array
        dx: np.ndarray = np.multiply(self._x, -self.beta)
        with np.errstate(over="ignore"):
            np.exp(dx, out=dx)
        dx += 1.0
        np.reciprocal(dx, out=dx)
        dx *= dout
        np.copyto(dx, dout, where=self._linear)
        return dx


# GELU's constants as PyTorch composes them (C's M_SQRT2, M_2_SQRTPI, M_SQRT1_2)
_SQRT2, _2_SQRTPI, _SQRT1_2 = 1.41421356237309504880, 1.12837916709551257390, \
    0.707106781186547524401
_GELU_PDF = _2_SQRTPI * _SQRT1_2 * 0.5         # 1/√(2π)
_GELU_BETA = _SQRT2 * _2_SQRTPI * 0.5          # √(2/π)
_GELU_KAPPA = 0.044715
#: Values per block of the erf loop: NumPy has no erf, so each block goes through
#: :func:`math.erf` (C's ``erf``) as Python floats, about 40 bytes a value: 80 KiB.
_ERF_BLOCK = 2048
_erf = np.frompyfunc(math.erf, 1, 1)


def _add_normal_cdf(x: np.ndarray, out: np.ndarray) -> None:
    """``out += ½·(1 + erf(x/√2))`` (the standard normal CDF, PyTorch's formula), block
    by block: the temporaries are a block's, whatever the size of ``x``."""
    with np.nditer([x, out], flags=["external_loop", "buffered", "zerosize_ok"],
                   op_flags=[["readonly"], ["readwrite"]], buffersize=_ERF_BLOCK) as blocks:
        for xb, ob in blocks:
            cdf = np.multiply(xb, _SQRT1_2)
            cdf[...] = _erf(cdf)
            cdf += 1.0
            cdf *= 0.5
            ob += cdf


def _tanh_inner(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``tanh(√(2/π)·(x + 0.044715·x³))`` into ``out``."""
    np.multiply(x, x, out=out)
    out *= x
    out *= _GELU_KAPPA
    out += x
    out *= _GELU_BETA
    np.tanh(out, out=out)
    return out


class GELU(Layer):
    """``y = x·Φ(x)``, ``Φ(x) = ½·(1 + erf(x/√2))``; ``dx = dy·(Φ(x) + x·φ(x))`` with
    ``φ(x) = e^(−x²/2)/√(2π)``.  ``approximate: tanh``: ``y = ½·x·(1 + t)``,
    ``t = tanh(√(2/π)·(x + 0.044715·x³))``, ``dx = dy·(½·(1 + t) + ½·x·(1 − t²)·√(2/π)·
    (1 + 3·0.044715·x²))``.  Keeps its input.  ``erf`` is C's, a block of 2,048 values
    at a time (NumPy has none); the tanh form's backward allocates one array besides
    ``dx``.

    >>> import numpy as np
    >>> from convcalc.spec import GELU as GELUSpec
    >>> layer = GELU(GELUSpec(type="gelu", name="g"), np.random.default_rng(0), "float64")
    >>> np.round(layer.forward(np.array([[-1.0, 0.0, 1.0]])), 6)
    array([[-0.158655,  0.      ,  0.841345]])
    >>> np.round(layer.backward(np.array([[1.0, 1.0, 1.0]])), 6)
    array([[-0.083315,  0.5     ,  1.083315]])
    """

    spec_model = specs.GELU

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.tanh = spec.approximate == "tanh"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        if self.tanh:
            y = _tanh_inner(x, np.empty_like(x))
            y += 1.0
        else:
            y = np.zeros_like(x)
            _add_normal_cdf(x, y)
        y *= x
        if self.tanh:
            y *= 0.5
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._x
        if self.tanh:
            return self._tanh_backward(x, dout)
        dx: np.ndarray = np.multiply(x, x)     # x·φ(x) first, then Φ(x) added to it
        dx *= -0.5
        np.exp(dx, out=dx)
        dx *= _GELU_PDF
        dx *= x
        _add_normal_cdf(x, dx)
        dx *= dout
        return dx

    @staticmethod
    def _tanh_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
        t = _tanh_inner(x, np.empty_like(x))
        np.multiply(t, t, out=t)
        np.subtract(1.0, t, out=t)             # 1 − t²
        dx: np.ndarray = np.multiply(x, x)
        dx *= 3.0 * _GELU_KAPPA
        dx += 1.0
        dx *= _GELU_BETA                       # d(inner)/dx
        dx *= t
        dx *= x
        dx *= 0.5                              # ½·x·(1 − t²)·d(inner)/dx
        _tanh_inner(x, out=t)                  # t again, rather than kept beside 1 − t²
        t += 1.0
        t *= 0.5
        dx += t
        dx *= dout
        return dx


class LogSoftmax(Layer):
    """Log-softmax over axis 1 (the channels, or the features of a flat vector), at every
    batch entry and spatial position: ``y_c = (x_c − m) − log Σ_c' e^(x_c' − m)`` with
    ``m = max_c x_c`` (PyTorch's order).  ``backward``: ``dx = dy − e^y · Σ_c dy_c``.
    Keeps its output; besides it each pass allocates two (forward) or one (backward)
    array of one value per position (``N·prod(spatial)``).

    >>> import numpy as np
    >>> from convcalc.spec import LogSoftmax as LogSoftmaxSpec
    >>> layer = LogSoftmax(LogSoftmaxSpec(type="log_softmax", name="l"),
    ...                    np.random.default_rng(0), "float64")
    >>> np.exp(layer.forward(np.log(np.array([[1.0, 3.0]]))))
    array([[0.25, 0.75]])
    >>> layer.backward(np.array([[1.0, 0.0]]))
    array([[ 0.75, -0.75]])
    """

    spec_model = specs.LogSoftmax

    def forward(self, x: np.ndarray) -> np.ndarray:
        top = x.max(axis=1, keepdims=True)
        y: np.ndarray = np.subtract(x, top)
        np.exp(y, out=y)                       # the exponentials, summed, then y again
        total = y.sum(axis=1, keepdims=True)
        np.subtract(x, top, out=y)
        np.log(total, out=total)
        y -= total
        self._y = y
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        total = dout.sum(axis=1, keepdims=True)
        dx: np.ndarray = np.exp(self._y)
        dx *= total
        np.subtract(dout, dx, out=dx)
        return dx


class DropPath(Layer):
    """Stochastic depth: in training each example is kept with probability
    ``1 − rate`` (a fresh draw per example from the layer's generator) and scaled by
    ``1/(1 − rate)``, or zeroed whole: ``y = x · m_n / (1 − rate)``; backward multiplies by
    the same factors.  In eval mode, or with ``rate`` 0, ``y = x`` and ``dx = dy`` (the
    arrays themselves).

    >>> import numpy as np
    >>> from convcalc.spec import DropPath as DropPathSpec
    >>> layer = DropPath(DropPathSpec(type="drop_path", name="d", rate=0.5),
    ...                  np.random.default_rng(0), "float64")
    >>> y = layer.forward(np.ones((6, 2, 3)))
    >>> [sorted(set(example.ravel().tolist())) for example in y]    # per example
    [[2.0], [0.0], [0.0], [0.0], [2.0], [2.0]]
    >>> layer.training = False
    >>> layer.forward(np.ones((1, 3)))
    array([[1., 1., 1.]])
    """

    spec_model = specs.DropPath

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.rate = float(spec.rate)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.rate == 0.0:
            self._factor = None
            return x
        kept = self.rng.random(x.shape[0]) >= self.rate
        factor: np.ndarray = kept * self.dtype.type(1.0 / (1.0 - self.rate))
        self._factor = factor.reshape((-1,) + (1,) * (x.ndim - 1))
        y: np.ndarray = x * self._factor
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._factor is None:
            return dout
        dx: np.ndarray = dout * self._factor
        return dx


class PReLU(Layer):
    """``y = x`` where ``x > 0``, else ``a·x``, with a learned slope ``a``: one
    (``weight`` of shape ``(1,)``) or one per channel (``(C,)``, ``C`` read off the first
    input), initially 0.25 — PyTorch's layout and initialisation.
    ``dx = dy`` where ``x > 0``, else ``a·dy``; ``da = Σ x·dy`` over the entries with
    ``x ≤ 0`` (of its channel).  Keeps its input and the mask ``x > 0`` (1 byte a value);
    backward allocates one array (``x·dy``, then ``dx`` in it).

    >>> import numpy as np
    >>> from convcalc.spec import PReLU as PReLUSpec
    >>> layer = PReLU(PReLUSpec(type="prelu", name="p", per_channel=True),
    ...               np.random.default_rng(0), "float64")
    >>> layer.forward(np.array([[-4.0, 2.0]]))
    array([[-1.,  2.]])
    >>> layer.backward(np.array([[1.0, 1.0]])), layer.grads["weight"]
    (array([[0.25, 1.  ]]), array([-4.,  0.]))
    """

    spec_model = specs.PReLU

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.per_channel = bool(spec.per_channel)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.params:
            slopes = x.shape[1] if self.per_channel else 1
            self.params["weight"] = np.full(slopes, 0.25, dtype=self.dtype)
            self.zero_grads()
        slopes = self.params["weight"].shape[0]
        if self.per_channel and x.shape[1] != slopes:
            raise ValueError(f"{self.name}: built for {slopes} channels, got {x.shape[1]}")
        self._x = x
        self._positive = np.greater(x, 0.0)
        y: np.ndarray = np.multiply(x, _per_channel(self.params["weight"], x.ndim))
        np.copyto(y, x, where=self._positive)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        grad: np.ndarray = np.multiply(self._x, dout)
        np.copyto(grad, 0.0, where=self._positive)
        axes = _all_but_channels(dout.ndim) if self.per_channel else None
        self.grads["weight"][...] = grad.sum(axis=axes)
        np.multiply(dout, _per_channel(self.params["weight"], dout.ndim), out=grad)
        np.copyto(grad, dout, where=self._positive)
        return grad


class Scale(Layer):
    """A learned per-channel multiplier (ConvNeXt's layer scale, Caffe's Scale):
    ``y = w_c · x (+ b_c)``, ``weight`` ``(C,)`` ones and, with ``bias``, ``bias`` ``(C,)``
    zeros, ``C`` read off the first input (axis 1; the features of a flat vector).
    ``dx = w_c · dy``, ``dw_c = Σ x·dy``, ``db_c = Σ dy`` (over batch and spatial axes).
    Keeps its input; backward allocates one array (``x·dy``, then ``dx`` in it).

    >>> import numpy as np
    >>> from convcalc.spec import Scale as ScaleSpec
    >>> layer = Scale(ScaleSpec(type="scale", name="s", bias=True), np.random.default_rng(0),
    ...               "float64")
    >>> layer.forward(np.array([[1.0, 2.0]]))
    array([[1., 2.]])
    >>> {key: value.shape for key, value in layer.params.items()}
    {'weight': (2,), 'bias': (2,)}
    """

    spec_model = specs.Scale

    def __init__(self, spec: Any, rng: np.random.Generator, dtype: Any = np.float64, **kw: Any):
        super().__init__(spec, rng, dtype, **kw)
        self.use_bias = bool(spec.bias)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.params:
            self.params["weight"] = np.ones(x.shape[1], dtype=self.dtype)
            if self.use_bias:
                self.params["bias"] = np.zeros(x.shape[1], dtype=self.dtype)
            self.zero_grads()
        channels = self.params["weight"].shape[0]
        if x.shape[1] != channels:
            raise ValueError(f"{self.name}: built for {channels} channels, got {x.shape[1]}")
        self._x = x
        y: np.ndarray = np.multiply(x, _per_channel(self.params["weight"], x.ndim))
        if self.use_bias:
            y += _per_channel(self.params["bias"], x.ndim)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        axes = _all_but_channels(dout.ndim)
        grad: np.ndarray = np.multiply(self._x, dout)
        np.sum(grad, axis=axes, out=self.grads["weight"])
        if self.use_bias:
            np.sum(dout, axis=axes, out=self.grads["bias"])
        np.multiply(dout, _per_channel(self.params["weight"], dout.ndim), out=grad)
        return grad


def softmax_cross_entropy(logits: np.ndarray, labels: Any) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer class labels.

    ``logits`` ``(N, C)``, ``labels`` ``(N,)`` integers in ``[0, C)``.  Returns
    ``(loss, dlogits)`` with ``loss = −(1/N) Σ_n log softmax(logits_n)[labels_n]`` and
    ``dlogits = (softmax(logits) − onehot(labels)) / N`` (same shape and dtype as
    ``logits``).

    >>> import numpy as np
    >>> loss, dlogits = softmax_cross_entropy(np.log(np.array([[1.0, 3.0]])), [1])
    >>> round(loss, 6) == round(float(-np.log(0.75)), 6) == 0.287682
    True
    >>> dlogits
    array([[ 0.25, -0.25]])
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (N, C), got shape "
                         f"{logits.shape}")
    n, classes = logits.shape
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"softmax_cross_entropy: labels must be {n} integers (shape ({n},)), "
                         f"got shape {labels.shape} of {labels.dtype}")
    if n == 0:
        raise ValueError("softmax_cross_entropy: the batch is empty (N = 0); the mean is "
                         "undefined")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {classes}), got "
                         f"{labels.min()}..{labels.max()}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -float(log_probs[rows, labels].mean())
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1.0
    dlogits /= n
    return loss, dlogits
