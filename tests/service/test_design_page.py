"""The design page in a real browser: Debian's Chromium (``/usr/bin/chromium``) driven by
Playwright against ``convcalc serve`` running in a second process on a loopback port.

It loads the page, edits the spec and sees the table update, triggers errors and sees
them highlighted (the editor's line, the table's row, the message), verifies the design,
loads a zoo model, checks that the page asked nothing of any other host, and leaves a
screenshot in ``artifacts/design-page.png``.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``.  Without
it the test is skipped on a developer's machine, but fails in CI (``CI`` set), which
must run it (``.ci/run`` installs Debian's chromium).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import convcalc

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: As the machine notes start Chromium: as root, headless, and without background
#: networking (this machine's closed network refuses those connections).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "artifacts" / "design-page.png"
TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[test]')")
    with sync_playwright() as playwright:   # each launch gets a new, empty profile
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def report_of(text: str) -> convcalc.Report:
    return convcalc.analyze(convcalc.loads(text))


def test_design_page(browser, live_server):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    requested: list[str] = []
    page_errors: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    page.goto(live_server + "/")
    editor = page.locator("#spec")
    rows = page.locator("#layers tbody tr[data-layer]")

    # the example on load: SimpleConvNet, analysed by the service
    text = editor.input_value()
    expected = report_of(text)
    expect(rows).to_have_count(len(expected.layers))
    expect(page.locator("#total-params")).to_have_text(f"{expected.total_params:,}")
    expect(page.locator("#picture svg g")).to_have_count(6)   # input + 5 shape changes

    # edit: 30 filters → 20; the table and the totals follow
    edited = text.replace("filters: 30", "filters: 20")
    editor.fill(edited)
    changed = report_of(edited)
    expect(page.locator("#total-params")).to_have_text(f"{changed.total_params:,}")
    expect(rows.first.locator("td.shape")).to_have_text("[20, 24, 24]")

    # an invalid spec: 422, its line marked in the editor, the message listed
    line = edited.splitlines().index(next(l for l in edited.splitlines() if "stride: 1" in l)) + 1
    editor.fill(edited.replace("stride: 1", "stride: 0"))
    expect(page.locator(f"#gutter-lines div:nth-child({line})")).to_have_class("err")
    expect(page.locator(f"#backdrop-lines div[data-line='{line}']")).to_have_class("err")
    expect(page.locator("#problems li.err")).to_have_text(
        re.compile(rf"line {line} layers\[0\]\.stride: must be ≥ 1 \(got 0\)"))
    expect(page.locator("#report-pane")).to_have_class(re.compile("stale"))
    expect(page.locator("#status")).to_have_text("422: Invalid spec")

    # back to valid, then verify on the engine
    editor.fill(edited)
    expect(page.locator("#report-pane")).not_to_have_class(re.compile("stale"))
    expect(page.locator("#gutter-lines div.err")).to_have_count(0)
    page.click("#verify")
    expect(page.locator("#verification")).to_have_text(
        re.compile(rf"✓ verified: all {len(changed.layers)} layers agree"))
    expect(page.locator("#layers tbody td.engine.ok")).to_have_count(len(changed.layers))

    # a zoo model from the menu
    page.select_option("#zoo", "resnet18")
    expect(page.locator("#summary h2")).to_have_text("ResNet-18")
    expect(page.locator("#total-params")).to_have_text("11,689,512")

    # a network error: a 200 report whose problem marks the row, the line and the picture
    broken = ("name: stride3\ninput: [1, 7, 7]\nlayers:\n"
              "  - {type: conv, filters: 8, kernel: 3, stride: 3}\n  - relu\n"
              "  - {type: maxpool, kernel: 2}\n  - flatten\n  - {type: dense, units: 10}\n")
    editor.fill(broken)
    conv = page.locator("#layers tbody tr[data-layer='conv1']")
    expect(conv).to_have_class("err")
    expect(page.locator("#layers tbody tr.msg.err")).to_have_text(
        re.compile(r"7/3 is not a whole number"))
    expect(page.locator("#gutter-lines div:nth-child(4)")).to_have_class("err")
    expect(page.locator("#status")).to_have_text("1 error in the network")
    expect(page.locator("#picture text.err")).to_have_count(1)

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    # offline: the page asked nothing of any other host, and broke no rule of its own
    assert requested and all(url.startswith(live_server) or url.startswith("data:")
                             for url in requested), requested
    assert not page_errors, page_errors
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    page.close()
