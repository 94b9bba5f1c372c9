"""Matplotlib helpers for reports: static PNG figures inlined as base64 ``data:`` URIs.

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
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = [
    "MODEL_COLORS",
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
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
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
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7.5, color=color)
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
