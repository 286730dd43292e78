"""Numbers for people: counts in decimal units (K, M, G, T), sizes in binary ones (KiB,
MiB, GiB, TiB).  Only the table and Markdown renderings use them; JSON and CSV keep the
exact integers.

>>> format_count(25_557_032), format_count(4_089_184_256), format_count(760)
('25.56 M', '4.09 G', '760')
>>> format_bytes(1536), format_bytes(2 * 2**30), format_bytes(512)
('1.50 KiB', '2.00 GiB', '512 B')
"""

from __future__ import annotations

_COUNT_UNITS = ("K", "M", "G", "T", "P")
_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def _scaled(count: int, base: int, units: tuple[str, ...]) -> tuple[float, str] | None:
    """``count`` in the largest unit it reaches (``None`` below the first), with two
    decimals that stay below the next unit (999,999 is ``1.00 M``, not ``1000.00 K``)."""
    if abs(count) < base:
        return None
    value, unit = float(count), ""
    for unit in units:
        value /= base
        if abs(round(value, 2)) < base or unit == units[-1]:
            break
    return value, unit


def format_count(count: int) -> str:
    """A count in decimal units with two decimals; below 1,000 the number itself.

    >>> format_count(999), format_count(1000), format_count(999_999), format_count(-2_500)
    ('999', '1.00 K', '1.00 M', '-2.50 K')
    """
    scaled = _scaled(count, 1000, _COUNT_UNITS)
    return str(count) if scaled is None else f"{scaled[0]:.2f} {scaled[1]}"


def format_bytes(count: int) -> str:
    """A size in binary units with two decimals; below 1 KiB the bytes themselves.

    >>> format_bytes(1023), format_bytes(1024), format_bytes(3 * 2**50 + 1)
    ('1023 B', '1.00 KiB', '3.00 PiB')
    """
    scaled = _scaled(count, 1024, _BYTE_UNITS)
    return f"{count} B" if scaled is None else f"{scaled[0]:.2f} {scaled[1]}"
