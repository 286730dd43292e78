"""Issue 14 point 7, a typed library: ``mypy --strict`` (the ``[tool.mypy]`` configuration
of pyproject.toml) finds nothing in ``convcalc/`` and ``engine/``; the package ships
``py.typed``; :meth:`Report.layer` on an unknown name says which names are close."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import convcalc
from convcalc.errors import ConvCalcError, UnknownLayerError

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_ships_py_typed():
    assert (ROOT / "convcalc" / "py.typed").is_file()
    assert '"convcalc" = ["py.typed"]' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


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
