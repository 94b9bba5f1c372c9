"""Open the induction report in headless Chromium and check it renders and behaves (offline)."""

from __future__ import annotations

import re

import pytest
from fixtures.report_induction import induction_report_data

from emergelab.report import render_induction_report

pytestmark = pytest.mark.browser

XSS_TOKEN = "<script>alert(1)</script>"
SCREENSHOT = "/tmp/report.png"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_induction_report(induction_report_data()), encoding="utf-8")
    return path


@pytest.fixture
def opened(chromium_page, report_file):
    """The report loaded in a page, with console errors, page errors, dialogs and requests recorded."""
    page = chromium_page
    log = {"errors": [], "dialogs": [], "requests": []}
    page.on("console", lambda m: log["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log["errors"].append(f"pageerror: {e}"))
    page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.goto(report_file.as_uri(), wait_until="load")
    page.wait_for_selector(".attn-model canvas")
    return page, log


def _canvas_png(page, index: int = 0) -> str:
    return page.evaluate("i => document.querySelectorAll('.attn-model canvas')[i].toDataURL()", index)


def test_report_loads_without_errors_offline(opened, report_file):
    page, log = opened
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert log["errors"] == []
    assert log["dialogs"] == []
    # the only request is the file itself: no CDN, no fetch
    assert all(u.startswith("file://") or u.startswith("data:") for u in log["requests"]), log["requests"]
    sizes = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == 6
    assert all(complete and width > 0 for complete, width in sizes), sizes


def test_script_token_is_visible_text_not_code(opened):
    page, log = opened
    text = page.evaluate("document.body.innerText")
    assert XSS_TOKEN in text
    assert log["dialogs"] == []
    # and it is rendered as element text, not parsed into a script element
    assert page.evaluate("document.querySelectorAll('script').length") == 2


def test_attention_viewer_renders_and_switches_heads(opened):
    page, log = opened
    assert page.locator(".attn-model canvas").count() == 2
    non_white = page.evaluate(
        """() => { const c = document.querySelector('.attn-model canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++; return n; }"""
    )
    assert non_white > 100
    root = page.locator(".attn-model").first
    before_png, before_head = _canvas_png(page), root.get_attribute("data-head")
    options = root.locator("select option")
    assert options.count() >= 2
    root.locator("select").select_option(index=2)
    assert root.get_attribute("data-head") != before_head
    assert _canvas_png(page) != before_png
    assert "head" in root.locator(".attn-role").inner_text()
    assert log["errors"] == []


def test_hover_cell_shows_tooltip_and_row_highlight(opened):
    page, log = opened
    canvas = page.locator(".attn-model canvas").first
    canvas.evaluate(
        "c => c.scrollIntoView({block: 'center', behavior: 'instant'})"
    )  # mouse coordinates are viewport-relative
    box = canvas.bounding_box()
    n = int(canvas.get_attribute("data-n"))
    cell = float(canvas.get_attribute("data-cell"))
    payload = page.evaluate("JSON.parse(document.getElementById('attention-data').textContent)")
    tokens = payload["models"][0]["tokens"]
    q = n - 3
    k = max(range(q + 1), key=lambda j: payload["models"][0]["heads"][0]["pattern"][q][j])
    before = _canvas_png(page)
    page.mouse.move(box["x"] + (k + 0.5) * cell, box["y"] + (q + 0.5) * cell)
    tip = page.locator(".attn-tooltip")
    assert tip.is_visible()
    w = payload["models"][0]["heads"][0]["pattern"][q][k]
    text = tip.inner_text()
    assert re.search(rf"query token {q} .*→ key token {k} .*: {w:.3f}", text), text
    assert tokens[q] in text
    assert _canvas_png(page) != before  # the hovered row/cell is outlined
    # hovering a token in the strip re-targets the query row; the readout names it
    page.locator(".attn-model").first.locator(".attn-strip .tok").nth(5).hover()
    readout = page.locator(".attn-model").first.locator(".attn-readout").inner_text()
    assert readout.startswith("query 5 ")
    page.mouse.move(0, 0)
    assert not tip.is_visible()
    assert log["errors"] == [] and log["dialogs"] == []
