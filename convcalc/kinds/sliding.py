"""Sliding a window along every spatial axis: output sizes, rounding and its problems.

Shared by the windowed kinds (``conv``, the pools).  Per axis the output is
``(n + pb + pa − e) / s + 1`` windows; when that is not whole the layer does not tile
its input and the rounding decides — the layer's own ``rounding``, else the spec's
(``exact``: an error with the nearest fixes as patches, :mod:`convcalc.fixes`, then
floor; ``floor``/``ceil``: a warning saying what the rounding costs, or a note when the
layer declares it).  Axes with the same geometry are reported together ("H, W: …").
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

from .. import geometry
from ..axes import AXIS_NAMES, AXIS_NOUNS, Window
from ..fixes import Patch, window_fixes
from .base import Context, Fatal, Shape


def _fraction_text(size: int, pb: int, pa: int, eff: int, stride: int, value: Fraction) -> str:
    pads = "" if pb == pa == 0 else (f" + 2·{pb}" if pb == pa else f" + {pb} + {pa}")
    return f"({size}{pads} − {eff}) / {stride} + 1 = {value}"


def _plural(noun: str, count: int) -> str:
    return noun if count == 1 else "/".join(n + "s" for n in noun.split("/"))


def tiled_size(size: int, pb: int, pa: int, kernel: int, dilation: int, stride: int
               ) -> int | None:
    """``(n + pb + pa − e) / s + 1`` when it is a whole number of windows (≥ 1), else
    ``None`` (the windows do not tile: :func:`axis_output` says how).

    >>> tiled_size(7, 0, 0, 3, 1, 2), tiled_size(7, 0, 0, 3, 1, 3), tiled_size(2, 0, 0, 3, 1, 1)
    (3, None, None)
    """
    span = size + pb + pa - dilation * (kernel - 1) - 1
    return span // stride + 1 if span >= 0 and span % stride == 0 else None


def axis_output(ctx: Context, axes: tuple[str, ...], size: int, pb: int, pa: int,
                kernel: int, dilation: int, stride: int, ceil_mode: bool,
                is_pool: bool, fixes: Callable[[], list[Patch]] | None = None) -> int:
    """Output size along the axes that share this geometry, reporting any rounding or
    impossibility once for all of them (``fixes`` gives the patches for them).  A
    rounding the layer declares (its own ``rounding``) is a note, not a warning."""
    tiled = tiled_size(size, pb, pa, kernel, dilation, stride)
    if tiled is not None:                          # the common case: it tiles
        return tiled
    eff = dilation * (kernel - 1) + 1
    padded = size + pb + pa
    span = padded - eff
    label = ", ".join(axes)
    details: dict[str, Any] = {"axes": list(axes)}
    declared = ctx.declared and (ctx.rounding == "ceil" or not ceil_mode)
    mode = "ceil" if ceil_mode else ctx.rounding
    ceil_mode = ceil_mode and not declared     # the layer's rounding: ceil says it
    tell = ctx.note if declared else ctx.warn
    option = "ceil_mode" if ceil_mode else ("rounding" if declared else None)
    if span < 0:
        window = f"window {eff}" + (f" (kernel {kernel} dilated by {dilation})"
                                    if dilation > 1 else "")
        where = f"padded input {size} + {pb + pa} = {padded}" if pb + pa else f"input {size}"
        if mode == "ceil" and geometry.ceil_positions(size, pb, pa, eff, stride) >= 1:
            # PyTorch's ceil_mode: one window that starts in the input and hangs past it
            how = "ceil_mode: true" if ceil_mode else "rounding: ceil"
            noun = "/".join(AXIS_NOUNS[a] for a in axes)
            tell(f"{label}: {window} is larger than the {where}; {how} keeps one window "
                 f"that hangs {-span} {_plural(noun, -span)} past it", option,
                 applied="ceil", overhang=-span, **details)
            return 1
        raise ctx.fatal(f"{label}: {window} is larger than the {where}", "kernel", **details)
    exact = geometry.window_positions(size, pb, pa, eff, stride)
    text = _fraction_text(size, pb, pa, eff, stride, exact)
    details["fraction"] = str(exact)
    floor = span // stride + 1
    noun = "/".join(AXIS_NOUNS[a] for a in axes)
    if mode == "exact":
        ctx.error(f"{label}: {text} is not a whole number: the windows do not tile the "
                  f"input (continuing with floor = {floor})", applied="floor",
                  fixes=fixes() if fixes else [], **details)
        return floor
    how = "ceil_mode: true" if ceil_mode else f"rounding: {mode}"
    ceil = geometry.ceil_positions(size, pb, pa, eff, stride)
    if mode == "ceil" and ceil > floor:
        over = geometry.overhang_of_ceil(size, pb, pa, eff, stride)
        tell(f"{label}: {text} rounded up to {ceil} ({how}): the last window hangs "
             f"{over} {_plural(noun, over)} past the padded input", option,
             applied="ceil", overhang=over, **details)
        return ceil
    left, lost = geometry.uncovered_by_floor(size, pb, pa, eff, stride)
    if lost:
        cost = (f"the last {lost} input {_plural(noun, lost)} "
                f"{'is' if lost == 1 else 'are'} never covered")
    else:
        cost = (f"only {left} padding {_plural(noun, left)} at the end "
                f"{'is' if left == 1 else 'are'} unused")
    if mode == "ceil":
        cost += " (ceil would add a window starting in the padding, which is dropped)"
    tell(f"{label}: {text} rounded down to {floor} ({how}): {cost}", option,
         applied="floor", uncovered=lost, **details)
    return floor


def slide(ctx: Context, window: Window, sizes: Shape, ceil_mode: bool = False,
          is_pool: bool = False, padding: Any = None, padding_mode: str = "zeros") -> Shape:
    """Output sizes of a window over spatial ``sizes``.  Axes with the same geometry are
    checked together, so a square problem is reported once for "H, W"; every axis is
    checked before a fatal problem ends the layer.  ``padding`` (the option as written)
    and ``padding_mode`` are what the fixes must keep to."""
    tiled: list[int] = []
    for n, (pb, pa), k, d, s in zip(sizes, window.padding, window.kernel, window.dilation,
                                    window.stride):
        size = tiled_size(n, pb, pa, k, d, s)
        if size is None:
            break
        tiled.append(size)
    else:                          # the common case: every axis tiles, nothing to report
        return tuple(tiled)
    geometries = list(zip(sizes, window.padding, window.kernel, window.dilation, window.stride))
    if len(geometries) > 1 and all(g == geometries[0] for g in geometries):
        distinct = geometries[:1]
    else:
        distinct = list(dict.fromkeys(geometries))
    names = AXIS_NAMES[len(sizes)]
    out: dict[Any, int] = {}
    fatal = None
    for geo in distinct:
        axes = names if len(distinct) == 1 else tuple(
            name for name, g in zip(names, geometries) if g == geo)
        n, (pb, pa), k, d, s = geo
        indices = tuple(names.index(name) for name in axes)

        def fixes(indices: tuple[int, ...] = indices) -> list[Patch]:
            return window_fixes(window, sizes, indices, padding=padding,
                                padding_mode=padding_mode, is_pool=is_pool)
        try:
            out[geo] = axis_output(ctx, axes, n, pb, pa, k, d, s, ceil_mode, is_pool, fixes)
        except Fatal as exc:  # check every axis before giving up
            fatal = exc
    if fatal is not None:
        raise fatal
    return tuple(out[g] for g in geometries)
