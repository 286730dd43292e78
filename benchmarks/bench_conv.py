"""Benchmark: the engine's conv and max-pool (forward + backward, float32) against
the textbook im2col implementation and, when installed, PyTorch on the CPU.

Run from the repository root::

    python benchmarks/bench_conv.py            # --rounds 10 by default
    python benchmarks/bench_conv.py --rounds 3 --only b,c,pool

For every case it prints the best wall time over ``--repeat`` blocks of ``--rounds``
runs (each block after warm-up runs; each implementation is timed in its own blocks,
after a pause and — for up to 30 s — after waiting for an idle CPU, because thread pools
that spin after a burst of work slow down whatever runs next in the same process) of

* ours — :class:`engine.conv.Conv` / :class:`engine.pool.Pool`, as the engine runs them:
  Winograd F(4×4, 3×3) for the dense 3×3 stride-1 cases b, c, e (column "path"), im2col
  for the others; where ours is Winograd, the "im2col" column times the same layer
  forced onto im2col (``Conv.algorithm = "im2col"``);
* textbook — the im2col of the course notes ("Deep Learning from Scratch"): a Python
  loop over the kernel offsets copying into a float64 buffer, the (N·OH·OW, C·kh·kw)
  matrix, one 2-D matmul, and the matching col2im loop; pooling takes the row max of
  the same matrix and scatters with an arg-max index;
* torch — ``torch.nn.functional.conv2d`` / ``max_pool2d`` with autograd, with as many
  threads as numpy's BLAS uses;

with glibc told to keep freed memory (:func:`steady_heap`), so that no implementation's
time depends on whether its fresh arrays happen to cost page faults in this process;
and the achieved GFLOP/s (``2·MACs·3`` for forward + both backward products, counted as
direct convolution: Winograd does fewer multiplications, so its figure is effective) as a
fraction of a 2048×2048 float32 ``numpy.matmul`` measured in the same run.  Targets:
textbook/ours ≥ 2 on every case; ours/torch ≤ 1.5 on b, c, e and ≤ 2 for max pooling.
PASS/FAIL is printed per target; the exit status is 0 regardless (it is a report).

This is not a test: it needs a quiet machine, and torch is not a dependency.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convcalc.spec import Conv as ConvSpec  # noqa: E402
from convcalc.spec import Pool as PoolSpec  # noqa: E402
from engine.conv import Conv  # noqa: E402
from engine.pool import Pool  # noqa: E402

try:  # optional: only for the comparison column
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

#: (N, C, H = W, filters, kernel, stride, pad)
CONV_CASES = {
    "a": (8, 3, 32, 10, 5, 1, 2),
    "b": (8, 64, 56, 64, 3, 1, 1),
    "c": (1, 64, 224, 64, 3, 1, 1),
    "d": (32, 1, 28, 30, 5, 1, 0),
    "e": (8, 256, 14, 256, 3, 1, 1),
}
POOL_CASE = (8, 64, 56, 56)             # 2×2 max pooling, stride 2
TORCH_TARGET = {"b": 1.5, "c": 1.5, "e": 1.5, "pool": 2.0}
TEXTBOOK_TARGET = 2.0


# --- the textbook implementation (the baseline) ----------------------------------------


def textbook_im2col(x, fh, fw, stride, pad):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((n, c, fh, fw, oh, ow))                     # float64, as in the notes
    for y in range(fh):
        for x_ in range(fw):
            col[:, :, y, x_] = img[:, :, y:y + stride * oh:stride, x_:x_ + stride * ow:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1), (oh, ow)


def textbook_col2im(col, x_shape, fh, fw, stride, pad, out):
    n, c, h, w = x_shape
    oh, ow = out
    col = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1))
    for y in range(fh):
        for x_ in range(fw):
            img[:, :, y:y + stride * oh:stride, x_:x_ + stride * ow:stride] += col[:, :, y, x_]
    return img[:, :, pad:h + pad, pad:w + pad]


def textbook_conv(x, weight, bias, dout, stride, pad):
    """Forward and backward of the textbook im2col convolution; returns (y, dx, dW, db)."""
    filters, _, fh, fw = weight.shape
    col, out = textbook_im2col(x, fh, fw, stride, pad)
    col_w = weight.reshape(filters, -1).T
    y = (col @ col_w + bias).reshape(x.shape[0], *out, -1).transpose(0, 3, 1, 2)
    d = dout.transpose(0, 2, 3, 1).reshape(-1, filters)
    db = d.sum(axis=0)
    dw = (col.T @ d).transpose(1, 0).reshape(weight.shape)
    dx = textbook_col2im(d @ col_w.T, x.shape, fh, fw, stride, pad, out)
    return y, dx, dw, db


def textbook_maxpool(x, dout, size, stride):
    n, c, _, _ = x.shape
    col, out = textbook_im2col(x, size, size, stride, 0)
    col = col.reshape(-1, size * size)
    arg_max = np.argmax(col, axis=1)
    y = np.max(col, axis=1).reshape(n, *out, c).transpose(0, 3, 1, 2)
    d = dout.transpose(0, 2, 3, 1)
    dmax = np.zeros((d.size, size * size))
    dmax[np.arange(arg_max.size), arg_max] = d.ravel()
    dcol = dmax.reshape(n * out[0] * out[1], -1)
    return y, textbook_col2im(dcol, x.shape, size, size, stride, 0, out)


# --- measuring ---------------------------------------------------------------------------


def blas_threads() -> int:
    """Threads numpy's OpenBLAS uses (asked through ctypes); else the usable cores."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs",
                                  "libscipy_openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                       "openblas_get_num_threads"):
            if hasattr(lib, symbol):
                return int(getattr(lib, symbol)())
    return len(os.sched_getaffinity(0))


def cpu_busy(seconds: float = 0.25) -> float:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat; 0 where unavailable)."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values), values[3] + values[4]
    if not Path("/proc/stat").exists():
        return 0.0
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


NOT_IDLE: list[str] = []


def wait_until_idle(label: str, limit: float = 30.0) -> None:
    """Wait (at most ``limit`` s) until other processes leave the CPUs alone."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cpu_busy() < 0.05:
            return
    if label not in NOT_IDLE:
        NOT_IDLE.append(label)


def steady_heap() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel
    (``mallopt``: no trimming, ``mmap`` only above 32 MiB).  Returns whether it could.

    Without this, whether an implementation's fresh arrays cost page faults depends on
    the heap's history in the process: PyTorch run alone pays ~6,000 minor faults per
    forward + backward on b (25 ms instead of 19) and ~12,500 on c (54 ms instead of 40),
    while after other work in the same process it may pay none.  The engine reuses its
    workspaces and pays none either way.  So every implementation is timed at its best.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_trim_threshold, 2**30)
                and libc.mallopt(m_mmap_threshold, 2**25))


REPEAT = 3


def best_times(runners: dict[str, Callable[[], object]], rounds: int,
               warmup: int = 2) -> dict[str, float]:
    """Best wall time (s) of each runner: ``REPEAT`` blocks of ``rounds`` runs each
    (after ``warmup`` runs), the blocks spread over time.

    Each runner is timed in its own blocks after a pause: thread pools (OpenMP,
    OpenBLAS) spin for a while after their work and would slow down the next runner.
    """
    best: dict[str, float] = {name: float("inf") for name in runners}
    for _ in range(REPEAT):
        for name, run in runners.items():
            time.sleep(0.3)
            wait_until_idle(name)
            for _ in range(warmup):
                run()
            for _ in range(rounds):
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def matmul_gflops(rounds: int) -> float:
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    seconds = best_times({"mm": lambda: a @ a}, rounds)["mm"]
    return 2 * 2048**3 / seconds / 1e9


def torch_conv(x, weight, bias, dout, stride, pad) -> Callable[[], None]:
    """One forward + backward of ``torch.nn.functional.conv2d`` on copies of the arrays
    (gradients of input, weights and bias; cleared after each run)."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    dt = torch.tensor(dout)

    def run() -> None:
        torch.nn.functional.conv2d(xt, wt, bt, stride, pad).backward(dt)
        xt.grad = wt.grad = bt.grad = None
    return run


def conv_case(case, rounds, rng):
    n, c, size, filters, k, stride, pad = case
    spec = ConvSpec(type="conv", name="conv", filters=filters, kernel=k, stride=stride,
                    padding=pad)
    layer = Conv(spec, rng, np.float32)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    y = layer.forward(x)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    weight, bias = layer.params["weight"], layer.params["bias"]

    # sanity: ours (float32) agrees with the textbook (float64)
    ty, tdx, tdw, _ = textbook_conv(x, weight, bias, dout, stride, pad)
    dx = layer.backward(dout)
    agree = max(np.abs(a - b).max() / np.abs(b).max()
                for a, b in [(y, ty), (dx, tdx), (layer.grads["weight"], tdw)])

    runners: dict[str, Callable[[], object]] = {
        "ours": lambda: layer.backward(dout) if layer.forward(x) is not None else None,
        "textbook": lambda: textbook_conv(x, weight, bias, dout, stride, pad),
    }
    path = layer._cache[0]
    if path != "im2col":
        plain = Conv(spec, rng, np.float32)
        plain.algorithm = "im2col"
        plain.forward(x[:0])
        plain.params = layer.params
        runners["im2col"] = lambda: plain.backward(dout) if plain.forward(x) is not None \
            else None
    if torch is not None:
        runners["torch"] = torch_conv(x, weight, bias, dout, stride, pad)
    times = best_times(runners, rounds)
    macs = y.size * c * k * k
    return times, 6 * macs, agree, path


def pool_case(rounds, rng):
    spec = PoolSpec(type="maxpool", name="pool", kernel=2, stride=2)
    layer = Pool(spec, rng, np.float32)
    x = rng.standard_normal(POOL_CASE).astype(np.float32)
    y = layer.forward(x)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    ty, tdx = textbook_maxpool(x, dout, 2, 2)
    agree = max(np.abs(y - ty).max(), np.abs(layer.backward(dout) - tdx).max())
    runners: dict[str, Callable[[], object]] = {
        "ours": lambda: layer.backward(dout) if layer.forward(x) is not None else None,
        "textbook": lambda: textbook_maxpool(x, dout, 2, 2),
    }
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        dt = torch.tensor(dout)

        def torch_run():
            torch.nn.functional.max_pool2d(xt, 2, 2).backward(dt)
            xt.grad = None
        runners["torch"] = torch_run
    return best_times(runners, rounds), 0, agree


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    global REPEAT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed runs per block")
    parser.add_argument("--repeat", type=int, default=REPEAT,
                        help="blocks per implementation, spread over time (best is kept)")
    parser.add_argument("--only", default="a,b,c,d,e,pool",
                        help="comma-separated cases among a,b,c,d,e,pool")
    args = parser.parse_args(argv)
    REPEAT = args.repeat
    cases = args.only.split(",")
    heap = steady_heap()
    rng = np.random.default_rng(0)
    threads = blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"python {platform.python_version()}, numpy {np.__version__}, BLAS threads "
          f"{threads}, torch {torch.__version__ if torch is not None else 'not installed'}, "
          f"CPU {cpu} ({len(os.sched_getaffinity(0))} usable cores)")
    print("glibc keeps freed memory (no page faults from fresh arrays)" if heap else
          "malloc left as it is (not glibc): fresh arrays may cost page faults")
    reference = matmul_gflops(args.rounds)
    print(f"numpy.matmul 2048×2048 float32: {reference:.1f} GFLOP/s")
    print(f"best of {args.repeat} blocks × {args.rounds} runs (each block after 2 warm-up "
          "runs); times in ms, forward + backward\n")

    header = (f"{'case':<5} {'shape (N,C,H,F,k,s,p)':<24} {'path':<8} {'ours':>8} "
              f"{'im2col':>8} {'textbook':>9} {'tb/ours':>8} {'torch':>8} {'ours/torch':>10} {'GFLOP/s':>8} {'of mm':>6}  "
              "targets")
    print(header)
    print("-" * len(header))
    failures = 0
    for name in cases:
        if name == "pool":
            times, flops, agree = pool_case(args.rounds, rng)
            path = "pool"
            shape = f"maxpool 2×2/2 {POOL_CASE}"
        else:
            times, flops, agree, path = conv_case(CONV_CASES[name], args.rounds, rng)
            shape = str(CONV_CASES[name]).replace(" ", "")
        ours, textbook = times["ours"], times["textbook"]
        speedup = textbook / ours
        checks = [f"tb/ours≥{TEXTBOOK_TARGET:g} {verdict(speedup >= TEXTBOOK_TARGET)}"]
        failures += speedup < TEXTBOOK_TARGET
        torch_ms = ratio = "-"
        if "torch" in times:
            torch_ms = f"{times['torch'] * 1e3:.2f}"
            ratio = f"{ours / times['torch']:.2f}"
            if name in TORCH_TARGET:
                ok = ours / times["torch"] <= TORCH_TARGET[name]
                checks.append(f"ours/torch≤{TORCH_TARGET[name]:g} {verdict(ok)}")
                failures += not ok
        elif name in TORCH_TARGET:
            checks.append("ours/torch: torch not installed")
        gflops = flops / ours / 1e9 if flops else 0.0
        plain = f"{times['im2col'] * 1e3:.2f}" if "im2col" in times else "-"
        print(f"{name:<5} {shape:<24} {path:<8} {ours * 1e3:8.2f} {plain:>8} "
              f"{textbook * 1e3:9.2f} {speedup:8.2f} "
              f"{torch_ms:>8} {ratio:>10} "
              f"{(f'{gflops:.1f}' if flops else '-'):>8} "
              f"{(f'{gflops / reference:.0%}' if flops else '-'):>6}  {'; '.join(checks)}"
              f"  (agrees with textbook to {agree:.1e})")
    if NOT_IDLE:
        print(f"\nnote: other processes kept the CPUs busy during some blocks of: "
              f"{', '.join(NOT_IDLE)}")
    print(f"\n{'all targets met' if not failures else f'{failures} target(s) missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
