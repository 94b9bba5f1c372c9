"""Self-contained HTML report for the ``digits`` experiment (SOM -> RBF -> attention -> softmax).

The pipeline of the original (Chinese) description this project is based on, on handwritten digits, made
interpretable. Sections, in order: headline metrics (mean ± std over split seeds) against three baselines, that
description's >90 % accuracy claim and the checks; the SOM (U-matrix, class hit maps, QE/TE); the prototypes as
a map-shaped mosaic before and after fine-tuning; PCA / t-SNE views of the input, RBF layer and pooled vector;
per-sample explanations (input, probabilities, the five most-attended units as prototype images and the share
of the attention they hold), misclassified samples apart; the most important prototypes per class; the
confusion matrix and the per-split table; config and provenance.

The report only formats: every number comes from the run's summary and its stored explanation block
(`experiments.digits.analyze`), figures from `report.digits_figures`. Unit ``k`` sits at map row
``k // cols``, column ``k % cols`` (as in :class:`emergelab.models.som.SOM`).

Example:
    >>> html = render_digits_report(experiments.digits.report_data(store, run))
    >>> html.startswith("<!DOCTYPE html>") and "Why the model decided" in html
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from emergelab.report import digits_figures as DF
from emergelab.report.format import MISSING, fmt
from emergelab.report.html import Section, render_fragment, render_run_page, run_meta, wall_rows

__all__ = ["render_digits_report"]

TITLE = "Handwritten digits: SOM → RBF → attention, made interpretable"
SUBTITLE = (
    "The interpretable classifier of the original description this project is based on: a self-organising map "
    "learns prototypes, an RBF layer measures how close an image is to each prototype, attention pools the "
    "prototypes and a softmax decides. Every decision can be traced back to the prototype images it attended "
    "to, with the share of the attention each one got."
)
CLAIM_ACCURACY = 0.90  # the original description claims "over 90 %" test accuracy for this pipeline
METRICS = (
    ("test_accuracy", "accuracy"),
    ("macro_recall", "macro recall"),
    ("macro_f1", "macro F1"),
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest)"),
)
BASELINES = {
    "logistic_regression": "logistic regression",
    "svm_rbf": "SVM, RBF kernel",
    "rbf_network": "plain RBF network",
}
MODEL_LABEL = "SOM → RBF → attention (ours)"
# An image's attention weights over the K map units sum to 1, so the listed units' weights add up to their
# share of the attention. Only a share of at least this is called "most of the attention"; below it the
# pooled evidence is spread over many prototypes and the listed ones are only its largest parts.
MOST_SHARE = 0.5
MAX_PROB_ROWS = 12  # more classes than this: show only the top ones plus the true class


def _num(x: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN values (for comparisons and bar widths)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _unit_rc(unit: int, cols: int) -> str:
    """Map position of a unit as "(row,col)"."""
    r, c = divmod(int(unit), max(int(cols), 1))
    return f"({r},{c})"


def _label(classes: list[str], i: Any) -> str:
    try:
        return classes[int(i)]
    except (TypeError, ValueError, IndexError):
        return str(i)


# --------------------------------------------------------------------------------------------------
# section content


def _metric_row(label: str, means: Mapping[str, Any], stds: Mapping[str, Any], ours: bool) -> dict[str, Any]:
    return {
        "label": label,
        "ours": ours,
        "cells": [{"mean": _num(means.get(k)), "std": _num(stds.get(k))} for k, _ in METRICS],
    }


def _headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    per_split = list(summary.get("per_split") or [])
    stds_shown = len(per_split) > 1  # one split has no spread to show (its std 0 would read as "exact")
    rows = [_metric_row(MODEL_LABEL, summary, dict(summary.get("std") or {}) if stds_shown else {}, True)]
    baselines, spreads = dict(summary.get("baselines") or {}), dict(summary.get("baselines_std") or {})
    for key in [*BASELINES, *(k for k in baselines if k not in BASELINES)]:
        if key in baselines:
            rows.append(_metric_row(BASELINES.get(key, key), dict(baselines[key] or {}),
                                    dict(spreads.get(key) or {}) if stds_shown else {}, False))
    for j in range(len(METRICS)):  # bold the best mean of each column
        best = max((r["cells"][j]["mean"] for r in rows if r["cells"][j]["mean"] is not None), default=None)
        for r in rows:
            r["cells"][j]["best"] = best is not None and r["cells"][j]["mean"] == best
    acc = _num(summary.get("test_accuracy"))
    checks = [dict(c) for c in summary.get("checks") or []]
    return {
        "rows": rows,
        "metrics": [t for _, t in METRICS],
        "n_splits": len(per_split),
        "accuracy": fmt(acc, 1, "percent"),
        "accuracy_std": fmt((summary.get("std") or {}).get("test_accuracy") if stds_shown else None, 1, "percent"),
        "claim": fmt(CLAIM_ACCURACY, 0, "percent"),
        "claim_met": None if acc is None else acc > CLAIM_ACCURACY,
        "checks": checks,
        "n_pass": sum(bool(c.get("passed")) for c in checks),
    }


def _split_table(summary: Mapping[str, Any]) -> dict[str, Any]:
    per_split = [dict(s) for s in summary.get("per_split") or []]
    names = [k for k in BASELINES if any(k in (s.get("baselines") or {}) for s in per_split)]
    names += sorted({k for s in per_split for k in (s.get("baselines") or {}) if k not in BASELINES})
    rows = []
    for s in per_split:
        model, base = dict(s.get("model") or {}), dict(s.get("baselines") or {})
        rows.append({"seed": s.get("seed"), "model": [fmt(_num(model.get(k)), 3, "fixed") for k, _ in METRICS],
                     "baselines": [fmt(_num((base.get(b) or {}).get("test_accuracy")), 3, "fixed") for b in names]})
    return {
        "metrics": [t.replace(" (one-vs-rest)", "") for _, t in METRICS],  # short headers: a wide table
        "baselines": [BASELINES.get(b, b) for b in names],
        "rows": rows,
    }


def _unit_view(u: Mapping[str, Any], px: DF.Pixels, protos: np.ndarray, cols: int, wmax: float) -> dict[str, Any]:
    k, w = int(u.get("unit", -1)), _num(u.get("weight")) or 0.0
    return {"unit": k, "rc": _unit_rc(k, cols), "weight": fmt(w, 3, "fixed"),
            "bar": round(100 * max(w, 0.0) / (wmax or 1.0), 1),
            "img": px.uri(protos[k]) if 0 <= k < len(protos) else None}


def _share_view(units: list[Mapping[str, Any]], n_units: int) -> dict[str, Any]:
    """What the listed units' weights add up to, as text: their share of the attention (weights over all
    units sum to 1), the share a uniform attention would give them, and whether it reaches MOST_SHARE."""
    share = sum(max(_num(u.get("weight")) or 0.0, 0.0) for u in units)
    n = len(units)
    return {"n": n, "share": share, "text": fmt(share, 0, "percent"), "most": share >= MOST_SHARE,
            "uniform": fmt(n / n_units, 0, "percent") if n_units > 0 and n else None}


def _share_summary(samples: list[dict[str, Any]]) -> str | None:
    """One sentence over the explained images: the range and median of the top units' share."""
    shares = sorted(s["share"]["share"] for s in samples if s["share"]["n"])
    if not shares:
        return None
    n_most = sum(v >= MOST_SHARE for v in shares)
    n_top = max(s["share"]["n"] for s in samples)
    if len(shares) == 1:
        spread = f"carry {fmt(shares[0], 0, 'percent')} of the attention on the one explained image"
    else:
        spread = (f"carry {fmt(shares[0], 0, 'percent')} to {fmt(shares[-1], 0, 'percent')} of the attention "
                  f"(median {fmt(float(np.median(shares)), 0, 'percent')}) on the {len(shares)} explained images")
    return (f"The {n_top} most-attended units {spread}; on {n_most} of {len(shares)} they hold at least "
            f"{fmt(MOST_SHARE, 0, 'percent')}, most of the attention.")


def _sample_view(s: Mapping[str, Any], classes: list[str], px: DF.Pixels, protos: np.ndarray, cols: int) -> dict:
    label, pred = s.get("label"), s.get("prediction")
    probs = [_num(p) or 0.0 for p in s.get("probabilities") or []]
    order = list(range(len(probs)))
    if len(probs) > MAX_PROB_ROWS:  # keep the decision readable: top classes plus the true one
        top = sorted(order, key=lambda i: -probs[i])[: MAX_PROB_ROWS - 1]
        order = sorted(set(top) | ({int(label)} if isinstance(label, int) and 0 <= label < len(probs) else set()))
    top_units = list(s.get("top_units") or [])
    wmax = max((_num(u.get("weight")) or 0.0 for u in top_units), default=0.0)
    return {
        "index": s.get("index"),
        "img": px.uri(s.get("image") or []),
        "label": _label(classes, label),
        "prediction": _label(classes, pred),
        "correct": label == pred,
        "confidence": fmt(probs[int(pred)] if isinstance(pred, int) and 0 <= pred < len(probs) else None, 1,
                          "percent"),
        "probs": [{"label": _label(classes, i), "p": fmt(probs[i], 3, "fixed"),
                   "bar": round(100 * min(max(probs[i], 0.0), 1.0), 1), "true": i == label, "pred": i == pred}
                  for i in order],
        "units": [_unit_view(u, px, protos, cols, wmax) for u in top_units],
        "share": _share_view(top_units, len(protos)),
    }


def _importance_view(explain: Mapping[str, Any], classes: list[str], px: DF.Pixels, protos: np.ndarray, cols: int):
    return [{"label": _label(classes, ci), "units": [_unit_view(u, px, protos, cols, 1.0) for u in units],
             "share": _share_view(list(units), len(protos))}
            for ci, units in enumerate(explain.get("class_top_units") or [])]


def _embedding_caption(sil: Mapping[str, Mapping[str, float | None]]) -> str:
    base = (
        "Each dot is a test image, coloured by its true class; black rings mark misclassified images. Columns "
        "follow the pipeline: raw pixels, the RBF layer (closeness to every prototype) and the attention-pooled "
        "vector the softmax reads. In a working model the classes separate more in later layers: overlapping "
        "clouds in pixel space become distinct clusters after pooling. PCA keeps global distances; t-SNE keeps "
        "neighbourhoods (its cluster sizes and gaps carry no meaning)."
    )
    parts = []
    for proj, title in DF.PROJECTIONS:
        vals = [_num((sil.get(proj) or {}).get(layer)) for layer, _ in DF.LAYERS]
        if all(v is not None for v in vals):
            trend = "rises" if vals[-1] > vals[0] else "does not rise"
            parts.append(f"{title}: " + " → ".join(fmt(v, 2, "fixed") for v in vals) + f" ({trend})")
    if parts:
        base += " Silhouette by true class (−1 to 1, higher = better separated), input → RBF → pooled: "
        base += "; ".join(parts) + "."
    return base


# --------------------------------------------------------------------------------------------------
# public API


def render_digits_report(data: Mapping[str, Any]) -> str:
    """Render the full self-contained HTML report of a ``digits`` run.

    ``data`` keys: ``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version,
    git_commit); ``config`` (nested dict); ``summary`` (test_accuracy, macro_recall, macro_f1, roc_auc_ovr as
    means over split seeds, their ``std``, ``som`` {quantization_error, topographic_error}, ``baselines`` and
    ``baselines_std`` {name: metrics}, ``per_split`` [{seed, model, som, baselines}], wall_seconds,
    wall_seconds_analysis, ``checks`` [{name, passed, detail}]); ``explain`` from the first split
    (image_shape [h, w], classes, som_shape [rows, cols], u_matrix (rows, cols), hit_map (n_classes, rows,
    cols), prototypes / som_prototypes (K, h*w) in pixel space, prototype_shift, confusion (n_classes,
    n_classes) rows = true, embeddings {input|rbf|pooled: {pca|tsne: (n_test, 2)}}, silhouette {pca|tsne:
    {input|rbf|pooled: float}}, test_labels / test_predictions (n_test,) class indices, class_importance
    (n_classes, K), class_top_units [[{unit, weight}]], samples [{index, image, label, prediction,
    probabilities, top_units [{unit, weight}]}]). `tests/fixtures/report_digits.py` builds a complete
    instance. Missing optional pieces render as "no data".
    """
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    explain = dict(data.get("explain") or {})
    classes = [str(c) for c in explain.get("classes") or []]
    shape = explain.get("image_shape") or [8, 8]
    som_shape = explain.get("som_shape") or [0, 0]
    cols = int(som_shape[1]) if len(som_shape) > 1 else 1
    px = DF.Pixels(shape, *DF.pixel_range(explain))
    protos = DF.matrix(explain.get("prototypes"), 2)

    head = _headline(summary)
    headline = render_fragment("digits_headline.html", **head)
    som = dict(summary.get("som") or {})
    som_html = render_fragment(
        "digits_som.html",
        qe=fmt(_num(som.get("quantization_error")), 3, "fixed"),
        te=fmt(_num(som.get("topographic_error")), 1, "percent"),
        shape=" × ".join(str(int(s)) for s in som_shape),
        main=DF.fig_som(explain, classes),
        hits=DF.fig_class_hits(explain, classes),
    )
    shift = _num(explain.get("prototype_shift"))
    proto_html = render_fragment("digits_prototypes.html", src=DF.fig_prototypes(explain, px),
                                 change=None if shift is None else fmt(shift, 2, "fixed"),
                                 lo=fmt(px.lo, 1, "fixed"), hi=fmt(px.hi, 1, "fixed"))
    emb_src = DF.fig_embeddings(explain, classes)
    emb_html = render_fragment(
        "figure.html",
        figures=[{"src": emb_src, "alt": "PCA and t-SNE of input, RBF layer and pooled vector",
                  "caption": _embedding_caption(dict(explain.get("silhouette") or {}))}],
    ) if emb_src else render_fragment("_text.html", text="No embedding coordinates were recorded.")

    samples = [_sample_view(s, classes, px, protos, cols) for s in explain.get("samples") or []]
    samples_html = render_fragment(
        "digits_samples.html",
        correct=[s for s in samples if s["correct"]],
        wrong=[s for s in samples if not s["correct"]],
        share_summary=_share_summary(samples),
        most=fmt(MOST_SHARE, 0, "percent"),
        n_units=len(protos),
    )
    importance_html = render_fragment(
        "digits_importance.html", rows=_importance_view(explain, classes, px, protos, cols), n_units=len(protos)
    )
    conf_html = render_fragment(
        "digits_confusion.html", src=DF.fig_confusion(explain, classes), split=_split_table(summary)
    )

    sections = [
        Section("summary", "Summary", headline,
                lead="Test metrics of the interpretable model next to three standard baselines on the same splits."),
        Section("som", "Self-organising map", som_html,
                lead="The SOM arranges the training images on a grid so that similar images land on nearby "
                "units; each unit becomes one prototype of the RBF layer."),
        Section("prototypes", "Prototypes", proto_html,
                lead="Every map unit drawn as the image it stands for, in map layout, before and after the "
                "classifier fine-tuned the RBF centers."),
        Section("representations", "Representations", emb_html,
                lead="The test images seen by each stage of the pipeline, projected to two dimensions."),
        Section("why", "Why the model decided", samples_html,
                lead="For single test images: the class probabilities and the five map units the attention "
                "weighted most, drawn as their prototype images. The classifier reads the attention-weighted "
                "mix of all map units; each card says how much of that mix its five prototypes hold."),
        Section("importance", "Most important prototypes per class", importance_html,
                lead="The five units with the highest mean attention weight over the test images of each class, "
                     "and the share of the class's attention they hold together."),
        Section("confusion", "Confusion and splits", conf_html,
                lead="Which classes the model mixes up, and how stable the metrics are across split seeds."),
    ]
    walls = wall_rows({"training wall time": summary.get("wall_seconds"),
                       "analysis wall time": summary.get("wall_seconds_analysis")})
    meta = run_meta(run, head["checks"], {"started": run.get("started_at", MISSING), "accuracy": head["accuracy"]})
    return render_run_page(TITLE, data, sections, provenance=walls, subtitle=SUBTITLE, meta=meta,
                           styles=("report.css", "digits.css"))
