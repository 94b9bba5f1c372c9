"""Self-contained HTML report of a sweep: each chosen summary value against the first grid key (one line per
combination of the other keys; a swept `seed` is averaged, with its min-max as a band), the table of
points with links to every run's own report, and how sudden each change is (BIG-bench breakthroughness).

Input is a `SweepTable` (emergence/table.py): plain data, so this module knows nothing about how the
points ran; `emergelab.sweeps` builds it from the store (its `SweepResult` is one).

Example:
    >>> html = render_sweep_report(collect("icl-regression-1a2b3c4d5e", store="runs/emergelab.db"))
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup
from matplotlib.figure import Figure

from emergelab.emergence.table import SweepTable
from emergelab.report import figures as F
from emergelab.report.html import Section, render_fragment, render_page

__all__ = ["log_scale", "metric_title", "metrics_figure", "render_sweep_report"]

LOG_SPAN = 100.0  # positive values whose max / min reaches this get a log axis: they span two decades or more

# Whole parts of a summary path with a fixed reading (checked before the word rules below).
PHRASES = {
    "max_abs_error": "max abs error",
    "roc_auc_ovr": "ROC-AUC (one-vs-rest)",
    "wall_seconds": "wall time (s)",
    "repeated_loss": "repeated-token loss",
    "first_loss": "first-occurrence loss",
    "icl_score": "ICL score",
    "flip_follows_context": "label flips following the context",
    "flip_follows_weights": "label flips following the weights",
    "at_max_shots": "at the most shots",
    "knn3": "3-NN",
    "least_squares": "least squares",
    "fresh": "fresh tasks",
}
# Single words (parts split at "_") with their usual spelling.
WORDS = {"k": "K", "rmse": "RMSE", "mse": "MSE", "mae": "MAE", "icl": "ICL", "iwl": "in-weights", "f1": "F1",
         "auc": "AUC", "roc": "ROC", "ovr": "one-vs-rest", "dmmse": "dMMSE", "qe": "QE", "te": "TE", "llc": "LLC",
         "psnr": "PSNR", "ssim": "SSIM", "abs": "abs", "nn": "NN", "som": "SOM", "rbf": "RBF", "svm": "SVM"}
_INDEX = re.compile(r"-?\d+")
_KEY_VALUE = re.compile(r"([A-Za-z]+)_?(\d+(?:\.\d+)?)")  # k_10, k10, d8 -> K=10, d=10
_LAYERS = re.compile(r"(\d+)L")  # a model label of the induction experiment: 2L = the 2-layer model


def _word(w: str) -> str:
    if w.lower() in WORDS:
        return WORDS[w.lower()]
    if m := _KEY_VALUE.fullmatch(w):
        return f"{WORDS.get(m.group(1).lower(), m.group(1))}={m.group(2)}"
    return w


def _words(part: str) -> str:
    """One part of a dotted summary path as words: 'max_abs_error' -> 'max abs error', 'k_10' -> 'K=10'."""
    if part in PHRASES:
        return PHRASES[part]
    if m := _LAYERS.fullmatch(part):
        return f"{m.group(1)}-layer model"
    if part.lower() in WORDS or _KEY_VALUE.fullmatch(part):
        return _word(part)
    return " ".join(_word(w) for w in part.split("_") if w)


def _ordinal(index: str) -> str:
    """A list index of a path as words: 0 -> 'first', -1 -> 'last', 2 -> '#3', -3 -> '#3 from the end'."""
    i = int(index)
    return {0: "first", -1: "last"}.get(i, f"#{i + 1}" if i >= 0 else f"#{-i} from the end")


def metric_title(path: str) -> str:
    """A readable panel title for a dotted summary path (what `--metric` and `sweep_metrics` name, read by
    `sweeps.grid.lookup`): the qualifiers, comma-separated, then ": " and the measured value. Known names are
    spelled out (rmse -> RMSE, k_10 -> K=10, 2L -> 2-layer model), list indices read first / last / #n, and a
    `..._by_k` list indexed later reads "... at the last k". The report shows the path itself beside it.

    Example:
        >>> metric_title("fits.x^2.k_10.rmse")
        'fits, x^2, K=10: RMSE'
        >>> metric_title("results.-1.max_abs_error"), metric_title("error_by_k.transformer.-1")
        ('results, last: max abs error', 'transformer: error at the last k')
        >>> metric_title("2L.phase_change.steepest_step"), metric_title("test_accuracy")
        ('2-layer model, phase change: steepest step', 'test accuracy')
    """
    parts = [p for p in path.split(".") if p]
    if not parts:
        return path
    is_index = [bool(_INDEX.fullmatch(p)) for p in parts]
    by = next((i for i, p in enumerate(parts) if "_by_" in p and not is_index[i]), None)
    if by is not None:  # "error_by_k ... -1": the index picks a k, so it belongs to the value, not a qualifier
        value, over = parts[by].split("_by_", 1)
        at = next((j for j in range(len(parts) - 1, by, -1) if is_index[j]), None)
        # `over` as written: in error_by_k the k counts in-context examples, not the K of a key like k_10
        over = over.replace("_", " ")
        quantity = _words(value) + (f" at the {_ordinal(parts[at])} {over}" if at is not None else f" by {over}")
        rest = [(p, x) for j, (p, x) in enumerate(zip(parts, is_index, strict=True)) if j not in (by, at)]
    else:
        q = max((i for i, x in enumerate(is_index) if not x), default=None)
        if q is None:
            return path
        quantity = _words(parts[q])
        rest = [(p, x) for j, (p, x) in enumerate(zip(parts, is_index, strict=True)) if j != q]
    qualifiers = [_ordinal(p) if x else _words(p) for p, x in rest]
    return ": ".join(filter(None, (", ".join(qualifiers), quantity)))


def log_scale(values: Sequence[Any]) -> bool:
    """Whether an axis of these values is drawn in log scale: all are positive numbers (bools are not) and
    the largest is at least `LOG_SPAN` (100) times the smallest.

    Example:
        >>> log_scale([20, 50, 200]), log_scale([20, 2000]), log_scale([0.0, 1e-3, 1.0]), log_scale(["a", "b"])
        (False, True, False, False)
    """
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums or len(nums) != len(values) or not all(math.isfinite(v) and v > 0 for v in nums):
        return False
    return max(nums) / min(nums) >= LOG_SPAN


def _fig_metrics(result: SweepTable) -> str | None:
    fig = metrics_figure(result)
    return None if fig is None else F.fig_to_data_uri(fig)


def metrics_figure(result: SweepTable) -> Figure | None:
    """One panel per numeric metric against result.x_key, one line per group of the other keys; a swept `seed`
    is averaged (mean line, min-max band). x: the grid values on a log axis where they span two decades, else
    evenly spaced in grid order; y: log where the values span two decades. None without a numeric value."""
    panels = [(m, result.series(m)) for m in result.metrics]
    panels = [(m, groups) for m, groups in panels if groups]
    if not panels:
        return None
    xs = result.grid[result.x_key]
    log_x = log_scale(xs)
    pos = [float(v) for v in xs] if log_x else list(range(len(xs)))
    cols = min(3, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    with F.report_style():
        fig, axes = F.new_figure(rows_n, cols, figsize=(3.7 * cols, 3.1 * rows_n))
        for j, (metric, groups) in enumerate(panels):
            ax = axes[j // cols, j % cols]
            for i, (group, by_x) in enumerate(groups.items()):
                at = sorted(by_x)
                color = F.MODEL_COLORS[i % len(F.MODEL_COLORS)]
                label = ", ".join(f"{k}={_label(v)}" for k, v in group) or None
                ax.plot([pos[x] for x in at], [sum(by_x[x]) / len(by_x[x]) for x in at], "o-", ms=4, lw=1.6,
                        color=color, label=label)
                if result.averages_seeds:
                    ax.fill_between([pos[x] for x in at], [min(by_x[x]) for x in at], [max(by_x[x]) for x in at],
                                    color=color, alpha=0.18, lw=0)
            if log_scale([y for by_x in groups.values() for v in by_x.values() for y in v]):
                ax.set_yscale("log")
            if log_x:
                ax.set_xscale("log")
                ax.set_xticks(pos, [_label(v) for v in xs], fontsize=8)
                ax.minorticks_off()
            else:
                ax.set_xticks(pos, [_label(v) for v in xs], fontsize=8)
            ax.set_xlabel(result.x_key + (" (log scale)" if log_x else ""))
            # the readable name, and under it in gray the path itself: unambiguous, and what --metric takes
            ax.set_title(metric_title(metric), fontsize=9, pad=15)
            ax.annotate(metric, (0.5, 1.0), xycoords="axes fraction", xytext=(0, 4), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7.5, family="monospace", color="#868e96")
            if len(groups) > 1:
                ax.legend(frameon=False, fontsize=7)
        for j in range(len(panels), rows_n * cols):
            axes[j // cols, j % cols].set_visible(False)
        return fig


def _caption(result: SweepTable) -> str:
    if log_scale(result.grid[result.x_key]):
        order = f"against {result.x_key} (log scale: its values span a factor of {LOG_SPAN:.0f} or more)"
    else:
        order = f"against {result.x_key} (evenly spaced, in the order of the grid)"
    where = ("Each panel is titled by what it shows, with the summary path it reads (as --metric names it) below "
             "(first / last / #n: that item of a list in each run's summary.json); a y axis is logarithmic where "
             f"the values span a factor of {LOG_SPAN:.0f} or more.")
    if result.averages_seeds:
        return (f"Each panel: one summary value {order}; line: mean over the {len(result.grid['seed'])} seeds, "
                f"band: their min-max. {where}")
    return f"Each panel: one summary value of every completed point {order}. {where}"


def _label(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else _label(v)


def render_sweep_report(result: SweepTable) -> str:
    rows = [{"point": [_label(r["point"][k]) for k in result.grid], "run_id": r["run_id"], "status": r["status"],
             "reused": r["reused"], "cells": [_cell(r["values"].get(m)) for m in result.metrics]}
            for r in result.rows]
    n_done = sum(r["status"] == "completed" for r in result.rows)
    fig = _fig_metrics(result)
    parts = []
    if fig:
        parts.append(render_fragment("figure.html", figures=[{
            "src": fig, "alt": "Summary values across the sweep",
            "caption": _caption(result)}]))
    metrics = [{"path": m, "title": metric_title(m)} for m in result.metrics]
    parts.append(render_fragment("sweep_table.html", keys=list(result.grid), metrics=metrics, rows=rows))
    sections = [
        Section("points", "Points", Markup("\n").join(parts),
                lead="Every point is an ordinary run; its own report holds its curves, checks and config."),
    ]
    if result.breakthroughness:
        b_rows = [{"metric": m, "title": metric_title(m), "group": g, "b": b if isinstance(b, str) else f"{b:.2f}"}
                  for m, groups in result.breakthroughness.items() for g, b in groups.items()]
        n_x = len(result.grid[result.x_key])
        sections.append(Section(
            "sudden", "How sudden is each change?",
            render_fragment("sweep_breakthrough.html", rows=b_rows, x_key=result.x_key, n_x=n_x),
            lead=f"BIG-bench breakthroughness along {result.x_key}: a straight line scores ±{n_x - 1}, a jump "
                 "concentrated in a few steps scores far more."))
    meta = {"sweep": result.sweep_id, "experiment": result.experiment, "points": len(result.rows),
            "completed": n_done}
    grid = "; ".join(f"{k} = {', '.join(_label(v) for v in vs)}" for k, vs in result.grid.items())
    return render_page(f"Sweep: {result.experiment}", sections, subtitle=f"Grid: {grid}", meta=meta)
