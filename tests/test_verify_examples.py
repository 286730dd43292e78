"""`convcalc verify` passes on every file in examples/ — VGG-16 included, at batch 1,
within the default memory limit (issue: "Done when")."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from convcalc.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 9


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_verify_passes_on_every_example(path):
    result = CliRunner().invoke(main, ["verify", str(path), "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "✓ verified:" in result.output
    assert "✗" not in result.output
