"""Self-contained HTML report for the ``rbf-approx`` experiment (RBF network function approximation).

Sections: the acceptance checks; error vs K and the results table; per function, the fit with its centers, the
Gaussian basis functions and the held-out error vs x (log scale) for each K; the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.rbf_approx.report_data``:
``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version, git_commit), ``config``,
``data`` ({x_test, domain}), ``targets`` ([{function, k, limit}]: max abs error thresholds), ``fits``
([{function, k, max_abs_error, rmse, train_rmse, centers, widths, ...}]), ``curves`` (computed by the
experiment's analysis: {x, x_test, targets: {function: f(x)}, fits: [{function, k, fit, basis (K, n),
abs_error}]}), ``summary`` ({results, checks}), ``checks`` and ``wall_seconds``. Nothing is evaluated here:
the report draws what the store holds, so it re-renders byte-identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from markupsafe import Markup
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from emergelab.report import figures as F
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows

__all__ = ["render_rbf_approx_report"]

TITLE = "RBF network: approximating smooth functions"
SUBTITLE = (
    "Gaussian radial basis functions on a grid of K centers, output weights by float64 least squares; "
    "maximum absolute error and RMSE on held-out points as K grows (Haykin, Neural Networks, ch. 5)."
)
ERROR_FLOOR = 1e-17  # |error| below this is drawn at it: a log axis cannot show an exact 0
THRESHOLD_COLOR = "#212529"
BASIS_CMAP = "viridis"


# --- figures ----------------------------------------------------------------------------------------------
def _fixed_grid(nrows: int, ncols: int, *, width: float, row_height: float) -> tuple[Figure, np.ndarray]:
    """Like figures.new_figure, with fixed margins instead of constrained layout: that measures every tick
    label of every panel and took seconds for the 9-panel figures here."""
    height = row_height * nrows + 0.5
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={
        "left": 0.65 / width, "right": 0.99, "top": 1 - 0.3 / height, "bottom": 0.45 / height, "wspace": 0.2,
        "hspace": 0.5})
    for ax in axes.flat:
        F.style_axes(ax)
    return fig, axes


def _fig_error_vs_k(fits: list[Mapping[str, Any]], targets: list[tuple[str, int, float]]) -> str:
    functions = list(dict.fromkeys(f["function"] for f in fits))
    with F.report_style():
        fig, axes = _fixed_grid(1, 2, width=10.0, row_height=2.9)
        for col, (key, title) in enumerate((("max_abs_error", "max abs error"), ("rmse", "RMSE"))):
            ax = axes[0, col]
            for i, fn in enumerate(functions):
                rows = sorted((f for f in fits if f["function"] == fn), key=lambda f: f["k"])
                ax.plot([r["k"] for r in rows], [max(r[key], ERROR_FLOOR) for r in rows], "o-", lw=1.8,
                        color=F.MODEL_COLORS[i % len(F.MODEL_COLORS)], label=fn)
            if key == "max_abs_error":  # open triangles in the colour of the function the threshold is for
                for j, (fn, k, limit) in enumerate(targets):
                    color = F.MODEL_COLORS[functions.index(fn) % len(F.MODEL_COLORS)] if fn in functions \
                        else THRESHOLD_COLOR
                    first = all(t[0] != fn for t in targets[:j])
                    ax.plot([k], [limit], marker="v", ls="none", mfc="none", mec=color, mew=1.6, ms=9,
                            label=f"{fn}: threshold" if first else None)
            ax.set_yscale("log")
            ks = sorted({f["k"] for f in fits})
            ax.set_xticks(ks, [str(k) for k in ks])  # ticks at the fitted K, not at 6, 8, 12 ...
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("number of centers K")
            ax.set_title(f"{title} on held-out points")
            ax.legend(frameon=False, fontsize=8)
        return F.fig_to_data_uri(fig)


def _fig_function(fn: str, fits: list[Mapping[str, Any]], curves: list[Mapping[str, Any]],
                  stored: Mapping[str, Any]) -> str:
    """One row per K: fit and centers | the K Gaussian basis functions | |error| vs x on held-out points."""
    import matplotlib as mpl

    xs = np.asarray(stored.get("x") or [], dtype=float)
    x_test = np.asarray(stored.get("x_test") or [], dtype=float)
    target = (stored.get("targets") or {}).get(fn)
    cmap = mpl.colormaps[BASIS_CMAP]
    with F.report_style():
        fig, axes = _fixed_grid(len(fits), 3, width=11.0, row_height=2.4)
        # one |error| range for all K of this function, so the rows show how far the error falls
        errs = [np.asarray(c.get("abs_error") or [], dtype=float) for c in curves]
        errs = [np.maximum(e, ERROR_FLOOR) for e in errs if len(e) and len(e) == len(x_test)]
        err_lim = (min(e.min() for e in errs) / 2, max(e.max() for e in errs) * 2) if errs else None
        for r, (fit, curve) in enumerate(zip(fits, curves, strict=True)):
            centers = np.asarray(fit["centers"], dtype=float)
            K = len(centers)

            ax = axes[r, 0]
            if target is not None:
                ax.plot(xs, target, color="#adb5bd", lw=4.0, label=f"f(x) = {fn}")
            ax.plot(xs, curve["fit"], color=F.MODEL_COLORS[1], lw=1.4, label="RBF network")
            ax.plot(centers, np.full(K, ax.get_ylim()[0]), "|", color=F.MODEL_COLORS[0], ms=10, mew=1.6,
                    label="centers")
            ax.set_title(f"{fn}, K={K}: fit")
            if r == 0:
                ax.legend(frameon=False, fontsize=7.5, loc="best")

            ax = axes[r, 1]
            for k, phi in enumerate(curve["basis"]):
                ax.plot(xs, phi, color=cmap(k / max(K - 1, 1)), lw=1.0)
            ax.set_title(f"K={K} Gaussian basis functions (s = {_width_text(fit['widths'], 3)})")
            ax.set_ylim(-0.03, 1.05)

            ax = axes[r, 2]
            err = np.asarray(curve.get("abs_error") or [], dtype=float)
            if len(err) and len(err) == len(x_test):
                ax.plot(x_test, np.maximum(err, ERROR_FLOOR), color=F.MODEL_COLORS[2], lw=0.9)
                ax.set_yscale("log")
                ax.set_ylim(*err_lim)
            else:
                F.no_data(ax, "no held-out predictions")
            ax.set_title(f"|error| on held-out points (max {fmt(fit['max_abs_error'], 2, 'sci')})")
        for ax in axes[-1, :]:
            ax.set_xlabel("x")
        return F.fig_to_data_uri(fig)


# --- text pieces ------------------------------------------------------------------------------------------


def _width_text(widths: list[float], digits: int = 4) -> str:
    w = np.asarray(widths, dtype=float)
    lo, hi = fmt(w.min(), digits, "fixed"), fmt(w.max(), digits, "fixed")
    return lo if np.ptp(w) == 0 else f"{lo}–{hi}"


def _checks_lead(targets: list[tuple[str, int, float]]) -> str:
    """Where the checks come from, with the thresholds this run has."""
    limits = "; ".join(f"{fn} with K={k}: max abs error at most {fmt(limit, 0, 'sci')}" for fn, k, limit in targets)
    lead = ("Whether this run meets the experiment's acceptance thresholds, set by this project for float64 least "
            "squares on wide Gaussians (Haykin's width d_max / sqrt(2K))")
    lead += f": {limits} on the held-out points" if limits else " (none applies to these functions and K)"
    return lead + "; and for every function, the max abs error falls as K grows."


# --- public API -------------------------------------------------------------------------------------------
def render_rbf_approx_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of an ``rbf-approx`` run, from stored data only."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    checks = [dict(c) for c in data.get("checks") or summary.get("checks") or []]
    fits = [dict(f) for f in data.get("fits") or []]
    stored = dict(data.get("curves") or {})
    curves = {(c["function"], c["k"]): c for c in stored.get("fits") or []}
    targets = [(t["function"], int(t["k"]), float(t["limit"])) for t in data.get("targets") or []]

    target_keys = {(fn, k) for fn, k, _ in targets}
    rows = [{"function": f["function"], "k": f["k"], "width": _width_text(f["widths"]),
             "max_abs_error": fmt(f["max_abs_error"], 2, "sci"), "rmse": fmt(f["rmse"], 2, "sci"),
             "train_rmse": fmt(f.get("train_rmse"), 2, "sci"), "target": (f["function"], f["k"]) in target_keys}
            for f in fits]
    results = Markup("\n").join([
        render_fragment("figure.html", figures=[{
            "src": _fig_error_vs_k(fits, targets), "alt": "Held-out error vs number of centers",
            "caption": "Maximum absolute error and RMSE on the held-out points, log scale; triangles mark the "
                       "acceptance thresholds (the error must end at or below them)."}]),
        render_fragment("rbf_approx_table.html", rows=rows),
    ])
    per_function = []
    for fn in dict.fromkeys(f["function"] for f in fits):
        mine = sorted((f for f in fits if f["function"] == fn), key=lambda f: f["k"])
        per_function.append({
            "src": _fig_function(fn, mine, [curves.get((fn, f["k"]), {}) for f in mine], stored),
            "alt": f"RBF fits of {fn}",
            "caption": f"{fn}: left, the function f(x) = {fn} (thick gray) and the network (blue) with its centers "
                       "(ticks); middle, the K Gaussian units; right, |network − f(x)| at the held-out points, "
                       "log scale, one range for all K.",
        })

    sections = [
        checks_section(checks, _checks_lead(targets), title="Acceptance checks"),
        Section("results", "Error vs number of centers", results,
                lead="How the error on points never seen in training falls as Gaussian units are added."),
        Section("fits", "Fits, basis functions and errors", render_fragment("figure.html", figures=per_function),
                lead="One row per K. The network is a weighted sum of the Gaussians in the middle column."),
    ]
    walls = wall_rows({"wall time (fits)": data.get("wall_seconds")}, 3)
    return render_run_page(TITLE, data, sections, provenance=walls, subtitle=SUBTITLE, meta=run_meta(run, checks))

