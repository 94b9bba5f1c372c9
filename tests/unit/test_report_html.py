"""Unit tests for the self-contained HTML report (no browser needed)."""

from __future__ import annotations

import base64
import copy
import json
import re

import pytest
from fixtures.report_induction import induction_report_data

from emergelab.report import fig_to_data_uri, json_for_script, render_induction_report
from emergelab.report.figures import new_figure
from emergelab.report.html import Section, render_fragment, render_page

XSS_TOKEN = "<script>alert(1)</script>"
SECTION_IDS = ["summary", "loss", "icl", "heads", "attention", "ablation", "config"]


@pytest.fixture(scope="module")
def data() -> dict:
    return induction_report_data()


@pytest.fixture(scope="module")
def page(data) -> str:
    return render_induction_report(data)


def _embedded_json(page: str, element_id: str):
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S)
    assert match, f"no JSON script element {element_id}"
    return json.loads(match.group(1))


def test_single_self_contained_document(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1 and page.count("</html>") == 1
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    srcs = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]*)""", page)
    assert srcs, "expected inline images"
    assert all(s.startswith("data:image/png;base64,") for s in srcs), [s[:40] for s in srcs]
    hrefs = re.findall(r"""\bhref\s*=\s*["']([^"']*)""", page)
    assert all(h.startswith("#") for h in hrefs), hrefs
    # every <script> is either inline JS or an inline JSON data block
    assert page.count("<script") == page.count("</script>") == 2


def test_json_for_script_escapes_markup():
    obj = {"t": "</script><!-- & \u2028", "n": float("nan"), "xs": (1, 2.5)}
    text = str(json_for_script(obj))
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\\u003c/script\\u003e" in text
    assert json.loads(text) == {"t": "</script><!-- & \u2028", "n": None, "xs": [1, 2.5]}


def test_xss_token_and_config_never_unescaped(data):
    d = copy.deepcopy(data)
    evil_cfg = "</pre><script>alert('cfg')</script>"
    d["config"]["notes"] = evil_cfg
    d["run"]["id"] = "<b>run</b>"
    d["checks"].append({"name": "<img src=x onerror=alert(2)>", "passed": False, "detail": "a & b <i>"})
    out = render_induction_report(d)
    assert XSS_TOKEN in d["models"]["2L"]["example"]["tokens"]
    assert XSS_TOKEN not in out
    assert evil_cfg not in out and "alert('cfg')" not in out
    assert "&lt;/pre&gt;&lt;script&gt;alert(" in out
    assert "<b>run</b>" not in out and "&lt;b&gt;run&lt;/b&gt;" in out
    assert "<img src=x" not in out and "&lt;img src=x onerror=alert(2)&gt;" in out
    assert "<i>" not in out
    # the token still reaches the viewer, intact, through the JSON block
    payload = _embedded_json(out, "attention-data")
    assert XSS_TOKEN in payload["models"][0]["tokens"]
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in out


def test_all_sections_present_in_order(page):
    positions = [page.find(f'<section id="{sid}"') for sid in SECTION_IDS]
    assert all(p > 0 for p in positions), dict(zip(SECTION_IDS, positions, strict=True))
    assert positions == sorted(positions)
    for sid in SECTION_IDS:
        assert f'href="#{sid}"' in page
    for text in (
        "Phase change between steps 800 and 1,300",
        "L1H2",
        "Attention viewer",
        "Ablations",
        "Provenance",
        "20250101-120000-induction-ab12cd",
        "5/5 passed",
        "clean model",
    ):
        assert text in page, text
    # figures: losses, ICL, and heatmap + line figure per model
    assert page.count("data:image/png;base64,") == 2 + 2 * 2


def test_attention_payload_roundtrip(page, data):
    payload = _embedded_json(page, "attention-data")
    assert [m["label"] for m in payload["models"]] == ["2L", "1L"]
    m = payload["models"][0]
    assert m["tokens"] == data["models"]["2L"]["example"]["tokens"]
    T = len(m["tokens"])
    assert m["heads"][0]["role"] == "induction"  # induction heads are listed first in the selector
    for h in m["heads"]:
        assert len(h["pattern"]) == T and all(abs(sum(row) - 1) < 1e-2 for row in h["pattern"])


def test_no_phase_change_and_no_induction_heads(data):
    d = copy.deepcopy(data)
    s = d["models"]["2L"]["summary"]
    s["phase_change"] = {
        "detected": False,
        "start_step": None,
        "end_step": None,
        "steepest_step": None,
        "drop": 0.1,
    }
    s["induction_heads"] = []
    s["ablation"]["heads"] = []
    out = render_induction_report(d)
    assert out.count("No phase change detected") == 2
    assert "none found" in out
    assert "start (step 0)" not in out  # moments are in the PNG, but the caption names them
    assert "start = step 0, middle = step 1,500, end = step 3,000" in out


def test_minimal_data_renders():
    d = {
        "run": {
            "id": "r",
            "experiment": "induction",
            "status": "running",
            "started_at": "t0",
            "ended_at": None,
            "config_hash": "h",
            "seed": 1,
            "version": "0",
            "git_commit": None,
        },
        "config": {},
        "models": {"2L": {"n_layers": 2, "n_heads": 4, "metrics": {}, "summary": {}, "example": {}}},
        "checks": [],
    }
    out = render_induction_report(d)
    assert "No checks were recorded" in out
    assert "No ablation results recorded for 2L" in out
    assert "not finished" in out and "unknown" in out


def test_fixture_data_is_deterministic():
    assert induction_report_data() == induction_report_data()


def test_render_page_escapes_everything():
    body = render_fragment("_text.html", text="<em>x</em>")
    out = render_page(
        "<T>", [Section("s", "<S>", body, lead="<L>")], meta={"<k>": "<v>"}, data={"d": {"x": "</script>"}}
    )
    for raw in ("<T>", "<S>", "<L>", "<k>", "<v>", "<em>", '</script>"'):
        assert raw not in out
    assert Section("s", "t", "<p>plain str</p>").body not in render_page("t", [Section("s", "t", "<p>p</p>")])


def test_fig_to_data_uri_png():
    fig, axes = new_figure(1, 1, figsize=(2, 1.5))
    axes[0, 0].plot([0, 1], [0, 1])
    uri = fig_to_data_uri(fig)
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 500
