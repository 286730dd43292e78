"""Shared pytest options for the calculator's tests.

``--update-golden`` rewrites ``tests/golden/*.expected`` from the current CLI output
instead of comparing.  Use it only after a deliberate output change, then read every
rewritten file (``git diff tests/golden``) before committing it.
"""

from __future__ import annotations

import pytest

# tests/fixtures holds data and the scripts that made it (make_fixtures.py needs torchvision,
# which CI does not install): nothing there is a test module or a doctest.
collect_ignore_glob = ["fixtures/*"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.expected from the current output (then review the diff)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
