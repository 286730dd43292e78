"""Sliding-window arithmetic along one axis: one small pure function per formula.

All sizes are exact integers; a window count that is not whole is a
:class:`~fractions.Fraction`, never a float.

Notation: ``n`` input size, ``k`` kernel, ``d`` dilation, ``s`` stride,
``pb``/``pa`` padding before/after, ``e = d·(k − 1) + 1`` the effective kernel.
"""

from __future__ import annotations

from fractions import Fraction


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Extent of a dilated window: ``d·(k − 1) + 1``.

    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


def same_padding(size: int, eff_kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` rule: output ``ceil(n / s)``; the odd pad goes at the end.

    >>> same_padding(7, 3, 1)
    (1, 1)
    >>> same_padding(32, 4, 1)   # even kernel: asymmetric
    (1, 2)
    >>> same_padding(7, 3, 2)
    (1, 1)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + eff_kernel - size, 0)
    return total // 2, total - total // 2


def full_padding(eff_kernel: int) -> tuple[int, int]:
    """``full`` padding: every window that overlaps the input at all, ``e − 1`` a side.

    >>> full_padding(5)
    (4, 4)
    """
    return eff_kernel - 1, eff_kernel - 1


def window_positions(size: int, pad_before: int, pad_after: int, eff_kernel: int,
                     stride: int) -> Fraction:
    """``(n + pb + pa − e) / s + 1``, exactly — the output size before any rounding.

    >>> window_positions(7, 0, 0, 3, 2)
    Fraction(3, 1)
    >>> window_positions(7, 0, 0, 3, 3)
    Fraction(7, 3)
    """
    return Fraction(size + pad_before + pad_after - eff_kernel, stride) + 1


def floor_positions(size: int, pad_before: int, pad_after: int, eff_kernel: int,
                    stride: int) -> int:
    """Output size with the trailing partial window dropped (PyTorch/TF default).

    >>> floor_positions(7, 0, 0, 3, 3)
    2
    """
    return (size + pad_before + pad_after - eff_kernel) // stride + 1


def ceil_positions(size: int, pad_before: int, pad_after: int, eff_kernel: int,
                   stride: int) -> int:
    """Output size rounded up, with PyTorch's ``ceil_mode`` rule that a last window
    starting inside the right padding (or past it) is dropped.

    >>> ceil_positions(7, 0, 0, 3, 3)     # third window starts at 6, inside the input
    3
    >>> ceil_positions(6, 0, 1, 2, 2)     # (7 − 2)/2 + 1 = 3.5; a 4th window would start at 6, in the padding
    3
    """
    padded = size + pad_before + pad_after
    out = -(-(padded - eff_kernel) // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def transposed_size(size: int, stride: int, pad_before: int, pad_after: int,
                    eff_kernel: int, output_padding: int) -> int:
    """Transposed convolution: ``(n − 1)·s − pb − pa + e + output_padding``.

    >>> transposed_size(16, 2, 1, 1, 4, 0)   # the usual ×2 upsampling
    32
    """
    return (size - 1) * stride - pad_before - pad_after + eff_kernel + output_padding


def uncovered_by_floor(size: int, pad_before: int, pad_after: int, eff_kernel: int,
                       stride: int) -> tuple[int, int]:
    """After floor rounding: (padded positions never covered, of which real input).

    >>> uncovered_by_floor(7, 0, 0, 3, 3)   # windows at 0 and 3 cover 0..5: row 6 is lost
    (1, 1)
    """
    padded = size + pad_before + pad_after
    out = floor_positions(size, pad_before, pad_after, eff_kernel, stride)
    left = padded - ((out - 1) * stride + eff_kernel)
    return left, max(0, min(size, left - pad_after))


def overhang_of_ceil(size: int, pad_before: int, pad_after: int, eff_kernel: int,
                     stride: int) -> int:
    """After ceil rounding: how far the last window reaches past the padded input.

    >>> overhang_of_ceil(7, 0, 0, 3, 3)   # third window covers 6..8, input ends at 6
    2
    """
    padded = size + pad_before + pad_after
    out = ceil_positions(size, pad_before, pad_after, eff_kernel, stride)
    return max(0, (out - 1) * stride + eff_kernel - padded)
