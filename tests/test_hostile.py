"""Hostile input beyond loading (tests/test_hostile_loading.py has that): numbers that
are too big or not finite, values that made a run "succeed" wrongly, output that could
forge lines or grow without bound, faults of the terminal and the disk, and library
arguments of the wrong type — through the CLI, the library and the service.

Every case runs in a new Python process with a wall-time and an address-space limit
(the harness of tests/test_hostile_loading.py), so a regression fails its case instead
of hanging the suite or swapping the machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_hostile_loading import MEMORY, _limit_memory, _run

ROOT = Path(__file__).resolve().parent.parent
CLI = "from convcalc.cli import main; main()"
FINITE = "must be a finite number"


@dataclass(frozen=True)
class Case:
    """``args`` run as ``convcalc …`` (``net.yaml`` holds ``spec``), or ``code`` runs as
    a Python program; ``exit`` is expected and ``expected`` must match stderr (errors),
    stdout (success) or, with ``stdout``, stdout in any case."""

    name: str
    spec: str = ""
    args: tuple[str, ...] = ("check", "net.yaml")
    exit: int = 1
    expected: str = ""
    code: str = ""
    stdout: bool = False
    forbidden: tuple[str, ...] = ()
    timeout: float = 30.0
    max_output: int = 4 << 20
    env: dict[str, str] = field(default_factory=dict)


def wide_concat(count: int) -> str:
    names = [f"b{i}" for i in range(count)]
    layers = [f"  - {{name: {n}, type: identity, inputs: input}}" for n in names]
    layers.append("  - {type: concat, inputs: [" + ", ".join(names) + "]}")
    return "input: [1, 2, 2]\nlayers:\n" + "\n".join(layers) + "\n"


SMALL = "input: [3, 8, 8]\nlayers:\n  - {type: conv, filters: 2, kernel: 3}\n  - relu\n"
LIBRARY = "import convcalc\nspec = convcalc.loads({spec!r})\n{body}\n"

CASES = [
    # non-finite and out-of-range numbers: refused by the spec models, whatever reads them
    Case("nan-lrn-alpha", "input: [4, 5, 5]\nlayers: [{type: lrn, alpha: .nan}]\n",
         expected=f"net.yaml:2: layers[0].alpha: {FINITE} (got nan)"),
    Case("inf-leaky-slope", "input: [4]\nlayers: [{type: leaky_relu, negative_slope: .inf}]\n",
         expected=f"layers[0].negative_slope: {FINITE} (got inf)"),
    Case("overflowing-float-eps", '{"input": [3, 4, 4], "layers": [{"type": "batchnorm", '
         '"eps": 1e999}]}', expected=f"layers[0].eps: {FINITE} (got inf)"),
    Case("overflowing-float-eps-with-a-dot", "input: [3]\nlayers: [{type: batchnorm, "
         "eps: 1.0e999}]\n", expected=f"layers[0].eps: {FINITE} (got inf)"),
    Case("negative-eps", "input: [3]\nlayers: [{type: batchnorm, eps: -1e-5}]\n",
         expected="layers[0].eps: must be > 0.0 (got -1e-05)"),
    Case("eps-as-yaml-writes-it", "input: [3]\nlayers: [{type: batchnorm, eps: 1e-3}]\n",
         exit=0, stdout=True, expected="batchnorm1"),
    Case("lrn-k-zero", "input: [3]\nlayers: [{type: lrn, k: 0}]\n",
         expected="layers[0].k: must be > 0.0 (got 0)"),
    Case("huge-lrn-size", "input: [3]\nlayers: [{type: lrn, size: 1000000000000000000000}]\n",
         expected="layers[0].size: must be ≤ 9007199254740991"),
    Case("size-of-a-thousand-digits", "input: [3, " + "9" * 1000 + "]\nlayers: [relu]\n",
         expected="input[1]: must be ≤ 9007199254740991"),
    Case("inf-max-memory", SMALL, args=("verify", "net.yaml", "--max-memory", "inf"), exit=2,
         expected="Invalid value for '--max-memory': not a memory size: 'inf'"),
    Case("1e400-max-memory", SMALL, args=("verify", "net.yaml", "--max-memory", "1e400"),
         exit=2, expected="not a memory size: '1e400' (a finite size of at most 1 EiB"),
    Case("1e30-max-memory", SMALL, args=("verify", "net.yaml", "--max-memory", "1e30"),
         exit=2, expected="not a memory size: '1e30'"),
    Case("negative-seed", SMALL, args=("verify", "net.yaml", "--seed", "-1"), exit=2,
         expected="Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295"),
    Case("engine-cannot-allocate", "input: [3, 40000, 40000]\nlayers: [relu]\n",
         args=("verify", "net.yaml", "--max-memory", "1000GiB", "--batch", "1"),
         stdout=True, expected="✗ the engine run failed: MemoryError"),
    Case("estimate-of-astronomical-sizes", "input: [3, 9007199254740991, 9007199254740991]"
         "\nlayers: [relu]\n", args=("verify", "net.yaml"),
         expected="running this network needs an estimated"),
    # names cannot forge output: control characters are shown escaped
    Case("ansi-escape-in-a-name", 'input: [3]\nlayers: [{type: relu, name: "\\e[31mred"}]\n',
         exit=0, stdout=True, expected="\\x1b[31mred", forbidden=("\x1b",)),
    Case("newline-in-a-name", 'input: [3]\nlayers: [{type: relu, name: "a\\nb"}]\n', exit=0,
         stdout=True, expected="a\\nb"),
    Case("newline-in-a-name-in-markdown", 'input: [3]\nlayers: [{type: relu, name: "a\\nb|c"}]\n',
         args=("check", "net.yaml", "--format", "markdown"), exit=0, stdout=True,
         expected="a\\nb\\|c"),
    Case("a-newline-in-an-error", 'input: [3]\nlayers: [{type: relu, name: "x\\ny"}, '
         '{type: relu, name: "x\\ny"}]\n', stdout=True, expected="duplicate layer name 'x\\ny'"),
    # wide merges: the table stays linear in the number of inputs
    Case("concat-of-9000-inputs", wide_concat(9000), exit=0, stdout=True,
         expected="b0, b1, b2, … (+8997)", max_output=2 << 20, timeout=60),
    # integers a JavaScript reader would round come with their exact digits
    Case("integers-beyond-2**53-in-json", "input: [3, 67108864, 67108864]\nlayers:\n"
         "  - {type: conv, filters: 512, kernel: 3, padding: 1}\n",
         args=("check", "net.yaml", "--format", "json"), exit=0, stdout=True,
         expected='"total_macs": "62257761248769736704"'),
    # an automatic name never repeats an explicit one
    Case("automatic-name-collision", "input: [3]\nlayers: [relu, relu, {type: relu, name: relu1}]\n",
         args=("check", "net.yaml", "--format", "json"), exit=0, stdout=True,
         expected='"name": "relu3"'),
    # the library: wrong types name the argument, bad values are convcalc's errors
    Case("verify-max-memory-as-text", code=LIBRARY.format(spec=SMALL, body=(
        "print(convcalc.verify(spec, max_memory='2GiB').ok)")), exit=0, expected="True"),
    Case("verify-batch-as-text", code=LIBRARY.format(spec=SMALL, body=(
        "try:\n    convcalc.verify(spec, batch='2')\nexcept TypeError as e:\n    print(e)")),
        exit=0, expected="verify(batch): expected int, got str"),
    Case("verify-negative-seed", code=LIBRARY.format(spec=SMALL, body=(
        "try:\n    convcalc.verify(spec, seed=-1)\nexcept convcalc.ConvCalcError as e:\n"
        "    print(type(e).__name__, e)")), exit=0,
        expected="ArgumentError seed must be a whole number from 0 to 4294967295 (got -1)"),
    Case("verify-max-memory-none", code=LIBRARY.format(spec=SMALL, body=(
        "try:\n    convcalc.verify(spec, max_memory=None)\nexcept TypeError as e:\n"
        "    print(e)")), exit=0, expected="verify(max_memory): expected int (bytes) or str"),
    Case("with-input-of-a-bad-shape", code=LIBRARY.format(spec=SMALL, body=(
        "try:\n    spec.with_input([3, -1, 4])\nexcept convcalc.SpecError as e:\n"
        "    print(e)")), exit=0, expected="input: must be channels then 0–3 spatial sizes"),
    Case("gradcheck-of-nan-is-not-a-pass", code=(
        "from convcalc.verification import LayerCheck\n"
        "from convcalc.render import render_verification\n"
        "row = LayerCheck('a', 'relu', (3,), (3,), 0, 0, 0, 0, (), float('nan'))\n"
        "print(row.ok, row.gradcheck_ok)\n"), exit=0, expected="False False"),
    # the service answers problems, not 500s, for the same inputs
    Case("service-nan-spec", code=(
        "from fastapi.testclient import TestClient\n"
        "from convcalc.service.app import create_app\n"
        "with TestClient(create_app(warm=False)) as c:\n"
        "    r = c.post('/api/v1/analyse', content='input: [4]\\nlayers: [{type: lrn, alpha: .nan}]\\n',"
        " headers={'Content-Type': 'application/yaml'})\n"
        "    print(r.status_code, r.json()['problems'][0]['message'])\n"), exit=0,
        expected=f"422 {FINITE} (got nan)"),
    Case("service-infinite-max-memory", code=(
        "from fastapi.testclient import TestClient\n"
        "from convcalc.service.app import create_app\n"
        "with TestClient(create_app(warm=False)) as c:\n"
        "    r = c.post('/api/v1/verify?max_memory=inf', content='input: [4]\\nlayers: [relu]\\n',"
        " headers={'Content-Type': 'application/yaml'})\n"
        "    print(r.status_code, r.json()['detail'])\n"), exit=0,
        expected="422 max_memory: not a memory size: 'inf'"),
    Case("service-huge-integer", code=(
        "from fastapi.testclient import TestClient\n"
        "from convcalc.service.app import create_app\n"
        "with TestClient(create_app(warm=False)) as c:\n"
        "    r = c.post('/api/v1/analyse', content='input: [4, ' + '7' * 5000 + ']\\nlayers: [relu]\\n',"
        " headers={'Content-Type': 'application/yaml'})\n"
        "    print(r.status_code, r.json()['problems'][0]['message'])\n"), exit=0,
        expected="422 number too long: 5000 digits"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile(case: Case, tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(case.spec, encoding="utf-8")
    command = [sys.executable, "-c", case.code or CLI, *(() if case.code else case.args)]
    code, out, err = _run(command, tmp_path, b"", case.timeout)
    assert code is not None, f"killed at {case.timeout} s"
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert code == case.exit, (out + err)[-3000:]
    assert len(out) + len(err) <= case.max_output
    shown = out if case.stdout or case.exit == 0 else err
    assert case.expected in shown, shown[-3000:]
    if case.exit and not case.stdout:
        assert err.count("\n") <= 2 or case.exit == 2, err     # one line (usage: click's)
    for text in case.forbidden:
        assert text not in out + err


def test_a_full_disk_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(SMALL, encoding="utf-8")
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-c", CLI, "check", "net.yaml"], cwd=tmp_path,
                              stdout=full, stderr=subprocess.PIPE, timeout=30,
                              preexec_fn=_limit_memory)
    assert done.returncode == 1
    assert done.stderr.decode() == "convcalc: cannot write the output: No space left on device\n"


def test_interrupting_verify_exits_130_with_one_line(tmp_path: Path) -> None:
    """^C in the middle of an engine run: exit 130 (128 + SIGINT), one line, no
    traceback, no "Aborted!"."""
    (tmp_path / "net.yaml").write_text(
        "input: [8, 96, 96]\nlayers:\n" + "  - {type: conv, filters: 8, kernel: 3, padding: 1}\n"
        * 6, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-c", CLI, "verify", "net.yaml", "--batch", "4",
                                "--gradcheck-entries"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=_limit_memory)
    time.sleep(2.5)                  # the imports done, the run under way
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err.decode()[-2000:]
    assert err.decode() == "convcalc: interrupted\n"


def test_the_cases_use_the_loading_harness_limits() -> None:
    assert MEMORY == 1 << 30 and os.path.exists("/dev/full")
