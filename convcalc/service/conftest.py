"""Doctest collection: the modules that import FastAPI or uvicorn are skipped where the
``service`` extra is not installed (``pip install -e '.[service]'``)."""

import importlib.util

WEB = ["app.py", "hosts.py", "models.py", "openapi.py", "problems.py", "reading.py",
       "routes.py", "server.py"]
collect_ignore = [] if all(importlib.util.find_spec(name) for name in ("fastapi", "uvicorn")) \
    else WEB
