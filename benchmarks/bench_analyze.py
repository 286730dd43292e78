"""Benchmark: how long convcalc takes to load and analyse every zoo model, against
PyTorch's forward pass of the same network on the meta device.

Run from the repository root::

    python benchmarks/bench_analyze.py                 # --repeat 30 by default
    python benchmarks/bench_analyze.py --repeat 90 --only resnet50,googlenet
    python benchmarks/bench_analyze.py --json          # machine-readable, nothing else

For every model of :func:`convcalc.zoo.names` it prints

* load — ``convcalc.load("zoo:NAME")``: read, parse, expand the blocks, validate;
* analyze — ``convcalc.analyze(spec)`` on the loaded spec, in this process, and the
  same per layer (``len(spec.layers)``, the flat layers after block expansion);
* meta — when torch imports and :data:`torch_models.MODELS` has the model: the same
  network written in plain PyTorch as torchvision defines it, run forward on PyTorch's
  meta device (``torch.empty((1, *input), device="meta")``, under ``torch.no_grad()``):
  shape propagation through PyTorch's dispatcher and its meta kernels, no arithmetic and
  no memory for values.  Timed twice: in eval mode, as for inference, and in training
  mode, PyTorch's default for a freshly built model, where every batchnorm also
  computes batch statistics and updates its running ones (more ops, so slower);
* meta / analyze — how many times faster convcalc is, measured in the same run.

Every time is the median of ``--repeat`` timed runs, spread over three blocks per
measurement (each after ``--warmup`` untimed runs), the blocks of analyze and of the
meta forwards taking turns so that the ratios do not depend on the machine getting
busier between them; each model waits first (up to 30 s) for other processes to leave
the CPUs alone, and the models it waited for in vain are named.  Absolute times are
printed beside the machine's 2048×2048 float32 ``numpy.matmul`` GFLOP/s, measured in
the same run with ``bench_conv.matmul_gflops``.  Targets (issue 10): on ResNet-50 and
GoogLeNet, analyze ≤ 20 µs per layer and ≥ 30× faster than the meta forward; ✓/✗ is
printed per target, the ratio for both modes.  The exit status is 0 regardless (it is
a report).

This is not a test: it needs a quiet machine, and torch is not a dependency.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import convcalc  # noqa: E402
from convcalc import zoo  # noqa: E402

import bench_conv  # noqa: E402  (the matmul reference and the idle check)

try:  # optional: only for the comparison columns
    import torch

    import torch_models
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
    torch_models = None

#: model → (µs per layer at most, meta / analyze at least)
TARGETS = {"resnet50": (20.0, 30.0), "googlenet": (20.0, 30.0)}
MODES = ("eval", "train")
REPEAT, WARMUP, BLOCKS = 30, 3, 3


def median_times(runners: dict[str, Callable[[], object]], repeat: int,
                 warmup: int) -> dict[str, float]:
    """Median wall time (s) of each runner over ``repeat`` timed runs, in up to
    ``BLOCKS`` blocks per runner (each block after ``warmup`` untimed runs); the
    runners' blocks take turns, so all see the machine as it is over the whole time."""
    blocks = max(1, min(BLOCKS, repeat))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for block in range(blocks):
        runs = repeat // blocks + (block < repeat % blocks)
        for name, run in runners.items():
            for _ in range(warmup):
                run()
            for _ in range(runs):
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def meta_forward(name: str, input_shape: list[int], mode: str
                 ) -> Callable[[], object] | None:
    """One forward pass of the PyTorch model on the meta device in ``mode`` ("eval" or
    "train"), or None without torch or without a PyTorch definition of ``name``."""
    if torch is None or name not in torch_models.MODELS:
        return None
    model = torch_models.build(name, "meta").train(mode == "train")
    x = torch.empty((1, *input_shape), device="meta")

    def run() -> object:
        with torch.no_grad():
            return model(x)
    return run


def bench_model(name: str, repeat: int, warmup: int) -> dict[str, Any]:
    label = zoo.label(name)
    gc.collect()
    bench_conv.wait_until_idle(name)
    load = median_times({"load": lambda: convcalc.load(label)}, repeat, warmup)["load"]
    spec = convcalc.load(label)
    layers = len(spec.layers)
    runners: dict[str, Callable[[], object]] = {"analyze": lambda: convcalc.analyze(spec)}
    for mode in MODES:
        forward = meta_forward(name, list(spec.input), mode)
        if forward is not None:
            runners[mode] = forward
    gc.collect()
    times = median_times(runners, repeat, warmup)
    result: dict[str, Any] = {
        "model": name, "layers": layers, "load_ms": load * 1e3,
        "analyze_ms": times["analyze"] * 1e3,
        "analyze_us_per_layer": times["analyze"] * 1e6 / layers,
    }
    for mode in MODES:
        result[f"meta_{mode}_ms"] = times[mode] * 1e3 if mode in times else None
        result[f"meta_{mode}_over_analyze"] = times[mode] / times["analyze"] \
            if mode in times else None
    return result


def check_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per target: what it asks, the measured figure, whether it holds
    (``None``: not measured in this run)."""
    by_name = {r["model"]: r for r in results}
    checks = []
    for name, (per_layer, ratio) in TARGETS.items():
        row = by_name.get(name)
        us = None if row is None else row["analyze_us_per_layer"]
        checks.append({"model": name, "target": f"analyze ≤ {per_layer:g} µs per layer",
                       "value": us, "ok": None if us is None else us <= per_layer})
        for mode in MODES:
            times = None if row is None else row[f"meta_{mode}_over_analyze"]
            checks.append({"model": name,
                           "target": f"≥ {ratio:g}× faster than the meta forward, {mode} mode",
                           "value": times, "ok": None if times is None else times >= ratio})
    return checks


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__ if torch is not None else None,
    }


def render(info: dict[str, Any], results: list[dict[str, Any]],
           checks: list[dict[str, Any]]) -> str:
    m = info["machine"]
    lines = [
        f"{m['platform']}, {m['cpu']} ({m['cpu_count']} CPUs, {m['usable_cores']} usable), "
        f"python {m['python']}, torch {m['torch'] or 'not installed'}",
        f"numpy.matmul 2048×2048 float32: {info['matmul_gflops']:.1f} GFLOP/s; "
        f"CPUs busy before the run: {info['cpu_busy']:.0%}"
        + ("; other processes kept the CPUs busy while it was measured"
           if info["matmul_not_idle"] else ""),
        f"median of {info['repeat']} runs in up to {BLOCKS} blocks, each after "
        f"{info['warmup']} warm-up runs; analyze and the meta forwards take turns",
        "",
    ]
    header = (f"{'model':<15} {'layers':>6} {'load ms':>8} {'analyze ms':>10} "
              f"{'µs/layer':>8} {'meta eval ms':>12} {'eval/analyze':>12} "
              f"{'meta train ms':>13} {'train/analyze':>13}")
    lines += [header, "-" * len(header)]
    for r in results:
        cells = []
        for mode, width in (("eval", 12), ("train", 13)):
            ms, ratio = r[f"meta_{mode}_ms"], r[f"meta_{mode}_over_analyze"]
            cells.append(f"{'-' if ms is None else f'{ms:.2f}':>{width}} "
                         f"{'-' if ratio is None else f'{ratio:.1f}×':>{width}}")
        lines.append(f"{r['model']:<15} {r['layers']:>6} {r['load_ms']:8.2f} "
                     f"{r['analyze_ms']:10.3f} {r['analyze_us_per_layer']:8.1f} "
                     + " ".join(cells))
    lines.append("")
    for c in checks:
        if c["ok"] is None:
            lines.append(f"- {c['model']}: {c['target']}: not measured in this run")
            continue
        value = (f"{c['value']:.1f} µs per layer" if "µs" in c["target"]
                 else f"{c['value']:.1f}×")
        lines.append(f"{'✓' if c['ok'] else '✗'} {c['model']}: {c['target']} ({value})")
    for name, error in info["failed"].items():
        lines.append(f"✗ {name}: not timed, loading or analysing it raised {error}")
    if info["not_idle"]:
        lines.append(f"\nnote: other processes kept the CPUs busy while timing: "
                     f"{', '.join(info['not_idle'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=REPEAT,
                        help="timed runs per measurement (the median is kept)")
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help="untimed runs before each block of timed runs")
    parser.add_argument("--only", default=",".join(zoo.names()),
                        help="comma-separated zoo models (default: all)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    for name in names:
        zoo.path(name)                      # an unknown name fails before any timing
    busy = bench_conv.cpu_busy()
    gflops = bench_conv.matmul_gflops(5)
    time.sleep(0.3)                         # let BLAS's threads stop spinning
    results, failed = [], {}
    for name in names:
        try:
            results.append(bench_model(name, args.repeat, args.warmup))
        except Exception as exc:  # a model that cannot be analysed is reported, not timed
            failed[name] = f"{type(exc).__name__}: {exc}"
    checks = check_targets(results)
    info = {"machine": machine(), "matmul_gflops": gflops, "cpu_busy": busy,
            "repeat": args.repeat, "warmup": args.warmup,
            "matmul_not_idle": "mm" in bench_conv.NOT_IDLE,
            "not_idle": [n for n in bench_conv.NOT_IDLE if n != "mm"], "failed": failed}
    if args.json:
        print(json.dumps({**info, "models": results, "targets": checks}, indent=2,
                         ensure_ascii=False))
    else:
        print(render(info, results, checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
