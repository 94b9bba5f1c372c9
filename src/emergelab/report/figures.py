"""Matplotlib helpers for reports: static PNG figures inlined as base64 ``data:`` URIs, and the figures
several reports share, one implementation each: `curve_panels` (curves over training with phase-change
windows), `head_heatmaps` (layer x head scores at moments of training) and `head_lines` (head scores
over training).

We never import ``matplotlib.pyplot`` here: figures are built from :class:`matplotlib.figure.Figure`
with an Agg canvas, so the report neither depends on nor changes the process-wide backend (other code,
e.g. an interactive session, keeps whatever backend it chose) and there is no global figure registry
to leak memory into.

Example:
    >>> from emergelab.report.figures import new_figure, fig_to_data_uri
    >>> fig, axes = new_figure(1, 1, figsize=(3, 2))
    >>> _ = axes[0, 0].plot([0, 1], [1, 0])
    >>> fig_to_data_uri(fig).startswith("data:image/png;base64,")
    True
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from emergelab.report.format import fmt

__all__ = [
    "MODEL_COLORS",
    "Curve",
    "Panel",
    "Window",
    "curve_panels",
    "fig_to_data_uri",
    "heatmap",
    "mark_window",
    "new_figure",
    "no_data",
    "report_style",
    "step_axis",
    "style_axes",
]

# Colour-blind-friendly, distinct on white; index = model order in the report.
MODEL_COLORS = ["#d9480f", "#2457a6", "#2b8a3e", "#7048e8", "#c2255c", "#5c940d"]
FIRST_COLOR = "#4c6ef5"  # loss on first occurrences (cannot be predicted from context)
REPEAT_COLOR = "#d9480f"  # loss on repeated tokens (predictable by an induction head)
TRAIN_COLOR = "#868e96"
DPI = 110

_RC = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#adb5bd",
    "axes.grid": True,
    "grid.color": "#e9ecef",
    "grid.linewidth": 0.8,
    "xtick.color": "#495057",
    "ytick.color": "#495057",
}


def report_style():
    """Context manager applying the report's matplotlib style; wrap the whole build of a figure.

    (rcParams are read when each artist is created, so the style must be active while plotting.)

    Example:
        >>> with report_style():
        ...     fig, axes = new_figure(1, 1, figsize=(2, 2))
    """
    import matplotlib

    return matplotlib.rc_context(_RC)


def new_figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (8, 3), **subplot_kw
) -> tuple[Figure, np.ndarray]:
    """Create an Agg-backed figure and a 2-D array of axes (always 2-D, even for 1x1).

    Example:
        >>> fig, axes = new_figure(2, 3, figsize=(6, 3))
        >>> axes.shape
        (2, 3)
    """
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
        for ax in axes.flat:
            style_axes(ax)
    return fig, axes


def style_axes(ax: Axes) -> None:
    """Apply the report's quiet style (rc_context does not persist after the figure is created)."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#adb5bd")
    ax.grid(True, color="#e9ecef", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(colors="#495057", labelsize=8.5)


def step_axis(ax: Axes, label: str = "training step") -> None:
    """Thousands-separated integer ticks for a training-step x axis."""
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt(x, 0, "fixed")))
    ax.set_xlabel(label)


def mark_window(
    ax: Axes,
    start: float | None,
    end: float | None,
    steepest: float | None = None,
    *,
    color: str = "#fab005",
    label: str | None = "phase change",
) -> None:
    """Shade a ``[start, end]`` step window and draw a dashed line at ``steepest`` (any may be None)."""
    if start is not None and end is not None:
        ax.axvspan(start, end, color=color, alpha=0.16, lw=0, label=label)
    if steepest is not None:
        ax.axvline(steepest, color=color, ls="--", lw=1.1, alpha=0.9)


def no_data(ax: Axes, text: str = "no data recorded") -> None:
    """Placeholder for an empty panel, so a missing metric is visible rather than a blank box."""
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#868e96", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def heatmap(
    ax: Axes,
    matrix: np.ndarray,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    annotate: bool = True,
    highlight: Sequence[tuple[int, int]] = (),
):
    """Draw ``matrix`` as an annotated heatmap; NaN cells are light gray; ``highlight`` cells boxed.

    Returns the image (for a colorbar).

    Example:
        >>> fig, axes = new_figure(1, 1, figsize=(3, 2))
        >>> im = heatmap(axes[0, 0], np.eye(2), row_labels=["L0", "L1"], col_labels=["H0", "H1"])
    """
    import matplotlib as mpl

    cm = mpl.colormaps[cmap].with_extremes(bad="#f1f3f5")
    data = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
    im = ax.imshow(data, cmap=cm, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(col_labels)), col_labels)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.grid(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        span = (vmax - vmin) or 1.0
        for (r, c), v in np.ndenumerate(np.asarray(matrix, dtype=float)):
            if not np.isfinite(v):
                continue
            # dark text on the bright (yellow) end of viridis, white elsewhere
            color = "#111" if (v - vmin) / span > 0.6 else "#fff"
            ax.text(c, r, fmt(v, 2, "fixed"), ha="center", va="center", fontsize=7.5, color=color)
    for r, c in highlight:
        ax.add_patch(
            mpl.patches.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="#ff6b6b", lw=2.0, zorder=3)
        )
    return im


def fig_to_data_uri(fig: Figure, dpi: int = DPI) -> str:
    """Render ``fig`` to PNG and return a ``data:image/png;base64,...`` URI; the figure is closed.

    Example:
        >>> fig, _ = new_figure(1, 1, figsize=(2, 2))
        >>> uri = fig_to_data_uri(fig)
        >>> uri[:22]
        'data:image/png;base64,'
    """
    buf = io.BytesIO()
    try:
        # metadata={"Software": None}: no matplotlib version in the PNG, so output is reproducible
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    finally:
        # Only pyplot keeps a registry of open figures; close there if the caller used pyplot.
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close(fig)
        else:
            fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------------
# curves over training with phase-change windows


@dataclass(frozen=True)
class Curve:
    """One line of a panel. `steps`/`values`: 1-D, same length; an empty curve is skipped."""

    steps: Sequence[float] | np.ndarray
    values: Sequence[float] | np.ndarray
    label: str | None = None
    color: str = MODEL_COLORS[0]
    lw: float = 1.8
    ls: str = "-"
    alpha: float = 1.0
    marker: str | None = None


@dataclass(frozen=True)
class Window:
    """A phase-change window: shaded [start, end] and a dashed line at the steepest step (any may be None)."""

    start: float | None
    end: float | None
    steepest: float | None = None
    color: str = "#fab005"
    label: str | None = "phase change"

    @classmethod
    def of(cls, phase: Mapping[str, Any] | None, **kw: Any) -> Window | None:
        """The window of a stored `phase_change` dict, or None when none was detected."""
        if not phase or not phase.get("detected"):
            return None
        return cls(phase.get("start_step"), phase.get("end_step"), phase.get("steepest_step"), **kw)


@dataclass(frozen=True)
class Panel:
    """One axes of `curve_panels`: its curves, windows and horizontal reference lines (y, label, style)."""

    title: str
    curves: Sequence[Curve]
    windows: Sequence[Window | None] = ()
    hlines: Sequence[tuple[float, str | None, str]] = ()  # (y, legend label, line style)
    ylabel: str | None = None
    ylim: tuple[float, float] | None = None
    log: bool = False
    xlabel: str = "training step"  # "training step" gets thousands-separated integer ticks
    empty_text: str = "no data recorded"


def curve_panels(panels: Sequence[Panel], *, figsize: tuple[float, float], sharey: bool = False,
                 legend: Literal["below", "panel", "none"] = "panel", legend_cols: int = 1) -> str:
    """A row of panels of curves over training, each with its phase windows; -> PNG data URI.

    `legend="below"` draws one legend (labels de-duplicated) under the row, where it never covers a
    curve; "panel" one legend per panel. A panel without a drawable curve shows "no data recorded".

    Example:
        >>> uri = curve_panels([Panel("loss", [Curve([0, 10], [2.0, 1.0], "train")],
        ...                           windows=[Window(2, 6, 4)])], figsize=(4, 3))
        >>> uri.startswith("data:image/png;base64,")
        True
    """
    with report_style():
        fig, axes = new_figure(1, len(panels), figsize=figsize, sharey=sharey)
        for ax, panel in zip(axes[0], panels, strict=True):
            drawn = [c for c in panel.curves if len(c.steps)]
            if not drawn:
                no_data(ax, panel.empty_text)
                ax.set_title(panel.title)
                continue
            for c in drawn:
                values = np.asarray([np.nan if v is None else v for v in c.values], dtype=float)
                ax.plot(c.steps, values, ls=c.ls, color=c.color, lw=c.lw, alpha=c.alpha, marker=c.marker,
                        ms=3.5, label=c.label)
            for y, label, style in panel.hlines:
                ax.axhline(y, color="#868e96", ls=style, lw=0.9, label=label)
            for w in panel.windows:
                if w is not None:
                    mark_window(ax, w.start, w.end, w.steepest, color=w.color, label=w.label)
            if panel.log:
                ax.set_yscale("log")
            if panel.ylim is not None:
                ax.set_ylim(*panel.ylim)
            if panel.ylabel:
                ax.set_ylabel(panel.ylabel)
            if panel.xlabel == "training step":
                step_axis(ax)
            else:
                ax.set_xlabel(panel.xlabel)
            ax.set_title(panel.title)
            if legend == "panel" and ax.get_legend_handles_labels()[1]:
                ax.legend(frameon=False, fontsize=7.5, ncol=legend_cols)
        if legend == "below":
            handles, names = _legend_entries(axes)
            if handles:
                fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 8), frameon=False)
        return fig_to_data_uri(fig)


def _legend_entries(axes: np.ndarray) -> tuple[list, list[str]]:
    """Legend handles of all axes, each label once, in order of appearance."""
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            if n not in names:
                handles.append(h)
                names.append(n)
    return handles, names
