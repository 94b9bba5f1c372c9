"""Head-score figures: heatmaps of every head's score at moments of training, and lines over training on a
fixed [0, 1] axis (scores are attention masses), so a flat line never looks like a jump."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from emergelab.report.figures import (
    MODEL_COLORS,
    Window,
    _legend_entries,
    fig_to_data_uri,
    heatmap,
    mark_window,
    new_figure,
    report_style,
    step_axis,
)
from emergelab.report.format import fmt
from emergelab.report.series import HeadSeries, value_at
from emergelab.runs.names import head_name

# --------------------------------------------------------------------------------------------------
# head scores: heatmaps at moments of training, lines over training

ROLE_COLORS = {  # distinct hues within each family: warm = induction heads, cool = previous-token heads
    "induction": ["#d9480f", "#c2255c", "#f59f00", "#862e9c", "#e64980"],
    "previous_token": ["#2457a6", "#0c8599", "#5f3dc4", "#087f5b"],
}
ROLE_LABELS = {"induction": "induction", "previous_token": "prev-token"}
OTHER_HEAD_COLOR = "#ced4da"


def head_heatmaps(heads: HeadSeries, kinds: Sequence[tuple[str, str]], at: Sequence[tuple[str, float]],
                  n_layers: int, n_heads: int, *, highlight: Mapping[str, Sequence[tuple[int, int]]] | None = None,
                  width: float = 10.0) -> str | None:
    """One row per head-score kind, one column per moment: the (layer x head) grid of scores logged nearest
    each moment's step. Scores are fractions: the colour scale is [0, 1] (wider only if a score leaves it),
    shared by a row, so moments compare at a glance. -> PNG data URI, or None without scores or moments.

    kinds: [(kind, title)], drawn when `heads` has them; at: [(name, step)] (see `moments`);
    highlight: {kind: [(layer, head)]} cells boxed in red (the heads the analysis named).

    Example:
        >>> h = {"induction": {(0, 0): (np.array([0.0, 10.0]), np.array([0.1, 0.9]))}}
        >>> head_heatmaps(h, [("induction", "induction")], [("end", 10.0)], 1, 1)[:22]
        'data:image/png;base64,'
    """
    kinds = [(k, t) for k, t in kinds if k in heads]
    if not kinds or not at:
        return None
    highlight = highlight or {}
    with report_style():
        height = len(kinds) * (0.4 * n_layers + 1.0) + 0.2
        fig, axes = new_figure(len(kinds), len(at), figsize=(width, height))
        for r, (kind, title) in enumerate(kinds):
            mats = []
            for _, step in at:
                mat = np.full((n_layers, n_heads), np.nan)
                for (layer, head), (steps, values) in heads[kind].items():
                    if layer < n_layers and head < n_heads:
                        mat[layer, head] = value_at(steps, values, step)
                mats.append(mat)
            finite = np.concatenate([m[np.isfinite(m)] for m in mats])
            vmin = min(0.0, float(finite.min())) if finite.size else 0.0
            vmax = max(1.0, float(finite.max())) if finite.size else 1.0
            im = None
            for c, ((moment, step), mat) in enumerate(zip(at, mats, strict=True)):
                ax = axes[r, c]
                im = heatmap(ax, mat, row_labels=[f"L{i}" for i in range(n_layers)],
                             col_labels=[f"H{j}" for j in range(n_heads)], vmin=vmin, vmax=vmax,
                             highlight=highlight.get(kind, ()))
                ax.set_title(f"{title} — {moment} (step {fmt(step, 0, 'fixed')})", fontsize=9.5)
            if im is not None:
                fig.colorbar(im, ax=list(axes[r, :]), shrink=0.9, pad=0.01, aspect=12)
        return fig_to_data_uri(fig)


SCORE_PAD = 0.02  # a fraction's axis runs from -0.02 to 1.02, so a line at 0 or 1 is not hidden by the frame


def score_ylim(values: Sequence[float] | np.ndarray, lo: float = 0.0, hi: float = 1.0,
               pad: float = SCORE_PAD) -> tuple[float, float]:
    """The fixed y range of a score axis: [lo, hi] padded by `pad`, widened (to the next 0.1) only where a
    finite value leaves it. Head scores are attention masses, fractions in [0, 1], so their axis is always
    [-0.02, 1.02] whatever the run did: a flat line at 0.05 stays flat instead of filling the panel.

    Example:
        >>> score_ylim([0.04, 0.06]), score_ylim([-0.31, 0.5]), score_ylim([])
        ((-0.02, 1.02), (-0.42, 1.02), (-0.02, 1.02))
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size:
        lo = min(lo, math.floor(float(v.min()) * 10) / 10)
        hi = max(hi, math.ceil(float(v.max()) * 10) / 10)
    return round(lo - pad, 6), round(hi + pad, 6)


def head_lines(heads: HeadSeries, kinds: Sequence[tuple[str, str]], *, window: Window | None = None,
               roles: Mapping[tuple[int, int], str] | None = None, ylim: tuple[float, float] | None = None,
               width: float | None = None) -> str | None:
    """Head scores over training, one panel per kind ([(kind, title)], drawn when present), with the
    phase-change `window`. With `roles` ({(layer, head): "induction" | "previous_token"}) the named heads
    are coloured by role and every other head is a thin gray line; without, every head gets its own
    colour and its name in the legend (for models with few heads). The y axis is `ylim`, by default the
    fixed score range of `score_ylim` (a flat line never looks like a jump). -> PNG data URI, or None.

    Example:
        >>> h = {"induction": {(1, 0): (np.array([0.0, 10.0]), np.array([0.1, 0.9]))}}
        >>> head_lines(h, [("induction", "induction")], roles={(1, 0): "induction"})[:22]
        'data:image/png;base64,'
    """
    fig = head_lines_figure(heads, kinds, window=window, roles=roles, ylim=ylim, width=width)
    return None if fig is None else fig_to_data_uri(fig)


def head_lines_figure(heads: HeadSeries, kinds: Sequence[tuple[str, str]], *, window: Window | None = None,
                      roles: Mapping[tuple[int, int], str] | None = None, ylim: tuple[float, float] | None = None,
                      width: float | None = None) -> Figure | None:
    """The figure of `head_lines`, not yet rendered (its axes can be inspected); None without scores."""
    kinds = [(k, t) for k, t in kinds if k in heads]
    if not kinds:
        return None
    if ylim is None:
        ylim = score_ylim(np.concatenate([np.asarray(v, dtype=float) for k, _ in kinds
                                          for _, v in heads[k].values()] or [np.zeros(0)]))
    ranked = {role: [lh for lh, r in (roles or {}).items() if r == role] for role in ROLE_COLORS}
    with report_style():
        fig, axes = new_figure(1, len(kinds), figsize=(width or 2.6 * len(kinds) + 0.6, 2.9), sharey=True)
        for c, (kind, title) in enumerate(kinds):
            ax = axes[0, c]
            for i, key in enumerate(sorted(heads[kind])):
                steps, values = heads[kind][key]
                role = (roles or {}).get(key)
                if roles is None:
                    color, lw, z, label = MODEL_COLORS[i % len(MODEL_COLORS)], 1.4, 2, head_name(*key)
                elif role in ROLE_COLORS:
                    palette = ROLE_COLORS[role]
                    color = palette[ranked[role].index(key) % len(palette)]
                    lw, z = (2.0, 3) if role == "induction" else (1.8, 2)
                    label = f"{head_name(*key)} ({ROLE_LABELS[role]})"
                else:
                    color, lw, z, label = OTHER_HEAD_COLOR, 0.9, 1, None
                ax.plot(steps, values, color=color, lw=lw, zorder=z, label=label)
            if window is not None:
                mark_window(ax, window.start, window.end, window.steepest, color=window.color, label=None)
            ax.set_ylim(*ylim)
            ax.set_title(title)
            step_axis(ax)
            if c == 0:
                ax.set_ylabel("head score")
        handles, labels = _legend_entries(axes)
        if roles is not None:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color=OTHER_HEAD_COLOR, lw=0.9))
            labels.append("other heads")
        if handles:
            fig.legend(handles, labels, loc="outside right center", frameon=False)
        return fig
