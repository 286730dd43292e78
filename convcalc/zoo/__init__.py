"""The model zoo: well-known networks shipped with convcalc as spec files.

Each model is one YAML file in this package (``convcalc/zoo/<name>.yaml``), written with
blocks where the architecture repeats, with a header comment naming the reference
implementation and its published totals.  Anywhere a spec file is read, ``zoo:NAME``
reads the zoo's file: ``convcalc check zoo:resnet50``, ``convcalc.load("zoo:resnet50")``.

This package is data: names, paths and texts (it reads nothing else of convcalc but
its error type).  :func:`convcalc.load` reads ``zoo:NAME``; :mod:`convcalc.catalog`
analyses the models for their totals.

>>> from convcalc import zoo
>>> "resnet50" in zoo.names()
True
>>> zoo.label("lenet5"), zoo.path("zoo:lenet5").name
('zoo:lenet5', 'lenet5.yaml')
>>> zoo.path("resnet51")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
convcalc.errors.SpecError: zoo:resnet51: unknown zoo model 'resnet51' — did you mean 'resnet50'? (the zoo has: alexnet, ...)
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import Diagnostic, SpecError

#: Where the model files are.
DIRECTORY = Path(__file__).resolve().parent
#: ``zoo:NAME`` names a zoo model wherever a spec file is read.
PREFIX = "zoo:"


def names() -> list[str]:
    """The zoo's model names, sorted (the file names without ``.yaml``)."""
    return sorted(p.stem for p in DIRECTORY.glob("*.yaml"))


def _bare(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def label(name: str) -> str:
    """``zoo:NAME``, the file name the model's diagnostics give."""
    return PREFIX + _bare(name)


def path(name: str) -> Path:
    """The file of model ``name`` (``"resnet50"`` or ``"zoo:resnet50"``).

    Raises :class:`~convcalc.errors.SpecError` (one line, listing the zoo's models) for
    a name the zoo does not have.
    """
    return _path(_bare(name))


def _path(bare: str) -> Path:
    known = names()
    if bare not in known:
        close = difflib.get_close_matches(bare, known, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise SpecError([Diagnostic(
            "error", f"unknown zoo model {bare!r}{hint} (the zoo has: {', '.join(known)})",
            file=PREFIX + bare)])
    return DIRECTORY / f"{bare}.yaml"


def text(name: str) -> str:
    """The spec file of model ``name``, as written (header comment included)."""
    return path(name).read_text(encoding="utf-8")


def header(name: str) -> str:
    """The header comment of model ``name`` (source and published totals), without
    the ``#`` marks."""
    lines = []
    for line in text(name).splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)
