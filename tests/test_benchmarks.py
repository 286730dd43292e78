"""The benchmark scripts the docs tell people to run still run, and add up.

Timings are not checked (machines are noisy); what is checked is that the scripts work
and that ``profile_winograd.py``'s split is arithmetic on its own measurements.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_conv  # noqa: E402
import profile_winograd  # noqa: E402


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the pauses that let a real benchmark's thread pools settle, and leave this
    process's malloc settings alone."""
    monkeypatch.setattr(profile_winograd, "steady_heap", lambda: True)
    monkeypatch.setattr(profile_winograd.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(profile_winograd, "wait_until_idle", lambda label: None)
    monkeypatch.setattr(bench_conv, "wait_until_idle", lambda label, limit=30.0: None)


def test_profile_split_adds_up_and_puts_matmul_back(no_waiting: None,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    matmul = np.matmul
    assert profile_winograd.main(["--only", "e", "--rounds", "1"]) == 0
    assert np.matmul is matmul
    out = capsys.readouterr().out
    assert "case e (8, 256, 14, 256, 3, 1, 1), path winograd" in out
    figures = {label: float(ms) for ms, label in
               re.findall(r"^ +([\d.]+)  (all matrix products|everything else.*|total)$",
                          out, re.MULTILINE)}
    products = [float(ms) for ms in re.findall(r"^ +([\d.]+)  (?:forward|backward) ", out,
                                                re.MULTILINE)]
    assert len(products) == 7          # 3 products forward, 4 backward
    # Each printed figure is rounded to 0.01 ms, so sums of n of them may be off by n/200.
    assert sum(products) == pytest.approx(figures["all matrix products"], abs=0.04)
    assert figures["all matrix products"] + figures[
        "everything else (copies, padding, sums)"] == pytest.approx(figures["total"],
                                                                    abs=0.015)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_steady_heap_takes_on_glibc() -> None:
    # In a child process: the settings last for the life of the process.
    child = subprocess.run(
        [sys.executable, "-c", "import bench_conv; print(bench_conv.steady_heap())"],
        cwd=Path(bench_conv.__file__).parent, capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "True"
