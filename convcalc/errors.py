"""Diagnostics and the error hierarchy.

Every problem convcalc finds is a :class:`Diagnostic`: a severity, a message, and where
it is (file, line, field path, layer).  Spec errors and shape errors render the same way::

    net.yaml:6: layers[0].stride: must be ≥ 1 (got 0)

Exceptions:

- :class:`ConvCalcError` — base of everything convcalc raises on purpose.
- :class:`SpecError` — the file cannot be read or does not validate; carries *all* the
  diagnostics found, not just the first.
- :class:`ShapeError` — the spec validates but a layer cannot be computed (a window that
  does not tile its input in exact mode, a kernel larger than its input, …); raised by
  :meth:`convcalc.Report.raise_for_errors`.
- :class:`ResourceError` — a run would need more memory than allowed (the estimate of
  :func:`convcalc.verify`).
- :class:`ArgumentError` — a library function was given a value it cannot take (also a
  ``ValueError``); a wrong *type* is a ``TypeError`` naming the argument.
- :class:`UnknownLayerError` — :meth:`convcalc.Report.layer` was given a name the network
  does not have (also a ``KeyError``); the message lists the close names.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any, Literal

#: ``note``: what a layer does as its options declare it (a declared rounding or
#: misalignment), reported but never failing, not even under ``--strict``.
Severity = Literal["error", "warning", "note"]


def printable(text: str) -> str:
    r"""``text`` with every control or format character written as an escape, so that a
    name cannot move the cursor, colour a terminal or start a new line of a table.

    >>> printable("conv\x1b[31m1\n"), printable("cœur")
    ('conv\\x1b[31m1\\n', 'cœur')
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or (char == " "):
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") \
                or not char.isprintable():
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:  # pragma: no cover - isprintable covers the rest
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Diagnostic:
    """One problem, located as precisely as the input allows.

    >>> str(Diagnostic("error", "must be ≥ 1 (got 0)", file="net.yaml", line=6,
    ...                field="layers[0].stride"))
    'net.yaml:6: layers[0].stride: must be ≥ 1 (got 0)'
    """

    #: ``"error"``, ``"warning"`` or ``"note"``
    severity: Severity
    #: what is wrong, and how to fix it
    message: str
    #: the spec's file (``None`` for a dict or a string)
    file: str | None = None
    #: the line in that file
    line: int | None = None
    #: where in the document: ``layers[3].stride``, ``blocks.basic.layers[1]``, ``input``
    field: str | None = None
    #: the layer's name (an instance's, inside a block)
    layer: str | None = None
    #: machine-readable facts (``fraction``, ``fixes``, …: see :ref:`report-json`)
    details: dict[str, Any] = _field(default_factory=dict)

    def location(self) -> str:
        """``file:line`` (either part omitted when unknown)."""
        parts = [p for p in (self.file, None if self.line is None else str(self.line)) if p]
        return ":".join(parts)

    def format(self, tag: bool = True) -> str:
        """``file:line: [warning: |note: ]field (layer): message``; ``tag=False`` leaves
        the severity out (for renderings that show it otherwise)."""
        prefix = printable(self.location())
        where = printable(self.field or "")
        if self.layer:
            where = f"{where} ({printable(self.layer)})" if where else printable(self.layer)
        message = printable(self.message)
        text = f"{where}: {message}" if where else message
        severity = f"{self.severity}: " if tag and self.severity != "error" else ""
        return f"{prefix}: {severity}{text}" if prefix else f"{severity}{text}"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``layer``, ``severity``, ``message``, ``field``, ``line`` + details."""
        out: dict[str, Any] = {
            "layer": self.layer,
            "severity": self.severity,
            "message": self.message,
            "field": self.field,
            "line": self.line,
        }
        out.update(self.details)
        return out


class ConvCalcError(Exception):
    """Base class of every error convcalc raises on purpose."""


class _DiagnosticsError(ConvCalcError):
    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class SpecError(_DiagnosticsError):
    """The spec cannot be read or does not validate; ``.diagnostics`` lists every problem.

    When only some layers do not validate, the rest is analysed as far as it can be
    (:mod:`convcalc.partial`): the layers after an invalid one are checked for what does
    not depend on their input's shape.  ``.diagnostics`` then holds both, sorted by line
    — the validation problems (``.validation``) and the analysis' errors, warnings and
    notes (``.analysis``) — so one round reports them all; ``str()`` is one line each.
    """

    def __init__(self, diagnostics: list[Diagnostic], analysis: Any = ()):
        self.validation = tuple(diagnostics)
        self.analysis = tuple(analysis)
        if self.analysis:
            diagnostics = sorted([*diagnostics, *self.analysis], key=lambda d: d.line or 0)
        super().__init__(diagnostics)


class ShapeError(_DiagnosticsError):
    """The spec is valid but some layer's output cannot be computed."""


class ArgumentError(ConvCalcError, ValueError):
    """A library function was given a value it cannot take (a batch of 0, a negative
    seed, a memory limit that is not a size)."""


class UnknownLayerError(ConvCalcError, KeyError):
    """No layer has this name (:meth:`convcalc.Report.layer`); also a ``KeyError``, as a
    missing key of a mapping.  ``name`` is the name asked for, ``close`` the layer names
    nearest to it (difflib's, at most three, closest first, ties in the network's order).

    >>> raise UnknownLayerError("conv7", ["conv1", "conv2", "relu1", "pool1"])
    Traceback (most recent call last):
    ...
    convcalc.errors.UnknownLayerError: no layer 'conv7' — did you mean 'conv1', 'conv2'? (4 layers: conv1, conv2, relu1, pool1)
    """

    def __init__(self, name: str, names: Sequence[str]):
        self.name = name
        close = difflib.get_close_matches(name, names, n=3)
        order = {n: i for i, n in reversed(list(enumerate(names)))}
        # closest first; equally close ones in the network's order (difflib: reverse text)
        self.close = tuple(sorted(close, key=lambda c: (
            -difflib.SequenceMatcher(None, name, c).ratio(), order[c])))
        hint = f" — did you mean {', '.join(repr(printable(c)) for c in self.close)}?" \
            if self.close else ""
        shown = ", ".join(printable(n) for n in names[:_LISTED_LAYERS])
        more = f" (and {len(names) - _LISTED_LAYERS} more)" if len(names) > _LISTED_LAYERS else ""
        count = f"{len(names)} layer{'s' if len(names) != 1 else ''}"
        listed = f"{count}: {shown}{more}" if names else "the network has no layers"
        self.message = f"no layer {printable(name)!r}{hint} ({listed})"
        super().__init__(self.message)

    def __str__(self) -> str:  # a KeyError would show its argument's repr
        return self.message


#: :class:`UnknownLayerError` names at most this many of the network's layers.
_LISTED_LAYERS = 12


class ResourceError(ConvCalcError):
    """Running the network (``convcalc.verify``) would need more memory than the limit.

    Raised by :func:`convcalc.memory.check_memory`, with the figures a caller words its
    own advice from: ``what`` ("running this network"), ``needed`` (estimated bytes at
    ``batch``), ``limit`` (bytes), ``largest_batch`` (0: not even batch 1 fits) and
    ``fixed`` (the bytes that do not depend on the batch).  The message states them and
    suggests nothing: the CLI adds its ``--max-memory``, the service its ceiling.
    """

    def __init__(self, message: str, *, what: str = "", needed: int = 0, limit: int = 0,
                 batch: int = 0, dtype: str = "", largest_batch: int = 0, fixed: int = 0):
        super().__init__(message)
        self.what, self.needed, self.limit = what, needed, limit
        self.batch, self.dtype = batch, dtype
        self.largest_batch, self.fixed = largest_batch, fixed
