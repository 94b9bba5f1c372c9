"""Self-contained HTML report for the ``text-attention`` experiment (source text 4.3.3).

Shows, in order: accuracy and macro F1 per encoder with the target checks and any notes (e.g. a skipped
encoder); training curves; confusion matrices; the words each class's decisions rest on; every test
text with each word shaded by its attention weight (misclassified texts first), the true and predicted
labels; the config and provenance.

Every string from the corpus (texts, labels) reaches the page through Jinja2 with autoescape on, so a
text such as ``<script>alert(1)</script>`` is shown as text, never run.

Input is a plain ``dict`` (built from the store by ``experiments.text_attention.report_data``);
:func:`example_report_data` builds a small synthetic one for tests and previews.

Example:
    >>> from emergelab.report.text_attention import example_report_data, render_text_attention_report
    >>> html = render_text_attention_report(example_report_data())
    >>> "&lt;script&gt;" in html and "<script>alert" not in html
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emergelab.report import figures as F
from emergelab.report.html import Section, config_section, render_fragment, render_page, run_meta
from emergelab.tasks.text import word_spans

__all__ = ["example_report_data", "highlight_segments", "render_text_attention_report"]

TITLE = "Attention explains text classification"
SUBTITLE = (
    "Source text 4.3.3: a learned query scores every word vector, alpha_j = softmax_j(theta^T A_j); the "
    "attention-weighted sum is classified, and the weights show which words the decision rested on."
)
SHADE_RGB = "217, 72, 15"  # the report's accent orange; opacity carries the weight


ENCODER_WHAT = {
    "learned": "word embeddings learned from the training split",
    "minilm": "frozen all-MiniLM-L6-v2 contextual token vectors",
}





def _num(x: Any, digits: int = 3) -> str:
    if isinstance(x, bool) or x is None:
        return "—"
    if isinstance(x, int | float) and math.isfinite(x):
        return f"{x:.{digits}f}"
    return "—"


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
    with F.report_style():
        fig, axes = F.new_figure(1, 2, figsize=(10, 3.2))
        ax_loss, ax_acc = axes[0]
        for i, (name, enc) in enumerate(encoders.items()):
            color = F.MODEL_COLORS[i % len(F.MODEL_COLORS)]
            m = enc.get("metrics") or {}
            for key, ax, ls, what in (("train/loss", ax_loss, "-", "train"), ("test/loss", ax_loss, "--", "test"),
                                      ("train/accuracy", ax_acc, "-", "train"),
                                      ("test/accuracy", ax_acc, "--", "test")):
                series = m.get(key)
                if series and series.get("steps"):
                    vals = [np.nan if v is None else v for v in series["values"]]
                    ax.plot(series["steps"], vals, ls, color=color, lw=1.6, label=f"{name} {what}")
        ax_loss.set_yscale("log")
        ax_loss.set_title("cross-entropy loss")
        ax_acc.set_title("accuracy")
        ax_acc.set_ylim(0, 1.02)
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("epoch")
            ax.legend(frameon=False)
        return F.fig_to_data_uri(fig)


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
                ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=8,
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
            "test_accuracy": _num(s.get("test_accuracy")), "macro_f1": _num(s.get("macro_f1")),
            "train_accuracy": _num(s.get("train_accuracy")), "top_drop": _num(d.get("top_word_drop")),
            "rand_drop": _num(d.get("random_word_drop")), "wall": _num(s.get("wall_seconds"), 1),
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
                  f"(chance accuracy {_num(chance)}). Confidence lost: mean fall of the predicted class's "
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
                lead="Accuracy and macro F1 on the held-out texts for each encoder, and whether the run met its "
                     "targets."),
        Section("training", "Training curves", curves),
        Section("confusion", "Confusion matrices", conf,
                lead="Which topics get mistaken for which."),
        Section("words", "What each class looks at", words,
                lead="Words ranked by mean attention × frequency (the total attention they receive) over all "
                     "texts, grouped by the class the model chose; the number is that total."),
        Section("texts", "Every test text, explained", texts,
                lead="Each word shaded by the attention weight the model gave it; the prediction is the class "
                     "of the attention-weighted sum of the word vectors."),
        config_section(data.get("run") or {}, data.get("config") or {}, _extra_provenance(data)),
    ]
    if not encoders:
        sections.insert(1, Section("empty", "No encoder", render_fragment("_text.html",
                                                                          text="No encoder was trained in this run.")))
    run = data.get("run") or {}
    meta = run_meta(run, checks, {"best": f"{best} {_num(summary.get('test_accuracy'))}" if best else "—"})
    return render_page(TITLE, sections, subtitle=SUBTITLE, meta=meta, styles=("report.css", "text_attention.css"))


# --------------------------------------------------------------------------------------------------
# synthetic example


def example_report_data(seed: int = 0) -> dict[str, Any]:
    """A small deterministic ``data`` dict for :func:`render_text_attention_report` (tests, previews).

    Two of its texts carry markup (``<script>alert(1)</script>``, ``<b>bold</b>``) so tests can check
    that everything is escaped end to end.
    """
    rng = np.random.default_rng(seed)
    classes = ["sports", "food", "<i>odd label</i>"]
    texts = ["The striker scored twice.", "Simmer the stock for hours.", "Rates rose again <b>bold</b> today.",
             "Goal! <script>alert(1)</script> wins it.", "Bake the bread & serve.", "Shares fell 5%."]
    labels = [0, 1, 2, 0, 1, 2]
    test = [2, 3, 4, 5]

    def explain(flip: int) -> dict[str, Any]:
        out = []
        for i in test:
            n = len(word_spans(texts[i]))
            w = rng.random(n) + 1e-3
            pred = labels[i] if i != flip else (labels[i] + 1) % 3
            out.append({"index": i, "true": labels[i], "pred": pred, "confidence": 0.9,
                        "weights": [round(float(v), 4) for v in w / w.sum()]})
        top = {c: [{"word": "<script>x</script>" if c == "sports" else "stock", "score": 2.5, "count": 3,
                    "mean": 0.83}] for c in classes}
        return {"texts": out, "top_words": top}

    def metrics(acc: float) -> dict[str, Any]:
        steps = list(range(11))
        return {"train/loss": {"steps": steps, "values": [1.1 * 0.7**s for s in steps]},
                "test/loss": {"steps": steps, "values": [1.1 * 0.8**s for s in steps]},
                "train/accuracy": {"steps": steps, "values": [min(1.0, 0.33 + 0.1 * s) for s in steps]},
                "test/accuracy": {"steps": steps, "values": [min(acc, 0.33 + 0.08 * s) for s in steps]}}

    def enc_summary(acc: float) -> dict[str, Any]:
        return {"test_accuracy": acc, "macro_f1": acc - 0.05, "train_accuracy": 1.0,
                "confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 1, 1]],
                "deletion": {"n": 4, "top_word_drop": 0.3, "random_word_drop": 0.05, "top_word_flips": 0.25},
                "wall_seconds": 1.5}

    return {
        "run": {"id": "20260101-000000-text-attention-ab12", "experiment": "text-attention", "status": "completed",
                "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:30Z", "config_hash": "abc",
                "seed": seed, "version": "0.1.0", "git_commit": None},
        "config": {"seed": seed, "encoders": ["learned", "minilm"], "notes": "<not a real run>"},
        "corpus": {"texts": texts, "labels": labels, "classes": classes, "train": [0, 1], "test": test,
                   "source": "example <data>"},
        "encoders": {"learned": {"summary": enc_summary(0.75), "metrics": metrics(0.75), "explain": explain(3)},
                     "minilm": {"summary": enc_summary(1.0), "metrics": metrics(1.0), "explain": explain(-1)}},
        "summary": {"best_encoder": "minilm", "test_accuracy": 1.0, "macro_f1": 0.95, "wall_seconds": 3.0},
        "checks": [{"name": "learned: test accuracy >= 2 x chance", "passed": True, "detail": "0.75 vs 0.33"}],
        "notes": ["a note with <markup>"],
        "encoders_requested": ["learned", "minilm"],
    }
