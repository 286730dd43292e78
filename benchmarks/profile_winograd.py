"""Where the Winograd path's time goes: matrix products against everything else.

Run from the repository root::

    python benchmarks/profile_winograd.py              # cases b, c, e
    python benchmarks/profile_winograd.py --only b --rounds 20

For each dense 3×3 case of ``bench_conv.py`` it runs :class:`engine.conv.Conv` forward +
backward (float32, the Winograd path) with every ``numpy.matmul`` call timed, and prints
the fastest run split into its matrix products (tile transforms and the 36-way products,
labelled by phase and operand shapes) and the rest (padding, the copies between the
image layout and the tile layout, the bias sum).  Beside it: PyTorch's forward + backward
of the same convolution in the same run, when torch is installed, as in
``bench_conv.py`` (and with glibc keeping freed memory, as there: see
``bench_conv.steady_heap``).

The point of the split is the floor it shows: the products alone are work that NumPy
cannot do without, so ``products / torch`` bounds from below what any rearrangement of
the copies could reach.  The few small ``@`` products on the weights are not counted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_conv import (  # noqa: E402
    CONV_CASES,
    best_times,
    blas_threads,
    steady_heap,
    torch,
    torch_conv,
    wait_until_idle,
)

from convcalc.spec import Conv as ConvSpec  # noqa: E402
from engine.conv import Conv  # noqa: E402

WINOGRAD_CASES = ("b", "c", "e")


@contextmanager
def timed_matmul(log: dict[str, float], phase: str) -> Iterator[None]:
    """Replace ``numpy.matmul`` by a wrapper adding each call's seconds to
    ``log["<phase> <shape> @ <shape>"]``."""
    matmul = np.matmul

    def timed(a, b, *args, **kwargs):
        start = time.perf_counter()
        result = matmul(a, b, *args, **kwargs)
        log[f"{phase:<8} {np.shape(a)} @ {np.shape(b)}"] += time.perf_counter() - start
        return result
    np.matmul = timed
    try:
        yield
    finally:
        np.matmul = matmul


def profile(layer: Conv, x: np.ndarray, dout: np.ndarray, runs: int
            ) -> tuple[float, dict[str, float]]:
    """The fastest of ``runs`` forward + backward passes: its total seconds and its
    seconds per matrix product."""
    best: tuple[float, dict[str, float]] = (float("inf"), {})
    for _ in range(runs):
        log: dict[str, float] = defaultdict(float)
        start = time.perf_counter()
        with timed_matmul(log, "forward"):
            layer.forward(x)
        with timed_matmul(log, "backward"):
            layer.backward(dout)
        total = time.perf_counter() - start
        if total < best[0]:
            best = (total, dict(log))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed runs per block")
    parser.add_argument("--only", default=",".join(WINOGRAD_CASES),
                        help="comma-separated cases among " + ",".join(WINOGRAD_CASES))
    args = parser.parse_args(argv)
    steady_heap()
    threads = blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"numpy {np.__version__}, BLAS threads {threads}, torch "
          f"{torch.__version__ if torch is not None else 'not installed'}; times in ms, "
          "forward + backward, fastest of 3 blocks × --rounds runs\n")
    rng = np.random.default_rng(0)
    for name in args.only.split(","):
        n, c, size, filters, k, stride, pad = CONV_CASES[name]
        layer = Conv(ConvSpec(type="conv", name="conv", filters=filters, kernel=k,
                              stride=stride, padding=pad), rng, np.float32)
        x = rng.standard_normal((n, c, size, size)).astype(np.float32)
        dout = rng.standard_normal(layer.forward(x).shape).astype(np.float32)
        layer.backward(dout)
        total, products = float("inf"), {}
        for _ in range(3):
            time.sleep(0.3)
            wait_until_idle(name)
            profile(layer, x, dout, 2)                                # warm-up
            run = profile(layer, x, dout, args.rounds)
            total, products = min((total, products), run, key=lambda t: t[0])
        print(f"case {name} {CONV_CASES[name]}, path {layer._cache[0]}")
        for label, seconds in products.items():
            print(f"  {seconds * 1e3:7.2f}  {label}")
        in_products = sum(products.values())
        print(f"  {in_products * 1e3:7.2f}  all matrix products")
        print(f"  {(total - in_products) * 1e3:7.2f}  everything else (copies, padding, sums)")
        print(f"  {total * 1e3:7.2f}  total")
        if torch is not None:
            theirs = best_times({"torch": torch_conv(x, layer.params["weight"],
                                                     layer.params["bias"], dout,
                                                     stride, pad)}, args.rounds)["torch"]
            print(f"  {theirs * 1e3:7.2f}  torch   →  total / torch {total / theirs:.2f}, "
                  f"products alone / torch {in_products / theirs:.2f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
