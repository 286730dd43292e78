"""im2col / col2im: convolution as one matrix product, for 1, 2 and 3 spatial axes.

``im2col`` ("image to columns") copies every receptive-field block of a padded input
into one row of a matrix, so that a convolution becomes one matrix product:

* input ``x``: ``(N, C, *spatial)``, e.g. ``(N, C, H, W)``;
* the textbook matrix: ``(N·OH·OW, C·kh·kw)`` — one row per output position (batch
  index first, then output positions in C order), one column per (channel, kernel
  offset) pair (channel first, then kernel offsets in C order);
* weights ``(F, C, kh, kw)`` reshape to ``(F, C·kh·kw)`` and
  ``out = cols @ Wᵀ`` reshapes to ``(N, OH, OW, F)``.

Overlapping windows copy an input element into several rows, so the matrix holds
``kh·kw / (sh·sw)`` times as many numbers as the input (9× for a 3×3 stride-1 conv).
``col2im`` is the exact adjoint of ``im2col``: it adds every entry of a column matrix
back onto the input position it came from, summing where windows overlap.  That is
the gradient of ``im2col`` and so gives a convolution's input gradient.

Output sizes are never computed with a formula: they are the shape numpy gives the
sliding-window view of the padded input (:func:`windows`).

The layers (:mod:`engine.conv`, :mod:`engine.pool`) use a faster internal layout,
``(N, C, *kernel, *out)`` — e.g. ``(N, C, kh, kw, OH, OW)`` — built with one contiguous
copy (:func:`unfold`) so that the product with the weights is a batched matmul whose
result is already ``(N, F, OH·OW)``; or ``(C, *kernel, N, *out)`` (``batch_last``) for
one product over the whole batch.  :func:`fold` is the adjoint (col2im) of that layout.

BRIEF example 7:

>>> import numpy as np
>>> im2col(np.zeros((1, 3, 7, 7)), kernel=5).shape
(9, 75)
>>> im2col(np.zeros((10, 3, 7, 7)), kernel=5).shape
(90, 75)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from types import EllipsisType
from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.padding import Pads, Window, resolve_window

__all__ = ["im2col", "col2im", "pad", "crop", "windows", "unfold", "fold"]

#: One entry of an index into an array, for one axis: a slice, ``...``, an int, an
#: integer array or ``None``.
IndexEntry = slice | EllipsisType | int | np.ndarray | None
#: An index into an array, one entry per axis it indexes.  Declared where such a tuple
#: is built: mypy would read ``(..., *slices)`` as ``tuple[object, ...]``, which numpy's
#: stubs reject as an index.
Index = tuple[IndexEntry, ...]

# --- splitting memory-bound copies over threads ----------------------------------------
#
# The matmuls run on every core through BLAS, but a numpy copy runs on one.  numpy
# releases the GIL while it copies, so the big copies of unfold/fold and pooling are
# split into one chunk per core along the leading (batch or channel) axis.  This is a
# work split, not a loop over examples: the number of chunks is the number of cores.
# The copies are memory bound, so the gain is modest (measured on 2 cores: 0–30 %).

#: Threads for the copies: the cores this process may run on (``ENGINE_THREADS`` overrides).
THREADS = max(1, int(os.environ.get("ENGINE_THREADS", 0)) or len(os.sched_getaffinity(0)))
_SPLIT_MIN_BYTES = 1 << 20      # below this, one thread is faster than waking another
_pool: ThreadPoolExecutor | None = None


def split_run(task: Callable[[tuple[slice, ...]], None], shape: Sequence[int],
               nbytes: int) -> None:
    """Run ``task(index)`` on chunks of the leading ``(N, C)`` axes covering the array.

    >>> seen = []
    >>> split_run(seen.append, (3, 2), nbytes=10)    # small: one chunk
    >>> seen
    [(slice(0, 3, None), slice(0, 2, None))]
    """
    global _pool
    axis = 0 if shape[0] >= THREADS or shape[1] < THREADS else 1
    parts = min(THREADS, shape[axis]) if nbytes >= _SPLIT_MIN_BYTES else 1
    if parts <= 1:
        task((slice(0, shape[0]), slice(0, shape[1])))
        return
    bounds = [shape[axis] * i // parts for i in range(parts + 1)]
    chunks = [(slice(a, b), slice(0, shape[1])) if axis == 0 else
              (slice(0, shape[0]), slice(a, b)) for a, b in zip(bounds, bounds[1:])]
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="engine-copy")
    for done in [_pool.submit(task, chunk) for chunk in chunks]:
        done.result()


def pad(x: np.ndarray, pads: Pads, value: float = 0.0,
        out: np.ndarray | None = None) -> np.ndarray:
    """``x`` with every spatial axis padded by ``(before, after)`` entries of ``value``.

    Returns ``x`` itself (not a copy) when there is nothing to pad; never modifies it.
    ``out`` is an optional buffer of the padded shape and ``x``'s dtype to fill (a
    layer's workspace): only the interior and the border slabs are written.

    >>> pad(np.ones((1, 1, 2)), ((1, 2),), value=-1.0)
    array([[[-1.,  1.,  1., -1., -1.]]])
    """
    if not any(pb or pa for pb, pa in pads):
        return x
    lead = x.ndim - len(pads)
    shape = x.shape[:lead] + tuple(n + pb + pa for n, (pb, pa) in zip(x.shape[lead:], pads))
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.empty(shape, dtype=x.dtype)
    for axis, (n, (pb, pa)) in enumerate(zip(x.shape[lead:], pads)):
        before = [slice(None)] * out.ndim
        before[lead + axis] = slice(0, pb)
        after = list(before)
        after[lead + axis] = slice(pb + n, None)
        out[tuple(before)] = value
        out[tuple(after)] = value
    inside: Index = (Ellipsis, *(slice(pb, pb + n)
                                 for n, (pb, _) in zip(x.shape[lead:], pads)))
    out[inside] = x
    return out


def crop(x: np.ndarray, pads: Pads) -> np.ndarray:
    """Remove ``(before, after)`` entries from every spatial axis (a view of ``x``).

    >>> crop(np.arange(6.0).reshape(1, 1, 6), ((1, 2),))
    array([[[1., 2., 3.]]])
    """
    lead = x.ndim - len(pads)
    kept: Index = (Ellipsis, *(slice(pb, n - pa)
                               for n, (pb, pa) in zip(x.shape[lead:], pads)))
    return x[kept]


def windows(xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int], writeable: bool = False) -> np.ndarray:
    """Read-only view ``(N, C, *out, *kernel)`` of every window of a padded input.

    A window starts at every multiple of the stride and must lie entirely inside
    ``xp`` (floor semantics); along each axis it takes every ``dilation``-th entry.  The
    number of windows ``out`` is whatever numpy's sliding-window view yields.

    >>> v = windows(np.arange(7.0).reshape(1, 1, 7), (3,), (2,), (1,))
    >>> v.shape
    (1, 1, 3, 3)
    >>> v[0, 0]
    array([[0., 1., 2.],
           [2., 3., 4.],
           [4., 5., 6.]])
    >>> windows(np.arange(7.0).reshape(1, 1, 7), (2,), (1,), (3,))[0, 0, :, 1]
    array([3., 4., 5., 6.])
    """
    dims = len(kernel)
    axes = tuple(range(xp.ndim - dims, xp.ndim))
    reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(xp, reach, axis=axes, writeable=writeable)
    step: Index = (Ellipsis, *(slice(None, None, s) for s in stride),
                   *(slice(None, None, d) for d in dilation))
    return view[step]


def _window_axes(ndim: int, dims: int) -> tuple[int, ...]:
    """Transpose that moves the kernel axes of a window view before its output axes."""
    lead = ndim - 2 * dims
    return (*range(lead), *range(lead + dims, lead + 2 * dims), *range(lead, lead + dims))


def unfold(xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
           dilation: Sequence[int], count: Sequence[int] | None = None,
           out: np.ndarray | None = None, batch_last: bool = False) -> np.ndarray:
    """The layers' column layout, one C-contiguous copy of the window view.

    ``(N, C, *kernel, *out)``: ``cols[n, c, i, j, oh, ow] = xp[n, c, oh·sh + i·dh,
    ow·sw + j·dw]``.  Reshaped to ``(N, C·kh·kw, OH·OW)`` it multiplies
    ``(F, C·kh·kw)`` weights in one batched matmul.

    ``batch_last=True`` gives ``(C, *kernel, N, *out)`` instead: reshaped to
    ``(C·kh·kw, N·OH·OW)`` it is the operand of *one* big matrix product over the whole
    batch, which BLAS runs faster than N small ones when ``OH·OW`` is small.

    The dtype is ``xp``'s (float32 stays float32).  ``count`` keeps only the first
    ``count`` windows along each axis (default: every window that fits).  ``out`` is an
    optional C-contiguous buffer of the right shape and dtype to fill (a layer's
    workspace from the previous call: reusing memory that is already paged in is faster).

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> cols = unfold(x, (3, 3), (1, 1), (1, 1))
    >>> cols.shape
    (1, 1, 3, 3, 2, 2)
    >>> cols[0, 0, 1, 2]           # kernel offset (1, 2) at each of the 2×2 positions
    array([[ 6.,  7.],
           [10., 11.]])
    >>> unfold(np.zeros((8, 3, 5, 5)), (3, 3), (1, 1), (1, 1), batch_last=True).shape
    (3, 3, 3, 8, 3, 3)
    """
    dims = len(kernel)
    view = windows(xp, kernel, stride, dilation)                 # (N, C, *out, *kernel)
    if count is not None:
        first: Index = (Ellipsis, *(slice(0, c) for c in count), *(slice(None),) * dims)
        view = view[first]
    if batch_last:
        view = view.transpose(1, *range(2 + dims, 2 + 2 * dims), 0, *range(2, 2 + dims))
    else:
        view = view.transpose(_window_axes(view.ndim, dims))
    if out is None or out.shape != view.shape or out.dtype != view.dtype \
            or not out.flags.c_contiguous:
        out = np.empty(view.shape, view.dtype)

    def copy(index: tuple[slice, ...]) -> None:
        np.copyto(out[index], view[index])

    split_run(copy, out.shape, out.nbytes)
    return out


def fold(cols: np.ndarray, padded_shape: Sequence[int], stride: Sequence[int],
         dilation: Sequence[int]) -> np.ndarray:
    """Adjoint of :func:`unfold`: add ``(N, C, *kernel, *out)`` columns into a zero array
    of ``padded_shape``, summing where windows overlap.  Returns the padded array.

    Non-overlapping windows (stride ≥ extent on every axis) are written with one strided
    assignment; otherwise a loop over the ``kh·kw`` kernel offsets adds one strided
    slice each (vectorised over batch, channels and output positions) — faster than
    ``np.add.at`` and at most a few dozen iterations.

    >>> fold(np.ones((1, 1, 3, 2)), (1, 1, 4), (1,), (1,))   # 2 windows of 3 over 4
    array([[[1., 2., 2., 1.]]])
    """
    dims = (cols.ndim - 2) // 2
    kernel, out = cols.shape[2:2 + dims], cols.shape[2 + dims:]
    buffer = np.zeros(tuple(padded_shape), dtype=cols.dtype)
    reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if all(s >= e for s, e in zip(stride, reach)):
        # No two windows share an entry: one strided assignment through a window view.
        target = windows(buffer, kernel, stride, dilation, writeable=True)
        first: Index = (Ellipsis, *(slice(0, o) for o in out), *(slice(None),) * dims)
        target = target[first]
        source = cols.transpose(0, 1, *range(2 + dims, 2 + 2 * dims), *range(2, 2 + dims))

        def scatter(index: tuple[slice, ...]) -> None:
            np.copyto(target[index], source[index])
    else:
        slices = [(offset, tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                                 for i, d, s, o in zip(offset, dilation, stride, out)))
                  for offset in product(*(range(k) for k in kernel))]

        def scatter(index: tuple[slice, ...]) -> None:
            chunk, source = buffer[index], cols[index]
            for offset, where in slices:
                inside: Index = (Ellipsis, *where)
                target = chunk[inside]
                at: Index = (slice(None), slice(None), *offset)
                np.add(target, source[at], out=target)

    split_run(scatter, buffer.shape, cols.nbytes)
    return buffer


def _resolve(shape: Sequence[int], kernel: Any, stride: Any, padding: Any,
             dilation: Any) -> Window:
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"im2col: input must be (N, C, *spatial) with 1–3 spatial axes "
                         f"(got shape {tuple(shape)})")
    return resolve_window(tuple(shape[2:]), kernel, stride, padding, dilation)


def im2col(x: np.ndarray, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
           padding: Any = 0, dilation: int | Sequence[int] = 1) -> np.ndarray:
    """Unroll every window of ``x`` into one row: ``(N·OH·OW, C·kh·kw)``.

    ``x`` is ``(N, C, *spatial)`` with 1, 2 or 3 spatial axes.  ``kernel``, ``stride``
    and ``dilation`` are an int (every axis) or one int per axis; ``padding`` an int,
    ``"valid"``/``"same"``/``"full"``, or one entry per axis (an int or a
    ``(before, after)`` pair).  Zero padding.  Rows: batch index, then output positions
    in C order; columns: channel, then kernel offsets in C order, so
    ``row · W.reshape(F, -1)[f]`` is output ``f`` at that position.

    Raises ``ValueError`` when a window does not fit in the padded input.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> im2col(x, kernel=3, stride=1)
    array([[ 0.,  1.,  2.,  4.,  5.,  6.,  8.,  9., 10.],
           [ 1.,  2.,  3.,  5.,  6.,  7.,  9., 10., 11.],
           [ 4.,  5.,  6.,  8.,  9., 10., 12., 13., 14.],
           [ 5.,  6.,  7.,  9., 10., 11., 13., 14., 15.]])
    >>> im2col(np.zeros((2, 3, 8)), kernel=3, stride=2, padding=(1,)).shape   # 1-D
    (8, 9)
    >>> im2col(np.zeros((1, 1, 2)), kernel=3)
    Traceback (most recent call last):
    ...
    ValueError: im2col: L: window 3 is larger than the padded input 2
    """
    x = np.asarray(x)
    window = _resolve(x.shape, kernel, stride, padding, dilation)
    dims = len(window.kernel)
    view = windows(pad(x, window.padding), window.kernel, window.stride, window.dilation)
    # (N, C, *out, *kernel) → (N, *out, C, *kernel): rows then columns, one copy.
    rows_first = view.transpose(0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims))
    n_rows = int(np.prod(rows_first.shape[:1 + dims]))
    return rows_first.reshape(n_rows, -1)


def col2im(cols: np.ndarray, x_shape: Sequence[int], kernel: int | Sequence[int],
           stride: int | Sequence[int] = 1, padding: Any = 0,
           dilation: int | Sequence[int] = 1) -> np.ndarray:
    """Adjoint of :func:`im2col`: ``(N·OH·OW, C·kh·kw)`` back to an array of ``x_shape``.

    Every entry is added onto the input position it was copied from; overlapping
    windows sum; entries that came from the padding are dropped.  So
    ``<im2col(x), y> = <x, col2im(y)>`` for all ``x``, ``y``, and
    ``col2im(dL/dcols)`` is ``dL/dx``.

    >>> ones = np.ones((4, 9))                        # 3×3 windows over a 4×4 input
    >>> col2im(ones, (1, 1, 4, 4), kernel=3)[0, 0]    # how many windows cover each pixel
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    cols = np.asarray(cols)
    window = _resolve(x_shape, kernel, stride, padding, dilation)
    dims = len(window.kernel)
    padded_shape = tuple(x_shape[:2]) + tuple(
        n + pb + pa for n, (pb, pa) in zip(x_shape[2:], window.padding))
    # The output grid is what the window view of a padded array of this shape yields.
    probe = windows(np.broadcast_to(np.zeros((), cols.dtype), padded_shape), window.kernel,
                    window.stride, window.dilation)
    out = probe.shape[2:2 + dims]
    expected = (int(x_shape[0]) * int(np.prod(out)), int(x_shape[1]) * int(np.prod(window.kernel)))
    if cols.shape != expected:
        raise ValueError(f"col2im: columns must have shape {expected} for input {tuple(x_shape)} "
                         f"(got {cols.shape})")
    # (N·out, C·kernel) → (N, *out, C, *kernel) → layers' layout (N, C, *kernel, *out) (a view)
    split = cols.reshape(int(x_shape[0]), *out, int(x_shape[1]), *window.kernel)
    layered = split.transpose(0, 1 + dims, *range(2 + dims, 2 + 2 * dims), *range(1, 1 + dims))
    return np.ascontiguousarray(crop(fold(layered, padded_shape, window.stride,
                                          window.dilation), window.padding))
