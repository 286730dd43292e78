"""Export a checked design as framework code: ``convcalc export net.yaml --to pytorch``.

:func:`export` analyses the spec and hands the analysis to one exporter:

- ``pytorch`` (:mod:`convcalc.export.pytorch`): a self-contained Python file defining
  ``Net``, an ``nn.Module`` built with no arguments, its attributes named after the
  spec's layers, its ``forward`` following the graph (text);
- ``onnx`` (:mod:`convcalc.export.onnx`, when present): an ONNX model (bytes), from
  ``convcalc.export.onnx.to_onnx(spec, report) -> bytes``.

Generating code needs no framework: the calculator never imports torch (or NumPy).
A spec with errors is not exported (:class:`ExportError` lists them); its input must
have every size (open sizes are set with ``Spec.with_input``, or by the CLI's
``--input``, or the smallest valid size as ``convcalc check`` takes it).

>>> from convcalc.export import export
>>> code = export({"input": [3, 8, 8], "layers": [{"type": "conv", "filters": 4, "kernel": 3}]})
>>> print(code.split("def forward")[0].rstrip().splitlines()[-1].strip())
self.conv1 = nn.Conv2d(3, 4, kernel_size=3)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..errors import ConvCalcError

#: ``--to`` target → (module of this package, function, what it returns)
TARGETS = {"pytorch": ("pytorch", "to_pytorch"), "onnx": ("onnx", "to_onnx")}


class ExportError(ConvCalcError):
    """The spec cannot be exported (errors in it, open sizes, a target that is not
    available)."""


def prepare(spec: Any) -> tuple[Any, Any]:
    """The validated spec and its analysis, or :class:`ExportError` when it has errors or
    open sizes."""
    from ..analysis import analyze
    from ..loading import validate

    spec = validate(spec)
    if spec.open_axes:
        shape = ", ".join("null" if n is None else str(n) for n in spec.input)
        raise ExportError(f"the input [{shape}] leaves sizes open; an exported model is "
                          "built for one input size: give it with --input (convcalc sizes "
                          "says which work)")
    report = analyze(spec, fields=False)
    if report.errors:
        lines = "\n".join(problem.format() for problem in report.errors)
        raise ExportError(f"not exported: the spec has {len(report.errors)} "
                          f"error{'s' if len(report.errors) != 1 else ''}\n{lines}")
    return spec, report


def exporter(to: str) -> Any:
    """The function that exports to ``to`` (``pytorch`` or ``onnx``)."""
    if to not in TARGETS:
        raise ExportError(f"cannot export to {to!r}: the targets are "
                          f"{', '.join(sorted(TARGETS))}")
    module_name, function = TARGETS[to]
    try:
        module = import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{module_name}":
            raise
        raise ExportError(f"export to {to} is not available in this version of "
                          "convcalc") from None
    if not hasattr(module, function):
        raise ExportError(f"export to {to} is not available in this version of convcalc")
    return getattr(module, function)


def export(spec: Any, to: str = "pytorch", **options: Any) -> Any:
    """``spec`` (a :class:`~convcalc.spec.Spec` or a dict) exported to ``to``: the
    Python source for ``pytorch``, the model's bytes for ``onnx``.  ``options`` go to
    the exporter (``source=`` names the spec file in the generated code's docstring)."""
    function = exporter(to)
    spec, report = prepare(spec)
    return function(spec, report, **options)


__all__ = ["ExportError", "TARGETS", "export", "exporter", "prepare"]
