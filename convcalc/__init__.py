"""convcalc — CNN shape, parameter, cost and receptive-field calculator.

>>> import convcalc
>>> spec = convcalc.loads('''
... input: [3, 32, 32]
... layers:
...   - {type: conv, filters: 10, kernel: 5, stride: 1, padding: 2}
... ''')
>>> report = convcalc.analyze(spec)
>>> report.layers[0].output_shape, report.total_params
((10, 32, 32), 760)

The calculator is pure Python with exact integer arithmetic; it never imports NumPy.

The names below are imported when first used (PEP 562), so that ``import
convcalc.spec`` — all the reference engine reads of the calculator — loads the spec
models and nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → the module that defines it
_EXPORTS = {
    "analyze": "analysis",
    "load": "loading",
    "loads": "loading",
    "validate": "loading",
    "Spec": "spec",
    "LAYER_MODELS": "spec",
    "Report": "report",
    "LayerRow": "report",
    "Diagnostic": "errors",
    "ConvCalcError": "errors",
    "SpecError": "errors",
    "ShapeError": "errors",
    "ResourceError": "errors",
    "UnknownLayerError": "errors",
    "verify": "verification",
    "VerificationResult": "verification",
    "render_table": "render",
    "render_markdown": "render",
    "render_json": "render",
    "render_verification": "render",
    "render_csv": "render",
    "footprint": "training_memory",
    "Footprint": "training_memory",
    "valid_sizes": "sizes",
    "AxisSizes": "sizes",
}

__all__ = [
    "analyze",
    "load",
    "loads",
    "validate",
    "json_schema",
    "Spec",
    "Report",
    "LayerRow",
    "Diagnostic",
    "ConvCalcError",
    "SpecError",
    "ShapeError",
    "ResourceError",
    "UnknownLayerError",
    "verify",
    "VerificationResult",
    "render_table",
    "render_markdown",
    "render_json",
    "render_verification",
    "render_csv",
    "footprint",
    "Footprint",
    "valid_sizes",
    "AxisSizes",
    "LAYER_MODELS",
    "zoo",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import zoo
    from .analysis import analyze
    from .errors import (ConvCalcError, Diagnostic, ResourceError, ShapeError, SpecError,
                         UnknownLayerError)
    from .loading import load, loads, validate
    from .render import (render_csv, render_json, render_markdown, render_table,
                         render_verification)
    from .report import LayerRow, Report
    from .sizes import AxisSizes, valid_sizes
    from .spec import LAYER_MODELS, Spec
    from .training_memory import Footprint, footprint
    from .verification import VerificationResult, verify


def __getattr__(name: str) -> Any:
    if name == "zoo":
        return import_module(".zoo", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'convcalc' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value          # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec language (what ``convcalc schema`` prints)."""
    from .schema import spec_json_schema

    return spec_json_schema()
