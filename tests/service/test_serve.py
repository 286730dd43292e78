"""``convcalc serve`` as a real process, and the imports it must not cost anyone else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def test_serve_answers_over_http(live_server):
    health = httpx.get(live_server + "/api/v1/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    text = (ROOT / "examples" / "simple-convnet.yaml").read_bytes()
    report = httpx.post(live_server + "/api/v1/analyse", content=text, timeout=10,
                        headers={"Content-Type": "text/yaml"})
    assert report.status_code == 200 and report.json()["total_params"] == 433_890
    page = httpx.get(live_server + "/", timeout=10)
    assert page.status_code == 200 and "convcalc" in page.text


def test_serve_help_names_the_extra():
    done = subprocess.run([sys.executable, "-c", "from convcalc.cli import main; main()",
                           "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "--port" in done.stdout and "convcalc[service]" in done.stdout


def test_import_convcalc_imports_no_web_framework_nor_numpy():
    code = ("import sys, convcalc, convcalc.cli, convcalc.service\n"
            "heavy = ('fastapi', 'starlette', 'uvicorn', 'numpy', 'httpx')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_without_the_extra_says_how_to_install_it(tmp_path):
    """With FastAPI hidden, ``convcalc serve`` fails with one line naming the extra."""
    (tmp_path / "fastapi.py").write_text("raise ImportError('No module named fastapi')\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from convcalc.cli import main; main()\n" % str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code, "serve"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "pip install 'convcalc[service]'" in done.stderr


def test_package_data_ships_the_page():
    """The static files are package data (pyproject), so an installed wheel serves them."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"convcalc.service" = ["static/*"]' in text
    static = ROOT / "convcalc" / "service" / "static"
    assert {p.name for p in static.iterdir()} >= {"index.html", "app.js", "style.css"}
