"""Hostile input against loading, as an attacker would write it: each case is an input,
the surface it goes through (``cli``: ``convcalc check FILE`` in a new Python process;
``library``: calls of :mod:`convcalc`'s loading functions), and the clean outcome it
must have — an exit code and the exact error lines, or an exception type and its
exact message, or a result.

Every case runs in a subprocess with a wall-time limit (``timeout``, 20 s unless the case
says less) and an address-space limit (``MEMORY``, 1 GiB), so a regression fails its case
instead of hanging the suite or swapping the machine.  Library cases of one ``batch``
share a subprocess (one JSON line of outcome per call).

The limits are those of :mod:`convcalc.loading` and :mod:`convcalc.blocks`, each tried
at, just below and just above.  Last, a hypothesis fuzz of the loader with anchors,
aliases and merge keys (in a subprocess too) checks that only ``ConvCalcError`` escapes,
every example within a deadline and the parse's traced memory proportional to the text.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import blocks, loading
from convcalc.loading import parse_text

THIS = Path(__file__).resolve()
#: Address space of every case's process (Python with convcalc needs ~60 MiB).
MEMORY = 1 << 30
#: Seconds a case may take, its process's start included, unless it says less.
TIMEOUT = 20.0

#: The documented limits (docs/spec.rst, "Limits"), written out: the cases are built
#: from these, and test_the_documented_limits holds the modules to them.
MAX_SPEC_BYTES = 1 << 20
MAX_NODES = 200_000
MAX_INT_DIGITS = 4300
MAX_EXPRESSION_LENGTH = 200
EXPRESSION_BOUND = 1 << 40
MAX_LAYERS = 10_000
MAX_COPIES = 10 * MAX_LAYERS
MAX_LAYER_VALUES = 500_000

SPEC = "input: [3, 8, 8]\nlayers: [relu]\n"
OK_TABLE = re.compile(r"\A.*\n\ninput \[3, 8, 8\] → output \[3, 8, 8\]\n.*\Z", re.S)


# --- inputs at a limit: each says what it holds, exactly ------------------------------------


def padded(size: int) -> bytes:
    """A valid spec of exactly ``size`` bytes (a comment fills it up)."""
    head = (SPEC + "# ").encode()
    return head + b"x" * (size - len(head))


#: Lists nested in :func:`aliased` (libyaml allows 1,000 levels; PyYAML's pure-Python
#: parser, used without libyaml, recurses per level).
DEPTH = 990 if hasattr(yaml, "CSafeLoader") else 100


def aliased(values: int) -> str:
    """A valid spec whose document has exactly ``values`` values once its aliases are
    expanded (as ``MAX_NODES`` counts them: scalars, lists, mappings; not plain keys),
    most of them ``DEPTH`` (990) lists deep: the former line map copied each value's
    path, so it needed ~values × 990 slots (1.6 GB at the limit).

    The document: the root mapping (1), ``input`` (4), ``layers`` (2), ``blocks`` (1),
    ``b`` (1), its ``layers`` (2), ``params`` (1) — 12 — then ``w``: a list of 199
    zeros (200); ``deep``: ``DEPTH`` nested lists, the innermost holding ``n`` aliases
    of ``w`` (``DEPTH`` + 200·n); ``pad``: a list of ``p`` zeros (1 + p).
    """
    fixed, width, depth = 12 + 200 + 1, 200, DEPTH
    n, p = divmod(values - fixed - depth, width)
    assert n >= 1, values
    deep = "[" * depth + ", ".join(["*w"] * n) + "]" * depth
    return (f"{SPEC}blocks:\n  b:\n    layers: [relu]\n    params:\n"
            f"      w: &w [{', '.join(['0'] * (width - 1))}]\n"
            f"      deep: {deep}\n"
            f"      pad: [{', '.join(['0'] * p)}]\n")


def with_integer(digits: int, prefix: str = "", digit: str = "7") -> str:
    """A valid spec holding an integer of ``digits`` digits (after ``prefix``: ``0x``)."""
    return f"{SPEC}blocks:\n  b:\n    layers: [relu]\n    params: {{p: {prefix}{digit * digits}}}\n"


def with_expression(expression: str, n: int = 8) -> str:
    """A spec whose one conv has ``filters: "<expression>"`` in a block with ``n: 8``."""
    return (f"input: [3, 8, 8]\nblocks:\n  b:\n    params: {{n: {n}}}\n"
            f"    layers: [{{type: conv, kernel: 1, filters: '{expression}'}}]\n"
            f"layers: [b]\n")


def expression_of_length(length: int) -> str:
    """``$n+0+0…`` (a space after ``$n`` when ``length`` is odd): value ``$n``."""
    head = "$n" if length % 2 == 0 else "$n "
    return head + "+0" * ((length - len(head)) // 2)


def repeated(count: int, kind: str = "relu") -> str:
    return f"input: [3, 8, 8]\nlayers:\n  - {{type: {kind}, repeat: {count}}}\n"


def unknown_inputs(count: int) -> str:
    """``count`` layers, each reading a name that no layer has (each a "did you mean"
    search among all the names before it: count²/2 comparisons unbounded)."""
    lines = "".join(f"  - {{type: relu, inputs: qq{i}}}\n" for i in range(count))
    return f"input: [3, 8, 8]\nlayers:\n{lines}"


def defined_later(count: int) -> str:
    """``count`` layers reading ``zz``, written last (each once a walk of every layer)."""
    return ("input: [3, 8, 8]\nlayers:\n" + "  - {type: relu, inputs: zz}\n" * count
            + "  - {type: relu, name: zz}\n")


def later_chain(count: int) -> str:
    """``count`` layers reading ``b0``, then ``b0`` reads ``b1`` … ``b{count-1}``: every
    cycle trace walks the whole chain."""
    readers = "  - {type: relu, inputs: b0}\n" * count
    chain = "".join(f"  - {{type: relu, name: b{i}, inputs: b{i + 1}}}\n"
                    for i in range(count - 1))
    return f"input: [3, 8, 8]\nlayers:\n{readers}{chain}  - {{type: relu, name: b{count - 1}}}\n"


def undeclared_parameters(count: int) -> str:
    """A block of ``count`` params whose ``count`` layers each use an undeclared one."""
    params = ", ".join(f"p{i}: 1" for i in range(count))
    layers = ", ".join(f"{{type: conv, kernel: 1, filters: '$z{i}'}}" for i in range(count))
    return f"input: [3, 8, 8]\nblocks: {{b: {{params: {{{params}}}, layers: [{layers}]}}}}\n" \
        "layers: [relu]\n"


def unknown_arguments(count: int) -> str:
    """A block of ``count`` params, used with ``count`` arguments it does not have."""
    params = ", ".join(f"p{i}: 1" for i in range(count))
    arguments = ", ".join(f"q{i}: 1" for i in range(count))
    return f"input: [3, 8, 8]\nblocks: {{b: {{params: {{{params}}}, layers: [relu]}}}}\n" \
        f"layers: [{{type: b, {arguments}}}]\n"


def big_list_block(entries: int, uses: int) -> str:
    """A block whose one layer holds a list of ``entries`` zeros, used ``uses`` times:
    each use used to copy the list."""
    return (f"input: [3, 8, 8]\nblocks:\n  b:\n    layers:\n"
            f"      - {{type: relu, extra: [{', '.join(['0'] * entries)}]}}\n"
            f"layers: [{{type: b, repeat: {uses}}}]\n")


# --- the cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile input and its clean outcome.

    ``cli``: ``given`` is the file ``net.yaml`` (``args`` follow it; ``fifo`` makes it a
    FIFO no one writes to); ``exit`` is expected, and ``expected`` is the exact text (or
    a pattern the whole of it must match) of stderr on an error, when stdout must be
    empty, or of stdout on success, when stderr must be empty.
    ``library``: ``given`` is a Python expression over the names :data:`RUNNER` imports
    (``data`` is ``payload``); ``raises`` is the exception type expected (``None``: a
    return) and ``expected`` its exact message (or the result's ``repr``) or a pattern.
    """

    name: str
    surface: str
    given: Any
    expected: str | re.Pattern[str] = ""
    exit: int = 1
    raises: str | None = None
    payload: bytes = b""
    args: tuple[str, ...] = ()
    fifo: bool = False
    batch: str = ""
    timeout: float = TIMEOUT


def cli(name: str, given: str | bytes, stderr: str | re.Pattern[str], exit: int = 1,
        **options: Any) -> Case:
    data = given.encode() if isinstance(given, str) else given
    return Case(name, "cli", data, stderr, exit=exit, **options)


def library(name: str, call: str, raises: str | None, expected: str | re.Pattern[str],
            payload: str | bytes = b"", batch: str = "", **options: Any) -> Case:
    data = payload.encode() if isinstance(payload, str) else payload
    return Case(name, "library", call, expected, raises=raises, payload=data,
                batch=batch or name, **options)


TOO_MANY = f"document too large: more than {MAX_NODES} nodes after expanding aliases"
RECURSIVE = "recursive alias: this value contains an alias of itself, so it has no end"
HEX_DIGITS = 3590  # 16**3590 has 4323 decimal digits
EXPRESSION_SIZE = f"expression too long: {MAX_EXPRESSION_LENGTH + 1} characters " \
    f"(at most {MAX_EXPRESSION_LENGTH})"
TOO_MANY_VALUES = f"expands to more than {MAX_LAYER_VALUES} values (options and list " \
    "entries of its layers)"
SELF = "input: [4]\nblocks: {a: {layers: [{type: a}]}}\nlayers: [{type: a, repeat: %d}]\n"
USES_ITSELF = "2: blocks.a.layers[0].type: block 'a' uses itself: a → a"

CASES = [
    # aliases: recursive ones, and deep expansions at the node limit
    cli("recursive-alias", SPEC + "name: &r [*r]\n",
        f"net.yaml:3: name: {RECURSIVE}\n"),
    cli("recursive-alias-in-layers", "input: [3, 8, 8]\nlayers: &l [relu, *l]\n",
        f"net.yaml:2: layers: {RECURSIVE}\n"),
    library("recursive-alias-through-a-merge-key",
            "loads(data)", "SpecError", f"4: blocks.a: {RECURSIVE}",
            SPEC + "blocks:\n  a: &m\n    layers: [relu]\n    also: {<<: *m}\n", batch="aliases"),
    library("recursive-alias-in-a-key", "loads(data)", "SpecError", f"3: {RECURSIVE}",
            SPEC + "? &k [*k]\n: 1\n", batch="aliases"),
    library("recursive-alias-in-a-mapping", "loads(data)", "SpecError",
            f"4: blocks.b.params: {RECURSIVE}",
            SPEC + "blocks:\n  b: {layers: [relu], params: &p {p: {q: *p}}}\n",
            batch="aliases"),
    cli("deep-aliases-at-the-node-limit", aliased(MAX_NODES), OK_TABLE, exit=0),
    library("deep-aliases-just-below-the-node-limit", "len(loads(data).blocks['b'].params)",
            None, "3", aliased(MAX_NODES - 1), batch="nodes-below"),
    cli("deep-aliases-just-above-the-node-limit", aliased(MAX_NODES + 1),
        f"net.yaml: {TOO_MANY}\n"),
    library("billion-laughs", "loads(data)", "SpecError", TOO_MANY,
            "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}' if i else '0'] * 10)}]\n"
                    for i in range(9)) + SPEC, batch="aliases"),
    # the size of the text
    cli("bytes-at-the-limit", padded(MAX_SPEC_BYTES), OK_TABLE, exit=0),
    library("bytes-just-below-the-limit", "loads(data).layers[0].type", None, "'relu'",
            padded(MAX_SPEC_BYTES - 1), batch="size"),
    cli("bytes-just-above-the-limit", padded(MAX_SPEC_BYTES + 1),
        f"net.yaml: file too large ({MAX_SPEC_BYTES + 1} bytes; a spec may have at most "
        f"{MAX_SPEC_BYTES})\n"),
    library("characters-just-above-the-limit", "loads(data.decode())", "SpecError",
            f"text too large ({MAX_SPEC_BYTES + 1} characters; a spec may have at most "
            f"{MAX_SPEC_BYTES})", padded(MAX_SPEC_BYTES + 1), batch="size"),
    # integers too long for Python's int ↔ str conversion
    cli("integer-at-the-digit-limit", with_integer(MAX_INT_DIGITS), OK_TABLE, exit=0),
    library("integer-just-below-the-digit-limit",
            "len(str(loads(data).blocks['b'].params['p']))", None, str(MAX_INT_DIGITS - 1),
            with_integer(MAX_INT_DIGITS - 1), batch="numbers"),
    cli("integer-just-above-the-digit-limit", with_integer(MAX_INT_DIGITS + 1),
        f"net.yaml:6: blocks.b.params.p: number too long: {MAX_INT_DIGITS + 1} digits "
        f"(at most {MAX_INT_DIGITS})\n"),
    library("hexadecimal-integer-of-too-many-decimal-digits", "loads(data)", "SpecError",
            f"6: blocks.b.params.p: number too long: more than {MAX_INT_DIGITS} digits "
            "in decimal", with_integer(HEX_DIGITS, "0x", "f"), batch="numbers"),
    library("sexagesimal-integer-of-300000-parts", "loads(data)", "SpecError",
            "3: name: number too long: 300001 digits (at most 4300)",
            SPEC + "name: 1" + ":0" * 300_000 + "\n", batch="numbers"),
    library("integer-key-too-long", "loads(data)", "SpecError",
            "3: number too long: 5000 digits (at most 4300)",
            SPEC + "? " + "9" * 5000 + "\n: 1\n", batch="numbers"),
    library("impossible-date", "loads(data)", "SpecError",
            "3: cannot read '2020-13-45' as a date (YYYY-MM-DD)",
            SPEC + "name: 2020-13-45\n", batch="numbers"),
    library("tagged-junk-integer", "loads(data)", "SpecError",
            "3: cannot read 'abc' as a whole number", SPEC + "name: !!int abc\n",
            batch="numbers"),
    library("tagged-junk-boolean", "loads(data)", "SpecError",
            "3: cannot read 'maybe' as true or false", SPEC + "name: !!bool maybe\n",
            batch="numbers"),
    # $ expressions: their length, their numbers, their syntax
    cli("unary-minus-bomb", with_expression("-" * 100_000 + "$n"), re.compile(
        r"net\.yaml:5: blocks\.b\.layers\[0\]\.filters: expression too long: 100002 "
        r"characters \(at most 200\)\n"
        r"net\.yaml:5: blocks\.b\.layers\[0\]\.filters \(b1\.conv1\): must be a whole "
        r"number \(got '-{59}…\)\n")),
    library("expression-at-the-length-limit",
            "loads(data).layers[0].filters", None, "8",
            with_expression(expression_of_length(MAX_EXPRESSION_LENGTH)), batch="expressions"),
    library("expression-just-below-the-length-limit",
            "loads(data).layers[0].filters", None, "8",
            with_expression(expression_of_length(MAX_EXPRESSION_LENGTH - 1)),
            batch="expressions"),
    library("expression-just-above-the-length-limit",
            "[d.message for d in catch(loads, data).diagnostics][0]", None,
            repr(EXPRESSION_SIZE),
            with_expression(expression_of_length(MAX_EXPRESSION_LENGTH + 1)),
            batch="expressions"),
    library("expression-at-the-number-bound", "evaluate('$n * 2', {'n': 1 << 39})", None,
            str(EXPRESSION_BOUND), batch="expressions"),
    library("expression-just-below-the-number-bound",
            "evaluate('$n * 2 - 1', {'n': 1 << 39})", None, str(EXPRESSION_BOUND - 1),
            batch="expressions"),
    library("expression-just-above-the-number-bound",
            "evaluate('$n * 2 + 1', {'n': 1 << 39})", "ValueError",
            "'$n * 2 + 1' is too large", batch="expressions"),
    library("expression-sum-above-the-number-bound", "evaluate('$n + $n', {'n': 1 << 40})",
            "ValueError", "'$n + $n' is too large", batch="expressions"),
    library("expression-with-a-huge-parameter", "evaluate('$n - 1', {'n': 10 ** 5000})",
            "ValueError", "'$n - 1' is too large", batch="expressions"),
    library("expression-power", "evaluate('$n ** 2', {'n': 3})", "ValueError",
            "'$n ** 2': only whole numbers, params, + − * // and parentheses are allowed",
            batch="expressions"),
    library("expression-params-run-together", "evaluate('$a$b', {'a': 5, 'b': 3})",
            "ValueError",
            "'$a$b': only whole numbers, params, + − * // and parentheses are allowed",
            batch="expressions"),
    library("expression-negative-parameter-after-a-space",
            "evaluate('$a $b', {'a': 5, 'b': -3})", "ValueError",
            "'$a $b': only whole numbers, params, + − * // and parentheses are allowed",
            batch="expressions"),
    # layers: stopped before the work, at the limit of the spec or of the caller
    cli("repeat-at-the-layer-limit", repeated(MAX_LAYERS), OK_TABLE, exit=0),
    library("repeat-just-below-the-layer-limit",
            "len(expand(yaml.safe_load(data)).layers)", None, str(MAX_LAYERS - 1),
            repeated(MAX_LAYERS - 1), batch="layers"),
    cli("repeat-just-above-the-layer-limit", repeated(MAX_LAYERS + 1),
        f"net.yaml:2: layers: expands to more than {MAX_LAYERS} layers\n"),
    library("repeat-above-the-limit-stops-before-copying",
            "len(expand(yaml.safe_load(data)).layers)", None, "1",
            repeated(MAX_LAYERS + 1), batch="layers"),
    library("nested-repeat-bomb-stops-before-copying", "expand(yaml.safe_load(data))",
            None, "Expansion(layers=[{'type': 'relu', 'name': 'b1.0.relu1.0', 'inputs': "
            "['input']}], origins=[('blocks', 'b', 'layers', 0)], groups=[(('b1', 'b "
            "×1000000000'), ('b1.0', 'b'), ('b1.0.relu1', 'relu ×1000000000'))], "
            "problems=[(('layers',), 'expands to more than 10000 layers')])",
            "input: [4]\nblocks: {b: {layers: [{type: relu, repeat: 1000000000}]}}\n"
            "layers: [{type: b, repeat: 1000000000}]\n", batch="layers"),
    library("caller-layer-limit-at", "len(loads(data, max_layers=2000).layers)", None,
            "2000", repeated(2000), batch="layers"),
    library("caller-layer-limit-just-above", "loads(data, max_layers=2000)", "SpecError",
            "2: layers: expands to more than 2000 layers", repeated(2001), batch="layers"),
    library("copies-at-the-limit", "expand(yaml.safe_load(data)).problems", None,
            repr([(("blocks", "a", "layers", 0, "type"), "block 'a' uses itself: a → a")]),
            SELF % (MAX_COPIES // 2), batch="layers"),
    library("copies-just-above-the-limit", "loads(data)", "SpecError",
            f"{USES_ITSELF}\n3: layers: expands to more than {MAX_LAYERS} layers\n"
            "3: layers: must have at least 1 entries (got 0)",
            SELF % (MAX_COPIES // 2 + 1), batch="layers"),
    library("values-at-the-limit",
            "expand({'input': [4], 'layers': [{'type': 'relu', 'x': [0] * %d, 'repeat': 10}]})"
            ".problems" % (MAX_LAYER_VALUES // 10 - 3), None, "[]", batch="values"),
    library("values-just-below-the-limit",
            "expand({'input': [4], 'layers': [{'type': 'relu', 'x': [0] * %d, 'repeat': 10}]})"
            ".problems" % (MAX_LAYER_VALUES // 10 - 4), None, "[]", batch="values"),
    library("values-just-above-the-limit",
            "expand({'input': [4], 'layers': [{'type': 'relu', 'x': [0] * %d, 'repeat': 10}]})"
            ".problems" % (MAX_LAYER_VALUES // 10 - 2), None,
            repr([(("layers",), TOO_MANY_VALUES)]), batch="values"),
    cli("big-list-block-used-10000-times", big_list_block(100_000, 10_000), re.compile(
        r"net\.yaml:5: blocks\.b\.layers\[0\]\.extra \(b1\.0\.relu1\): unknown key .*\n"
        rf"net\.yaml:6: layers: {re.escape(TOO_MANY_VALUES)}\n")),
    # messages whose suggestions and traces once cost the product of two counts
    cli("8000-unknown-inputs", unknown_inputs(8000), re.compile(
        r"net\.yaml:3: layers\[0\]\.inputs: unknown layer 'qq0'\n"
        r"(net\.yaml:\d+: layers\[\d+\]\.inputs: unknown layer 'qq\d+'\n){7999}"),
        timeout=8),
    cli("10000-layers-defined-later", defined_later(MAX_LAYERS), re.compile(
        r"net\.yaml:2: layers: expands to more than 10000 layers\n"
        r"(net\.yaml:\d+: layers\[\d+\]\.inputs: 'zz' is defined later: a layer reads "
        r"earlier layers only\n){10000}"), timeout=8),
    cli("4000-cycle-traces-along-a-chain", later_chain(4000), re.compile(
        r"(net\.yaml:\d+: layers\[\d+\]\.inputs: 'b\d+' is defined later: a layer reads "
        r"earlier layers only\n){7999}"), timeout=8),
    cli("5000-undeclared-parameters-among-5000", undeclared_parameters(5000), re.compile(
        r"(net\.yaml:2: blocks\.b\.layers\[\d+\]\.filters: unknown parameter \$z\d+( — did you mean \$p\d+\?)? \(this "
        r"block has: \$p0, \$p1, (\$p\d+, ){17}\$p19 \(and 4980 more\)\)\n){5000}"),
        timeout=8),
    library("5000-unknown-arguments-among-5000-parameters",
            "[d.message for d in catch(loads, data).diagnostics][0]", None,
            repr("block 'b' has no parameter 'q0' (it has: "
                 + ", ".join(f"p{i}" for i in range(20)) + " (and 4980 more))"),
            unknown_arguments(5000), timeout=8),
    # the file itself
    cli("fifo-without-a-writer", b"", "net.yaml: empty document: expected a mapping with "
        "'input' and 'layers'\n", fifo=True, timeout=8),
    # wrong argument types and values of the library's functions
    *[library(f"argument-{name}", call, raises, message, SPEC, batch="arguments")
      for name, call, raises, message in [
          ("loads-None", "loads(None)", "TypeError", "loads(text): expected str, bytes, "
           "bytearray, memoryview or a mapping, got None"),
          ("loads-int", "loads(123)", "TypeError", "loads(text): expected str, bytes, "
           "bytearray, memoryview or a mapping, got int"),
          ("loads-bytearray", "loads(bytearray(data)).layers[0].type", None, "'relu'"),
          ("loads-memoryview", "loads(memoryview(data)).layers[0].type", None, "'relu'"),
          ("loads-filename-int", "loads(data, filename=3)", "TypeError",
           "loads(filename): expected str, os.PathLike[str] or None, got int"),
          ("loads-max-layers-zero", "loads(data, max_layers=0)", "ArgumentError",
           "loads(max_layers): must be from 1 to 10000 (got 0)"),
          ("load-bytes", "load(b'net.yaml')", "TypeError",
           "load(path): expected str or os.PathLike[str], got bytes"),
          ("load-int", "load(123)", "TypeError",
           "load(path): expected str or os.PathLike[str], got int"),
          ("load-nul", "load('net\\0.yaml')", "SpecError",
           "net\\x00.yaml: cannot read: embedded null byte"),   # escaped: one printable line
          ("load-directory", "load('.')", "SpecError", ".: cannot read: Is a directory"),
          ("validate-list", "validate([1, 2])", "TypeError",
           "validate(data): expected a mapping or a Spec, got list"),
          ("validate-None", "validate(None)", "TypeError",
           "validate(data): expected a mapping or a Spec, got None"),
          ("parse-text-None", "parse_text(None)", "TypeError",
           "parse_text(text): expected str, bytes, bytearray or memoryview, got None"),
          ("expand-list", "expand([])", "TypeError",
           "expand(data): expected a mapping, got list"),
      ]],
]

BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names are unique"


# --- running them ---------------------------------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _run(command: list[str], cwd: Path, stdin: bytes, timeout: float
         ) -> tuple[int | None, str, str]:
    """Exit code (``None``: killed at the timeout), stdout and stderr of ``command``."""
    try:
        done = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True,
                              timeout=timeout, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired as timed_out:
        return None, (timed_out.stdout or b"").decode(errors="replace"), \
            (timed_out.stderr or b"").decode(errors="replace")
    return done.returncode, done.stdout.decode(errors="replace"), \
        done.stderr.decode(errors="replace")


CLI = "from convcalc.cli import main; main()"

RUNNER = r"""
import json, pickle, sys
import yaml
import convcalc
from convcalc import load, loads, validate
from convcalc.blocks import evaluate, expand
from convcalc.loading import parse_text

def catch(function, *args):
    try:
        function(*args)
    except Exception as error:
        return error
    raise AssertionError("no exception")

for name, call, data in pickle.load(sys.stdin.buffer):
    names = dict(globals(), data=data)
    try:
        result = eval(call, names)
    except BaseException as error:
        outcome = {"raises": type(error).__name__, "message": str(error)}
    else:
        outcome = {"raises": None, "message": repr(result)}
    print(json.dumps({"name": name, **outcome}), flush=True)
"""


@functools.cache
def _batch_outcomes(batch: str, workdir: str) -> dict[str, dict[str, Any]]:
    cases = [case for case in CASES if case.surface == "library" and case.batch == batch]
    calls = pickle.dumps([(case.name, case.given, case.payload) for case in cases])
    timeout = sum(min(case.timeout, 5.0) for case in cases) + TIMEOUT
    code, out, err = _run([sys.executable, "-c", RUNNER], Path(workdir), calls, timeout)
    outcomes = {line["name"]: line for line in map(json.loads, out.splitlines())}
    for case in cases:
        if case.name not in outcomes:
            why = "timed out" if code is None else f"exit {code}"
            outcomes[case.name] = {"raises": "died", "message": f"{why}: {err[-2000:]}"}
    return outcomes


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library cases' working directory, holding ``net.yaml``."""
    path = tmp_path_factory.mktemp("hostile")
    (path / "net.yaml").write_text(SPEC, encoding="utf-8")
    return path


def _matches(expected: str | re.Pattern[str], text: str) -> bool:
    if isinstance(expected, re.Pattern):
        return expected.fullmatch(text) is not None
    return text == expected


@pytest.mark.parametrize("case", [c for c in CASES if c.surface == "cli"], ids=lambda c: c.name)
def test_cli(case: Case, tmp_path: Path) -> None:
    target = tmp_path / "net.yaml"
    if case.fifo:
        os.mkfifo(target)
    else:
        target.write_bytes(case.given)
    started = time.monotonic()
    code, out, err = _run([sys.executable, "-c", CLI, "check", "net.yaml", *case.args],
                          tmp_path, b"", case.timeout)
    assert code is not None, f"killed after {time.monotonic() - started:.1f} s: {err[-2000:]}"
    assert "Traceback" not in out + err, err[-2000:]
    assert code == case.exit, err[-2000:]
    if case.exit:
        assert out == ""
        assert _matches(case.expected, err), err[:2000]
    else:
        assert err == ""
        assert _matches(case.expected, out), out[:2000]


@pytest.mark.parametrize("case", [c for c in CASES if c.surface == "library"],
                         ids=lambda c: c.name)
def test_library(case: Case, workdir: Path) -> None:
    outcome = _batch_outcomes(case.batch, str(workdir))[case.name]
    assert outcome["raises"] == case.raises, outcome["message"][:2000]
    assert _matches(case.expected, outcome["message"]), outcome["message"][:2000]


def test_the_documented_limits() -> None:
    """The modules have the limits the docs give, and the table tries each at, just
    below and just above it (within 40 processes)."""
    assert (loading.MAX_SPEC_BYTES, loading.MAX_NODES, loading.MAX_INT_DIGITS) == (
        MAX_SPEC_BYTES, MAX_NODES, MAX_INT_DIGITS)
    assert (blocks.MAX_EXPRESSION_LENGTH, blocks.EXPRESSION_BOUND, blocks.MAX_LAYERS,
            blocks.MAX_COPIES, blocks.MAX_LAYER_VALUES) == (
        MAX_EXPRESSION_LENGTH, EXPRESSION_BOUND, MAX_LAYERS, MAX_COPIES, MAX_LAYER_VALUES)
    for limit in ("node-limit", "bytes", "digit-limit", "length-limit", "number-bound",
                  "layer-limit", "copies", "values"):
        names = [name for name in BY_NAME if limit in name]
        assert any("-at" in name for name in names), limit
        assert any("above" in name for name in names), limit
    assert sum(case.surface == "cli" for case in CASES) \
        + len({case.batch for case in CASES if case.surface == "library"}) <= 40


# --- the loader fuzzed with anchors, aliases and merge keys ---------------------------------

SCALARS = ["0", "1", "3", "relu", "conv", "x", "null", "{type: relu}",
           "{type: conv, filters: 2, kernel: 1}", "'$n'"]


@st.composite
def aliased_documents(draw: st.DrawFn) -> str:
    """Definitions ``d{i}: &a{i} <value>`` whose values nest lists and mappings of
    scalars and aliases (of earlier anchors; of their own, recursive; now and then of a
    later one, undefined), with merge keys — or a chain in which each definition lists
    the one before several times (a "billion laughs" of random widths) — then a spec
    whose parts may be aliases too."""
    count = draw(st.integers(1, 8))

    def alias(i: int) -> str:
        roll = draw(st.integers(0, 19))  # (hypothesis shrinks towards 0: the usual case)
        if roll == 19 and i + 1 < count:
            return f"*a{i + 1}"  # not defined yet
        if roll >= 17:
            return f"*a{i}"  # recursive
        return f"*a{draw(st.integers(0, i - 1))}" if i else draw(st.sampled_from(SCALARS))

    def value(i: int, depth: int) -> str:
        kinds = ["list", "map"] if depth == 0 else \
            ["scalar", "alias", "list", "map"] if depth < 3 else ["scalar", "alias"]
        kind = draw(st.sampled_from(kinds))
        if kind == "scalar":
            return draw(st.sampled_from(SCALARS))
        if kind == "alias":
            return alias(i)
        width = draw(st.integers(0, 10))
        if kind == "list":
            return "[" + ", ".join(value(i, depth + 1) for _ in range(width)) + "]"
        pairs = [f"k{j}: {value(i, depth + 1)}" for j in range(width)]
        if draw(st.booleans()):
            merged = [f"*a{draw(st.integers(0, i))}" for _ in range(draw(st.integers(1, 3)))]
            pairs.insert(0, f"<<: [{', '.join(merged)}]" if len(merged) > 1
                         else f"<<: {merged[0]}")
        return "{" + ", ".join(pairs) + "}"

    def link(i: int) -> str:
        if i == 0:
            return "[" + ", ".join(draw(st.lists(st.sampled_from(SCALARS), max_size=12))) + "]"
        return "[" + ", ".join([f"*a{i - 1}"] * draw(st.integers(1, 12))) + "]"

    chain, nested = draw(st.booleans()), draw(st.booleans())
    definitions = [f"d{i}: &a{i} {link(i) if chain else value(i, 0)}" for i in range(count)]
    if nested:  # as a block's params, where any value is allowed
        definitions = ["blocks:", "  defs:", "    layers: [relu]", "    params:",
                       *(f"      {line}" for line in definitions)]
    some = st.integers(0, count - 1).map(lambda i: f"*a{i}")
    layers = st.one_of(st.just("[relu]"), some, some.map(lambda a: f"[{a}, relu]"))
    spec = [f"input: {draw(st.one_of(st.just('[3, 8, 8]'), some))}",
            f"layers: {draw(layers)}"]
    if not nested and draw(st.booleans()):
        spec.append(f"blocks: {{b: {{params: {{n: {draw(some)}}}, layers: [relu]}}}}")
    return "\n".join(definitions + draw(st.permutations(spec))) + "\n"


def _paths_and_lines(root: yaml.Node, budget: int = 5000) -> dict[tuple[Any, ...], int] | None:
    """The line of every path of an acyclic document, by the former loader's walk (each
    path spelt out), or ``None`` past ``budget`` paths or on a cycle."""
    lines: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[yaml.Node, tuple[Any, ...], frozenset[int]]] = [(root, (), frozenset())]
    while stack:
        node, path, above = stack.pop()
        if id(node) in above or len(lines) > budget:
            return None
        lines.setdefault(path, node.start_mark.line + 1)
        above = above | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                lines[path + (key,)] = key_node.start_mark.line + 1
                stack.append((value_node, path + (key,), above))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, path + (index,), above))
    return lines


#: Traced bytes a parse may peak at: this, plus ``PER_CHARACTER`` per character of text.
BASE_MEMORY, PER_CHARACTER = 64 << 10, 512


@settings(max_examples=300, deadline=timedelta(seconds=2), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(aliased_documents())
def fuzz_the_loader(text: str) -> None:
    """Only ``ConvCalcError`` escapes, each problem one line; the parse's traced peak
    memory is proportional to the text; every line the source map gives is the line the
    former path-by-path walk gave."""
    tracemalloc.start()
    try:
        parsed = parse_text(text, "fuzz.yaml")
    except convcalc.ConvCalcError as error:
        parsed = error
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= BASE_MEMORY + PER_CHARACTER * len(text), (peak, len(text))
    try:
        convcalc.loads(text, filename="fuzz.yaml")
    except convcalc.ConvCalcError as error:
        assert all("\n" not in str(d) for d in error.diagnostics), str(error)
    if isinstance(parsed, convcalc.ConvCalcError):
        return
    expected = _paths_and_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    if expected is not None:
        _, source = parsed
        assert {path: source.line_of(path) for path in expected} == expected


def test_fuzz_the_loader_with_anchors_and_aliases(tmp_path: Path) -> None:
    """:func:`fuzz_the_loader` in a process of its own (time and memory limited)."""
    code = (f"import runpy; runpy.run_path({str(THIS)!r}, run_name='fuzz')"
            f"['fuzz_the_loader']()")
    status, out, err = _run([sys.executable, "-c", code], tmp_path, b"", 60.0)
    assert status == 0, (out + err)[-4000:]
