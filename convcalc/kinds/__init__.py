"""The calculator's layer kinds, one module per family; importing this package
registers every kind in :data:`REGISTRY` (spec model class → kind).

Where a new layer kind goes: its spec model in :mod:`convcalc.spec` (with examples),
its kind in the family module here (rule and memory cost), its engine class in
``engine/`` — see ``docs/architecture.rst``.
"""

from . import adaptive, conv, dense, elementwise, merge, norm, pool, resize, routing  # noqa: F401  (they register)
from .base import REGISTRY, Context, Cost, Fatal, Kind, Outcome, State, UnknownKind, kind_of

__all__ = ["REGISTRY", "Context", "Cost", "Fatal", "Kind", "Outcome", "State", "UnknownKind",
           "kind_of"]
