"""Golden tests: bad (or borderline) spec files and the exact CLI output they produce.

Each case is ``tests/golden/<case>.expected`` next to its input ``<case>.yaml`` /
``<case>.json`` (a variant ``<case>.<variant>.expected`` runs the same input with other
arguments).  An ``.expected`` file is::

    # free comment lines
    args: --strict                 (optional: extra arguments after the file name)
    exit: 1
    --- stdout
    <exact stdout lines>
    --- stderr
    <exact stderr lines>

The CLI runs as ``convcalc check <case>.yaml <args>`` with the golden directory as the
working directory, so file names in messages are the bare file name.  Inputs that are
better generated than stored (an oversize file) are in ``GENERATED``.

The test only compares.  ``pytest tests/test_golden_errors.py --update-golden`` rewrites
the expectations from the current output (keeping comments and ``args``); read the diff
before committing it — every expectation here was checked by hand against the input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from convcalc.cli import main
from convcalc.loading import MAX_SPEC_BYTES

GOLDEN = Path(__file__).parent / "golden"
INPUT_SUFFIXES = (".yaml", ".json")


def _oversize() -> bytes:
    """A valid spec padded with a comment to one byte over the size limit."""
    head = b"input: [3, 32, 32]\nlayers:\n  - relu\n# "
    return head + b"x" * (MAX_SPEC_BYTES + 1 - len(head))


#: Inputs written at test time into a temporary directory (name → bytes).
GENERATED = {"oversize.yaml": _oversize}


@dataclass
class Expected:
    comments: list[str]
    args: list[str]
    exit: int
    stdout: str
    stderr: str

    @classmethod
    def parse(cls, text: str) -> "Expected":
        comments: list[str] = []
        args: list[str] = []
        exit_code = None
        lines = text.split("\n")
        i = 0
        while i < len(lines) and not lines[i].startswith("--- "):
            line = lines[i]
            if line.startswith("#"):
                comments.append(line)
            elif line.startswith("args:"):
                args = line[len("args:"):].split()
            elif line.startswith("exit:"):
                exit_code = int(line[len("exit:"):])
            elif line.strip():
                raise ValueError(f"unexpected header line {line!r}")
            i += 1
        body = "\n".join(lines[i:])
        match = re.fullmatch(r"--- stdout\n(.*)--- stderr\n(.*)", body, re.S)
        if exit_code is None or match is None:
            raise ValueError("expected 'exit: N', '--- stdout' and '--- stderr' sections")
        return cls(comments, args, exit_code, match.group(1), match.group(2))

    def dump(self) -> str:
        head = list(self.comments)
        if self.args:
            head.append("args: " + " ".join(self.args))
        head.append(f"exit: {self.exit}")
        return "\n".join(head) + "\n--- stdout\n" + self.stdout + "--- stderr\n" + self.stderr


def _input_for(expected: Path) -> str:
    case = expected.name[: -len(".expected")].split(".")[0]
    for suffix in INPUT_SUFFIXES:
        name = case + suffix
        if name in GENERATED or (GOLDEN / name).exists():
            return name
    raise FileNotFoundError(f"no input for {expected.name}")


def _cases() -> list[Path]:
    return sorted(GOLDEN.glob("*.expected"))


def _run(input_name: str, args: list[str], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    if input_name in GENERATED:
        (tmp_path / input_name).write_bytes(GENERATED[input_name]())
        monkeypatch.chdir(tmp_path)
    else:
        monkeypatch.chdir(GOLDEN)
    result = CliRunner().invoke(main, ["check", input_name, *args])
    # an unexpected exception is a failure whatever the expectation says
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("expected_file", _cases(), ids=lambda p: p.name[: -len(".expected")])
def test_golden(expected_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                update_golden: bool) -> None:
    expected = Expected.parse(expected_file.read_text(encoding="utf-8"))
    code, stdout, stderr = _run(_input_for(expected_file), expected.args, tmp_path,
                                monkeypatch)
    if update_golden:
        expected.exit, expected.stdout, expected.stderr = code, stdout, stderr
        expected_file.write_text(expected.dump(), encoding="utf-8")
        return
    assert "Traceback" not in stdout + stderr
    assert (code, stdout, stderr) == (expected.exit, expected.stdout, expected.stderr)


def test_every_input_has_an_expectation(update_golden: bool) -> None:
    """A new input file without an .expected is an error (``--update-golden`` creates one)."""
    inputs = [p for p in GOLDEN.iterdir() if p.suffix in INPUT_SUFFIXES]
    names = list(GENERATED) + [p.name for p in inputs]
    missing = [n for n in names if not (GOLDEN / (n.rsplit(".", 1)[0] + ".expected")).exists()]
    if update_golden:
        for name in missing:
            (GOLDEN / (name.rsplit(".", 1)[0] + ".expected")).write_text(
                Expected(["# TODO: describe and check by hand"], [], -1, "", "").dump(),
                encoding="utf-8")
        return
    assert not missing
    assert len(_cases()) >= 15


def test_python_tag_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``!!python/object/apply:os.system`` spec is refused without running the command."""
    source = (GOLDEN / "python-tag.yaml").read_text(encoding="utf-8")
    (tmp_path / "python-tag.yaml").write_text(source, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "python-tag.yaml"])
    assert result.exit_code == 1
    assert os.listdir(tmp_path) == ["python-tag.yaml"]  # no pwned.txt


def test_expected_format_round_trips() -> None:
    text = "# c\nargs: --strict --format json\nexit: 1\n--- stdout\na\n\nb\n--- stderr\n"
    parsed = Expected.parse(text)
    assert parsed.args == ["--strict", "--format", "json"]
    assert (parsed.exit, parsed.stdout, parsed.stderr) == (1, "a\n\nb\n", "")
    assert parsed.dump() == text
