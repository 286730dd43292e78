"""Winograd F(4×4, 3×3): the 3×3 stride-1 convolution with 4× fewer multiplications.

:class:`engine.conv.Conv` takes this path for 2-D, one-group, 3×3 convolutions with
stride 1 and no dilation once the channels are many enough (:func:`suits`); every other
convolution goes through im2col.  The two agree up to float rounding, and the tests hold
this path against the same naive loops and numerical gradients as the im2col one.

The algorithm (Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks*, 2016).
In 1-D, ``m`` outputs of a 3-tap correlation of an ``α = m + 2``-sample tile ``d`` with a
filter ``g``, ``y_i = Σ_k d_{i+k}·g_k``, are ``y = Aᵀ [(G g) ⊙ (Bᵀ d)]`` — ``α``
multiplications instead of ``3m``.  Nested over both axes, an ``m×m`` output tile comes
from an ``α×α`` input tile (tiles step by ``m``, so neighbours overlap by 2):
``Y = Aᵀ [Σ_c (G g_fc Gᵀ) ⊙ (Bᵀ d_c B)] A``.  With, for each of the ``α²`` entries ξ of
a transformed tile, ``U[ξ] = (G g Gᵀ)[ξ]`` ``(F, C)`` and ``V[ξ] = (Bᵀ d B)[ξ]``
``(C, N·T)`` over all ``T`` tiles of all ``N`` images, the channel sums are ``α²``
matrix products ``M[ξ] = U[ξ] @ V[ξ]`` ``(F, N·T)``.  With ``m = 4`` (``α = 6``) that
is 36 multiplications per output tile and channel pair where direct convolution needs
9·16 = 144.  Backward is the adjoint of each step:

* ``dM = A dY Aᵀ`` per output tile;
* ``dU[ξ] = dM[ξ] @ V[ξ]ᵀ`` and ``dW = Gᵀ dU G``;
* ``dV[ξ] = U[ξ]ᵀ @ dM[ξ]`` and ``dx = Σ_tiles B dV Bᵀ`` (overlapping tiles add up).

The tile transforms are matrix products too: ``Bᵀ d B`` for every tile at once is
``(Bᵀ ⊗ Bᵀ) @ D`` with the tiles' ``α²`` entries as the rows of ``D``, which
:func:`engine.im2col.unfold` builds (windows of ``α`` with stride ``m``) and whose
adjoint :func:`engine.im2col.fold` adds the input gradient back.  Outputs that are not a
multiple of ``m`` get zero input rows/columns at the end and are cropped.

>>> x = np.arange(2 * 3 * 7 * 9, dtype=float).reshape(2, 3, 7, 9)    # (N, C, Hp, Wp)
>>> w = np.random.default_rng(0).standard_normal((4, 3, 3, 3))        # (F, C, 3, 3)
>>> y, saved = forward(x, w)
>>> y.shape                                                            # (N, F, Hp − 2, Wp − 2)
(2, 4, 5, 7)
>>> windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))
>>> bool(np.allclose(y, np.einsum("nchwij,fcij->nfhw", windows, w)))
True
"""

from __future__ import annotations

from fractions import Fraction as Fr
from itertools import product
from typing import Any, Callable, Sequence

import numpy as np

from engine.im2col import split_run, unfold

__all__ = ["applies", "suits", "forward", "backward", "B_T", "G", "A_T", "MIN_CHANNELS",
           "KEEP_TRANSFORMED"]

#: Input transform ``Bᵀ`` (α×α): ``V = Bᵀ d B`` for an α×α input tile ``d``.
B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=float)
#: Filter transform ``G`` (α×3): ``U = G g Gᵀ`` for a 3×3 filter ``g``.
G = np.array([[Fr(1, 4), 0, 0],
              [Fr(-1, 6), Fr(-1, 6), Fr(-1, 6)],
              [Fr(-1, 6), Fr(1, 6), Fr(-1, 6)],
              [Fr(1, 24), Fr(1, 12), Fr(1, 6)],
              [Fr(1, 24), Fr(-1, 12), Fr(1, 6)],
              [0, 0, 1]], dtype=float)
#: Output transform ``Aᵀ`` (m×α): ``Y = Aᵀ M A``, an m×m output tile.
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=float)

_ALPHA: int = B_T.shape[0]                   # α×α input tiles
_M: int = A_T.shape[0]                       # m×m output tiles
_TAPS = _ALPHA - _M + 1
# Column 1 of Aᵀ is all ones, so entry ξ = (1, 1) of a product tile reaches every output
# of the tile with weight 1: a bias added there is added to every output, and the sum
# of dM over that entry is the sum of dY (the bias gradient) — 1/16 of the data to touch.
_ONES = int(np.flatnonzero((A_T == 1).all(axis=0))[0])
_BIAS_ENTRY = _ONES * _ALPHA + _ONES

#: The fewest input channels and filters for which :class:`engine.conv.Conv` prefers this
#: path (with fewer, the ``α²`` products are too thin for BLAS to gain anything).
MIN_CHANNELS = 16

#: Transformed filters ``U`` of up to this many values (16 MiB in float32) are kept from
#: forward for backward; bigger ones (VGG's 512×512 layers: 9.4 M values each) are
#: transformed again in backward, which costs less than holding them for every layer.
KEEP_TRANSFORMED = 4 * 2**20

Allocate = Callable[[str, tuple[int, ...], Any], np.ndarray]


def applies(spatial_dims: int, kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int], groups: int) -> bool:
    """Whether this path can compute a convolution: 2-D, 3×3, stride 1, no dilation, one
    group."""
    return (spatial_dims == 2 and tuple(kernel) == (_TAPS, _TAPS)
            and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1)


def suits(spatial_dims: int, kernel: Sequence[int], stride: Sequence[int],
          dilation: Sequence[int], groups: int, channels: int, filters: int) -> bool:
    """Whether a convolution can and should take this path: it :func:`applies`, with at
    least :data:`MIN_CHANNELS` input channels and filters.

    >>> suits(2, (3, 3), (1, 1), (1, 1), 1, 64, 64), suits(2, (3, 3), (2, 2), (1, 1), 1, 64, 64)
    (True, False)
    """
    return (applies(spatial_dims, kernel, stride, dilation, groups)
            and min(channels, filters) >= MIN_CHANNELS)


def _new(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The default :data:`Allocate`: a fresh array (layers pass their reused workspaces)."""
    return np.empty(shape, dtype)


def _kron(matrix: np.ndarray, dtype: Any) -> np.ndarray:
    """``matrix ⊗ matrix``: applies ``matrix`` on both axes of a tile flattened to a vector."""
    return np.kron(matrix, matrix).astype(dtype)


def transform_weights(weight: np.ndarray) -> np.ndarray:
    """``(F, C, 3, 3) → U (α², F, C)``: ``U[α·a + b, f, c] = (G w[f, c] Gᵀ)[a, b]``,
    for every filter at once as ``(G ⊗ G) @ w``."""
    filters, channels = weight.shape[:2]
    flat = weight.reshape(filters * channels, _TAPS ** 2)
    u: np.ndarray = (_kron(G, weight.dtype) @ flat.T).reshape(_ALPHA ** 2, filters, channels)
    return u


def weight_gradient(du: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`transform_weights`: ``dU (α², F, C) → dW (F, C, 3, 3)``,
    ``dW[f, c] = Gᵀ dU[:, f, c] G``."""
    filters, channels = du.shape[1:]
    flat = du.reshape(_ALPHA ** 2, filters * channels)
    dw: np.ndarray = (flat.T @ _kron(G, du.dtype)).reshape(filters, channels, _TAPS, _TAPS)
    return dw


def _tiles(size: int) -> int:
    """Output tiles along an axis of a padded input of ``size``: ``⌈(size − 2) / m⌉``."""
    return -(-(size - _TAPS + 1) // _M)


def _grow(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` with zeros appended on its spatial axes up to ``shape`` (``a`` if it fits)."""
    if a.shape[2:] == shape:
        return a
    grown = np.zeros(a.shape[:2] + shape, a.dtype)
    grown[:, :, :a.shape[2], :a.shape[3]] = a
    return grown


def _interleave(tiles: np.ndarray, out: np.ndarray) -> None:
    """``(m, m, A, B, T, S)`` tile entries → ``out (B, A, m·T, m·S)``:
    ``out[b, a, m·i + p, m·j + q] = tiles[p, q, a, b, i, j]`` (one copy)."""
    b, a, t, s = out.shape[0], out.shape[1], tiles.shape[4], tiles.shape[5]
    target = out.reshape(b, a, t, _M, s, _M).transpose(3, 5, 1, 0, 2, 4)
    split_run(lambda index: np.copyto(target[index], tiles[index]), target.shape, out.nbytes)


def forward(xp: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
            allocate: Allocate = _new) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Padded input ``xp (N, C, Hp, Wp)``, weights ``(F, C, 3, 3)``, optional bias
    ``(F,)`` → ``y (N, F, Hp − 2, Wp − 2)`` and what :func:`backward` needs.  The output
    grid is read off the window view of ``xp`` (as im2col does), not computed from the
    spec."""
    batch, channels = xp.shape[:2]
    filters = weight.shape[0]
    out = np.lib.stride_tricks.sliding_window_view(
        xp[:1, :1], (_TAPS, _TAPS), axis=(2, 3)).shape[2:4]
    tiles = tuple(_tiles(n) for n in xp.shape[2:])
    xe = _grow(xp, tuple(_M * t + _TAPS - 1 for t in tiles))
    positions = batch * tiles[0] * tiles[1]
    # Tile entries d (C, α, α, N, T, S) → V = (Bᵀ⊗Bᵀ) d, per channel (C, α², N·T·S).
    d = unfold(xe, (_ALPHA, _ALPHA), (_M, _M), (1, 1), batch_last=True,
               out=allocate("winograd_d", (channels, _ALPHA ** 2, positions), xp.dtype)
               .reshape(channels, _ALPHA, _ALPHA, batch, *tiles))
    v = np.matmul(_kron(B_T, xp.dtype), d.reshape(channels, _ALPHA ** 2, positions),
                  out=allocate("winograd_v", (channels, _ALPHA ** 2, positions), xp.dtype))
    u = transform_weights(weight)                                              # (α², F, C)
    m = np.matmul(u, v.transpose(1, 0, 2),
                  out=allocate("winograd_m", (_ALPHA ** 2, filters, positions),
                               np.result_type(u, v)))                          # (α², F, NTS)
    if bias is not None:
        m[_BIAS_ENTRY] += bias[:, None]
    y_tiles = allocate("winograd_y", (_M, _M, filters, batch, *tiles), m.dtype)
    np.matmul(_kron(A_T, m.dtype), m.reshape(_ALPHA ** 2, -1),
              out=y_tiles.reshape(_M ** 2, -1))
    full = np.empty((batch, filters, *(_M * t for t in tiles)), m.dtype)
    _interleave(y_tiles, full)
    y = full if full.shape[2:] == out else np.ascontiguousarray(full[:, :, :out[0], :out[1]])
    return y, (u if u.size <= KEEP_TRANSFORMED else None, v, xp.shape, tiles)


def backward(dy: np.ndarray, weight: np.ndarray, saved: tuple[Any, ...],
             allocate: Allocate = _new) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dy (N, F, OH, OW)`` → the gradients of the padded input ``(N, C, Hp, Wp)`` (a
    view into a slightly bigger array), of the weights ``(F, C, 3, 3)`` and of the bias
    ``(F,)``.  ``U`` comes from forward, or is transformed again from ``weight`` when it
    was too big to keep (:data:`KEEP_TRANSFORMED`)."""
    u, v, padded_shape, tiles = saved
    if u is None:
        u = transform_weights(weight)
    batch, filters = dy.shape[:2]
    channels = v.shape[0]
    positions = batch * tiles[0] * tiles[1]
    # dY's m×m output tiles (F, m, m, N, T, S) → dM = (A⊗A) dY, per filter (F, α², N·T·S).
    dy_tiles = unfold(_grow(dy, tuple(_M * t for t in tiles)), (_M, _M), (_M, _M), (1, 1),
                      batch_last=True,
                      out=allocate("winograd_dy", (filters, _M ** 2, positions), dy.dtype)
                      .reshape(filters, _M, _M, batch, *tiles))
    dm = np.matmul(_kron(A_T, dy.dtype).T, dy_tiles.reshape(filters, _M ** 2, positions),
                   out=allocate("winograd_dm", (filters, _ALPHA ** 2, positions), dy.dtype)
                   ).transpose(1, 0, 2)                                        # (α², F, NTS)
    dw = weight_gradient(np.matmul(dm, v.transpose(1, 2, 0)))                  # (F, C, 3, 3)
    dv = np.matmul(u.transpose(0, 2, 1), dm,
                   out=allocate("winograd_dv", (_ALPHA ** 2, channels, positions),
                                np.result_type(u, dm)))                        # (α², C, NTS)
    dd = np.matmul(_kron(B_T, dv.dtype).T, dv.transpose(1, 0, 2),
                   out=allocate("winograd_d", (channels, _ALPHA ** 2, positions), dv.dtype))
    dxe = _fold_tiles(dd.reshape(channels, _ALPHA, _ALPHA, batch, *tiles))
    return dxe[:, :, :padded_shape[2], :padded_shape[3]], dw, dm[_BIAS_ENTRY].sum(axis=1)


def _fold_tiles(dd: np.ndarray) -> np.ndarray:
    """Adjoint of the tile unfold: tile entries ``(C, α, α, N, T, S)`` added back onto
    the ``(N, C, m·T + 2, m·S + 2)`` input.  Returns an ``(N, C, m·(T + 1), m·(S + 1))``
    array whose rows and columns past those are garbage; ``dd`` is overwritten.

    Entry ``r`` of tile ``i`` is row ``m·i + r``, so entries ``m … α − 1`` of a tile are
    entries ``0 … α − m − 1`` of the next: those are added into the next tile first (one
    add per axis), then every row belongs to one tile — entries ``0 … m − 1`` of each
    tile, plus the last tile's overhang — and is copied once.
    """
    channels, _, _, batch, t, s = dd.shape
    over = _ALPHA - _M
    full = np.empty((batch, channels, _M * (t + 1), _M * (s + 1)), dd.dtype)
    blocks = full.reshape(batch, channels, t + 1, _M, s + 1, _M).transpose(1, 3, 5, 0, 2, 4)
    # blocks[c, p, q, n, i, j] is row m·i + p, column m·j + q of image n, channel c.
    parts = list(product(_fold_parts(t), _fold_parts(s)))

    def fold_channels(index: tuple[slice, ...]) -> None:
        chunk, out = dd[index[0]], blocks[index[0]]
        np.add(chunk[:, :over, :, :, 1:], chunk[:, _M:, :, :, :-1],
               out=chunk[:, :over, :, :, 1:])
        np.add(chunk[:, :, :over, :, :, 1:], chunk[:, :, _M:, :, :, :-1],
               out=chunk[:, :, :over, :, :, 1:])
        for (rows_from, rows_to), (cols_from, cols_to) in parts:
            np.copyto(out[:, rows_to[0], cols_to[0], :, rows_to[1], cols_to[1]],
                      chunk[:, rows_from[0], cols_from[0], :, rows_from[1], cols_from[1]])

    split_run(fold_channels, dd.shape[:2], dd.nbytes)
    return full


def _fold_parts(tiles: int) -> tuple[tuple[tuple[slice, slice], tuple[slice, slice]], ...]:
    """Per axis, ``(entries, tiles)`` slices of the tile array → of the output blocks: the
    first ``m`` entries of every tile, and the last tile's overhang into one more block."""
    over = _ALPHA - _M
    return (((slice(0, _M), slice(0, tiles)), (slice(0, _M), slice(0, tiles))),
            ((slice(_M, _ALPHA), slice(tiles - 1, tiles)), (slice(0, over),
                                                            slice(tiles, tiles + 1))))
