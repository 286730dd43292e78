"""Checks of a layer's options that do not depend on its input's shape, shared by the
kinds' :meth:`~convcalc.kinds.Kind.static_problems`.

Per-axis options (``kernel: [3, 5]``) give one entry per spatial axis.  While the
input is unknown, lists of different lengths on one layer are a problem by themselves
(one of them is wrong whatever the input); once it is known, a list whose length is not
the input's number of axes is the rule's to report (:meth:`Context.window`), naming
the axes.

>>> from convcalc.kinds.base import Context
>>> seen = []
>>> ctx = Context("exact", lambda severity, message, option, details: seen.append(
...     (option, message)))
>>> class Layer:
...     kernel, stride, dilation, padding = (3, 3), (1, 1, 1), 1, 0
>>> per_axis_dims(ctx, Layer, ("kernel", "stride", "dilation", "padding")), ctx.failed
((False, 2), True)
>>> seen
[('stride', 'has 3 entries but kernel has 2: every per-axis option has one entry per spatial axis')]
"""

from __future__ import annotations

from typing import Any

from ..axes import axis_names
from .base import Context


def _length(value: Any) -> int | None:
    """Entries of a per-axis list, or ``None`` for one value (for every axis) or a
    mode (``same``)."""
    return len(value) if isinstance(value, (list, tuple)) else None


def per_axis_dims(ctx: Context, layer: Any, options: tuple[str, ...]
                  ) -> tuple[bool, int | None]:
    """``(consistent, dims)`` for the per-axis ``options`` of ``layer``: ``dims`` is the
    number of spatial axes they are checked on — the input's when known, else the
    lists' length, else ``None`` (single values only).  With the input unknown, a list
    whose length differs from the first list's is reported (:meth:`Context.fail`, at
    its option); with the input known, a list that does not fit it makes the result
    inconsistent without a report (the rule reports it)."""
    first: tuple[str, int] | None = None
    consistent = True
    for option in options:
        length = _length(getattr(layer, option, None))
        if length is None:
            continue
        if ctx.dims is not None:
            consistent = consistent and length == ctx.dims
        elif first is None:
            first = (option, length)
        elif length != first[1]:
            ctx.fail(f"has {length} entries but {first[0]} has {first[1]}: every per-axis "
                     "option has one entry per spatial axis", option)
            consistent = False
    if ctx.dims is not None:
        return consistent, ctx.dims
    return consistent, first[1] if first else None


def entries(value: Any, dims: int | None) -> list[Any]:
    """One entry per axis (``dims`` of them; one for all axes when ``None``)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value] * (dims or 1)


def axis_labels(dims: int | None) -> list[str]:
    """``["H: ", "W: "]`` for the axes of a message; ``[""]`` when they are unknown (the
    options are single values: the message holds for every axis)."""
    if not dims:
        return [""]
    return [f"{name}: " for name in axis_names(dims)]


def groups_problem(ctx: Context, layer: Any) -> None:
    """A number of ``groups`` (not ``depthwise``) must divide ``filters``."""
    groups = layer.groups
    if groups != "depthwise" and layer.filters % groups:
        ctx.fail(f"{groups} groups do not divide the {layer.filters} filters", "groups")
