"""``benchmarks/load_service.py`` runs: a small burst against one process and against
two workers, side by side (timings are not checked: machines are noisy)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import load_service  # noqa: E402


def test_compare_prints_both_sides(capsys):
    code = load_service.main(["--requests", "40", "--warmup", "8", "--concurrency", "4",
                              "--compare", "2", "--spec", str(ROOT / "examples" / "simple-convnet.yaml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"NumPy float32 matmul \d+ GFLOP/s", out)
    rows = re.findall(r"^(1 process|2 workers) +([\d.]+) +([\d.]+)× .* (\d+)$", out, re.M)
    assert [(name, ratio, failures) for name, _, ratio, failures in rows][0] == (
        "1 process", "1.00", "0")
    assert [name for name, *_ in rows] == ["1 process", "2 workers"] and rows[1][3] == "0"
