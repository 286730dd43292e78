"""Flat vectors: ``flatten`` and the fully connected ``dense`` layer.

``flatten``: ``(C, *n) → (C·prod(n),)``.  ``dense``: ``(F,) → (units,)`` with
``F·units`` weights (and MACs) plus ``units`` biases; nothing is flattened implicitly.
With ``in_features`` stated, ``F`` must equal it; the message says which spatial sizes
before a flatten would give it:

>>> import convcalc
>>> report = convcalc.analyze({"input": [16, 6, 6], "layers": [
...     "flatten", {"type": "dense", "units": 10, "in_features": 256}]})
>>> print(report.problems[0].message)
in_features is 256 but its input has 576 features (the flatten of [16, 6, 6]: 16·6·6): 256 = 16·16 needs H×W = 16 — 4×4, 2×8 or 8×2 are nearest 6×6; or set in_features: 576
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from math import isqrt
from typing import Any, Iterator

from ..axes import axis_names
from ..receptive import ReceptiveField
from ..spec import Dense, Flatten
from .base import Context, Cost, Kind, Outcome, Shape, State, size_of


@dataclass(frozen=True, eq=False)
class FlattenedField(ReceptiveField):
    """A flatten's receptive field that remembers the shape it flattened, so that a
    dense layer reading it (through element-wise layers) can say which spatial sizes
    would give the width it needs.  Equal to a plain field with the same axes."""

    unflattened: Shape = field(default=(), repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReceptiveField) and self.axes == other.axes

    __hash__ = ReceptiveField.__hash__


class FlattenKind(Kind):
    models = (Flatten,)

    def rule(self, layer: Flatten, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        return Outcome((size_of(x.shape),),
                       FlattenedField(x.field.whole(x.shape[1:]).axes, x.shape))

    def cost(self, layer: Flatten, row: Any) -> Cost:
        """A view of its input: nothing of its own."""
        return Cost()


class DenseKind(Kind):
    models = (Dense,)

    def rule(self, layer: Dense, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        (x,) = inputs
        if len(x.shape) != 1:
            raise ctx.fatal(f"needs a flat vector but its input is a feature map "
                            f"{list(x.shape)}; add a flatten (or global pooling) layer "
                            "before it — nothing is flattened implicitly")
        features = x.shape[0]
        if layer.in_features is not None and features != layer.in_features:
            raise ctx.fatal(in_features_problem(layer.in_features, x), "in_features",
                            features=features)
        params = features * layer.units + (layer.units if layer.bias else 0)
        return Outcome((layer.units,), x.field, params=params, macs=features * layer.units)

    def cost(self, layer: Dense, row: Any) -> Cost:
        """The input gradient ``dy·Wᵀ`` (the weight gradient is written in place)."""
        return Cost(transient=size_of(row.input_shapes[0]))


#: Divisors tried per axis when looking for spatial sizes of a given product.
_CANDIDATES = 64


def _divisors(value: int, limit: int = 10**5) -> list[int]:
    """The divisors of ``value`` (those found by trial division up to ``limit``, and
    their cofactors)."""
    small = [d for d in range(1, min(isqrt(value), limit) + 1) if value % d == 0]
    return sorted(set(small) | {value // d for d in small})


def _factorings(product: int, sizes: Shape) -> Iterator[tuple[int, ...]]:
    """Spatial sizes with ``product`` positions, one per axis of ``sizes``, each axis
    trying the divisors nearest its current size."""
    divisors = _divisors(product)
    if len(sizes) == 1:
        yield (product,)
        return
    nearest = [sorted(divisors, key=lambda d: (abs(d - n), d))[:_CANDIDATES]
               for n in sizes[:-1]]
    if len(sizes) == 2:
        yield from ((a, product // a) for a in nearest[0])
        return
    yield from ((a, b, product // (a * b)) for a in nearest[0] for b in nearest[1]
                if product % (a * b) == 0)


def nearest_sizes(product: int, sizes: Shape, count: int = 3) -> list[tuple[int, ...]]:
    """Up to ``count`` spatial sizes with ``product`` positions, nearest ``sizes`` first
    (by the sum of the differences per axis).

    >>> nearest_sizes(16, (6, 6)), nearest_sizes(12, (2, 2, 2), 2)
    ([(4, 4), (2, 8), (8, 2)], [(2, 2, 3), (2, 3, 2)])
    """
    ranked = sorted(set(_factorings(product, sizes)),
                    key=lambda shape: (sum(abs(a - b) for a, b in zip(shape, sizes)), shape))
    return list(islice(ranked, count))


def in_features_problem(stated: int, x: State) -> str:
    """Why an input of ``x.shape[0]`` features does not fit ``in_features`` ``stated``,
    and what would: after a flatten of ``(C, *S)``, the spatial sizes of ``stated / C``
    positions nearest ``S`` (or that none give it)."""
    width = x.shape[0]
    text = f"in_features is {stated} but its input has {width} features"
    fix = f"set in_features: {width}"
    before: Shape = getattr(x.field, "unflattened", ())
    if len(before) < 2 or size_of(before) != width:
        return f"{text}: the layers before it must give {stated}; or {fix}"
    channels, sizes = before[0], before[1:]
    label = "×".join(axis_names(len(sizes)))
    current = "×".join(map(str, sizes))
    text += f" (the flatten of {list(before)}: {channels}·{'·'.join(map(str, sizes))})"
    if stated % channels:
        return (f"{text}: no {label} gives {stated} with {channels} channels ({stated} is "
                f"not a multiple of {channels}); {fix}")
    target = stated // channels
    if len(sizes) == 1:
        return (f"{text}: {stated} = {channels}·{target} needs {label} = {target} (now "
                f"{current}); or {fix}")
    shown = [("×".join(map(str, shape))) for shape in nearest_sizes(target, sizes)]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    verb = "is" if len(shown) == 1 else "are"
    return (f"{text}: {stated} = {channels}·{target} needs {label} = {target} — {listed} "
            f"{verb} nearest {current}; or {fix}")
