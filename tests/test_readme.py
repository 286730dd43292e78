"""The README shows real output: every ``$ convcalc ...`` console block is re-run and
compared (``...`` in an expected block skips lines), and its Python snippet's values hold."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

import convcalc
from convcalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
STRIDE3 = "input: [1, 7, 7]\nlayers:\n  - {type: conv, filters: 1, kernel: 3, stride: 3}\n"


def console_blocks() -> list[tuple[str, list[str]]]:
    blocks = re.findall(r"```console\n(.*?)```", README, flags=re.S)
    out = []
    for block in blocks:
        first, *rest = block.rstrip("\n").split("\n")
        assert first.startswith("$ convcalc ")
        command = first[2:].split("#")[0].strip()
        out.append((command, rest))
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """Expected lines in order; a ``...`` line stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def test_readme_console_blocks_show_real_output(tmp_path, monkeypatch):
    (tmp_path / "stride3.yaml").write_text(STRIDE3)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    blocks = console_blocks()
    assert len(blocks) >= 2
    for command, expected in blocks:
        result = CliRunner().invoke(main, shlex.split(command)[1:])
        actual = result.output.rstrip("\n").split("\n")
        assert matches(expected, actual), f"{command}:\n{result.output}"


def test_readme_python_snippet_values():
    """Every ``expression   # value`` line of the snippet is run, and gives that value
    (the rest of a comment after the value, in parentheses, is prose)."""
    snippet = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    namespace: dict = {}
    checked = 0
    for line in snippet.splitlines():
        code, _, comment = line.partition("#")
        value = re.sub(r"\s*\(.*\)\s*$", "", comment).strip()
        if not value:
            exec(line.replace('"examples/', f'"{ROOT}/examples/'), namespace)
            continue
        assert eval(code.replace('"examples/', f'"{ROOT}/examples/'), namespace) == \
            ast.literal_eval(value), line
        checked += 1
    assert checked >= 3


def test_readme_names_the_ci_commands():
    assert "<!-- ci:install -->" in README and "<!-- ci:test -->" in README
