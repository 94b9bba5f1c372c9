"""Figures of the ``digits`` report (matplotlib Figure + Agg, never pyplot): SOM maps, prototype mosaics,
PCA / t-SNE views and the confusion matrix, each returned as a PNG ``data:`` URI (None when there is no data).

Every number drawn comes from the run's stored explanation block (see `render_digits_report`); the figures
compute nothing but layouts. `Pixels` turns flat pixel vectors into images on one ink scale.

Example:
    >>> px = Pixels((8, 8), *pixel_range(explain))
    >>> fig_prototypes(explain, px).startswith("data:image/png;base64,")
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
from emergelab.report.format import fmt

LAYERS = (("input", "input pixels"), ("rbf", "RBF layer"), ("pooled", "attention-pooled vector"))
PROJECTIONS = (("pca", "PCA"), ("tsne", "t-SNE"))
THUMB_PX = 56  # tiny images are upscaled to about this many pixels (crisp even without CSS pixelation)
INK_CMAP = "gray_r"  # ink dark on paper, as digits are usually drawn


def mpl_text(text: Any, limit: int = 14) -> str:
    """Label text safe for matplotlib: short, and ``$`` escaped so mathtext never parses user text."""
    s = str(text)
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def class_colors(n: int) -> list:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


class Pixels:
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


def pixel_range(explain: Mapping[str, Any]) -> tuple[float, float]:
    """Display range from the data itself: sample images and the SOM codebook (which lies in the data hull)."""
    parts = [np.asarray(s.get("image") or [], dtype=float).ravel() for s in explain.get("samples") or []]
    parts.append(np.asarray(explain.get("som_prototypes") or [], dtype=float).ravel())
    vals = np.concatenate(parts) if parts else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = float(min(vals.min(), 0.0)), float(vals.max())
    return lo, hi if hi > lo else lo + 1.0


def matrix(x: Any, ndim: int) -> np.ndarray:
    a = np.asarray(x if x is not None else [], dtype=float)
    return a if a.ndim == ndim else np.zeros((0,) * ndim)



def fig_som(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    umat = matrix(explain.get("u_matrix"), 2)
    hits = matrix(explain.get("hit_map"), 3)
    if umat.size == 0 and hits.size == 0:
        return None
    colors = class_colors(len(classes))
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
                    ax.text(c, r, mpl_text(classes[k], 3), ha="center", va="center", fontsize=7, color="#111")
            ax.set_title("majority class per unit (pale = mixed, white = no hits)")
        else:
            F.no_data(ax, "no hit map recorded")
        for ax in axes.flat:
            ax.grid(False)
            ax.set_xlabel("map column")
            ax.set_ylabel("map row")
        return F.fig_to_data_uri(fig)


def fig_class_hits(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    hits = matrix(explain.get("hit_map"), 3)
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
                    f"class {mpl_text(label)} · {int(hits[i].sum()):,} hits", ha="center", va="bottom", fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01, aspect=25, label="training samples")
        return F.fig_to_data_uri(fig)


def _mosaic(protos: np.ndarray, rows: int, cols: int, px: Pixels) -> np.ndarray:
    """(rows*(h+1)-1, cols*(w+1)-1) image of all prototypes in map layout, NaN gutters."""
    h, w = px.h, px.w
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(min(len(protos), rows * cols)):
        img = px.image(protos[k])
        if img is not None:
            r, c = divmod(k, cols)
            out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    return out


def fig_prototypes(explain: Mapping[str, Any], px: Pixels) -> str | None:
    shape = explain.get("som_shape") or [0, 0]
    rows, cols = int(shape[0]), int(shape[1])
    panels = [
        ("SOM codebook (before fine-tuning)", matrix(explain.get("som_prototypes"), 2)),
        ("RBF centers after fine-tuning", matrix(explain.get("prototypes"), 2)),
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


def fig_embeddings(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    """A grid of scatter plots (projection x layer) coloured by true class, titled with the stored silhouettes."""
    emb = dict(explain.get("embeddings") or {})
    sil = dict(explain.get("silhouette") or {})
    labels = np.asarray(explain.get("test_labels") or [], dtype=int)
    preds = np.asarray(explain.get("test_predictions") or [], dtype=int)
    wrong = labels != preds if len(preds) == len(labels) else np.zeros(len(labels), bool)
    if not emb or len(labels) == 0:
        return None
    colors = np.asarray(class_colors(max(len(classes), int(labels.max()) + 1)))
    with F.report_style():
        fig, axes = F.new_figure(len(PROJECTIONS), len(LAYERS), figsize=(11.0, 7.4))
        for r, (proj, proj_title) in enumerate(PROJECTIONS):
            for c, (layer, layer_title) in enumerate(LAYERS):
                ax = axes[r, c]
                xy = matrix((emb.get(layer) or {}).get(proj), 2)
                ax.set_xticks([])
                ax.set_yticks([])
                if xy.shape != (len(labels), 2):
                    F.no_data(ax, "no coordinates recorded")
                    ax.set_title(f"{layer_title} · {proj_title}")
                    continue
                s = (sil.get(proj) or {}).get(layer)
                ax.scatter(xy[:, 0], xy[:, 1], c=colors[labels], s=9, alpha=0.85, linewidths=0, rasterized=True)
                if wrong.any():
                    ax.scatter(xy[wrong, 0], xy[wrong, 1], s=34, facecolors="none", edgecolors="#111", linewidths=0.9)
                ax.set_title(f"{layer_title} · {proj_title}" + (f"  (silhouette {fmt(s, 2)})" if s is not None else ""))
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], ls="", marker="o", ms=6, color=colors[i], label=mpl_text(classes[i]))
            for i in range(len(classes))
        ]
        if wrong.any():
            handles.append(Line2D([], [], ls="", marker="o", ms=7, mfc="none", mec="#111", label="misclassified"))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 11), frameon=False)
        return F.fig_to_data_uri(fig)


def fig_confusion(explain: Mapping[str, Any], classes: list[str]) -> str | None:
    cm = matrix(explain.get("confusion"), 2)
    if cm.size == 0:
        return None
    n = cm.shape[0]
    labels = [mpl_text(classes[i] if i < len(classes) else i, 8) for i in range(n)]
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

