"""A spec at a small valid input size, for the cross-checks that run real arrays
(the ONNX and PyTorch exports): the zoo's own sizes would take minutes."""

from __future__ import annotations

from typing import Any

import convcalc
from convcalc.sizes import SizesTooComplex, valid_sizes


def runs(spec: Any) -> bool:
    """Whether ``spec`` analyses without errors."""
    return not convcalc.analyze(spec, fields=False).errors


def small_input(spec: Any, target: int) -> Any:
    """The spec at spatial size ``target`` on every axis when it analyses without
    errors there, else at the valid sizes nearest ``target`` (at least the smallest,
    never above the spec's own), else as it is."""
    if len(spec.input) < 2 or max(spec.input[1:]) <= target:
        return spec
    square = spec.with_input([spec.input[0]] + [target] * (len(spec.input) - 1))
    if runs(square):
        return square
    try:
        answers = valid_sizes(spec.with_input([spec.input[0]] + [None] * (len(spec.input) - 1)))
    except SizesTooComplex:
        return spec
    sizes = []
    for answer, native in zip(answers, spec.input[1:]):
        size = target if answer.contains(target) else answer.nearest(target)[1]
        sizes.append(native if size is None or size > native else size)
    smaller = spec.with_input([spec.input[0], *sizes])
    return smaller if runs(smaller) else spec
