"""Benchmark: the peak memory :func:`convcalc.verify` measures beside its estimate, and
what measuring it costs.

Run from the repository root::

    python benchmarks/bench_verify_memory.py                  # the examples below
    python benchmarks/bench_verify_memory.py --only lenet5 --repeat 3

Per example, :func:`convcalc.verify` at batch 1, ``--repeat`` times each way, the two
ways taking turns: as it runs (its engine run under :mod:`tracemalloc`) and, as the
baseline measured in the same run, with the trace left out.  Printed: the measured peak
against the estimate of the arrays (the estimate without the interpreter's share), the
median seconds of each way and their ratio; the machine line gives NumPy's float32
matmul rate, to place the seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_conv  # noqa: E402
import convcalc  # noqa: E402
from convcalc import verification  # noqa: E402
from convcalc.memory import RUNTIME_BYTES  # noqa: E402

EXAMPLES = ("simple-convnet", "lenet5", "squeeze-excitation", "vgg16")


def untraced(run: Callable[[], None]) -> None:
    """The stand-in for ``verification._traced_peak``: the run, nothing measured."""
    run()


def measure(name: str, repeat: int) -> dict[str, Any]:
    spec = convcalc.load(ROOT / "examples" / f"{name}.yaml")
    traced_peak = verification._traced_peak
    seconds: dict[str, list[float]] = {"traced": [], "untraced": []}
    result = None
    for _ in range(repeat):
        for way in ("traced", "untraced"):
            verification._traced_peak = traced_peak if way == "traced" else untraced
            try:
                started = time.perf_counter()
                outcome = convcalc.verify(spec, batch=1)
                seconds[way].append(time.perf_counter() - started)
            finally:
                verification._traced_peak = traced_peak
            if way == "traced":
                result = outcome
    assert result is not None and result.measured_peak is not None
    arrays = result.memory.total - RUNTIME_BYTES
    traced, plain = (statistics.median(seconds[w]) for w in ("traced", "untraced"))
    return {"name": name, "measured": result.measured_peak, "estimate": arrays,
            "traced_s": traced, "untraced_s": plain}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated example names (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each way")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else EXAMPLES
    print(f"numpy.matmul 2048×2048 float32: {bench_conv.matmul_gflops(3):.1f} GFLOP/s; "
          f"median of {args.repeat} runs each way, taking turns")
    print(f"{'example':20s} {'measured':>12s} {'estimate':>12s} {'measured/est':>12s} "
          f"{'traced s':>9s} {'untraced s':>10s} {'ratio':>6s}")
    for name in names:
        row = measure(name, args.repeat)
        print(f"{row['name']:20s} {row['measured']:12,d} {row['estimate']:12,d} "
              f"{row['measured'] / row['estimate']:12.0%} {row['traced_s']:9.3f} "
              f"{row['untraced_s']:10.3f} {row['traced_s'] / row['untraced_s']:5.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
