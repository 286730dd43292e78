"""Max, min and average pooling over sliding windows, forward and backward.

``x (N, C, *n) → y (N, C, *out)``: each output is the max / min / mean of one window
(kernel, stride — default the kernel —, dilation, explicit padding) of its own
channel.  No parameters.  Semantics (PyTorch's, as the calculator assumes):

* explicit padding is ``−inf`` for max, ``+inf`` for min and ``0`` for average pooling;
  the average divides by the whole window *including* explicit padding
  (``count_include_pad=True``);
* ceil rounding (``ceil_mode: true``, or the spec's ``rounding: ceil``) adds one window
  per axis that may hang past the padded input, unless it would start in the right
  padding or beyond; the overhang is ignored by max/min and *excluded* from the
  average's divisor;
* backward: max/min send each output's gradient to the one winning entry of its window
  (ties: the first in window order, C order over the kernel offsets); average spreads
  it evenly over the window's entries; overlapping windows add up.

The work is a loop over the ``kh·kw`` kernel offsets, each step one vectorised operation
on a strided view of the padded input (the "reshape" view for non-overlapping 2×2/2
pooling) — no loop over output positions, channels or the batch.

>>> import numpy as np
>>> from convcalc.spec import Pool as PoolSpec
>>> layer = Pool(PoolSpec(type="maxpool", name="pool1", kernel=2), None, np.float64)
>>> x = np.array([[[[1., 2., 5., 0.],
...                 [3., 4., 1., 1.],
...                 [0., 0., 2., 2.],
...                 [9., 0., 2., 2.]]]])
>>> layer.forward(x)[0, 0]
array([[4., 5.],
       [9., 2.]])
>>> layer.backward(np.ones((1, 1, 2, 2)))[0, 0]      # ties (the 2s): first one wins
array([[0., 0., 1., 0.],
       [0., 1., 0., 0.],
       [0., 0., 1., 0.],
       [1., 0., 0., 0.]])
"""

from __future__ import annotations

from itertools import product
from math import prod
from typing import Any

import numpy as np

from convcalc import spec as specs
from engine.base import Layer
from engine.im2col import Index, crop, pad, split_run, windows
from engine.padding import Window, axis_names, resolve_window

__all__ = ["Pool"]

#: What the explicit padding holds for each kind: it never wins, or adds nothing.
_PAD_VALUE = {"maxpool": -np.inf, "minpool": np.inf, "avgpool": 0.0}


def _offset_slices(window: Window, out: tuple[int, ...]) -> list[Index]:
    """For each kernel offset (C order), the strided slice of the padded input that holds
    that offset's entry of every window: ``offset·dilation + out_index·stride``."""
    return [tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                  for i, d, s, o in zip(offset, window.dilation, window.stride, out))
            for offset in product(*(range(k) for k in window.kernel))]


def _divisor(window: Window, padded_sizes: tuple[int, ...], out: tuple[int, ...]) -> Any:
    """Average-pool divisor: the window entries inside the explicitly padded input.

    That is the window size everywhere except in the ceil windows that hang past the
    end, whose overhang does not count.  Read off a ones-mask of each axis (zeros in
    the overhang) through the same window view the data goes through.
    """
    if not any(window.overhang):
        return prod(window.kernel)
    divisor = np.ones((), dtype=np.float64)
    for axis, (size, extra) in enumerate(zip(padded_sizes, window.overhang)):
        mask = np.concatenate([np.ones(size), np.zeros(extra)])
        counts = windows(mask, (window.kernel[axis],), (window.stride[axis],),
                         (window.dilation[axis],)).sum(axis=-1)[:out[axis]]
        divisor = np.multiply.outer(divisor, counts)
    return divisor


class Pool(Layer):
    """Max / min / average pooling layer from a :class:`convcalc.spec.Pool` model.

    ``rounding`` is the spec-level rounding (``"floor"``/``"exact"``/``"ceil"``), unless
    the layer has its own ``rounding``; the layer's ``ceil_mode: true`` forces ceil.
    """

    spec_model = specs.Pool

    def __init__(self, spec: Any, rng: Any, dtype: Any = np.float64, *,
                 rounding: str = "floor"):
        super().__init__(spec, rng, dtype, rounding=rounding)
        self._cache: tuple[Any, ...] | None = None

    def window(self, x_shape: tuple[int, ...]) -> Window:
        """Kernel, stride (default: the kernel), dilation and padding for this input.

        Raises ``ValueError`` when a window does not fit, or when padding is not smaller
        than the window (some windows would see only padding).
        """
        spec = self.spec
        rounding = "ceil" if spec.ceil_mode else spec.rounding or self.rounding
        stride = spec.kernel if spec.stride is None else spec.stride
        window = resolve_window(x_shape[2:], spec.kernel, stride, spec.padding,
                                spec.dilation, rounding, self.name)
        for axis, e, (pb, pa) in zip(axis_names(len(x_shape) - 2), window.extent,
                                     window.padding):
            if max(pb, pa) >= e:
                raise ValueError(f"{self.name}: {axis}: padding {max(pb, pa)} is not smaller "
                                 f"than the window {e}: some windows would see only padding")
        return window

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, *n) → (N, C, *out)``."""
        x = np.asarray(x)
        if x.ndim not in (3, 4, 5):
            raise ValueError(f"{self.name}: needs a feature map (N, C, *spatial) with 1–3 "
                             f"spatial axes (got shape {x.shape})")
        kind = self.spec.type
        window = self.window(x.shape)
        padded_sizes = tuple(n + pb + pa for n, (pb, pa) in zip(x.shape[2:], window.padding))
        xp = pad(x, window.total_padding, _PAD_VALUE[kind])
        out = windows(xp, window.kernel, window.stride, window.dilation).shape[2:x.ndim]
        slices = _offset_slices(window, out)
        parts = [xp[(Ellipsis, *where)] for where in slices]     # each (N, C, *out), a view
        combine = {"maxpool": np.maximum, "minpool": np.minimum, "avgpool": np.add}[kind]
        divisor = _divisor(window, padded_sizes, out) if kind == "avgpool" else None
        if isinstance(divisor, np.ndarray):   # counts are small integers: exact in any float
            divisor = divisor.astype(xp.dtype)  # (a float64 divisor would upcast dy / divisor)
        y = np.empty(parts[0].shape, dtype=xp.dtype)

        def reduce(index: tuple[slice, ...]) -> None:
            result = y[index]
            np.copyto(result, parts[0][index])
            for part in parts[1:]:
                combine(result, part[index], out=result)
            if divisor is not None:
                np.divide(result, divisor, out=result)

        split_run(reduce, y.shape, xp.nbytes)
        # max/min backward finds the winners again by comparing with y: cheaper than
        # tracking an arg-extreme index in the forward pass.
        self._cache = (x.shape, xp, window, slices, divisor if kind == "avgpool" else y)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dy (N, C, *out) → dx (N, C, *n)``: to the winners (max/min) or spread (avg)."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward called before forward")
        x_shape, xp, window, slices, reference = self._cache
        dout = np.asarray(dout)
        dxp = np.zeros(xp.shape, dtype=np.result_type(dout.dtype, np.float32))
        overlapping = any(s < e for s, e in zip(window.stride, window.extent))
        average = self.spec.type == "avgpool"
        share = dout / reference if average else dout

        def scatter(index: tuple[slice, ...]) -> None:
            grad, source, target_all = share[index], xp[index], dxp[index]
            if not average:  # scratch reused over the window offsets
                y = reference[index]
                part, claimed = np.empty(y.shape, bool), np.zeros(y.shape, bool)
                routed = np.empty(grad.shape, dxp.dtype) if overlapping else None
            for where in slices:
                target = target_all[(Ellipsis, *where)]
                if average:
                    if overlapping:
                        np.add(target, grad, out=target)
                    else:
                        np.copyto(target, grad)     # disjoint windows: nothing to add to
                    continue
                # This offset wins where it equals the result and no earlier one did.
                np.equal(source[(Ellipsis, *where)], y, out=part)
                np.greater(part, claimed, out=part)          # part & ~claimed
                claimed |= part
                if overlapping:  # (ufunc where= is 2× slower than this)
                    np.add(target, np.multiply(grad, part, out=routed), out=target)
                else:
                    np.multiply(grad, part, out=target)

        split_run(scatter, dxp.shape, dxp.nbytes)
        return np.ascontiguousarray(crop(dxp, window.total_padding))
