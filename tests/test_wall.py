"""The wall between the calculator and its oracle.

The engine may read the spec models and the error types of convcalc and nothing else
(it must not reuse the calculator's formulas); the calculator imports the engine only in
:func:`convcalc.verify`, when it is called, and never imports NumPy (also
tests/test_no_numpy.py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAY_IMPORT = {"convcalc", "convcalc.spec", "convcalc.errors"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from … import`` of the file names, with its line;
    ``from convcalc import spec`` counts as ``convcalc.spec``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module == "convcalc"]
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "engine").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_imports_only_the_spec_models_and_errors(path: Path) -> None:
    wrong = [f"line {line}: {name}" for line, name in imported_modules(path)
             if name.split(".")[0] == "convcalc" and name not in ENGINE_MAY_IMPORT]
    assert not wrong, f"{path.name} imports calculator code: {wrong}"


def test_importing_the_engine_loads_nothing_else_of_convcalc() -> None:
    code = ("import sys, engine\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'convcalc')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.split()
    assert set(loaded) <= ENGINE_MAY_IMPORT and "convcalc.spec" in loaded


@pytest.mark.parametrize("path", sorted((ROOT / "convcalc").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_calculator_does_not_import_the_engine_or_numpy(path: Path) -> None:
    """Only verification imports the engine and NumPy (inside :func:`convcalc.verify`),
    and the service's worker processes, which run it."""
    may_import_engine = {"verification.py", "worker.py"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for line, name in imported_modules(path):
        if name.split(".")[0] in ("engine", "numpy"):
            assert path.name in may_import_engine, f"line {line}: imports {name}"
    for node in tree.body:   # and never at import time
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) in top_level:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            assert not any(n.split(".")[0] in ("engine", "numpy") for n in names), \
                f"{path.name}:{node.lineno} imports the engine or numpy at import time"
