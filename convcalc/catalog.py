"""The zoo's models analysed: one :class:`Summary` of totals per model (what ``convcalc
zoo`` lists and the service's ``/api/v1/zoo`` answers).

>>> summary("resnet18").params
11689512
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import zoo
from .analysis import analyze
from .loading import load


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
    """Analyse zoo model ``name`` (``"resnet50"`` or ``"zoo:resnet50"``) and return its
    totals (``layers`` counts the flat layers, blocks and ``repeat`` expanded)."""
    label = zoo.label(name)
    spec = load(label)
    report = analyze(spec)
    bare = label[len(zoo.PREFIX):]
    return Summary(
        name=bare,
        title=spec.name or bare,
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
