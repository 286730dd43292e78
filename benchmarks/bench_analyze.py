"""Benchmark: how long convcalc takes to load and analyse every zoo model, against
PyTorch's forward pass of the same network on the meta device.

Run from the repository root::

    python benchmarks/bench_analyze.py                 # --repeat 30 by default
    python benchmarks/bench_analyze.py --repeat 100 --only resnet50,googlenet
    python benchmarks/bench_analyze.py --json          # machine-readable, nothing else

For every model of :func:`convcalc.zoo.names` it prints

* load — ``convcalc.load("zoo:NAME")``: read, parse, expand the blocks, validate;
* analyze — ``convcalc.analyze(spec)`` on the loaded spec, in this process, and the
  same per layer (``len(spec.layers)``, the flat layers after block expansion);
* meta — when torch imports and :data:`torch_models.MODELS` has the model: the same
  network written in plain PyTorch as torchvision defines it, run forward on PyTorch's
  meta device (``torch.empty((1, *input), device="meta")``, under ``torch.no_grad()``,
  in eval mode, as for inference — ``--torch-mode train`` times training mode, where
  every batchnorm also updates its running statistics and PyTorch is 1.5–3× slower):
  shape propagation through PyTorch's dispatcher and its meta kernels, no arithmetic and
  no memory for values;
* meta / analyze — how many times faster convcalc is, measured in the same run.

Every time is the median of ``--repeat`` runs after ``--warmup`` runs; analyze and the
meta forward are timed alternately (one run of each in turn), so that the ratio does not
depend on the machine getting busier between them; each model waits first (up to 30 s)
for the other processes to leave the CPUs alone, and the models it waited for in vain
are named.  Absolute times are printed beside
the machine's 2048×2048 float32 ``numpy.matmul`` GFLOP/s, measured in the same run with
``bench_conv.matmul_gflops``.  Targets (issue 10): on ResNet-50 and GoogLeNet, analyze
≤ 20 µs per layer and ≥ 30× faster than the meta forward; ✓/✗ is printed per target.
The exit status is 0 regardless (it is a report).

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

try:  # optional: only for the comparison column
    import torch

    import torch_models
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
    torch_models = None

#: model → (µs per layer at most, meta / analyze at least)
TARGETS = {"resnet50": (20.0, 30.0), "googlenet": (20.0, 30.0)}
REPEAT, WARMUP = 30, 3


def median_times(runners: dict[str, Callable[[], object]], repeat: int,
                 warmup: int) -> dict[str, float]:
    """Median wall time (s) of each runner over ``repeat`` runs after ``warmup`` runs;
    the runners take turns, one run each, so they see the same machine."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def meta_forward(name: str, input_shape: list[int], mode: str = "eval"
                 ) -> Callable[[], object] | None:
    """One forward pass of the PyTorch model on the meta device, or None without torch
    or without a PyTorch definition of ``name``."""
    if torch is None or name not in torch_models.MODELS:
        return None
    model = torch_models.build(name, "meta").train(mode == "train")
    x = torch.empty((1, *input_shape), device="meta")

    def run() -> object:
        with torch.no_grad():
            return model(x)
    return run


def bench_model(name: str, repeat: int, warmup: int, mode: str = "eval"
                ) -> dict[str, Any]:
    label = zoo.label(name)
    gc.collect()
    bench_conv.wait_until_idle(name)
    load = median_times({"load": lambda: convcalc.load(label)}, repeat, warmup)["load"]
    spec = convcalc.load(label)
    layers = len(spec.layers)
    runners: dict[str, Callable[[], object]] = {"analyze": lambda: convcalc.analyze(spec)}
    forward = meta_forward(name, list(spec.input), mode)
    if forward is not None:
        runners["meta"] = forward
    gc.collect()
    times = median_times(runners, repeat, warmup)
    result: dict[str, Any] = {
        "model": name, "layers": layers, "load_ms": load * 1e3,
        "analyze_ms": times["analyze"] * 1e3,
        "analyze_us_per_layer": times["analyze"] * 1e6 / layers,
        "meta_ms": None, "meta_over_analyze": None,
    }
    if "meta" in times:
        result["meta_ms"] = times["meta"] * 1e3
        result["meta_over_analyze"] = times["meta"] / times["analyze"]
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
        times = None if row is None else row["meta_over_analyze"]
        checks.append({"model": name, "target": f"≥ {ratio:g}× faster than the meta forward",
                       "value": times, "ok": None if times is None else times >= ratio})
    return checks


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


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


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
        f"median of {info['repeat']} runs after {info['warmup']} warm-up runs; analyze and "
        f"the meta forward ({info['torch_mode']} mode) timed alternately",
        "",
    ]
    header = (f"{'model':<15} {'layers':>6} {'load ms':>8} {'analyze ms':>10} "
              f"{'µs/layer':>8} {'meta ms':>8} {'meta/analyze':>12}")
    lines += [header, "-" * len(header)]
    for r in results:
        meta = "-" if r["meta_ms"] is None else f"{r['meta_ms']:.2f}"
        ratio = "-" if r["meta_over_analyze"] is None else f"{r['meta_over_analyze']:.1f}×"
        lines.append(f"{r['model']:<15} {r['layers']:>6} {r['load_ms']:8.2f} "
                     f"{r['analyze_ms']:10.3f} {r['analyze_us_per_layer']:8.1f} "
                     f"{meta:>8} {ratio:>12}")
    lines.append("")
    for c in checks:
        if c["ok"] is None:
            lines.append(f"- {c['model']}: {c['target']}: not measured in this run")
            continue
        value = (f"{c['value']:.1f} µs per layer" if "µs" in c["target"]
                 else f"{c['value']:.1f}×")
        lines.append(f"{'✓' if c['ok'] else '✗'} {c['model']}: {c['target']} ({value})")
    if info["not_idle"]:
        lines.append(f"\nnote: other processes kept the CPUs busy while timing: "
                     f"{', '.join(info['not_idle'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=REPEAT,
                        help="timed runs per measurement (the median is kept)")
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help="untimed runs before each measurement")
    parser.add_argument("--only", default=",".join(zoo.names()),
                        help="comma-separated zoo models (default: all)")
    parser.add_argument("--torch-mode", choices=("eval", "train"), default="eval",
                        help="the PyTorch models' mode (default eval, as for inference)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    for name in names:
        zoo.path(name)                      # an unknown name fails before any timing
    busy = bench_conv.cpu_busy()
    gflops = bench_conv.matmul_gflops(5)
    time.sleep(0.3)                         # let BLAS's threads stop spinning
    results = [bench_model(name, args.repeat, args.warmup, args.torch_mode)
               for name in names]
    checks = check_targets(results)
    info = {"machine": machine(), "matmul_gflops": gflops, "cpu_busy": busy,
            "repeat": args.repeat, "warmup": args.warmup, "torch_mode": args.torch_mode}
    info["not_idle"] = [n for n in bench_conv.NOT_IDLE if n != "mm"]
    info["matmul_not_idle"] = "mm" in bench_conv.NOT_IDLE
    if args.json:
        print(json.dumps({**info, "models": results, "targets": checks}, indent=2,
                         ensure_ascii=False))
    else:
        print(render(info, results, checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
