"""Start-up cost of ``convcalc check``: how much of a CLI run is interpreter start,
importing convcalc, and the analysis itself.

Times the best of ``--runs`` (default 10) fresh processes of

1. ``python -c pass``                        — the interpreter alone
2. ``python -c "import convcalc"``           — plus importing the package
3. ``convcalc check examples/vgg16.yaml``    — the whole command (40 layers)

and prints the times, the ratios to the bare interpreter, and whether NumPy got
imported by the ``check`` run (it must not: the calculator is pure Python).

    python benchmarks/bench_check_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VGG16 = ROOT / "examples" / "vgg16.yaml"


def convcalc_command() -> list[str]:
    script = Path(sys.executable).parent / "convcalc"
    found = str(script) if script.exists() else shutil.which("convcalc")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from convcalc.cli import main; "
            "sys.argv[0] = 'convcalc'; main()"]


def best_of(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              cwd=ROOT)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    return min(times)


def numpy_imported_by_check() -> bool:
    code = ("import sys\nfrom convcalc.cli import main\n"
            f"sys.argv = ['convcalc', 'check', {str(VGG16)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('numpy' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT)
    return done.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ('python -c "import convcalc"', [sys.executable, "-c", "import convcalc"]),
        ("convcalc check examples/vgg16.yaml", [*convcalc_command(), "check", str(VGG16)]),
    ]
    results = [(label, best_of(command, args.runs)) for label, command in rows]
    base = results[0][1]
    print(f"{sys.version.split()[0]} on {sys.platform}; best of {args.runs} runs each")
    width = max(len(label) for label, _ in results)
    for label, seconds in results:
        print(f"  {label:<{width}}  {seconds * 1000:8.1f} ms  {seconds / base:5.2f}× bare python")
    imp, check = results[1][1], results[2][1]
    print(f"  import convcalc costs {1000 * (imp - base):.1f} ms; the check itself (parse, "
          f"analyse, render) {1000 * (check - imp):.1f} ms more; "
          f"check / import = {check / imp:.2f}×")
    print(f"  numpy imported by check: {'YES' if numpy_imported_by_check() else 'no'}")


if __name__ == "__main__":
    main()
