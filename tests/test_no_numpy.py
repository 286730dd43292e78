"""The calculator never imports NumPy: not on import, not to analyse VGG-16, not in the CLI.

Each check runs in a fresh interpreter, where nothing else can have imported NumPy first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VGG16 = str(ROOT / "examples" / "vgg16.yaml")

PROBES = {
    "import": "import convcalc",
    "analyze": (
        "import convcalc\n"
        f"report = convcalc.analyze(convcalc.load({VGG16!r}))\n"
        "assert report.total_params == 138_357_544\n"
        "convcalc.render_table(report); convcalc.render_markdown(report); convcalc.render_json(report); convcalc.json_schema()\n"
    ),
    "cli-check": (
        "from click.testing import CliRunner\n"
        "from convcalc.cli import main\n"
        f"result = CliRunner().invoke(main, ['check', {VGG16!r}, '--format', 'json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert '138357544' in result.output\n"
        "for args in (['schema'], ['layers'], ['check', '--help']):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0\n"
    ),
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_numpy_not_imported(name: str) -> None:
    code = PROBES[name] + (
        "\nimport sys\n"
        "leaked = sorted(m for m in sys.modules if m == 'numpy' or m.startswith('numpy.'))\n"
        "print(leaked)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_probe_would_see_numpy() -> None:
    """The same probe reports NumPy when it is imported (so the test above can fail)."""
    code = "import numpy\nimport sys\nprint('numpy' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        pytest.skip("numpy is not installed")
    assert done.stdout.strip() == "True"


def test_installed_script_does_not_import_numpy(tmp_path: Path) -> None:
    """The real ``convcalc check`` process: ``python -X importtime`` lists every import."""
    code = ("import sys\nfrom convcalc.cli import main\n"
            f"sys.argv = ['convcalc', 'check', {VGG16!r}]\nmain()\n")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "convcalc.analysis" in imported  # the probe sees convcalc's own modules
    assert not {m for m in imported if m == "numpy" or m.startswith("numpy.")}
