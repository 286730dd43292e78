"""The design page in a real browser: Debian's Chromium (``/usr/bin/chromium``) driven by
Playwright against ``convcalc serve`` running in a second process on a loopback port.

- the editor: edits update the table, mistakes are marked (line, row, message, the
  graph's node), messages are words (no status codes), verify marks the rows;
- the graph: ResNet-50, GoogLeNet and U-Net loaded from the zoo menu are drawn by
  ``/api/v1/draw`` with a node per layer and an edge per input (the U-Net's skips),
  readable at 1440×900 (drawn at full size, no sideways scrolling); clicking a node
  selects its table row and the other way round; a block folds and opens from the graph
  and from the table; DenseNet-121's blocks folded by the service's depth are folded in
  the table too;
- the zoo menu follows the text, a reload keeps the text, the text downloads as YAML;
- a slow verify (ResNet-18 with gradcheck) shows its elapsed time and is cancelled: the
  page says so and the service's health shows the slot freed;
- an invalid input size offers the nearest valid sizes, and one click fixes the spec;
- at 800 px wide nothing overflows sideways;
- the page asked nothing of any other host and broke no rule of its CSP.

Screenshots: ``artifacts/design-page.png``, ``artifacts/design-{resnet50,googlenet,
unet}.png`` (1440×900), ``artifacts/design-800.png`` (800×1100), and copies at 0.6 scale for the docs
in ``artifacts/docs/`` (``docs/images/`` holds them, optimised with pngquant).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``.  Without
it the test is skipped on a developer's machine, but fails in CI (``CI`` set), which
must run it (``.ci/run`` installs Debian's chromium).
"""

from __future__ import annotations

import base64
import os
import re
import time
from pathlib import Path

import pytest
import yaml

import convcalc
from convcalc import zoo
from convcalc.sizes import check as check_sizes
from convcalc.training_memory import DTYPE_BYTES, OPTIMIZER_STATE
from convcalc.units import format_bytes

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: As the machine notes start Chromium: as root, headless, and without background
#: networking (this machine's closed network refuses those connections).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOT = ARTIFACTS / "design-page.png"
#: the docs' copies are taken at this scale (1440×900 → 864×540 pixels)
DOCS_SCALE = 0.6
TIMEOUT_MS = 15_000
#: a status code where a sentence should be
STATUS_CODE = re.compile(r"\b[45]\d\d\b")


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


class Page:
    """A page of the design page in a new browser context (its own local storage), with
    what it requested, its script errors and its console."""

    def __init__(self, browser, base: str, width: int = 1440, height: int = 900):
        from playwright.sync_api import expect

        expect.set_options(timeout=TIMEOUT_MS)
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.goto(base + "/")

    def close(self) -> None:
        """Close, after checking that the page stayed offline and within its CSP."""
        try:
            assert self.requested and all(
                url.startswith(self.base) or url.startswith(("data:", "blob:"))
                for url in self.requested), self.requested
            assert not self.errors, self.errors
            assert not [m for m in self.console
                        if "Content Security Policy" in m or "Refused" in m], self.console
        finally:
            self.context.close()


@pytest.fixture
def open_page(browser, live_server):
    pages: list[Page] = []

    def opened(width: int = 1440, height: int = 900) -> Page:
        pages.append(Page(browser, live_server, width, height))
        return pages[-1]

    yield opened
    for page in pages:
        page.close()


def report_of(text: str) -> convcalc.Report:
    return convcalc.analyze(convcalc.loads(text))


def load_model(page, name: str, title: str) -> convcalc.Report:
    """Choose ``name`` in the zoo menu; wait for its report and its graph."""
    from playwright.sync_api import expect

    drawn = page.locator("body").get_attribute("data-drawn") or "0"
    page.select_option("#zoo", name)
    expect(page.locator("#summary h2")).to_have_text(title)
    expect(page.locator("body")).not_to_have_attribute("data-drawn", drawn)
    expect(page.locator("#picture")).not_to_have_class(re.compile("stale"))
    expect(page.locator("#sizes")).not_to_have_class(re.compile("stale"))
    return report_of(zoo.text(name))


def screenshot(page, name: str) -> None:
    """``artifacts/NAME.png`` and a copy at :data:`DOCS_SCALE` in ``artifacts/docs/``."""
    (ARTIFACTS / "docs").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    viewport = page.viewport_size
    cdp = page.context.new_cdp_session(page)
    shot = cdp.send("Page.captureScreenshot", {"format": "png", "clip": {
        "x": 0, "y": 0, **viewport, "scale": DOCS_SCALE}})
    cdp.detach()
    (ARTIFACTS / "docs" / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def no_sideways_scroll(page, selector: str) -> bool:
    return page.evaluate("(s) => { const e = document.querySelector(s); "
                         "return e.scrollWidth <= e.clientWidth; }", selector)


def drawn_at_full_size(page) -> bool:
    return page.evaluate("() => { const svg = document.querySelector('#picture svg'); "
                         "return Math.abs(svg.getAttribute('width') - svg.dataset.width) <= 1; }")


# --- the editor, mistakes and verify ---------------------------------------------------------


def test_edit_mistakes_and_verify(open_page):
    from playwright.sync_api import expect

    page = open_page().page
    editor = page.locator("#spec")
    rows = page.locator("#layers tbody tr[data-layer]")

    # the example on load: SimpleConvNet, analysed and drawn by the service
    text = editor.input_value()
    expected = report_of(text)
    expect(rows).to_have_count(len(expected.layers))
    expect(page.locator("#total-params")).to_have_text(f"{expected.total_params:,}")
    # the memory of a training step, and each output's bytes, as the CLI's table shows
    # them (units.format_bytes: the page's own formatting of the same bytes)
    memory = convcalc.footprint(expected)
    expect(page.locator("#memory")).to_contain_text(
        f"sgdmomentumadam: input {format_bytes(memory.input)}")   # (the options' text)
    expect(page.locator("#memory")).to_contain_text("memory at batch 1, ")
    expect(page.locator("#dtype")).to_have_value("float32")
    expect(page.locator("#memory b")).to_have_text(format_bytes(memory.total))
    expect(rows.first.locator("td.num").nth(2)).to_have_text(format_bytes(memory.layers[0]))
    page.locator("#batch").fill("4")             # the batch field sets the memory's batch
    page.locator("#batch").dispatch_event("change")
    at_four = convcalc.footprint(expected, batch=4)
    expect(page.locator("#memory b")).to_have_text(format_bytes(at_four.total))
    expect(rows.first.locator("td.num").nth(2)).to_have_text(format_bytes(at_four.layers[0]))
    page.locator("#batch").fill("1")
    page.locator("#batch").dispatch_event("change")
    expect(page.locator("#memory b")).to_have_text(format_bytes(memory.total))
    # the dtype and optimizer, from the API's own lists (its OpenAPI parameters)
    expect(page.locator("#dtype option")).to_have_count(len(DTYPE_BYTES))
    expect(page.locator("#optimizer option")).to_have_count(len(OPTIMIZER_STATE))
    page.locator("#dtype").select_option("bfloat16")
    page.locator("#optimizer").select_option("adam")
    chosen = convcalc.footprint(expected, batch=1, dtype="bfloat16", optimizer="adam")
    expect(page.locator("#memory b")).to_have_text(format_bytes(chosen.total))
    expect(page.locator("#dtype")).to_have_value("bfloat16")
    page.locator("#dtype").select_option("float32")
    page.locator("#optimizer").select_option("sgd")
    expect(page.locator("#memory b")).to_have_text(format_bytes(memory.total))
    expect(page.locator("#picture g[data-layer]")).to_have_count(len(expected.layers))
    expect(page.locator("#zoo")).to_have_value("")

    # edit: 30 filters → 20; the table and the totals follow
    edited = text.replace("filters: 30", "filters: 20")
    editor.fill(edited)
    changed = report_of(edited)
    expect(page.locator("#total-params")).to_have_text(f"{changed.total_params:,}")
    expect(rows.first.locator("td.shape")).to_have_text("[20, 24, 24]")

    # an invalid spec: its line marked in the editor, the message listed, words only
    line = edited.splitlines().index(next(l for l in edited.splitlines() if "stride: 1" in l)) + 1
    editor.fill(edited.replace("stride: 1", "stride: 0"))
    expect(page.locator(f"#gutter-lines div:nth-child({line})")).to_have_class("err")
    expect(page.locator(f"#backdrop-lines div[data-line='{line}']")).to_have_class("err")
    expect(page.locator("#problems li.err")).to_have_text(
        re.compile(rf"line {line} layers\[0\]\.stride: must be ≥ 1 \(got 0\)"))
    expect(page.locator("#report-pane")).to_have_class(re.compile("stale"))
    expect(page.locator("#status")).to_have_text(
        "The spec is not valid — 1 mistake, listed under the editor")

    # back to valid, then verify on the engine
    editor.fill(edited)
    expect(page.locator("#report-pane")).not_to_have_class(re.compile("stale"))
    expect(page.locator("#gutter-lines div.err")).to_have_count(0)
    page.click("#verify")
    expect(page.locator("#verification")).to_have_text(
        re.compile(rf"✓ verified: all {len(changed.layers)} layers agree"))
    expect(page.locator("#layers tbody td.engine.ok")).to_have_count(len(changed.layers))

    # a refused verification is a sentence: VGG-16 at batch 4 is over the memory ceiling
    load_model(page, "vgg16", "VGG-16")
    page.fill("#batch", "4")
    page.click("#verify")
    verification = page.locator("#verification")
    expect(verification).to_have_text(re.compile(
        r"^The run would need more memory than this service allows: .*largest batch that fits is 1"))
    assert not STATUS_CODE.search(verification.inner_text()), verification.inner_text()
    assert not STATUS_CODE.search(page.locator("#status").inner_text())
    page.fill("#batch", "1")

    # a network error: a report whose problem marks the row, the line and the graph's node
    broken = ("name: stride3\ninput: [1, 7, 7]\nlayers:\n"
              "  - {type: conv, filters: 8, kernel: 3, stride: 3}\n  - relu\n"
              "  - {type: maxpool, kernel: 2}\n  - flatten\n  - {type: dense, units: 10}\n")
    editor.fill(broken)
    expect(page.locator("#zoo")).to_have_value("")
    conv = page.locator("#layers tbody tr[data-layer='conv1']")
    expect(conv).to_have_class("err")
    expect(page.locator("#layers tbody tr.msg.err")).to_have_text(
        re.compile(r"7/3 is not a whole number"))
    expect(page.locator("#gutter-lines div:nth-child(4)")).to_have_class("err")
    errors = len(check_sizes(convcalc.loads(broken)).report.errors)   # + the input's advice
    expect(page.locator("#status")).to_have_text(f"{errors} errors in the network")
    expect(page.locator("#picture g.layer.error[data-layer='conv1']")).to_have_count(1)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # integers above 2**53: shown exactly, and frozen = total − trainable computed exactly
    huge = ("name: huge\ninput: [99999998]\nlayers:\n"
            "  - {type: dense, units: 99999999, trainable: false}\n  - {type: dense, units: 3}\n")
    big = report_of(huge)
    assert big.total_params > 2**53 and float(big.total_params) != big.total_params
    editor.fill(huge)
    expect(page.locator("#total-params")).to_have_text(f"{big.total_params:,}")
    expect(page.locator("#summary .totals")).to_contain_text(
        f"(trainable {big.trainable_params:,}, frozen {big.total_params - big.trainable_params:,})")
    expect(page.locator("#layers tbody tr[data-layer='dense1'] td.num").first).to_have_text(
        f"{big.layers[0].params:,}")
    assert SCREENSHOT.stat().st_size > 10_000


# --- the graph: zoo models, selection, folding ------------------------------------------------


def check_graph(page, report: convcalc.Report) -> None:
    """A node per layer and an edge per input, drawn at full size without sideways
    scrolling."""
    from playwright.sync_api import expect

    expect(page.locator("#picture g[data-layer]")).to_have_count(len(report.layers))
    expect(page.locator("#picture g.edge")).to_have_count(
        sum(len(row.inputs) for row in report.layers))
    expect(page.locator("#layers tbody tr[data-layer]:visible")).to_have_count(len(report.layers))
    assert drawn_at_full_size(page)
    assert no_sideways_scroll(page, "#picture") and no_sideways_scroll(page, "html")


def test_zoo_graphs_selection_and_folding(open_page):
    from playwright.sync_api import expect

    page = open_page().page
    picture = page.locator("#picture")
    table = page.locator("#layers tbody")

    # ResNet-50: every block open; a node and its row select each other
    resnet = load_model(page, "resnet50", "ResNet-50")
    check_graph(page, resnet)
    expect(page.locator("#zoo")).to_have_value("resnet50")
    picture.locator("g[data-layer='layer1.0.conv2']").click()
    expect(table.locator("tr[data-layer='layer1.0.conv2']")).to_have_class(re.compile("selected"))
    expect(picture.locator("g.edge.adjacent")).to_have_count(2)
    table.locator("tr[data-layer='layer3.2.conv1']").click()
    expect(picture.locator("g[data-layer='layer3.2.conv1']")).to_have_class(re.compile("selected"))
    expect(picture.locator("g[data-layer='layer3.2.conv1']")).to_be_in_viewport()

    # fold layer1.0 by its name in the graph: one node for its layers, rows folded too
    inside = next(g for g in resnet.group_summaries if g.name == "layer1.0").layers
    picture.locator("g.cluster[data-group='layer1.0'] > text").first.click()
    expect(picture.locator("g[data-folded][data-group='layer1.0']")).to_have_count(1)
    expect(picture.locator("g[data-layer]")).to_have_count(len(resnet.layers) - len(inside))
    expect(table.locator("tr[data-group='layer1.0']")).to_have_class(re.compile("folded"))
    expect(table.locator("tr[data-layer]:visible")).to_have_count(len(resnet.layers) - len(inside))
    # fold layer2.1 in the table; open layer1.0 from its folded node in the graph
    inside2 = next(g for g in resnet.group_summaries if g.name == "layer2.1").layers
    table.locator("tr[data-group='layer2.1']").click()
    expect(picture.locator("g[data-folded]")).to_have_count(2)
    picture.locator("g[data-folded][data-group='layer1.0']").click()
    expect(picture.locator("g[data-folded]")).to_have_count(1)
    expect(picture.locator("g[data-layer]")).to_have_count(len(resnet.layers) - len(inside2))
    expect(table.locator("tr[data-layer]:visible")).to_have_count(len(resnet.layers) - len(inside2))
    table.locator("tr[data-group='layer2.1']").click()
    expect(picture.locator("g[data-folded]")).to_have_count(0)
    table.locator("tr[data-layer='layer1.0.add']").click()   # the shortcut's merge, centred
    expect(picture.locator("g[data-layer='layer1.0.add']")).to_be_in_viewport()
    expect(picture.locator("g.edge.adjacent")).to_have_count(3)
    screenshot(page, "design-resnet50")

    # GoogLeNet: the inception modules' four branches, side by side
    googlenet = load_model(page, "googlenet", "GoogLeNet")
    check_graph(page, googlenet)
    table.locator("tr[data-layer='inception3a.branch2.1.conv']").click()
    expect(picture.locator("g[data-layer='inception3a.branch2.1.conv']")).to_be_in_viewport()
    screenshot(page, "design-googlenet")

    # U-Net: the skips are edges (each crop reads its encoder level)
    unet = load_model(page, "unet", "U-Net")
    check_graph(page, unet)
    for row in (r for r in unet.layers if r.type == "crop"):
        skip = row.inputs[0]
        expect(picture.locator(f"g.edge[data-from='{skip}'][data-to='{row.name}']")).to_have_count(1)
    table.locator("tr[data-layer='concat3']").click()
    expect(picture.locator("g[data-layer='concat3']")).to_be_in_viewport()
    screenshot(page, "design-unet")

    # DenseNet-121: the service folds the dense layers (depth 1); the table follows
    densenet = load_model(page, "densenet121", "DenseNet-121")
    caption = page.locator("#graph-caption")
    expect(caption).to_have_text(re.compile(r"^79 nodes · 58 blocks folded \(those nested deeper than 1\)"))
    layers = picture.locator("g[data-layer]").count()
    assert layers + picture.locator("g[data-folded]").count() == 78
    expect(table.locator("tr[data-layer]:visible")).to_have_count(layers)
    assert layers < len(densenet.layers)


# --- the menu, reload, download ---------------------------------------------------------------


def test_menu_follows_the_text_reload_and_download(open_page):
    from playwright.sync_api import expect

    page = open_page().page
    editor = page.locator("#spec")
    load_model(page, "lenet5", "LeNet-5")
    expect(page.locator("#zoo")).to_have_value("lenet5")
    page.reload()   # the model's text comes back, and the menu says which it is
    expect(editor).to_have_value(zoo.text("lenet5"))
    expect(page.locator("#zoo")).to_have_value("lenet5")

    edited = zoo.text("lenet5").replace("name: LeNet-5", "name: LeNet-5 (mine)")
    editor.fill(edited)
    expect(page.locator("#zoo")).to_have_value("")
    expect(page.locator("#zoo option:checked")).to_have_text("your spec")
    expect(page.locator("#summary h2")).to_have_text("LeNet-5 (mine)")
    page.reload()
    expect(editor).to_have_value(edited)
    expect(page.locator("#zoo")).to_have_value("")
    expect(page.locator("#summary h2")).to_have_text("LeNet-5 (mine)")

    with page.expect_download() as download:
        page.click("#download")
    saved = download.value
    assert saved.suggested_filename == "lenet-5-mine.yaml"
    text = Path(saved.path()).read_text(encoding="utf-8")
    assert text == edited
    assert yaml.safe_load(text)["name"] == "LeNet-5 (mine)"


# --- a slow verify, cancelled ------------------------------------------------------------------


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_verify_shows_progress_and_cancels(open_page, served):
    from playwright.sync_api import expect

    page = open_page().page
    load_model(page, "resnet18", "ResNet-18")
    before = served.health()["verify"]
    page.check("#gradcheck")   # ResNet-18 with gradcheck: longer than the 60 s limit
    page.click("#verify")
    expect(page.locator("#cancel")).to_be_visible()
    expect(page.locator("#verify")).to_be_disabled()
    expect(page.locator("#verification .spinner")).to_be_visible()
    expect(page.locator("#verify-progress")).to_have_text(
        re.compile(r"^Verifying on the engine… [1-9][0-9]*\.[0-9] s \(the service stops it at 60 s\)$"))
    assert wait_for(lambda: served.health()["verify"]["busy"] >= 1)   # running in a worker
    page.click("#cancel")
    expect(page.locator("#verification")).to_have_text(
        re.compile(r"^Verification cancelled after [0-9.]+ s: the service stopped the run"))
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#verify")).to_be_enabled()
    assert wait_for(lambda: served.health()["verify"]["cancelled"] > before["cancelled"])
    assert wait_for(lambda: served.health()["verify"]["busy"] == 0)
    page.uncheck("#gradcheck")


# --- valid input sizes ---------------------------------------------------------------------


def test_invalid_input_size_offers_the_nearest_valid(open_page):
    from playwright.sync_api import expect

    page = open_page().page
    editor = page.locator("#spec")
    load_model(page, "unet", "U-Net")
    sizes = page.locator("#sizes")
    expect(sizes).to_have_text(re.compile(r"Valid input sizes: H = 16k \+ 124, k ≥ 4 "
                                          r"\(smallest 188\) · W = 16k \+ 124, k ≥ 4"))
    text = zoo.text("unet")
    assert "input: [1, 572, 572]" in text
    editor.fill(text.replace("input: [1, 572, 572]", "input: [1, 570, 572]"))
    expect(sizes).to_have_class("err")
    buttons = sizes.locator("button.size-fix")
    expect(buttons).to_have_text(["H = 556 (→ 372)", "H = 572 (→ 388)"])
    expect(page.locator("#status")).to_have_text(re.compile(r"errors? in the network"))
    buttons.nth(1).click()
    expect(editor).to_have_value(text)
    expect(page.locator("#status")).to_have_text("ok")
    expect(sizes).not_to_have_class("err")
    expect(sizes.locator("button")).to_have_count(0)


# --- 800 px wide -----------------------------------------------------------------------------


def test_800_px_wide(open_page):
    page = open_page(800, 1100).page
    googlenet = load_model(page, "googlenet", "GoogLeNet")
    check_graph(page, googlenet)
    for selector in ("html", "#table-box", "#report-pane", "header"):
        assert no_sideways_scroll(page, selector), selector
    screenshot(page, "design-800")
