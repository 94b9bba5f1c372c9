"""Self-contained HTML report for the ``rbf-approx`` experiment (RBF network function approximation).

Sections: the target checks; error vs K and the results table; per function, the fit with its centers, the
Gaussian basis functions and the held-out error vs x (log scale) for each K; the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.rbf_approx.report_data``:
``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version, git_commit), ``config``,
``data`` ({x_test, domain}), ``targets`` ([{function, k, limit}]: max abs error targets), ``fits``
([{function, k, max_abs_error, rmse, train_rmse, centers, widths, weights, bias, pred_test}]), ``summary``
({results, checks}) and ``wall_seconds``.

Example:
    >>> html = render_rbf_approx_report(report_data(store, run), {"x^2": np.square})
    >>> html.startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from markupsafe import Markup
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emergelab.report import figures as F
from emergelab.report.html import Section, config_section, render_fragment, render_page, run_meta

__all__ = ["render_rbf_approx_report"]

TITLE = "RBF network: approximating smooth functions"
SUBTITLE = (
    "Gaussian radial basis functions on a grid of K centers, output weights by float64 least squares; "
    "maximum absolute error and RMSE on held-out points as K grows (Haykin, Neural Networks, ch. 5)."
)
ERROR_FLOOR = 1e-17  # |error| below this is drawn at it: a log axis cannot show an exact 0
TARGET_COLOR = "#212529"
BASIS_CMAP = "viridis"






def _sci(x: Any) -> str:
    return "—" if x is None else f"{float(x):.2e}"


def _basis(x: np.ndarray, fit: Mapping[str, Any]) -> np.ndarray:
    """x (n,) -> phi (n, K) from the stored centers and widths (float64, as the network computes them)."""
    c = np.asarray(fit["centers"], dtype=float)
    s = np.asarray(fit["widths"], dtype=float)
    return np.exp(-((x[:, None] - c[None]) ** 2) / (2 * s[None] ** 2))


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
            if key == "max_abs_error":
                for j, (_fn, k, limit) in enumerate(targets):
                    ax.plot([k], [limit], marker="v", ls="none", color=TARGET_COLOR, ms=8,
                            label="target" if j == 0 else None)
            ax.set_yscale("log")
            ax.set_xlabel("number of centers K")
            ax.set_title(f"{title} on held-out points")
            ax.legend(frameon=False, fontsize=8)
        return F.fig_to_data_uri(fig)


def _fig_function(fn: str, fits: list[Mapping[str, Any]], x_test: np.ndarray, domain: tuple[float, float],
                  target: Callable[[np.ndarray], np.ndarray] | None) -> str:
    """One row per K: fit and centers | the K Gaussian basis functions | |error| vs x on held-out points."""
    import matplotlib as mpl

    xs = np.linspace(domain[0], domain[1], 600)
    cmap = mpl.colormaps[BASIS_CMAP]
    with F.report_style():
        fig, axes = _fixed_grid(len(fits), 3, width=11.0, row_height=2.4)
        for r, fit in enumerate(fits):
            phi = _basis(xs, fit)
            y_hat = phi @ np.asarray(fit["weights"], dtype=float) + float(fit["bias"])
            centers = np.asarray(fit["centers"], dtype=float)
            K = len(centers)

            ax = axes[r, 0]
            if target is not None:
                ax.plot(xs, target(xs), color="#adb5bd", lw=4.0, label=f"f(x) = {fn}")
            ax.plot(xs, y_hat, color=F.MODEL_COLORS[1], lw=1.4, label="RBF network")
            ax.plot(centers, np.full(K, ax.get_ylim()[0]), "|", color=F.MODEL_COLORS[0], ms=10, mew=1.6,
                    label="centers")
            ax.set_title(f"{fn}, K={K}: fit")
            if r == 0:
                ax.legend(frameon=False, fontsize=7.5, loc="best")

            ax = axes[r, 1]
            for k in range(K):
                ax.plot(xs, phi[:, k], color=cmap(k / max(K - 1, 1)), lw=1.0)
            widths = np.asarray(fit["widths"], dtype=float)
            s = f"s = {widths[0]:.3f}" if np.ptp(widths) == 0 else f"s = {widths.min():.3f}–{widths.max():.3f}"
            ax.set_title(f"K={K} Gaussian basis functions ({s})")
            ax.set_ylim(-0.03, 1.05)

            ax = axes[r, 2]
            pred = np.asarray(fit["pred_test"], dtype=float)
            if target is not None and len(pred) == len(x_test):
                err = np.maximum(np.abs(pred - target(x_test)), ERROR_FLOOR)
                ax.plot(x_test, err, color=F.MODEL_COLORS[2], lw=0.9)
                ax.set_yscale("log")
            else:
                F.no_data(ax, "no held-out predictions")
            ax.set_title(f"|error| on held-out points (max {_sci(fit['max_abs_error'])})")
        for ax in axes[-1, :]:
            ax.set_xlabel("x")
        return F.fig_to_data_uri(fig)


# --- text pieces ------------------------------------------------------------------------------------------


def _width_text(widths: list[float]) -> str:
    w = np.asarray(widths, dtype=float)
    return f"{w[0]:.4f}" if np.ptp(w) == 0 else f"{w.min():.4f}–{w.max():.4f}"


# --- public API -------------------------------------------------------------------------------------------
def render_rbf_approx_report(data: Mapping[str, Any],
                             functions: Mapping[str, Callable[[np.ndarray], np.ndarray]]) -> str:
    """The full self-contained HTML page of an ``rbf-approx`` run; ``functions`` maps names to the targets."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    checks = [dict(c) for c in summary.get("checks") or []]
    fits = [dict(f) for f in data.get("fits") or []]
    stored = dict(data.get("data") or {})
    x_test = np.asarray(stored.get("x_test") or [], dtype=float)
    domain = tuple(stored.get("domain") or (-1.0, 1.0))
    targets = [(t["function"], int(t["k"]), float(t["limit"])) for t in data.get("targets") or []]

    n_pass = sum(bool(c.get("passed")) for c in checks)
    target_keys = {(fn, k) for fn, k, _ in targets}
    rows = [{"function": f["function"], "k": f["k"], "width": _width_text(f["widths"]),
             "max_abs_error": _sci(f["max_abs_error"]), "rmse": _sci(f["rmse"]),
             "train_rmse": _sci(f.get("train_rmse")), "target": (f["function"], f["k"]) in target_keys}
            for f in fits]
    results = Markup("\n").join([
        render_fragment("figure.html", figures=[{
            "src": _fig_error_vs_k(fits, targets), "alt": "Held-out error vs number of centers",
            "caption": "Maximum absolute error and RMSE on the held-out points, log scale; triangles mark the "
                       "targets (the error must end at or below them)."}]),
        render_fragment("rbf_approx_table.html", rows=rows),
    ])
    per_function = []
    for fn in dict.fromkeys(f["function"] for f in fits):
        mine = sorted((f for f in fits if f["function"] == fn), key=lambda f: f["k"])
        per_function.append({
            "src": _fig_function(fn, mine, x_test, domain, functions.get(fn)),
            "alt": f"RBF fits of {fn}",
            "caption": f"{fn}: left, the target (thick gray) and the network (blue) with its centers (ticks); "
                       "middle, the K Gaussian units; right, |network − target| at the held-out points, log scale.",
        })

    sections = [
        Section("checks", "Target checks", render_fragment("checks.html", checks=checks, n_pass=n_pass),
                lead="Whether the experiment's targets hold on this run."),
        Section("results", "Error vs number of centers", results,
                lead="How the error on points never seen in training falls as Gaussian units are added."),
        Section("fits", "Fits, basis functions and errors", render_fragment("figure.html", figures=per_function),
                lead="One row per K. The network is a weighted sum of the Gaussians in the middle column."),
        config_section(run, data.get("config") or {},
                       [] if data.get("wall_seconds") is None
                       else [("wall time (fits)", f"{float(data['wall_seconds']):.3f} s")]),
    ]
    meta = run_meta(run, checks)
    return render_page(TITLE, sections, subtitle=SUBTITLE, meta=meta)

