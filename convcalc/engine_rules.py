"""What the memory model assumes about how the reference engine runs a layer.

The calculator must not import the engine (an oracle that shares code proves nothing),
so the few engine decisions that change how much memory a run takes are restated here,
each naming its engine counterpart.  ``tests/test_engine_rules.py`` holds every one of
them to the engine's own behaviour, so the two cannot drift apart.

- :func:`takes_winograd` — ``engine.conv.Conv.uses_winograd`` / ``engine.winograd.suits``:
  which convolutions run Winograd F(4×4, 3×3) instead of im2col;
- :data:`WINOGRAD_KEEP_TRANSFORMED` — ``engine.winograd.KEEP_TRANSFORMED``: transformed
  filters up to this many values are kept from forward to backward;
- :func:`dx_by_correlation` — ``engine.conv.Conv.uses_correlation_for_dx``: which
  convolutions get their input gradient by correlating ``dy`` with the flipped kernel
  rather than by col2im; :func:`padded_output_gradient` — the padded ``dy`` that path
  keeps (workspace ``"dyp"``);
- :func:`keeps_padded_input` — ``engine.conv._padded`` (workspace ``"xp"``): a
  convolution keeps its zero-padded input as a workspace from call to call, whichever
  path it takes, whenever the padding (or ceil overhang) grows it;
- :data:`RESIZE_TABLE` — ``engine.resize.TABLE``: an upsample computes its tables of
  taps for at most this many output positions at a time, resizing a longer axis in
  runs (which bounds its temporaries as well);
- :func:`pads_by_mode` — ``engine.conv.Conv._pad_by_mode`` (workspace ``"xm"``): a
  convolution with a ``padding_mode`` other than zeros and some padding first pads its
  input by that mode into a workspace it keeps, then convolves that copy without
  padding (so ``"xp"`` is kept only when a ceil overhang grows the copy).
"""

from __future__ import annotations

from math import prod

from .axes import Window

#: 2-D 3×3 stride-1 undilated one-group convolutions take Winograd when they have at
#: least this many input channels and filters (``engine.winograd.suits``).
WINOGRAD_MIN_CHANNELS = 16
#: Transformed filters (``36·F·C`` values) up to this size are kept from forward to
#: backward, bigger ones transformed again (``engine.winograd.KEEP_TRANSFORMED``).
WINOGRAD_KEEP_TRANSFORMED = 4 * 2**20
#: Output positions per table of interpolation taps (``engine.resize.TABLE``).
RESIZE_TABLE = 4096


def takes_winograd(window: Window, groups: int, channels: int, filters: int) -> bool:
    """Whether the engine runs this convolution with Winograd rather than im2col."""
    return (len(window.kernel) == 2 and window.kernel == (3, 3) and window.stride == (1, 1)
            and window.dilation == (1, 1) and groups == 1
            and min(channels, filters) >= WINOGRAD_MIN_CHANNELS)


def dx_by_correlation(window: Window, in_shape: tuple[int, ...],
                      out_shape: tuple[int, ...]) -> bool:
    """Whether the engine's im2col path gets a convolution's input gradient by
    correlation: stride 1 on every axis, and ``dy``'s columns no bigger than the column
    gradient (``F·prod(in) ≤ C·prod(out)``)."""
    return (all(s == 1 for s in window.stride)
            and out_shape[0] * prod(in_shape[1:]) <= in_shape[0] * prod(out_shape[1:]))


def keeps_padded_input(padded: list[int], in_shape: tuple[int, ...]) -> bool:
    """Whether the padded input (sizes ``padded``, ceil overhang included) is a new array
    the layer keeps, i.e. whether padding grows the input at all."""
    return any(p != n for p, n in zip(padded, in_shape[1:]))


def padded_output_gradient(window: Window, in_shape: tuple[int, ...],
                           out_shape: tuple[int, ...], padded: list[int]) -> int:
    """Values of the padded ``dy`` the correlation path keeps as a workspace: ``dy``
    grown by ``e − 1 − p`` on each side where that is positive (0 if nothing grows);
    ``padded`` are the padded input's sizes, the ceil overhang included."""
    grows = [(max(e - 1 - pb, 0), max(e - 1 - (p - n - pb), 0)) for e, p, n, (pb, _) in
             zip(window.extent, padded, in_shape[1:], window.padding)]
    if not any(b or a for b, a in grows):
        return 0
    return out_shape[0] * prod(o + b + a for o, (b, a) in zip(out_shape[1:], grows))


def pads_by_mode(padding_mode: str, window: Window) -> bool:
    """Whether the engine pads the input by ``padding_mode`` before convolving (a mode
    other than zeros, and some padding to fill)."""
    return padding_mode != "zeros" and any(pb or pa for pb, pa in window.padding)
