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
"""

from .analysis import analyze
from .errors import ConvCalcError, Diagnostic, ResourceError, ShapeError, SpecError
from .loading import load, loads, validate
from .report import LayerRow, Report
from .spec import LAYER_MODELS, Spec
from .verification import VerificationResult, verify
from . import zoo  # noqa: E402  (the model zoo: convcalc.zoo.names(), zoo:NAME files)

__version__ = "0.1.0"

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
    "verify",
    "VerificationResult",
    "LAYER_MODELS",
    "zoo",
    "__version__",
]


def json_schema() -> dict:
    """The JSON Schema of the spec language (what ``convcalc schema`` prints)."""
    from .schema import spec_json_schema

    return spec_json_schema()
