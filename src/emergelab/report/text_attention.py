"""Self-contained HTML report for the ``text-attention`` experiment (section 4.3.3 of the original description
this project is based on, a Chinese-language article on emergence, in-context learning and interpretability).

Shows, in order: accuracy and macro F1 per encoder with the acceptance checks and any notes (e.g. a skipped
encoder); training curves; confusion matrices; the words each class's decisions rest on; every test
text with each word shaded by its attention weight (misclassified texts first), the true and predicted
labels; the config and provenance.

Every string from the corpus (texts, labels) reaches the page through Jinja2 with autoescape on, so a
text such as ``<script>alert(1)</script>`` is shown as text, never run.

Input is a plain ``dict`` (built from the store by ``experiments.text_attention.report_data``;
``tests/fixtures/report_text_attention.py`` holds a complete instance, checked against a real run's).

Example:
    >>> html = render_text_attention_report(report_data(store, run))
    >>> "&lt;script&gt;" in html and "<script>alert" not in html  # corpus markup is escaped text
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emergelab.report import figures as F
from emergelab.report import series as S
from emergelab.report.format import fmt
from emergelab.report.html import Section, render_fragment, render_run_page, run_meta
from emergelab.tasks.text import word_spans

__all__ = ["highlight_segments", "render_text_attention_report"]

TITLE = "Attention explains text classification"
SUBTITLE = (
    "The attention classifier of section 4.3.3 of the original description this project is based on (a "
    "Chinese-language article on emergence, in-context learning and interpretability): a learned query scores "
    "every word vector, alpha_j = softmax_j(theta^T A_j); the attention-weighted sum is classified, and the "
    "weights show how much each word contributed to it."
)
SHADE_RGB = "217, 72, 15"  # the report's accent orange; opacity carries the weight


ENCODER_WHAT = {
    "learned": "word embeddings learned from the training split",
    "minilm": "frozen all-MiniLM-L6-v2 contextual token vectors",
}


def highlight_segments(text: str, weights: Sequence[float]) -> list[dict[str, Any]]:
    """Split `text` into word and gap segments; words carry their weight `w` and opacity `a` (weight
    relative to the text's largest, so every text uses the full scale); gaps have `w=None`.

    Example:
        >>> [s["text"] for s in highlight_segments("Hi, you!", [0.25, 0.75])]
        ['Hi', ', ', 'you', '!']
    """
    spans = word_spans(text)
    w = [float(v) for v in weights][: len(spans)] + [0.0] * max(0, len(spans) - len(weights))
    top = max(w, default=0.0)
    k_top = int(np.argmax(w)) if w and top > 0 else -1
    segs, pos = [], 0
    for k, (s, e) in enumerate(spans):
        if s > pos:
            segs.append({"text": text[pos:s], "w": None})
        a = 0.85 * w[k] / top if top > 0 else 0.0
        segs.append({"text": text[s:e], "w": w[k], "a": a, "top": k == k_top})
        pos = e
    if pos < len(text):
        segs.append({"text": text[pos:], "w": None})
    return segs


# --------------------------------------------------------------------------------------------------
# figures


def _fig_training(encoders: Mapping[str, Mapping[str, Any]]) -> str | None:
    if not any((e.get("metrics") or {}) for e in encoders.values()):
        return None
    loss, acc = [], []
    for i, (name, enc) in enumerate(encoders.items()):
        color, m = F.MODEL_COLORS[i % len(F.MODEL_COLORS)], enc.get("metrics") or {}
        for key, curves, ls, what in (("train/loss", loss, "-", "train"), ("test/loss", loss, "--", "test"),
                                      ("train/accuracy", acc, "-", "train"), ("test/accuracy", acc, "--", "test")):
            curves.append(F.Curve(*S.series(m, key), label=f"{name} {what}", color=color, lw=1.6, ls=ls))
    return F.curve_panels([F.Panel("cross-entropy loss", loss, log=True, xlabel="epoch"),
                           F.Panel("accuracy", acc, ylim=(0, 1.02), xlabel="epoch")], figsize=(10, 3.4),
                          legend="below", legend_cols=4)


def _fig_confusion(encoders: Mapping[str, Mapping[str, Any]], classes: Sequence[str]) -> str | None:
    mats = {n: np.asarray(e["summary"].get("confusion_matrix") or [], dtype=float) for n, e in encoders.items()}
    mats = {n: m for n, m in mats.items() if m.size}
    if not mats:
        return None
    C = len(classes)
    with F.report_style():
        fig, axes = F.new_figure(1, len(mats), figsize=(4.2 * len(mats) + 0.6, 0.55 * C + 1.6))
        for ax, (name, m) in zip(axes[0], mats.items(), strict=True):
            rows = m.sum(axis=1, keepdims=True)
            share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
            F.heatmap(ax, share, row_labels=list(classes), col_labels=list(classes), cmap="Oranges", annotate=False)
            for (r, c), v in np.ndenumerate(m):
                ax.text(c, r, fmt(int(v)), ha="center", va="center", fontsize=8,
                        color="#fff" if share[r, c] > 0.6 else "#222")
            ax.set_title(name)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.tick_params(axis="x", labelrotation=35)
        return F.fig_to_data_uri(fig)


# --------------------------------------------------------------------------------------------------
# sections


def _summary_rows(encoders: Mapping[str, Mapping[str, Any]], best: str | None) -> list[dict[str, Any]]:
    rows = []
    for name, enc in encoders.items():
        s = enc.get("summary") or {}
        d = s.get("deletion") or {}
        rows.append({
            "name": name, "what": ENCODER_WHAT.get(name, ""), "best": name == best and len(encoders) > 1,
            # fixed decimals: a column of scores lines up (1.000 over 0.750)
            **{key: fmt(src.get(name), 3, "fixed") for key, src, name in (
                ("test_accuracy", s, "test_accuracy"), ("macro_f1", s, "macro_f1"),
                ("train_accuracy", s, "train_accuracy"), ("top_drop", d, "top_word_drop"),
                ("rand_drop", d, "random_word_drop"))},
            "wall": fmt(s.get("wall_seconds"), 1, "fixed"),
        })
    return rows


def _text_items(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    corpus = data.get("corpus") or {}
    texts, classes = corpus.get("texts") or [], corpus.get("classes") or []
    labels = corpus.get("labels") or []
    encoders = data.get("encoders") or {}
    per_enc = {n: {int(t["index"]): t for t in ((e.get("explain") or {}).get("texts") or [])}
               for n, e in encoders.items()}

    def label(i: Any) -> str:
        return str(classes[i]) if isinstance(i, int) and 0 <= i < len(classes) else str(i)

    items = []
    for i in corpus.get("test") or []:
        cells, n_wrong = [], 0
        for name in encoders:
            t = per_enc[name].get(int(i))
            if t is None:
                cells.append(None)
                continue
            correct = t["pred"] == t["true"]
            n_wrong += not correct
            cells.append({"pred": label(t["pred"]), "correct": correct, "confidence": float(t.get("confidence", 0.0)),
                          "segments": highlight_segments(texts[i], t.get("weights") or [])})
        items.append({"index": int(i), "true": label(labels[i]), "cells": cells, "wrong": n_wrong > 0,
                      "n_wrong": n_wrong})
    items.sort(key=lambda it: (-it["n_wrong"], it["index"]))  # misclassified first, worst first
    return items


def _extra_provenance(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    corpus = data.get("corpus") or {}
    summary = data.get("summary") or {}
    return [("corpus", corpus.get("source")),
            ("texts (train / test)", f"{len(corpus.get('train') or [])} / {len(corpus.get('test') or [])}"),
            ("classes", ", ".join(map(str, corpus.get("classes") or []))),
            ("training time (s)", summary.get("wall_seconds"))]


def render_text_attention_report(data: Mapping[str, Any]) -> str:
    """One self-contained HTML page from the dict that ``report_data`` builds (see module docstring)."""
    encoders = dict(data.get("encoders") or {})
    corpus = data.get("corpus") or {}
    classes = [str(c) for c in corpus.get("classes") or []]
    summary = data.get("summary") or {}
    checks = list(data.get("checks") or [])
    n_pass = sum(bool(c.get("passed")) for c in checks)
    best = summary.get("best_encoder")
    n_test = len(corpus.get("test") or [])
    chance = 1 / len(classes) if classes else float("nan")
    split_line = (f"{len(corpus.get('train') or [])} training and {n_test} test texts in {len(classes)} classes "
                  f"(chance accuracy {fmt(chance, 3, 'fixed')}). Confidence lost: mean fall of the predicted class's "
                  "probability on test texts when the most-attended word (or a random other word) is left out "
                  "of the attention pool; a faithful explanation costs much more for the top word.")
    body = render_fragment("text_attention_summary.html", rows=_summary_rows(encoders, best),
                           notes=list(data.get("notes") or []), checks=checks, n_pass=n_pass, split_line=split_line)

    training = _fig_training(encoders)
    confusion = _fig_confusion(encoders, classes)
    curves = render_fragment("figure.html", figures=[{"src": training, "alt": "training curves",
                                               "caption": "Solid: training split; dashed: test split (logged once "
                                                          "per epoch, never used to pick a model)."}]
                     if training else [])
    conf = render_fragment("figure.html", figures=[{"src": confusion, "alt": "confusion matrices",
                                             "caption": "Test split. Numbers are counts; colour is the share of "
                                                        "each true class (row)."}] if confusion else [])
    word_rows = [{"label": c, "cells": [((e.get("explain") or {}).get("top_words") or {}).get(c, [])
                                        for e in encoders.values()]} for c in classes]
    words = render_fragment("text_attention_words.html", encoders=list(encoders), rows=word_rows)
    items = _text_items(data)
    texts = render_fragment("text_attention_texts.html", encoders=list(encoders), items=items,
                            n_wrong=sum(it["wrong"] for it in items), rgb=SHADE_RGB)

    sections = [
        Section("summary", "Results", body,
                lead="Accuracy and macro F1 on the held-out texts for each encoder, and whether the run meets the "
                     "experiment's acceptance thresholds."),
        Section("training", "Training curves", curves),
        Section("confusion", "Confusion matrices", conf,
                lead="Which topics get mistaken for which."),
        Section("words", "What each class looks at", words,
                lead="Words ranked by mean attention × frequency (the total attention they receive) over all "
                     "texts, grouped by the class the model chose; the number is that total."),
        Section("texts", "Every test text, explained", texts,
                lead="Each word shaded by the attention weight the model gave it; the prediction is the class "
                     "of the attention-weighted sum of the word vectors."),
    ]
    if not encoders:
        sections.insert(1, Section("empty", "No encoder", render_fragment("_text.html",
                                                                          text="No encoder was trained in this run.")))
    run = data.get("run") or {}
    meta = run_meta(run, checks, {"best": f"{best} {fmt(summary.get('test_accuracy'), 3, 'fixed')}" if best else "—"})
    return render_run_page(TITLE, data, sections, provenance=_extra_provenance(data), subtitle=SUBTITLE, meta=meta,
                           styles=("report.css", "text_attention.css"))
