"""The model zoo: well-known networks shipped with convcalc as spec files.

Each model is one YAML file in this package (``convcalc/zoo/<name>.yaml``), written with
blocks where the architecture repeats, with a header comment naming the reference
implementation and its published totals.  Anywhere a spec file is read, ``zoo:NAME``
reads the zoo's file: ``convcalc check zoo:resnet50``, ``convcalc.load("zoo:resnet50")``.

>>> from convcalc import zoo
>>> "resnet50" in zoo.names()
True
>>> spec = zoo.load("lenet5")
>>> spec.name, spec.input, len(spec.layers)
('LeNet-5', [1, 32, 32], 13)
>>> zoo.summary("resnet18").params
11689512
>>> zoo.load("resnet51")
Traceback (most recent call last):
...
convcalc.errors.SpecError: zoo:resnet51: unknown zoo model 'resnet51' — did you mean 'resnet50'? (the zoo has: alexnet, googlenet, lenet5, mobilenet_v1, resnet18, resnet50, simple_convnet, vgg16)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Diagnostic, SpecError
from ..spec import Spec

#: Where the model files are.
DIRECTORY = Path(__file__).resolve().parent
#: ``zoo:NAME`` names a zoo model wherever a spec file is read.
PREFIX = "zoo:"


def names() -> list[str]:
    """The zoo's model names, sorted (the file names without ``.yaml``)."""
    return sorted(p.stem for p in DIRECTORY.glob("*.yaml"))


def _bare(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


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


def load(name: str) -> Spec:
    """Model ``name`` as a validated spec; its diagnostics name the file ``zoo:NAME``."""
    from ..loading import loads

    bare = _bare(name)
    return loads(_path(bare).read_bytes(), filename=PREFIX + bare)


@dataclass(frozen=True)
class Summary:
    """One model's totals, as ``convcalc zoo`` lists them."""

    name: str
    title: str
    params: int
    trainable_params: int
    buffers: int
    macs: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    layers: int
    warnings: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "input_shape": list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "layers": self.layers,
            "warnings": self.warnings,
            "errors": self.errors,
        }


def summary(name: str) -> Summary:
    """Analyse model ``name`` and return its totals (``layers`` counts the flat layers,
    blocks and ``repeat`` expanded)."""
    from ..analysis import analyze

    spec = load(name)
    report = analyze(spec)
    return Summary(
        name=_bare(name),
        title=spec.name or _bare(name),
        params=report.total_params,
        trainable_params=report.trainable_params,
        buffers=report.total_buffers,
        macs=report.total_macs,
        input_shape=tuple(report.input_shape),
        output_shape=report.output_shape,
        layers=len(report.layers),
        warnings=len(report.warnings),
        errors=len(report.errors),
    )
