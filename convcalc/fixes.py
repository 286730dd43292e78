"""Concrete fixes for a window that does not tile its axis.

``(n + P − e) / s + 1`` is whole exactly when ``s`` divides ``n + P − e``.  The nearest
fixes change one thing at a time: the total padding ``P``, the stride ``s`` or the input
size ``n``.  Each fix is ``(value, resulting output size)``.

>>> nearest_fixes(7, 0, 3, 3)
{'padding': [(2, 3)], 'stride': [(2, 3), (4, 2)], 'input': [(6, 2), (9, 3)]}
"""

from __future__ import annotations

# Bound the divisor search so a huge axis cannot make the suggestion slow.
_SEARCH_LIMIT = 10_000


def _output(size: int, padding: int, eff_kernel: int, stride: int) -> int:
    return (size + padding - eff_kernel) // stride + 1


def padding_fixes(size: int, padding: int, eff_kernel: int, stride: int,
                  max_padding: int | None = None) -> list[tuple[int, int]]:
    """Nearest total paddings below and above ``padding`` that tile exactly (at most
    ``max_padding`` in all, when the layer limits it: a pool pads less than its window
    on each side).

    >>> padding_fixes(6, 0, 3, 2), padding_fixes(6, 0, 3, 2, max_padding=0)
    ([(1, 3)], [])
    """
    rest = (size + padding - eff_kernel) % stride
    if rest == 0:
        return []
    out = []
    lower = padding - rest
    if lower >= 0 and size + lower >= eff_kernel:
        out.append(lower)
    out.append(padding + stride - rest)
    return [(p, _output(size, p, eff_kernel, stride)) for p in out
            if max_padding is None or p <= max_padding]


def stride_fixes(size: int, padding: int, eff_kernel: int, stride: int) -> list[tuple[int, int]]:
    """Nearest strides below and above ``stride`` that divide ``n + P − e``."""
    span = size + padding - eff_kernel
    if span <= 0:
        return []
    out = []
    below = next((s for s in range(stride - 1, max(0, stride - _SEARCH_LIMIT), -1)
                  if span % s == 0), None)
    if below is not None:
        out.append(below)
    above = next((s for s in range(stride + 1, min(span, stride + _SEARCH_LIMIT) + 1)
                  if span % s == 0), None)
    if above is not None:
        out.append(above)
    return [(s, _output(size, padding, eff_kernel, s)) for s in out]


def input_fixes(size: int, padding: int, eff_kernel: int, stride: int) -> list[tuple[int, int]]:
    """Nearest input sizes below and above ``size`` that tile exactly."""
    rest = (size + padding - eff_kernel) % stride
    if rest == 0:
        return []
    out = []
    lower = size - rest
    if lower >= 1 and lower + padding >= eff_kernel:
        out.append(lower)
    out.append(size + stride - rest)
    return [(n, _output(n, padding, eff_kernel, stride)) for n in out]


def nearest_fixes(size: int, padding: int, eff_kernel: int, stride: int,
                  max_padding: int | None = None) -> dict[str, list[tuple[int, int]]]:
    """All three kinds of fix; an empty dict when the axis already tiles."""
    fixes = {
        "padding": padding_fixes(size, padding, eff_kernel, stride, max_padding),
        "stride": stride_fixes(size, padding, eff_kernel, stride),
        "input": input_fixes(size, padding, eff_kernel, stride),
    }
    return {kind: found for kind, found in fixes.items() if found}


def describe_padding(total: int) -> str:
    """A total padding as the user would write it: ``1`` a side, or ``[1, 2]``.

    >>> describe_padding(2), describe_padding(3)
    ('1', '[1, 2]')
    """
    return str(total // 2) if total % 2 == 0 else f"[{total // 2}, {total - total // 2}]"


def describe_fixes(fixes: dict[str, list[tuple[int, int]]]) -> str:
    """One line, e.g. ``padding 1 (→ 3); stride 2 (→ 3) or 4 (→ 2); input 6 (→ 2) or 9 (→ 3)``.

    >>> describe_fixes(nearest_fixes(7, 0, 3, 3))
    'padding 1 (→ 3); stride 2 (→ 3) or 4 (→ 2); input 6 (→ 2) or 9 (→ 3)'
    """
    parts = []
    for kind, found in fixes.items():
        shown = [
            f"{describe_padding(value) if kind == 'padding' else value} (→ {out})"
            for value, out in found
        ]
        parts.append(f"{kind} {' or '.join(shown)}")
    return "; ".join(parts)
