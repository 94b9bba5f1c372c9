"""Patching figures: the (layers x positions) or (layers x heads) heatmap of a PatchingResult, on a diverging
scale centred at 0 (restored in red, made worse in blue), and exact vs attribution patching side by side
with their scatter and Pearson r.

Example:
    >>> fig = patching_figure(activation_patching(lm, clean, corrupt, metric))
    >>> uri = fig_to_data_uri(fig)                       # for a report
    >>> fig = patching_comparison_figure(exact, approx)  # heatmaps of both + scatter
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from emergelab.report.figures import heatmap, new_figure, report_style
from emergelab.report.format import fmt

__all__ = ["patching_comparison_figure", "patching_figure", "token_label"]

MAX_TICKS = 48  # more columns than this: label every k-th, so labels stay readable
MAX_ANNOTATED = 160  # cells; above this the numbers would not fit
_VISIBLE = str.maketrans({"Ġ": "␣", "▁": "␣", "Ċ": "↵", "\n": "↵", "\t": "⇥"})
TITLES = {"resid_pre": "residual stream (block input)", "resid_post": "residual stream (block output)",
          "attn_out": "attention output", "mlp_out": "MLP output", "heads": "attention heads (z)"}


def token_label(token: str, position: int | None = None, limit: int = 12) -> str:
    """A token made visible (spaces and newlines shown) and short, with its position: '␣cat·3'."""
    text = token.translate(_VISIBLE)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text if position is None else f"{text}·{position}"


def _axes_labels(result: Any) -> tuple[list[str], list[str], list[int]]:
    rows = [f"L{i}" for i in range(len(result.rows))]
    if result.what == "heads":
        return rows, list(result.cols), []
    cols = [token_label(t, i) for i, t in enumerate(result.cols)]
    other = result.corrupted_cols or result.cols
    differs = [i for i, (a, b) in enumerate(zip(result.cols, other, strict=False)) if a != b]
    return rows, cols, differs


def _draw(ax: Any, result: Any, value: str, limit: float | None, annotate: bool | None) -> Any:
    matrix = getattr(result, value).detach().cpu().numpy().astype(float)
    rows, cols, differs = _axes_labels(result)
    span = limit if limit is not None else float(np.nanmax(np.abs(matrix))) if matrix.size else 1.0
    span = span or 1.0
    annotate = matrix.size <= MAX_ANNOTATED if annotate is None else annotate
    image = heatmap(ax, matrix, row_labels=rows, col_labels=cols, vmin=-span, vmax=span, cmap="RdBu_r",
                    annotate=False)
    if annotate:
        for (r, c), v in np.ndenumerate(matrix):
            if np.isfinite(v):
                ax.text(c, r, "0" if abs(v) < 0.005 else fmt(v, 2, "fixed"), ha="center", va="center", fontsize=6.5,
                        color="#fff" if abs(v) > 0.6 * span else "#212529")
    step = max(1, -(-len(cols) // MAX_TICKS))
    ax.set_xticks(range(0, len(cols), step), cols[::step], rotation=90 if result.what != "heads" else 0,
                  fontsize=7 if len(cols) > 16 else 8)
    for tick, position in zip(ax.get_xticklabels(), range(0, len(cols), step), strict=False):
        if position in differs:  # where the corrupted input differs from the clean one
            tick.set_color("#c92a2a")
            tick.set_fontweight("bold")
    ax.set_ylabel("layer")
    ax.set_xlabel("head" if result.what == "heads" else "position (clean token; red: differs when corrupted)")
    return image


def patching_figure(result: Any, *, value: str = "normalized", title: str | None = None,
                    annotate: bool | None = None, width: float | None = None) -> Figure:
    """The heatmap of one PatchingResult (`interpret.patching`): rows are layers, columns positions (labelled
    with the clean tokens) or heads; `value` 'normalized' (1 = the clean metric restored) or 'effect'.

    Example:
        >>> fig = patching_figure(result, value="effect", title="SmolLM2: resid_pre")
    """
    if value not in ("normalized", "effect"):
        raise ValueError(f"value must be 'normalized' or 'effect', got {value!r}")
    L, n = result.effect.shape
    width = width or min(16.0, max(5.5, 1.8 + 0.3 * n))
    with report_style():
        fig, axes = new_figure(1, 1, figsize=(width, min(12.0, max(2.6, 1.3 + 0.24 * L))))
        ax = axes[0, 0]
        image = _draw(ax, result, value, 1.0 if value == "normalized" else None, annotate)
        fig.colorbar(image, ax=ax, shrink=0.9, label="normalized effect" if value == "normalized" else "Δ metric")
        method = "activation patching" if result.method == "exact" else "attribution patching"
        ax.set_title(title or f"{method}: {TITLES.get(result.what, result.what)}\nmetric: clean "
                              f"{fmt(result.clean, 3)}, corrupted {fmt(result.corrupted, 3)}", fontsize=9.5)
    return fig


def patching_comparison_figure(exact: Any, approx: Any, *, value: str = "effect",
                               title: str | None = None) -> Figure:
    """Exact (activation) and attribution patching of one grid side by side on one colour scale, and the
    scatter of every cell with Pearson's r: how far the first-order estimate can be trusted."""
    _check([exact, approx])
    a = getattr(exact, value).detach().cpu().numpy().ravel().astype(float)
    b = getattr(approx, value).detach().cpu().numpy().ravel().astype(float)
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    span = float(max(np.abs(a).max(initial=0), np.abs(b).max(initial=0))) or 1.0
    L, n = exact.effect.shape
    with report_style():
        fig, axes = new_figure(1, 3, figsize=(min(18.0, 4.0 + 0.3 * n * 2), min(10.0, max(3.0, 1.3 + 0.22 * L))),
                               width_ratios=[n, n, max(6, n // 2)])
        for ax, result, name in ((axes[0, 0], exact, "activation patching"), (axes[0, 1], approx, "attribution")):
            image = _draw(ax, result, value, span, False)
            ax.set_title(name)
        fig.colorbar(image, ax=axes[0, :2].tolist(), shrink=0.85, label=value)
        ax = axes[0, 2]
        ax.scatter(a, b, s=10, alpha=0.6, color="#1c7ed6", lw=0)
        ax.axline((0, 0), slope=1, color="#adb5bd", ls="--", lw=1)
        ax.set_xlabel("exact")
        ax.set_ylabel("attribution")
        ax.set_title(f"Pearson r = {fmt(r, 3)}")
        fig.suptitle(title or f"{TITLES.get(exact.what, exact.what)}: exact vs attribution patching")
    return fig


def _check(results: Sequence[Any]) -> None:
    shapes = {tuple(r.effect.shape) for r in results}
    if len(shapes) != 1:
        raise ValueError(f"results of different grids: {sorted(shapes)}")
