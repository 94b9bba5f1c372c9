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
from typing import Any

from markupsafe import Markup

from emergelab.emergence.table import SweepTable
from emergelab.report import figures as F
from emergelab.report.html import Section, render_fragment, render_page

__all__ = ["render_sweep_report"]


def _fig_metrics(result: SweepTable) -> str | None:
    """One panel per numeric metric against result.x_key (evenly spaced, in grid order), one line per group of
    the other keys; a swept `seed` is averaged (mean line, min-max band)."""
    panels = [(m, result.series(m)) for m in result.metrics]
    panels = [(m, groups) for m, groups in panels if groups]
    if not panels:
        return None
    xs = result.grid[result.x_key]
    cols = min(3, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    with F.report_style():
        fig, axes = F.new_figure(rows_n, cols, figsize=(3.6 * cols, 2.9 * rows_n))
        for j, (metric, groups) in enumerate(panels):
            ax = axes[j // cols, j % cols]
            for i, (group, by_x) in enumerate(groups.items()):
                at = sorted(by_x)
                color = F.MODEL_COLORS[i % len(F.MODEL_COLORS)]
                label = ", ".join(f"{k}={_label(v)}" for k, v in group) or None
                ax.plot(at, [sum(by_x[x]) / len(by_x[x]) for x in at], "o-", ms=4, lw=1.6, color=color, label=label)
                if result.averages_seeds:
                    ax.fill_between(at, [min(by_x[x]) for x in at], [max(by_x[x]) for x in at], color=color,
                                    alpha=0.18, lw=0)
            ys = [y for by_x in groups.values() for v in by_x.values() for y in v]
            if min(ys) > 0 and max(ys) / min(ys) > 30:
                ax.set_yscale("log")
            ax.set_xticks(range(len(xs)), [_label(v) for v in xs], fontsize=8)
            ax.set_xlabel(result.x_key)
            ax.set_title(metric, fontsize=9)
            if len(groups) > 1:
                ax.legend(frameon=False, fontsize=7)
        for j in range(len(panels), rows_n * cols):
            axes[j // cols, j % cols].set_visible(False)
        return F.fig_to_data_uri(fig)


def _caption(result: SweepTable) -> str:
    order = f"against {result.x_key} (evenly spaced, in the order of the grid)"
    if result.averages_seeds:
        return (f"Each panel: one summary value {order}; line: mean over the {len(result.grid['seed'])} seeds, "
                "band: their min-max.")
    return f"Each panel: one summary value of every completed point {order}."


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
    parts.append(render_fragment("sweep_table.html", keys=list(result.grid), metrics=result.metrics, rows=rows))
    sections = [
        Section("points", "Points", Markup("\n").join(parts),
                lead="Every point is an ordinary run; its own report holds its curves, checks and config."),
    ]
    if result.breakthroughness:
        b_rows = [{"metric": m, "group": g, "b": b if isinstance(b, str) else f"{b:.2f}"}
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
