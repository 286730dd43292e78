"""Receptive fields (Araujo, Norris & Sim, "Computing Receptive Fields of CNNs",
Distill 2019), one axis at a time, in input pixels.

For each axis a field is ``(size, jump, padding)``:

- ``size`` — how many input positions one output neuron sees;
- ``jump`` — how far apart, in input positions, neighbouring outputs' fields start
  (the product of the strides so far);
- ``padding`` — effective padding: how far the first output's field reaches before the
  input's first position, so output ``i`` sees ``[i·jump − padding, i·jump − padding + size)``.

A window layer (kernel ``k``, dilation ``d``, stride ``s``, padding before ``p``) maps
``(r, j, P) → (r + (e − 1)·j, j·s, P + p·j)`` with ``e = d·(k − 1) + 1``.

>>> field = Field1D.identity()
>>> for _ in range(3):                          # three 3×3 stride-1 convs see 7×7
...     field = field.through_window(3, 1, 1, 1)
>>> field.size, field.jump, field.padding
(7, 1, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

from .geometry import effective_kernel

Number = int | Fraction


def _simplify(value: Number) -> Number:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


@dataclass(frozen=True)
class Field1D:
    """The receptive field of one layer's output along one axis."""

    size: int
    jump: Number
    padding: Number

    @classmethod
    def identity(cls) -> "Field1D":
        """The input itself: each position sees itself."""
        return cls(1, 1, 0)

    def through_window(self, kernel: int, stride: int, pad_before: int,
                       dilation: int = 1) -> "Field1D":
        """After a conv or pooling window."""
        eff = effective_kernel(kernel, dilation)
        return Field1D(
            self.size + (eff - 1) * self.jump,
            _simplify(self.jump * stride),
            _simplify(self.padding + pad_before * self.jump),
        )

    def through_transposed(self, kernel: int, stride: int, pad_before: int,
                           dilation: int = 1) -> "Field1D":
        """After a transposed conv, whose output ``o`` reads inputs ``i`` with
        ``i·s − p + t·d = o`` for kernel taps ``t``.  Outputs differ in how many taps hit
        an input; ``size`` is the largest field, ``padding`` is output 0's.

        >>> Field1D.identity().through_transposed(4, 2, 1)     # ×2 upsampling
        Field1D(size=2, jump=Fraction(1, 2), padding=1)

        Output 0 reads inputs −1 (tap 3) and 0 (tap 1): two positions, starting one
        before the input.
        """
        step = stride // gcd(stride, dilation)          # tap step between hits
        hits = -(-kernel // step)                       # most taps that hit one output
        span = (hits - 1) * step * dilation // stride   # their distance in inputs
        hit_inputs = [(pad_before - t * dilation) // stride for t in range(kernel)
                      if (pad_before - t * dilation) % stride == 0]
        first = min(hit_inputs) if hit_inputs else -(-(pad_before - dilation * (kernel - 1)) // stride)
        return Field1D(
            self.size + span * self.jump,
            _simplify(Fraction(self.jump) / stride),
            _simplify(self.padding - first * self.jump),
        )

    def whole(self, positions: int) -> "Field1D":
        """After a layer that sees every one of ``positions`` outputs (global pooling,
        flatten, dense): the union of their fields."""
        return Field1D(self.size + (positions - 1) * self.jump, self.jump, self.padding)


@dataclass(frozen=True)
class ReceptiveField:
    """Per-axis fields of one layer's output."""

    axes: tuple[Field1D, ...]

    @classmethod
    def identity(cls, spatial_dims: int) -> "ReceptiveField":
        return cls(tuple(Field1D.identity() for _ in range(spatial_dims)))

    def to_dict(self) -> dict[str, list[Number | float]]:
        """``{"size": [...], "jump": [...], "padding": [...]}``; a fractional jump or
        padding (after a transposed conv) is given as a float."""

        def plain(value: Number) -> int | float:
            return value if isinstance(value, int) else float(value)

        return {
            "size": [a.size for a in self.axes],
            "jump": [plain(a.jump) for a in self.axes],
            "padding": [plain(a.padding) for a in self.axes],
        }
