"""Unit tests for the ``digits`` HTML report (no browser needed), on the synthetic fixture data."""

from __future__ import annotations

import base64
import copy
import io
import re
import time

import numpy as np
import pytest
from fixtures.report_digits import digits_report_data

from emergelab.report.digits import render_digits_report

SECTION_IDS = ["summary", "som", "prototypes", "representations", "why", "importance", "confusion", "config"]
XSS = "<script>x</script>"


@pytest.fixture(scope="module")
def data() -> dict:
    return digits_report_data()


@pytest.fixture(scope="module")
def rendered(data) -> tuple[str, float]:
    t0 = time.perf_counter()
    html = render_digits_report(data)
    return html, time.perf_counter() - t0


@pytest.fixture(scope="module")
def page(rendered) -> str:
    return rendered[0]


def _decode_png(uri: str) -> np.ndarray:
    import matplotlib.image as mimage

    assert uri.startswith("data:image/png;base64,")
    return mimage.imread(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), format="png")


def test_example_data_is_deterministic_and_follows_the_contract(data):
    assert digits_report_data(0) == data
    assert digits_report_data(1) != data
    ex = data["explain"]
    rows, cols = ex["som_shape"]
    h, w = ex["image_shape"]
    n_classes, n_test = len(ex["classes"]), len(ex["test_labels"])
    assert np.asarray(ex["hit_map"]).shape == (n_classes, rows, cols)
    assert np.asarray(ex["prototypes"]).shape == np.asarray(ex["som_prototypes"]).shape == (rows * cols, h * w)
    assert np.asarray(ex["class_importance"]).shape == (n_classes, rows * cols)
    assert all(np.asarray(ex["embeddings"][layer][p]).shape == (n_test, 2)
               for layer in ("input", "rbf", "pooled") for p in ("pca", "tsne"))
    assert any(s["label"] != s["prediction"] for s in ex["samples"])
    assert set(data["summary"]["baselines"]) == {"logistic_regression", "svm_rbf", "rbf_network"}
    assert all(0 <= v <= 1 for s in data["summary"]["per_split"] for v in s["model"].values())


def test_self_contained_and_fast(rendered):
    page, seconds = rendered
    assert page.startswith("<!DOCTYPE html>") and page.count("</html>") == 1
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    srcs = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]*)""", page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert all(h.startswith("#") for h in re.findall(r"""\bhref\s*=\s*["']([^"']*)""", page))
    assert "<script" not in page  # the report needs no JavaScript at all
    # brief: < 5 s for ~450 test points; generous bound here because the test machine is shared
    assert seconds < 15, f"render took {seconds:.1f} s"


def test_sections_present_in_order(page):
    positions = [page.find(f'<section id="{sid}"') for sid in SECTION_IDS]
    assert all(p > 0 for p in positions), dict(zip(SECTION_IDS, positions, strict=True))
    assert positions == sorted(positions)
    for title in ("Self-organising map", "Why the model decided", "Most important prototypes per class"):
        assert title in page


def test_headline_numbers_baselines_and_claim(data, page):
    s = data["summary"]
    headline = page[page.find('<section id="summary"') : page.find('<section id="som"')]
    assert f"{100 * s['test_accuracy']:.1f}%" in headline
    assert f"{s['macro_f1']:.3f}" in headline and f"± {s['std']['macro_f1']:.3f}" in headline
    for name in ("logistic regression", "SVM, RBF kernel", "plain RBF network"):
        assert name in headline
    assert f"{s['baselines']['svm_rbf']['roc_auc_ovr']:.3f}" in headline
    assert "claim reproduced" in headline and "not reproduced" not in headline
    assert headline.count('class="tag ok">✓ pass') == len(s["checks"])
    som = s["som"]
    assert f"{som['quantization_error']:.3f}" in page and f"{100 * som['topographic_error']:.1f}%" in page


def test_claim_not_met_is_shown(data):
    d = copy.deepcopy(data)
    d["summary"]["test_accuracy"] = 0.85
    d["explain"] = {}  # keep this render fast; a missing explain block must not break the page
    out = render_digits_report(d)
    assert "claim not reproduced" in out and "85.0%" in out
    assert "No prototypes were recorded." in out and "No confusion matrix was recorded." in out


def test_sample_cards_show_prototypes_of_the_attended_units(data, page):
    ex = data["explain"]
    samples = ex["samples"]
    n_wrong = sum(s["label"] != s["prediction"] for s in samples)
    why = page[page.find('<section id="why"') : page.find('<section id="importance"')]
    assert why.count('class="dg-card"') == len(samples) - n_wrong
    assert why.count('class="dg-card dg-wrong"') == n_wrong
    assert why.find("Misclassified") < why.find("dg-card dg-wrong")  # mistakes in their own subsection
    # the picture under "unit k" really is prototype k: decode the PNG and compare to every prototype
    unit = samples[0]["top_units"][0]["unit"]
    match = re.search(rf'title="unit {unit} [^"]*">\s*<img class="dg-px" src="([^"]+)"', why)
    assert match
    img = _decode_png(match.group(1))
    h, w = ex["image_shape"]
    step = img.shape[0] // h
    ink = 1.0 - img[::step, ::step, 0].ravel()  # gray_r: dark = high value
    protos = np.asarray(ex["prototypes"])
    corr = [np.corrcoef(ink, p)[0, 1] for p in protos]
    assert int(np.argmax(corr)) == unit and corr[unit] > 0.99
    # probabilities of the first sample are listed, predicted one bold
    p_pred = samples[0]["probabilities"][samples[0]["prediction"]]
    assert f"{p_pred:.3f}" in why


def test_importance_lists_the_stored_top_units_per_class(data, page):
    top = data["explain"]["class_top_units"]
    imp = np.asarray(data["explain"]["class_importance"])
    part = page[page.find('<section id="importance"') : page.find('<section id="confusion"')]
    for ci in (0, len(top) - 1):
        assert [u["unit"] for u in top[ci]] == np.argsort(-imp[ci], kind="stable")[:5].tolist()
        row = part.split("<tr>")[ci + 2]  # header row first
        assert [int(u) for u in re.findall(r'title="unit (\d+) ', row)] == [u["unit"] for u in top[ci]]
        assert f"{top[ci][0]['weight']:.3f}" in row
    assert part.count('<img class="dg-px"') == 5 * len(top)


def test_silhouettes_and_prototype_shift_are_the_stored_ones(data, page):
    """The report computes no analysis: it shows the silhouettes and the center shift the analysis stored."""
    sil = data["explain"]["silhouette"]
    reps = page[page.find('<section id="representations"') : page.find('<section id="why"')]
    for proj in ("pca", "tsne"):
        assert " → ".join(f"{sil[proj][layer]:.2f}" for layer in ("input", "rbf", "pooled")) in reps
    d = copy.deepcopy(data)
    d["explain"]["silhouette"]["tsne"]["pooled"] = -0.5
    d["explain"]["prototype_shift"] = 9.87
    out = render_digits_report(d)
    assert "→ -0.50 (does not rise)" in out and "by 9.87 pixel-value units" in out


def test_hostile_strings_are_escaped(data):
    d = copy.deepcopy(data)
    d["explain"]["classes"][3] = XSS
    d["explain"]["classes"][5] = "a$b$ & <i>"  # "$...$" would be mathtext in matplotlib
    d["config"]["notes"] = "</pre><script>alert('cfg')</script>"
    d["run"]["id"] = "<b>run</b>"
    d["summary"]["checks"].append({"name": "<img src=x onerror=alert(2)>", "passed": False, "detail": "a & b"})
    d["summary"]["baselines"]["<svg onload=alert(3)>"] = {"test_accuracy": 0.5}
    out = render_digits_report(d)
    assert "<script" not in out and "<img src=x" not in out and "<svg" not in out and "<i>" not in out
    assert "<b>run</b>" not in out and "&lt;b&gt;run&lt;/b&gt;" in out
    assert "&lt;script&gt;x&lt;/script&gt;" in out  # the class label is shown, as text
    assert "&lt;/pre&gt;&lt;script&gt;alert(" in out
    assert "a$b$ &amp; &lt;i&gt;" in out
    assert "&lt;svg onload=alert(3)&gt;" in out
    assert "3/4 passed" in out


def test_all_correct_samples_render_empty_misclassified_section(data):
    d = copy.deepcopy(data)
    d["explain"]["samples"] = [s for s in d["explain"]["samples"] if s["label"] == s["prediction"]]
    d["explain"]["embeddings"] = {}  # not under test; skipping the scatter grid keeps this test fast
    out = render_digits_report(d)
    why = out[out.find('<section id="why"') : out.find('<section id="importance"')]
    assert "dg-wrong" not in why
    assert "No misclassified examples" in why
    assert why.count('class="dg-card"') == len(d["explain"]["samples"])
    assert "No embedding coordinates were recorded." in out


def test_empty_data_renders_placeholders():
    out = render_digits_report({})
    assert out.startswith("<!DOCTYPE html>")
    assert all(f'<section id="{sid}"' in out for sid in SECTION_IDS)
    assert "No checks were recorded for this run." in out
    assert "No correctly classified examples were recorded." in out


def test_explanations_state_the_share_of_the_attention_the_shown_prototypes_hold(data, page):
    """The card words its claim by the weights it shows: the top units' weights add up to their share of the
    image's attention (weights over all K units sum to 1); only a share >= 50% is called most of it."""
    samples = data["explain"]["samples"]
    n_units = len(data["explain"]["prototypes"])
    why = page[page.find('<section id="why"') : page.find('<section id="importance"')]
    shares = [sum(u["weight"] for u in s["top_units"]) for s in samples]
    assert any(v < 0.5 for v in shares) and any(v >= 0.5 for v in shares)  # the fixture holds both cases
    cards = re.split(r'<div class="dg-card(?: dg-wrong)?">', why)[1:]
    by_index = {int(re.search(r"test #(\d+)", c).group(1)): c for c in cards}
    for s, share in zip(samples, shares, strict=True):
        card = by_index[s["index"]]
        assert f'<strong class="dg-share">{round(100 * share)}%</strong> of this' in card
        assert f"(uniform: {round(100 * 5 / n_units)}%)" in card
        assert ("most of the attention" in card) is (share >= 0.5)
    lo, hi = min(shares), max(shares)
    assert f"carry {round(100 * lo)}% to {round(100 * hi)}% of the attention" in why
    assert f"on {sum(v >= 0.5 for v in shares)} of {len(shares)} they hold at least 50%" in why
    assert "The decision rests on these prototypes" not in page
    # per class: the five mean weights together
    part = page[page.find('<section id="importance"') : page.find('<section id="confusion"')]
    share0 = sum(u["weight"] for u in data["explain"]["class_top_units"][0])
    assert f"{round(100 * share0)}%" in part.split("<tr>")[2]


def test_a_small_share_is_not_called_decisive(data):
    d = copy.deepcopy(data)
    d["explain"] = {"samples": [dict(d["explain"]["samples"][0], top_units=[
        {"unit": u, "weight": w} for u, w in zip(range(5), (0.14, 0.09, 0.07, 0.05, 0.03), strict=True)])],
        "prototypes": d["explain"]["prototypes"], "classes": d["explain"]["classes"], "image_shape": [8, 8],
        "som_shape": [10, 10]}
    why = render_digits_report(d).split('<section id="why"')[1].split('<section id="importance"')[0]
    assert '<strong class="dg-share">38%</strong>' in why and "most of the attention</span>" not in why
    assert "the rest is spread over the other units" in why
    assert "carry 38% of the attention on the one explained image; on 0 of 1" in why


def test_one_split_shows_no_spread(data):
    """With one split seed there is no spread: '± 0.000' would read as an exact result."""
    d = copy.deepcopy(data)
    d["summary"]["per_split"] = d["summary"]["per_split"][:1]
    d["explain"] = {}
    summary = render_digits_report(d).split('<section id="summary"')[1].split('<section id="som"')[0]
    assert "±" not in summary and "mean over 1 split seed<" in summary
    assert "±" in render_digits_report(dict(data, explain={})).split('<section id="som"')[0]
