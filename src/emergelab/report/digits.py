"""Self-contained HTML report for the ``digits`` experiment (SOM -> RBF -> attention -> softmax).

The source text's pipeline on handwritten digits, made interpretable. Sections, in order: headline metrics
(mean ± std over split seeds) against three baselines, the >90 % claim and the checks; the SOM (U-matrix,
class hit maps, QE/TE); the prototypes as a map-shaped mosaic before and after fine-tuning; PCA / t-SNE
views of the input, RBF layer and pooled vector; per-sample explanations (input, probabilities, the five
most-attended units as prototype images), misclassified samples apart; the most important prototypes per
class; the confusion matrix and the per-split table; config and provenance.

Input is a plain ``dict`` (contract in :func:`render_digits_report`); the run store builds it, and
:func:`example_report_data` builds a deterministic synthetic one for tests and previews. Unit ``k`` sits at
map row ``k // cols``, column ``k % cols`` (as in :class:`emergelab.models.som.SOM`).

Example:
    >>> from emergelab.report.digits import example_report_data, render_digits_report
    >>> html = render_digits_report(example_report_data())
    >>> html.startswith("<!DOCTYPE html>") and "Why the model decided" in html
    True
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emergelab.report import figures as F
from emergelab.report.html import Section, config_section, render_fragment, render_page, run_meta

__all__ = ["example_report_data", "render_digits_report"]

TITLE = "Handwritten digits: SOM → RBF → attention, made interpretable"
SUBTITLE = (
    "The source text's classifier: a self-organising map learns prototypes, an RBF layer measures how close "
    "an image is to each prototype, attention pools the prototypes and a softmax decides. Every decision "
    "can be traced back to the prototype images it attended to."
)
CLAIM_ACCURACY = 0.90  # the source text claims "over 90 %" test accuracy
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
LAYERS = (("input", "input pixels"), ("rbf", "RBF layer"), ("pooled", "attention-pooled vector"))
PROJECTIONS = (("pca", "PCA"), ("tsne", "t-SNE"))
THUMB_PX = 56  # tiny images are upscaled to about this many pixels (crisp even without CSS pixelation)
INK_CMAP = "gray_r"  # ink dark on paper, as digits are usually drawn
MAX_PROB_ROWS = 12  # more classes than this: show only the top ones plus the true class


# --------------------------------------------------------------------------------------------------
# small helpers


def _num(x: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN values."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt(x: Any, digits: int = 3) -> str:
    v = _num(x)
    return "—" if v is None else f"{v:.{digits}f}"


def _pct(x: Any, digits: int = 1) -> str:
    v = _num(x)
    return "—" if v is None else f"{100 * v:.{digits}f} %"


def _mpl(text: Any, limit: int = 14) -> str:
    """Label text safe for matplotlib: short, and ``$`` escaped so mathtext never parses user text."""
    s = str(text)
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _class_colors(n: int) -> list:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _unit_rc(unit: int, cols: int) -> str:
    """Map position of a unit as "(row,col)"."""
    r, c = divmod(int(unit), max(int(cols), 1))
    return f"({r},{c})"


class _Pixels:
    """Turn flat pixel vectors into images on one fixed ink scale (the data range)."""

    def __init__(self, shape: Sequence[int], lo: float, hi: float):
        import matplotlib as mpl

        self.h, self.w = int(shape[0]), int(shape[1])
        self.lo, self.hi = float(lo), float(hi) if hi > lo else float(lo) + 1.0
        self.cmap = mpl.colormaps[INK_CMAP]
        self.scale = max(1, math.ceil(THUMB_PX / max(self.h, self.w)))

    def image(self, vec: Any) -> np.ndarray | None:
        a = np.asarray(vec, dtype=float).ravel()
        if a.size != self.h * self.w:
            return None
        return np.clip(np.nan_to_num(a, nan=self.lo), self.lo, self.hi).reshape(self.h, self.w)

    def uri(self, vec: Any) -> str | None:
        """Tiny PNG ``data:`` URI of one image, nearest-neighbour upscaled (no matplotlib figure: fast)."""
        img = self.image(vec)
        if img is None:
            return None
        rgb = (self.cmap((img - self.lo) / (self.hi - self.lo))[..., :3] * 255).astype(np.uint8)
        rgb = rgb.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
        return _png_uri(rgb)


def _png_uri(rgb: np.ndarray) -> str:
    import matplotlib.image as mimage

    buf = io.BytesIO()
    # Software=None: no version string in the file, so output is reproducible
    mimage.imsave(buf, rgb, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pixel_range(explain: Mapping[str, Any]) -> tuple[float, float]:
    """Display range from the data itself: sample images and the SOM codebook (which lies in the data hull)."""
    parts = [np.asarray(s.get("image") or [], dtype=float).ravel() for s in explain.get("samples") or []]
    parts.append(np.asarray(explain.get("som_prototypes") or [], dtype=float).ravel())
    vals = np.concatenate(parts) if parts else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = float(min(vals.min(), 0.0)), float(vals.max())
    return lo, hi if hi > lo else lo + 1.0


def _matrix(x: Any, ndim: int) -> np.ndarray:
    a = np.asarray(x if x is not None else [], dtype=float)
    return a if a.ndim == ndim else np.zeros((0,) * ndim)


# --------------------------------------------------------------------------------------------------
# figures (matplotlib Figure + Agg, never pyplot)


def _fig_som(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    umat = _matrix(explain.get("u_matrix"), 2)
    hits = _matrix(explain.get("hit_map"), 3)
    if umat.size == 0 and hits.size == 0:
        return None
    colors = _class_colors(len(classes))
    with F.report_style():
        fig, axes = F.new_figure(1, 2, figsize=(10.0, 4.6))
        ax = axes[0, 0]
        if umat.size:
            im = ax.imshow(umat, cmap="magma_r", interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.85, pad=0.02, label="mean distance to neighbours")
            ax.set_title("U-matrix: dark = boundary between clusters")
        else:
            F.no_data(ax, "no U-matrix recorded")
        ax = axes[0, 1]
        if hits.size:
            total = hits.sum(axis=0)  # (rows, cols)
            major = hits.argmax(axis=0)
            purity = np.divide(hits.max(axis=0), total, out=np.zeros_like(total), where=total > 0)
            rgba = np.ones(total.shape + (4,))
            for (r, c), k in np.ndenumerate(major):
                if total[r, c] > 0 and k < len(colors):
                    # colour = majority class, faded by impurity: mixed units look pale
                    rgba[r, c, :3] = 1 - purity[r, c] * (1 - np.asarray(colors[k][:3]))
            ax.imshow(rgba, interpolation="nearest")
            small = total.size > 400  # text would be unreadable on big maps
            for (r, c), k in np.ndenumerate(major):
                if total[r, c] > 0 and not small and k < len(classes):
                    ax.text(c, r, _mpl(classes[k], 3), ha="center", va="center", fontsize=7, color="#111")
            ax.set_title("majority class per unit (pale = mixed, white = no hits)")
        else:
            F.no_data(ax, "no hit map recorded")
        for ax in axes.flat:
            ax.grid(False)
            ax.set_xlabel("map column")
            ax.set_ylabel("map row")
        return F.fig_to_data_uri(fig)


def _fig_class_hits(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    hits = _matrix(explain.get("hit_map"), 3)
    if hits.size == 0:
        return None
    n, rows, cols = hits.shape
    ncols = min(5, n)
    nrows = math.ceil(n / ncols)
    # one image of all class maps side by side (one axes, not n): many constrained-layout axes cost seconds
    gap = max(1, round(0.15 * max(rows, cols)))
    canvas = np.full((nrows * (rows + gap) - gap, ncols * (cols + gap) - gap), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * (rows + gap) : r * (rows + gap) + rows, c * (cols + gap) : c * (cols + gap) + cols] = hits[i]
    import matplotlib as mpl

    cmap = mpl.colormaps["Blues"].with_extremes(bad="white")
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(2.0 * ncols + 1.0, 2.1 * nrows + 0.2))
        ax = axes[0, 0]
        vmax = max(float(hits.max()), 1.0)  # one scale for all classes, so counts compare
        im = ax.imshow(np.ma.masked_invalid(canvas), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        for i in range(n):
            r, c = divmod(i, ncols)
            label = classes[i] if i < len(classes) else str(i)
            ax.add_patch(mpl.patches.Rectangle((c * (cols + gap) - 0.5, r * (rows + gap) - 0.5), cols, rows,
                                               fill=False, ec="#adb5bd", lw=0.8))
            ax.text(c * (cols + gap) + (cols - 1) / 2, r * (rows + gap) - 0.9,
                    f"class {_mpl(label)} · {int(hits[i].sum()):,} hits", ha="center", va="bottom", fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01, aspect=25, label="training samples")
        return F.fig_to_data_uri(fig)


def _mosaic(protos: np.ndarray, rows: int, cols: int, px: _Pixels) -> np.ndarray:
    """(rows*(h+1)-1, cols*(w+1)-1) image of all prototypes in map layout, NaN gutters."""
    h, w = px.h, px.w
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(min(len(protos), rows * cols)):
        img = px.image(protos[k])
        if img is not None:
            r, c = divmod(k, cols)
            out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    return out


def _fig_prototypes(explain: Mapping[str, Any], px: _Pixels) -> str | None:
    shape = explain.get("som_shape") or [0, 0]
    rows, cols = int(shape[0]), int(shape[1])
    panels = [
        ("SOM codebook (before fine-tuning)", _matrix(explain.get("som_prototypes"), 2)),
        ("RBF centers after fine-tuning", _matrix(explain.get("prototypes"), 2)),
    ]
    panels = [(t, p) for t, p in panels if p.size]
    if not panels or rows * cols == 0:
        return None
    import matplotlib as mpl

    cmap = mpl.colormaps[INK_CMAP].with_extremes(bad="#ced4da")
    side = min(5.4, 0.5 * max(rows, cols) + 1.0)
    with F.report_style():
        fig, axes = F.new_figure(1, len(panels), figsize=(side * len(panels) + 0.4, side + 0.5))
        for ax, (title, protos) in zip(axes.flat, panels, strict=True):
            ax.imshow(
                np.ma.masked_invalid(_mosaic(protos, rows, cols, px)),
                cmap=cmap,
                vmin=px.lo,
                vmax=px.hi,
                interpolation="nearest",
            )
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.tick_params(length=0, labelsize=7.5)
            step = max(1, math.ceil(max(rows, cols) / 20))  # at most ~20 tick labels per axis
            ax.set_xticks([c * (px.w + 1) + (px.w - 1) / 2 for c in range(0, cols, step)], range(0, cols, step))
            ax.set_yticks([r * (px.h + 1) + (px.h - 1) / 2 for r in range(0, rows, step)], range(0, rows, step))
            ax.set_xlabel("map column")
            ax.set_ylabel("map row")
            ax.set_title(title)
        return F.fig_to_data_uri(fig)


def _silhouette(xy: np.ndarray, labels: np.ndarray) -> float | None:
    """Silhouette of the 2-D view by true class: a one-number answer to "do classes separate here?"."""
    if len(xy) < 3 or len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(xy):
        return None
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(xy, labels))


def _fig_embeddings(
    explain: Mapping[str, Any], classes: list[str]
) -> tuple[str | None, dict[str, dict[str, float | None]]]:
    emb = dict(explain.get("embeddings") or {})
    labels = np.asarray(explain.get("test_labels") or [], dtype=int)
    preds = np.asarray(explain.get("test_predictions") or [], dtype=int)
    wrong = labels != preds if len(preds) == len(labels) else np.zeros(len(labels), bool)
    sil: dict[str, dict[str, float | None]] = {p: {} for p, _ in PROJECTIONS}
    if not emb or len(labels) == 0:
        return None, sil
    colors = np.asarray(_class_colors(max(len(classes), int(labels.max()) + 1)))
    with F.report_style():
        fig, axes = F.new_figure(len(PROJECTIONS), len(LAYERS), figsize=(11.0, 7.4))
        for r, (proj, proj_title) in enumerate(PROJECTIONS):
            for c, (layer, layer_title) in enumerate(LAYERS):
                ax = axes[r, c]
                xy = _matrix((emb.get(layer) or {}).get(proj), 2)
                ax.set_xticks([])
                ax.set_yticks([])
                if xy.shape != (len(labels), 2):
                    F.no_data(ax, "no coordinates recorded")
                    ax.set_title(f"{layer_title} · {proj_title}")
                    continue
                sil[proj][layer] = s = _silhouette(xy, labels)
                ax.scatter(xy[:, 0], xy[:, 1], c=colors[labels], s=9, alpha=0.85, linewidths=0, rasterized=True)
                if wrong.any():
                    ax.scatter(xy[wrong, 0], xy[wrong, 1], s=34, facecolors="none", edgecolors="#111", linewidths=0.9)
                ax.set_title(f"{layer_title} · {proj_title}" + (f"  (silhouette {s:.2f})" if s is not None else ""))
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], ls="", marker="o", ms=6, color=colors[i], label=_mpl(classes[i]))
            for i in range(len(classes))
        ]
        if wrong.any():
            handles.append(Line2D([], [], ls="", marker="o", ms=7, mfc="none", mec="#111", label="misclassified"))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 11), frameon=False)
        return F.fig_to_data_uri(fig), sil


def _fig_confusion(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    cm = _matrix(explain.get("confusion"), 2)
    if cm.size == 0:
        return None
    n = cm.shape[0]
    labels = [_mpl(classes[i] if i < len(classes) else i, 8) for i in range(n)]
    # colour by the row-normalised rate (recall per true class), annotate raw counts
    rate = np.divide(cm, cm.sum(axis=1, keepdims=True), out=np.zeros_like(cm), where=cm.sum(axis=1, keepdims=True) > 0)
    side = min(6.5, 0.33 * n + 1.9)  # ~10 classes: about 680 px wide, shown at its natural size
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(side + 1.1, side))
        ax = axes[0, 0]
        im = F.heatmap(ax, rate, row_labels=labels, col_labels=labels, cmap="Blues", annotate=False)
        if n <= 30:
            for (r, c), v in np.ndenumerate(cm):
                if v:
                    color = "#fff" if rate[r, c] > 0.6 else ("#b3261e" if r != c else "#111")
                    ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=8.5, color=color)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02, label="fraction of the true class")
        return F.fig_to_data_uri(fig)


# --------------------------------------------------------------------------------------------------
# section content


def _metric_row(label: str, means: Mapping[str, Any], stds: Mapping[str, Any], ours: bool) -> dict[str, Any]:
    return {
        "label": label,
        "ours": ours,
        "cells": [{"mean": _num(means.get(k)), "std": _num(stds.get(k))} for k, _ in METRICS],
    }


def _headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    per_split = [dict(s) for s in summary.get("per_split") or []]
    rows = [_metric_row(MODEL_LABEL, summary, dict(summary.get("std") or {}), True)]
    baselines = dict(summary.get("baselines") or {})
    for key in [*BASELINES, *(k for k in baselines if k not in BASELINES)]:
        if key not in baselines:
            continue
        # the summary holds baseline means only; their spread comes from the per-split table
        stds = {}
        for m, _ in METRICS:
            vals = [_num((s.get("baselines") or {}).get(key, {}).get(m)) for s in per_split]
            vals = [v for v in vals if v is not None]
            stds[m] = float(np.std(vals)) if len(vals) > 1 else None
        rows.append(_metric_row(BASELINES.get(key, key), dict(baselines[key] or {}), stds, False))
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
        "accuracy": _pct(acc),
        "accuracy_std": _pct((summary.get("std") or {}).get("test_accuracy")),
        "claim": _pct(CLAIM_ACCURACY, 0),
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
        rows.append(
            {
                "seed": s.get("seed"),
                "model": [_fmt(model.get(k)) for k, _ in METRICS],
                "baselines": [_fmt((base.get(b) or {}).get("test_accuracy")) for b in names],
            }
        )
    return {
        "metrics": [t.replace(" (one-vs-rest)", "") for _, t in METRICS],  # short headers: a wide table
        "baselines": [BASELINES.get(b, b) for b in names],
        "rows": rows,
    }


def _label(classes: list[str], i: Any) -> str:
    try:
        return classes[int(i)]
    except (TypeError, ValueError, IndexError):
        return str(i)


def _sample_view(s: Mapping[str, Any], classes: list[str], px: _Pixels, protos: np.ndarray, cols: int) -> dict:
    label, pred = s.get("label"), s.get("prediction")
    probs = [_num(p) or 0.0 for p in s.get("probabilities") or []]
    order = list(range(len(probs)))
    if len(probs) > MAX_PROB_ROWS:  # keep the decision readable: top classes plus the true one
        top = sorted(order, key=lambda i: -probs[i])[: MAX_PROB_ROWS - 1]
        order = sorted(set(top) | ({int(label)} if isinstance(label, int) and 0 <= label < len(probs) else set()))
    units = []
    weights = [_num(u.get("weight")) or 0.0 for u in s.get("top_units") or []]
    wmax = max(weights, default=0.0) or 1.0
    for u, w in zip(s.get("top_units") or [], weights, strict=True):
        k = int(u.get("unit", -1))
        units.append(
            {
                "unit": k,
                "rc": _unit_rc(k, cols),
                "weight": f"{w:.3f}",
                "bar": round(100 * max(w, 0.0) / wmax, 1),
                "img": px.uri(protos[k]) if 0 <= k < len(protos) else None,
            }
        )
    return {
        "index": s.get("index"),
        "img": px.uri(s.get("image") or []),
        "label": _label(classes, label),
        "prediction": _label(classes, pred),
        "correct": label == pred,
        "confidence": _pct(probs[int(pred)] if isinstance(pred, int) and 0 <= pred < len(probs) else None),
        "probs": [
            {
                "label": _label(classes, i),
                "p": f"{probs[i]:.3f}",
                "bar": round(100 * min(max(probs[i], 0.0), 1.0), 1),
                "true": i == label,
                "pred": i == pred,
            }
            for i in order
        ],
        "units": units,
    }


def _importance_view(explain: Mapping[str, Any], classes: list[str], px: _Pixels, protos: np.ndarray, cols: int):
    imp = _matrix(explain.get("class_importance"), 2)
    rows = []
    for ci in range(imp.shape[0]):
        w = np.nan_to_num(imp[ci], nan=-np.inf)
        top = np.argsort(-w, kind="stable")[:5]
        rows.append(
            {
                "label": _label(classes, ci),
                "units": [
                    {
                        "unit": int(k),
                        "rc": _unit_rc(int(k), cols),
                        "weight": _fmt(imp[ci, k]),
                        "img": px.uri(protos[k]) if k < len(protos) else None,
                    }
                    for k in top
                ],
            }
        )
    return rows


def _embedding_caption(sil: Mapping[str, Mapping[str, float | None]]) -> str:
    base = (
        "Each dot is a test image, coloured by its true class; black rings mark misclassified images. Columns "
        "follow the pipeline: raw pixels, the RBF layer (closeness to every prototype) and the attention-pooled "
        "vector the softmax reads. In a working model the classes separate more in later layers: overlapping "
        "clouds in pixel space become distinct clusters after pooling. PCA keeps global distances; t-SNE keeps "
        "neighbourhoods (its cluster sizes and gaps carry no meaning)."
    )
    parts = []
    for proj, title in PROJECTIONS:
        vals = [sil[proj].get(layer) for layer, _ in LAYERS]
        if all(v is not None for v in vals):
            trend = "rises" if vals[-1] > vals[0] else "does not rise"
            parts.append(f"{title}: " + " → ".join(f"{v:.2f}" for v in vals) + f" ({trend})")
    if parts:
        base += " Silhouette by true class (−1 to 1, higher = better separated), input → RBF → pooled: "
        base += "; ".join(parts) + "."
    return base


def _wall_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    wall = _num(summary.get("wall_seconds"))
    return [] if wall is None else [("wall time", f"{wall:,.1f} s")]


# --------------------------------------------------------------------------------------------------
# public API


def render_digits_report(data: Mapping[str, Any]) -> str:
    """Render the full self-contained HTML report of a ``digits`` run.

    ``data`` keys: ``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version,
    git_commit); ``config`` (nested dict); ``summary`` (test_accuracy, macro_recall, macro_f1, roc_auc_ovr as
    means over split seeds, their ``std``, ``som`` {quantization_error, topographic_error}, ``baselines``
    {name: metrics}, ``per_split`` [{seed, model, baselines}], wall_seconds, ``checks`` [{name, passed,
    detail}]); ``explain`` from the first split (image_shape [h, w], classes, som_shape [rows, cols],
    u_matrix (rows, cols), hit_map (n_classes, rows, cols), prototypes / som_prototypes (K, h*w) in pixel
    space, confusion (n_classes, n_classes) rows = true, embeddings {input|rbf|pooled: {pca|tsne: (n_test,
    2)}}, test_labels / test_predictions (n_test,) class indices, class_importance (n_classes, K), samples
    [{index, image, label, prediction, probabilities, top_units [{unit, weight}]}]). See
    :func:`example_report_data` for a complete instance. Missing optional pieces render as "no data".

    Example:
        >>> html = render_digits_report(example_report_data())
        >>> "<script>x</script>" in html
        False
    """
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    explain = dict(data.get("explain") or {})
    classes = [str(c) for c in explain.get("classes") or []]
    shape = explain.get("image_shape") or [8, 8]
    som_shape = explain.get("som_shape") or [0, 0]
    cols = int(som_shape[1]) if len(som_shape) > 1 else 1
    px = _Pixels(shape, *_pixel_range(explain))
    protos = _matrix(explain.get("prototypes"), 2)
    som_protos = _matrix(explain.get("som_prototypes"), 2)

    head = _headline(summary)
    headline = render_fragment("digits_headline.html", **head)

    som = dict(summary.get("som") or {})
    som_html = render_fragment(
        "digits_som.html",
        qe=_fmt(som.get("quantization_error")),
        te=_pct(som.get("topographic_error")),
        shape=" × ".join(str(int(s)) for s in som_shape),
        main=_fig_som(explain, classes),
        hits=_fig_class_hits(explain, classes),
    )

    change = None
    if protos.shape == som_protos.shape and protos.size:
        change = _fmt(np.mean(np.abs(np.clip(protos, px.lo, px.hi) - np.clip(som_protos, px.lo, px.hi))), 2)
    proto_html = render_fragment(
        "digits_prototypes.html",
        src=_fig_prototypes(explain, px),
        change=change,
        lo=_fmt(px.lo, 1),
        hi=_fmt(px.hi, 1),
    )

    emb_src, sil = _fig_embeddings(explain, classes)
    emb_html = render_fragment(
        "figure.html",
        figures=[{"src": emb_src, "alt": "PCA and t-SNE of input, RBF layer and pooled vector",
                  "caption": _embedding_caption(sil)}] if emb_src else [],
    ) if emb_src else render_fragment("_text.html", text="No embedding coordinates were recorded.")

    samples = [_sample_view(s, classes, px, protos, cols) for s in explain.get("samples") or []]
    samples_html = render_fragment(
        "digits_samples.html",
        correct=[s for s in samples if s["correct"]],
        wrong=[s for s in samples if not s["correct"]],
    )
    importance_html = render_fragment(
        "digits_importance.html", rows=_importance_view(explain, classes, px, protos, cols)
    )
    conf_html = render_fragment(
        "digits_confusion.html", src=_fig_confusion(explain, classes), split=_split_table(summary)
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
                "weighted most, drawn as their prototype images. The decision rests on these prototypes."),
        Section("importance", "Most important prototypes per class", importance_html,
                lead="The five units with the highest mean attention weight over the test images of each class."),
        Section("confusion", "Confusion and splits", conf_html,
                lead="Which classes the model mixes up, and how stable the metrics are across split seeds."),
        config_section(run, data.get("config") or {}, _wall_rows(summary)),
    ]
    meta = run_meta(run, head["checks"], {"started": run.get("started_at", "—"), "accuracy": head["accuracy"]})
    return render_page(TITLE, sections, subtitle=SUBTITLE, meta=meta, styles=("report.css", "digits.css"))


# --------------------------------------------------------------------------------------------------
# synthetic example


def _blob_templates(n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(n, h*w) class templates in [0, 16]: each a short stroke of Gaussian blobs (a fake 8x8 digit)."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, h * w))
    for i in range(n):
        start, end = rng.uniform(1, [h - 2, w - 2], size=(2, 2))
        mid = rng.uniform(1, [h - 2, w - 2])
        img = np.zeros((h, w))
        for t in np.linspace(0, 1, 7):  # a quadratic Bezier stroke through three random points
            p = (1 - t) ** 2 * start + 2 * (1 - t) * t * mid + t**2 * end
            img += np.exp(-((yy - p[0]) ** 2 + (xx - p[1]) ** 2) / 1.1)
        out[i] = (16 * img / img.max()).ravel()
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def example_report_data(seed: int = 0) -> dict[str, Any]:
    """A realistic, deterministic synthetic ``data`` dict for :func:`render_digits_report`.

    Ten blob "digits" on 8x8 pixels, a 10x10 map whose regions belong to classes, 450 test points whose
    classes separate more in later layers, about 95 % accuracy, and 6 correct + 4 misclassified samples.

    Example:
        >>> d = example_report_data()
        >>> d["explain"]["som_shape"], len(d["explain"]["test_labels"]), d["summary"]["test_accuracy"] > 0.9
        ([10, 10], 450, True)
    """
    rng = np.random.default_rng(seed)
    h = w = 8
    rows = cols = 10
    n_classes, K, n_test = 10, rows * cols, 450
    classes = [str(i) for i in range(n_classes)]
    templates = _blob_templates(n_classes, h, w, rng)

    # map regions: 2 rows x 5 columns of 5x2-unit blocks, one class each; prototypes blend neighbours
    r_idx, c_idx = np.divmod(np.arange(K), cols)
    unit_class = (r_idx // 5) * 5 + c_idx // 2
    som_protos = np.empty((K, h * w))
    for k in range(K):
        own = templates[unit_class[k]]
        right = templates[((r_idx[k] // 5) * 5 + min(c_idx[k] // 2 + 1, 4))]
        mix = 0.25 * (c_idx[k] % 2)  # units at a block's right edge lean towards the next class
        som_protos[k] = (1 - mix) * own + mix * right + rng.normal(0, 0.8, h * w)
    som_protos = np.clip(som_protos, 0, 16)
    fine = np.clip(som_protos + 0.35 * (som_protos - som_protos.mean(axis=1, keepdims=True)), 0, 16)

    grid = som_protos.reshape(rows, cols, -1)
    umat = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            nb = [grid[rr, cc] for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                  if 0 <= rr < rows and 0 <= cc < cols]
            umat[r, c] = np.mean([np.linalg.norm(grid[r, c] - v) for v in nb])
    hit_map = np.stack([rng.poisson(np.where(unit_class == i, 13.0, 0.15)).reshape(rows, cols)
                        for i in range(n_classes)])

    labels = np.arange(n_test) % n_classes
    rng.shuffle(labels)
    preds = labels.copy()
    wrong = rng.choice(n_test, size=22, replace=False)
    preds[wrong] = (labels[wrong] + rng.integers(1, n_classes, size=len(wrong))) % n_classes
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (labels, preds), 1)
    centers = rng.normal(0, 1, size=(n_classes, 2)) * 4

    def cloud(spread: float, scale: float = 1.0) -> list:
        return np.round(scale * (centers[labels] + rng.normal(0, spread, (n_test, 2))), 3).tolist()

    embeddings = {
        "input": {"pca": cloud(3.2), "tsne": cloud(2.2, 6)},
        "rbf": {"pca": cloud(1.8), "tsne": cloud(1.1, 6)},
        "pooled": {"pca": cloud(0.8), "tsne": cloud(0.45, 6)},
    }
    importance = np.stack([np.where(unit_class == i, 0.04, 0.004) + rng.uniform(0, 0.01, K) for i in range(n_classes)])
    importance /= importance.sum(axis=1, keepdims=True)

    samples = []
    picks = [int(i) for i in np.flatnonzero(labels == preds)[:6]] + [int(i) for i in wrong[:4]]
    for i in picks:
        label, pred = int(labels[i]), int(preds[i])
        image = np.clip(templates[label] + rng.normal(0, 1.5, h * w), 0, 16)
        logits = rng.normal(0, 0.6, n_classes)
        logits[pred] += 4.0
        logits[label] += 2.5 if label != pred else 0.0
        units = rng.choice(np.flatnonzero(unit_class == pred), size=5, replace=False)
        weights = np.sort(rng.dirichlet(np.ones(5) * 2) * 0.6)[::-1]
        samples.append({
            "index": i,
            "image": np.round(image, 2).tolist(),
            "label": label,
            "prediction": pred,
            "probabilities": np.round(_softmax(logits), 4).tolist(),
            "top_units": [
                {"unit": int(u), "weight": round(float(wt), 4)} for u, wt in zip(units, weights, strict=True)
            ],
        })

    def metrics(acc: float) -> dict[str, float]:
        return {"test_accuracy": acc, "macro_recall": acc - 0.002, "macro_f1": acc - 0.003,
                "roc_auc_ovr": min(0.999, 0.5 + acc / 2 + 0.02)}

    split_seeds = [0, 1, 2]
    base_acc = {"logistic_regression": 0.962, "svm_rbf": 0.986, "rbf_network": 0.931}
    per_split = []
    for s in split_seeds:
        jitter = rng.normal(0, 0.004, 4)
        per_split.append({
            "seed": s,
            "model": {k: round(min(v + jitter[0], 1.0), 4) for k, v in metrics(0.951).items()},
            "baselines": {b: {k: round(min(v + jitter[j % 3 + 1], 1.0), 4) for k, v in metrics(a).items()}
                          for j, (b, a) in enumerate(base_acc.items())},
        })

    def mean_std(rows_: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
        keys = rows_[0].keys()
        return ({k: round(float(np.mean([r[k] for r in rows_])), 4) for k in keys},
                {k: round(float(np.std([r[k] for r in rows_])), 4) for k in keys})

    model_mean, model_std = mean_std([p["model"] for p in per_split])
    baselines = {b: mean_std([p["baselines"][b] for p in per_split])[0] for b in base_acc}
    acc = model_mean["test_accuracy"]
    return {
        "run": {
            "id": "20250101-120000-digits-ab12cd",
            "experiment": "digits",
            "status": "completed",
            "started_at": "2025-01-01T12:00:00Z",
            "ended_at": "2025-01-01T12:01:10Z",
            "config_hash": "4be1c0ffee42",
            "seed": seed,
            "version": "0.1.0",
            "git_commit": "0123abcd4567ef",
        },
        "config": {
            "seed": seed,
            "data": {"source": "sklearn-digits", "test_size": 0.25, "split_seeds": split_seeds},
            "som": {"rows": rows, "cols": cols, "epochs": 20, "sigma_end": 0.5},
            "rbf": {"width": "mean-nn", "fine_tune": True},
            "attention": {"d_key": 16},
            "train": {"epochs": 60, "lr": 3e-3, "batch_size": 64},
            "notes": "synthetic example data <not a real run>",
        },
        "summary": {
            **model_mean,
            "std": model_std,
            "som": {"quantization_error": 2.71, "topographic_error": 0.043},
            "baselines": baselines,
            "per_split": per_split,
            "wall_seconds": 68.4,
            "checks": [
                {"name": "test accuracy > 90 % (source text's claim)", "passed": acc > 0.9,
                 "detail": f"{100 * acc:.1f} % mean over {len(split_seeds)} splits"},
                {"name": "within 5 points of logistic regression", "passed": True,
                 "detail": f"{100 * (acc - baselines['logistic_regression']['test_accuracy']):+.1f} points"},
                {"name": "SOM topographic error < 0.1", "passed": True, "detail": "0.043"},
            ],
        },
        "explain": {
            "image_shape": [h, w],
            "classes": classes,
            "som_shape": [rows, cols],
            "u_matrix": np.round(umat, 3).tolist(),
            "hit_map": hit_map.tolist(),
            "prototypes": np.round(fine, 2).tolist(),
            "som_prototypes": np.round(som_protos, 2).tolist(),
            "confusion": confusion.tolist(),
            "embeddings": embeddings,
            "test_labels": labels.tolist(),
            "test_predictions": preds.tolist(),
            "class_importance": np.round(importance, 5).tolist(),
            "samples": samples,
        },
    }
