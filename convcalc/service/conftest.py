"""Doctest collection: the modules that import FastAPI are skipped where the
``service`` extra is not installed (``pip install -e '.[service]'``)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("fastapi") else ["app.py", "models.py"]
