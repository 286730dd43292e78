"""Issue 14 point 7, a typed library: ``mypy --strict`` (the ``[tool.mypy]`` configuration
of pyproject.toml) finds nothing in ``convcalc/`` and ``engine/``; the package ships
``py.typed``; :meth:`Report.layer` on an unknown name says which names are close."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convcalc
from convcalc.errors import ConvCalcError, UnknownLayerError

ROOT = Path(__file__).resolve().parent.parent


USER_SCRIPT = """\
import convcalc

report = convcalc.analyze({"input": [3, 8, 8], "layers": ["relu"]})
params: int = report.total_params
shape: str = report.layer("relu1").output_shape
"""


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]')")
def test_a_users_script_is_checked_against_the_installed_packages_types(tmp_path):
    """PEP 561: the wheel carries ``py.typed``, so mypy reads convcalc's annotations in
    a script that imports the installed package, and finds the script's mistake (an
    output shape is a tuple or None, not a str).  (An editable install is invisible to
    mypy: setuptools' import hook is not a path it can search.)"""
    assert (ROOT / "convcalc" / "py.typed").is_file()
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(wheel_dir), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(wheel_dir.glob("convcalc-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    assert (target / "convcalc" / "py.typed").is_file()
    script = tmp_path / "use.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "--cache-dir", str(tmp_path / "cache"), "use.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == (
        "use.py:5: error: Incompatible types in assignment (expression has type "
        '"tuple[int, ...] | None", variable has type "str")  [assignment]'), run.stdout


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_strict_is_clean(tmp_path):
    # the files and options are pyproject.toml's [tool.mypy]; the cache stays in tmp_path
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"mypy found problems:\n{run.stdout}{run.stderr}"


def _report():
    return convcalc.analyze({"input": [3, 8, 8], "layers": [
        {"type": "conv", "name": "conv1", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "relu", "name": "relu1"},
        {"type": "conv", "name": "conv2", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "relu", "name": "relu2"},
    ]})


def test_an_unknown_layer_name_lists_the_close_names():
    report = _report()
    assert report.layer("conv2").name == "conv2"
    with pytest.raises(UnknownLayerError) as caught:
        report.layer("conv7")
    assert str(caught.value) == ("no layer 'conv7' — did you mean 'conv1', 'conv2'? "
                                 "(4 layers: conv1, relu1, conv2, relu2)")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ConvCalcError)
    assert caught.value.name == "conv7" and caught.value.close == ("conv1", "conv2")
    with pytest.raises(KeyError) as caught:
        report.layer("zzz")
    assert str(caught.value) == "no layer 'zzz' (4 layers: conv1, relu1, conv2, relu2)"


def test_an_unknown_layer_among_many_names_a_dozen():
    report = convcalc.analyze({"input": [3, 8, 8],
                               "layers": [{"type": "relu", "name": f"r{i}"} for i in range(15)]})
    with pytest.raises(UnknownLayerError) as caught:
        report.layer("x")
    names = ", ".join(f"r{i}" for i in range(12))
    assert str(caught.value) == f"no layer 'x' (15 layers: {names} (and 3 more))"


def test_to_table_takes_a_depth():
    report = _report()
    assert report.to_table() == convcalc.render_table(report)
    assert report.to_table(depth=0) == convcalc.render_table(report, 0)


def _result_types() -> list[type]:
    from convcalc.axes import Window
    from convcalc.memory import MemoryEstimate
    from convcalc.receptive import Field1D, ReceptiveField
    from convcalc.report import GroupSummary
    from convcalc.verification import EndToEndCheck, LayerCheck

    return [convcalc.Report, convcalc.LayerRow, GroupSummary, convcalc.Footprint,
            convcalc.VerificationResult, LayerCheck, EndToEndCheck, MemoryEstimate,
            convcalc.Diagnostic, convcalc.AxisSizes, ReceptiveField, Field1D, Window]


@pytest.mark.parametrize("cls", _result_types(), ids=lambda cls: cls.__name__)
def test_every_field_of_a_result_type_is_described(cls):
    """The API page documents result types field by field: autodoc reads each field's
    ``#:`` comment, and a field without one would be listed bare."""
    import dataclasses

    from sphinx.pycode import ModuleAnalyzer

    described = ModuleAnalyzer.for_module(cls.__module__).find_attr_docs()
    bare = [f.name for f in dataclasses.fields(cls)
            if not "".join(described.get((cls.__qualname__, f.name), [])).strip()]
    assert not bare, f"{cls.__name__}: no description for {bare}"
