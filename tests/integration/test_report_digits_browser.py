"""Open the digits report in headless Chromium: it loads offline, without errors, and shows its numbers."""

from __future__ import annotations

import pytest
from fixtures.report_digits import digits_report_data

from emergelab.report.digits import render_digits_report

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/digits_report.png"
XSS = "<script>x</script>"


@pytest.fixture(scope="module")
def data() -> dict:
    d = digits_report_data()
    d["explain"]["classes"][3] = XSS  # hostile class label: must show as text, never run
    return d


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("digits") / "report.html"
    path.write_text(render_digits_report(data), encoding="utf-8")
    return path


def test_digits_report_in_browser(chromium_page, report_file, data):
    page = chromium_page
    log = {"errors": [], "dialogs": [], "requests": []}
    page.on("console", lambda m: log["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log["errors"].append(f"pageerror: {e}"))
    page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.goto(report_file.as_uri(), wait_until="load")
    page.screenshot(path=SCREENSHOT, full_page=True)

    assert log["errors"] == [] and log["dialogs"] == []
    assert all(u.startswith(("file://", "data:")) for u in log["requests"]), log["requests"]
    sizes = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
    ex = data["explain"]
    n_figures = 5  # SOM, class hit maps, prototype mosaic, embeddings, confusion
    n_thumbs = sum(1 + len(s["top_units"]) for s in ex["samples"]) + 5 * len(ex["classes"])
    assert len(sizes) == n_figures + n_thumbs
    assert all(complete and width > 0 for complete, width in sizes), sizes

    text = page.evaluate("document.body.innerText")
    assert f"{100 * data['summary']['test_accuracy']:.1f}%" in text
    assert "claim reproduced" in text
    assert XSS in text and page.evaluate("document.querySelectorAll('script').length") == 0
    # thumbnails are laid out at their intended size (the CSS was inlined and applied)
    box = page.locator(".dg-units img.dg-px").first.bounding_box()
    assert box and round(box["width"]) == 48
