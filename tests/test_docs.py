"""The Sphinx docs build with warnings as errors, and their examples run and pass.

Both builds run once per session in a subprocess (``python -m sphinx``), into a pytest
temporary directory, exactly as the docs say to build them:

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed: pip install -e '.[docs]'")

import convcalc  # noqa: E402
from convcalc.cli import main  # noqa: E402
from convcalc.spec import LAYER_MODELS, layer_types  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TIMEOUT = 120  # seconds per build; each takes a few


def sphinx_build(builder: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", builder,
         "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture(scope="module")
def html_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html")
    result = sphinx_build("html", out)
    assert result.returncode == 0, _explain(result)
    return out


@pytest.fixture(scope="module")
def doctest_build(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], str]:
    out = tmp_path_factory.mktemp("doctest")
    result = sphinx_build("doctest", out)
    report = (out / "output.txt").read_text(encoding="utf-8") \
        if (out / "output.txt").exists() else ""
    return result, report


def _text(fragment: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("¶", "")
    return text.translate(str.maketrans("‘’“”", "''\"\"")).strip()


def test_html_builds_without_warnings(html_build):
    assert (html_build / "index.html").exists()


def test_doctest_build_runs_examples_and_all_pass(doctest_build):
    result, report = doctest_build
    assert result.returncode == 0, _explain(result) + "\n--- output.txt\n" + report
    tests = re.search(r"^\s*(\d+) tests?$", report, flags=re.M)
    assert tests, f"no doctest summary in output.txt:\n{report}"
    assert int(tests.group(1)) > 0, "the doctest builder ran no example"
    for kind in ("tests", "setup code", "cleanup code"):
        assert re.search(rf"^\s*0 failures in {kind}$", report, flags=re.M), report


def test_every_page_with_examples_was_tested(doctest_build):
    _, report = doctest_build
    tested = set(re.findall(r"^Document: (\S+)$", report, flags=re.M))
    with_examples = {page.stem for page in DOCS.glob("*.rst")
                     if re.search(r"^\.\. (doctest|testcode)::", page.read_text(encoding="utf-8"),
                                  flags=re.M)}
    assert {"quickstart", "spec", "worked-examples"} <= with_examples
    assert with_examples <= tested, f"pages whose examples did not run: {with_examples - tested}"


def test_no_example_escapes_the_doctest_builder():
    """Only ``.. doctest::`` blocks run (conf.py), so a bare ``>>>`` block would be shown
    but never checked."""
    loose = []
    for page in sorted(DOCS.glob("*.rst")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.lstrip().startswith(">>>"):
                continue
            indent = len(line) - len(line.lstrip())
            # the nearest less-indented, non-blank line above opens the block
            opener = next((above for above in reversed(lines[:number - 1])
                           if above.strip() and len(above) - len(above.lstrip()) < indent), "")
            if not re.match(r"\s*\.\. doctest::", opener):
                loose.append(f"{page.name}:{number}")
    assert not loose, f"'>>>' outside a '.. doctest::' block (never run): {loose}"


def test_spec_page_lists_every_layer_type_from_the_models(html_build):
    page = (html_build / "spec.html").read_text(encoding="utf-8")
    headings = [_text(h) for h in re.findall(r"<h3>(.*?)</h3>", page, flags=re.S)]
    listed = {tag for heading in headings for tag in heading.split(" · ")}
    expected = {tag for model in LAYER_MODELS for tag in layer_types(model)}
    assert expected <= listed, f"missing from spec.html: {expected - listed}"
    for model in LAYER_MODELS:  # each kind's docstring and options come along
        first_line = (model.__doc__ or "").strip().splitlines()[0]
        assert _text(first_line.replace("``", "")) in _text(page), model.__name__


def test_cli_page_documents_every_command(html_build):
    page = (html_build / "cli.html").read_text(encoding="utf-8")
    for name in main.commands:
        assert f'id="convcalc-{name}"' in page, name


def test_api_page_documents_the_public_api(html_build):
    page = (html_build / "api.html").read_text(encoding="utf-8")
    public = [name for name in convcalc.__all__ if name not in ("__version__", "LAYER_MODELS")]
    anchors = {name: f'id="module-{getattr(convcalc, name).__name__}"'
               if isinstance(getattr(convcalc, name), ModuleType) else f'id="convcalc.{name}"'
               for name in public}
    missing = [name for name, anchor in anchors.items() if anchor not in page]
    missing += [m.__name__ for m in LAYER_MODELS if f'id="convcalc.spec.{m.__name__}"' not in page]
    assert not missing, f"not in api.html: {missing}"
