"""Figures for probes and projections (interpret/probes.py): 2-D scatters coloured by label, and probe accuracy
per layer against chance. Matplotlib `Figure`s on an Agg canvas (report/figures.py: no pyplot); save one with
`fig.savefig(path)` or inline it with `fig_to_data_uri(fig)`.

Labels with at most `max_classes` distinct values are categorical (tab10 / tab20, one legend entry each, with
its count); more numeric values get a continuous colormap and a colorbar; more non-numeric values keep the
`max_classes - 1` most frequent and pool the rest as "other".

Example:
    >>> xy = project(acts, "pca")
    >>> fig = projection_figure(xy, labels, title="layer 3 resid_post (PCA)", label_name="is a noun")
    >>> fig = projection_panels({"PCA": xy, "SOM": project(acts, "som")}, labels)
    >>> fig = probe_accuracy_figure(probe_layers(cache, labels))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .digits_figures import class_colors, mpl_text
from .figures import MODEL_COLORS, new_figure, report_style

__all__ = ["probe_accuracy_figure", "projection_figure", "projection_panels", "scatter_by_label"]

OTHER = "other"


def _labels(labels: Any, n: int, max_classes: int) -> tuple[np.ndarray, list[Any] | None]:
    """-> (labels (n,), the category order, or None for a continuous colouring)."""
    lab = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels).reshape(-1)
    if len(lab) != n:
        raise ValueError(f"{len(lab)} labels for {n} points")
    values, counts = np.unique(lab, return_counts=True)
    if len(values) <= max_classes:
        return lab, values.tolist()
    if np.issubdtype(lab.dtype, np.number):
        return lab.astype(float), None
    keep = values[np.argsort(-counts, kind="stable")[: max_classes - 1]]
    lab = np.where(np.isin(lab, keep), lab.astype(object), OTHER)
    return lab, [*sorted(keep.tolist()), OTHER]


def scatter_by_label(ax: Axes, coords: Any, labels: Any, *, max_classes: int = 20, point_size: float | None = None,
                     legend: bool = True, label_name: str | None = None) -> Any:
    """Draw points (N, 2) on `ax` coloured by `labels` (N,); a legend (categories) or returns the mappable of a
    continuous colouring (for a colorbar)."""
    xy = np.asarray(coords, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be (N, 2), got {xy.shape}")
    lab, cats = _labels(labels, len(xy), max_classes)
    size = point_size if point_size is not None else float(np.clip(2000 / max(len(xy), 1), 4, 36))
    if cats is None:
        return ax.scatter(xy[:, 0], xy[:, 1], c=lab, s=size, cmap="viridis", alpha=0.8, linewidths=0)
    from matplotlib.lines import Line2D

    palette = [c if cat is not OTHER else (0.68, 0.71, 0.74, 1.0) for cat, c in zip(cats, class_colors(len(cats)),
                                                                                   strict=True)]
    index = {cat: i for i, cat in enumerate(cats)}
    codes = np.array([index[v] for v in lab])
    # one scatter in a fixed shuffled order: no class is painted over another just for coming later
    order = np.random.default_rng(0).permutation(len(xy))
    ax.scatter(xy[order, 0], xy[order, 1], s=size, c=np.asarray(palette)[codes[order]], alpha=0.8, linewidths=0)
    if legend:
        handles = [Line2D([], [], marker="o", linestyle="", color=palette[i], markersize=6,
                          label=f"{mpl_text(cat)} ({int((codes == i).sum())})") for i, cat in enumerate(cats)]
        ax.legend(handles=handles, title=mpl_text(label_name, 24) if label_name else None, loc="upper left",
                  bbox_to_anchor=(1.01, 1), fontsize=7.5, title_fontsize=8, frameon=False,
                  ncols=1 if len(cats) <= 12 else 2)
    return None


def projection_figure(coords: Any, labels: Any, *, title: str | None = None, label_name: str | None = None,
                      max_classes: int = 20, figsize: tuple[float, float] = (5.6, 4.0)) -> Figure:
    """One 2-D projection (N, 2) coloured by labels (N,), legend on the right."""
    with report_style():
        fig, axes = new_figure(1, 1, figsize=figsize)
        ax = axes[0, 0]
        mappable = scatter_by_label(ax, coords, labels, max_classes=max_classes, label_name=label_name)
        if mappable is not None:
            fig.colorbar(mappable, ax=ax, label=mpl_text(label_name, 24) if label_name else None)
        if title:
            ax.set_title(mpl_text(title, 80), fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    return fig


def projection_panels(panels: Mapping[str, Any], labels: Any, *, label_name: str | None = None,
                      max_classes: int = 20, ncols: int = 3, panel_size: float = 3.0) -> Figure:
    """Several projections of the same points side by side (e.g. one per layer or per method), one shared legend."""
    if not panels:
        raise ValueError("projection_panels needs at least one panel")
    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    with report_style():
        fig, axes = new_figure(nrows, ncols, figsize=(panel_size * ncols + 1.6, panel_size * nrows))
        mappable = None
        for i, (ax, (name, xy)) in enumerate(zip(axes.flat, panels.items(), strict=False)):
            m = scatter_by_label(ax, xy, labels, max_classes=max_classes, legend=i == ncols - 1 or n == 1,
                                 label_name=label_name)
            mappable = mappable or m
            ax.set_title(mpl_text(name, 40), fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        if mappable is not None:
            fig.colorbar(mappable, ax=axes.ravel().tolist(), label=mpl_text(label_name, 24) if label_name else None)
    return fig


def probe_accuracy_figure(results: Mapping[str, Any], *, title: str | None = None,
                          names: Sequence[str] | None = None, figsize: tuple[float, float] = (6.0, 3.0)) -> Figure:
    """Held-out accuracy (+- std over seeds) per probe (e.g. per layer, in order) with each probe's chance level."""
    if not results:
        raise ValueError("probe_accuracy_figure needs at least one probe result")
    labels = list(names) if names is not None else [mpl_text(k, 28) for k in results]
    acc = np.array([r.accuracy for r in results.values()])
    std = np.array([r.accuracy_std for r in results.values()])
    chance = np.array([r.chance for r in results.values()])
    x = np.arange(len(acc))
    with report_style():
        fig, axes = new_figure(1, 1, figsize=figsize)
        ax = axes[0, 0]
        ax.errorbar(x, acc, yerr=std, marker="o", color=MODEL_COLORS[1], capsize=3, label="held-out accuracy")
        ax.step(np.r_[x - 0.5, x[-1] + 0.5], np.r_[chance, chance[-1]], where="post", color="#868e96",
                linestyle="--", label="chance (majority class)")
        ax.set_xticks(x, labels, rotation=30 if len(x) > 6 else 0, ha="right" if len(x) > 6 else "center")
        ax.set_ylim(min(0.0, float(chance.min()) - 0.05), 1.02)
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8, frameon=False, loc="lower right")
        if title:
            ax.set_title(mpl_text(title, 80), fontsize=10)
    return fig
