"""Sphinx configuration for the convcalc docs.

Build (both must pass with no warning):

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest
"""

import doctest
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import convcalc  # noqa: E402  (after the path set-up)

project = "convcalc"
author = "the convcalc authors"
copyright = "the convcalc authors"
release = version = convcalc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx_click",
    "convcalc_docs",  # docs/_ext: layer reference and command output derived from the code
    "zoo_pages",  # docs/_ext: a section per model of convcalc.zoo, from its spec file
    "drawings",  # docs/_ext: drawings of specs made with convcalc.draw at build time
]

exclude_patterns = ["_build"]
html_theme = "furo"  # a well-kept theme whose code blocks scroll inside the page width
html_static_path: list[str] = []
html_show_sourcelink = False

# --- autodoc -------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

# --- doctest -------------------------------------------------------------------------
# Only ``.. doctest::`` / ``testcode`` blocks run here.  The docstrings' own ``>>>``
# examples shown by autodoc are run by pytest (``--doctest-modules``) in their modules'
# namespaces, where they belong.
doctest_test_doctest_blocks = ""
# Exception messages are compared in full (no IGNORE_EXCEPTION_DETAIL): the error text
# is part of what these pages document.
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | \
    doctest.DONT_ACCEPT_TRUE_FOR_1
# Paths in the examples (``examples/vgg16.yaml``) are relative to the repository root.
doctest_global_setup = f"""
import os
os.chdir({str(ROOT)!r})
import convcalc
"""
