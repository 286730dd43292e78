"""Benchmark: how long ``convcalc verify --gradcheck`` takes, directional against per entry.

Run from the repository root::

    python benchmarks/bench_gradcheck.py                  # every case below
    python benchmarks/bench_gradcheck.py --only simple,unet
    python benchmarks/bench_gradcheck.py --json           # machine-readable, nothing else

Each case is one :func:`convcalc.verify` at batch 1 — the float32 build, forward and
backward, then the float64 gradient check — timed from the outside (wall and CPU
seconds of this process), and, as the baseline measured in the same run, one float64
forward and backward pass of the same network on the engine (``engine.build``, then
``forward`` and ``backward``: what one training step costs).  Each figure is also given
as a ratio against that baseline, which carries over between machines better than
seconds do; the machine line gives NumPy's float32 matmul rate (2048², best of 3) and
the load average, to place the seconds.

Cases (``--only`` takes their names):

* ``simple`` — examples/simple-convnet.yaml (SimpleConvNet, 433,890 parameters): the
  directional check, the per-entry check (``gradcheck="entries"``) and the directional
  check against the whole network (``engine.gradcheck(..., scope="network")``, the
  variant that re-runs the network from each tensor's layer) for comparison;
* ``unet`` — zoo:unet_same at [3, 64, 64] (31,037,698 parameters, 67 layers; the small
  U-Net of issue 14): the directional check; target under 30 s;
* ``resnet18`` — zoo:resnet18 at [3, 224, 224] through the service (``POST
  /api/v1/verify?gradcheck=true&batch=1`` on the app in this process, its worker a
  separate process with one BLAS thread, as ``convcalc serve`` runs it): the answer must
  be 200 within the service's 60 s limit, not 504.

``--entries-unet`` adds the per-entry check on the U-Net (minutes).  Nothing is
written; the exit status is 0 when every check passed (and the service answered 200).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import bench_conv  # noqa: E402
import convcalc  # noqa: E402
import engine  # noqa: E402

CASES = ("simple", "unet", "resnet18")


def spec_of(name: str, shape: list[int] | None = None) -> Any:
    """A spec by file or zoo name, at ``shape`` when given."""
    spec = convcalc.load(name)
    return spec if shape is None else spec.with_input(shape)


def timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall s, CPU s, result)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def one_step(spec: Any) -> tuple[float, float]:
    """The baseline: one float64 forward + backward on the engine (build not timed)."""
    net = engine.build(spec, seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((1, *spec.input))

    def step() -> None:
        y = net.forward(x)
        net.backward(np.ones_like(y))

    step()                                   # first call: workspaces, caches
    wall, cpu, _ = timed(step)
    return wall, cpu


def row(case: str, what: str, wall: float, cpu: float | None, base: tuple[float, float],
        ok: bool, note: str = "") -> dict[str, Any]:
    """One printed line; ``cpu`` None where the work ran in another process."""
    return {"case": case, "what": what, "wall_s": round(wall, 2),
            "cpu_s": None if cpu is None else round(cpu, 2),
            "baseline_wall_s": round(base[0], 3), "baseline_cpu_s": round(base[1], 3),
            "wall_ratio": round(wall / base[0], 1),
            "cpu_ratio": None if cpu is None else round(cpu / base[1], 1),
            "ok": ok, "note": note}


def verify_rows(case: str, spec: Any, base: tuple[float, float],
                methods: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for method in methods:
        wall, cpu, result = timed(lambda: convcalc.verify(
            spec, batch=1, gradcheck=method, max_memory="8GiB"))
        check = result.seconds.get("gradcheck", 0.0)
        rows.append(row(case, f"verify gradcheck={method}", wall, cpu, base, result.ok,
                        f"of which the check {check:.2f} s"))
    return rows


def network_scope_row(case: str, spec: Any, base: tuple[float, float]) -> dict[str, Any]:
    wall, cpu, result = timed(lambda: engine.gradcheck(spec, batch=1, scope="network"))
    return row(case, "engine.gradcheck scope=network", wall, cpu, base, result.ok,
               "the check alone")


def service_row(spec_name: str, base: tuple[float, float]) -> dict[str, Any]:
    """ResNet-18 through the service: its worker process, its time limit."""
    from fastapi.testclient import TestClient

    from convcalc.service.app import create_app
    from convcalc.service.limits import Limits

    limits = Limits()
    body = convcalc.zoo.text(spec_name).encode("utf-8")
    with TestClient(create_app(limits)) as client:
        client.get("/api/v1/health")
        wall, _, response = timed(lambda: client.post(
            "/api/v1/verify?gradcheck=true&batch=1", content=body,
            headers={"Content-Type": "application/yaml"}))
    ok = response.status_code == 200 and response.json()["ok"]
    note = (f"HTTP {response.status_code}; limit {limits.verify_timeout:g} s"
            + (f"; the check {response.json()['seconds']['gradcheck']:.2f} s"
               if response.status_code == 200 else ""))
    return row("resnet18", "service verify?gradcheck=true", wall, None, base, ok,
               note + " (CPU: in the worker process)")


def measure(cases: tuple[str, ...], entries_unet: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if "simple" in cases:
        spec = spec_of(str(ROOT / "examples" / "simple-convnet.yaml"))
        base = one_step(spec)
        rows += verify_rows("simple", spec, base, ("directions", "entries"))
        rows.append(network_scope_row("simple", spec, base))
    if "unet" in cases:
        spec = spec_of("zoo:unet_same", [3, 64, 64])
        base = one_step(spec)
        methods = ("directions", "entries") if entries_unet else ("directions",)
        rows += verify_rows("unet", spec, base, methods)
    if "resnet18" in cases:
        spec = spec_of("zoo:resnet18")
        base = one_step(spec)
        rows.append(service_row("resnet18", base))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(CASES),
                        help=f"comma-separated cases ({', '.join(CASES)})")
    parser.add_argument("--entries-unet", action="store_true",
                        help="also the per-entry check on the U-Net (minutes)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    cases = tuple(name for name in args.only.split(",") if name)
    unknown = [name for name in cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)} (cases: {', '.join(CASES)})")
    gflops = bench_conv.matmul_gflops(3)
    machine = {"matmul_gflops_float32": round(gflops, 1), "cpus": os.cpu_count(),
               "blas_threads": bench_conv.blas_threads(),
               "load_average": [round(v, 2) for v in os.getloadavg()]}
    rows = measure(cases, args.entries_unet)
    machine["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
    else:
        print(f"numpy.matmul 2048×2048 float32: {gflops:.1f} GFLOP/s; {os.cpu_count()} CPUs, "
              f"{machine['blas_threads']} BLAS threads; load average "
              f"{' '.join(map(str, machine['load_average']))} before, "
              f"{' '.join(map(str, machine['load_average_after']))} after")
        print("baseline: one float64 forward + backward of the same network (engine)")
        print(f"{'case':9} {'what':34} {'wall s':>8} {'CPU s':>8} {'×base wall':>10} "
              f"{'×base CPU':>9}  {'ok':3} note")
        for r in rows:
            cpu = "—" if r["cpu_s"] is None else f"{r['cpu_s']:.2f}"
            cpu_ratio = "—" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.1f}"
            print(f"{r['case']:9} {r['what']:34} {r['wall_s']:8.2f} {cpu:>8} "
                  f"{r['wall_ratio']:10.1f} {cpu_ratio:>9}  "
                  f"{'yes' if r['ok'] else 'NO':3} {r['note']}")
        simple = {r["what"]: r for r in rows if r["case"] == "simple"}
        if simple:
            ratio = (simple["verify gradcheck=entries"]["wall_s"]
                     / max(simple["verify gradcheck=directions"]["wall_s"], 1e-9))
            print(f"SimpleConvNet: the per-entry check takes {ratio:.1f}× the directional "
                  "one (wall)")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
