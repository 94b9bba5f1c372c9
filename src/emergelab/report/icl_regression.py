"""Self-contained HTML report for the ``icl-regression`` experiment (in-context regression, Garg et al. 2022).

Sections: the acceptance checks; error vs number of in-context examples k for the transformer and every baseline
(90% bootstrap intervals) with the table of values and the baseline the transformer tracks (for a finite task
pool, also on fresh tasks outside it: dMMSE-like or ridge-like, Raventós et al. 2023); the error over
training at several k; the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.icl_regression.report_data``:
``run`` (id, experiment, status, ...), ``config``, ``summary`` (d, k_values, error_by_k, tracks, checks; fresh and
task_diversity for a finite task pool), ``eval`` and ``eval_fresh`` ({learner: {k, mean, low, high}}; eval_fresh
None without a pool), ``metrics`` ({name: {steps, values}}) and ``wall_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from markupsafe import Markup

from emergelab.report import figures as F
from emergelab.report import series as S
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows
from emergelab.runs.names import metric

__all__ = ["render_icl_regression_report"]

TITLE = "In-context regression"
SUBTITLE = ("A transformer trained on prompts x1, y1, ..., xk, yk, x with a fresh function in every prompt, "
            "compared with least squares, ridge, 3-nearest-neighbours and averaging (Garg et al. 2022).")
COLORS = {"transformer": "#d9480f", "least_squares": "#2457a6", "ridge": "#74c0fc", "knn3": "#2b8a3e",
          "averaging": "#7048e8", "lasso": "#c2255c", "dmmse": "#5c940d", "two_layer_nn": "#e8590c"}
FLOOR = 1e-6  # log axis: errors below this are drawn at it


def _color(name: str, i: int) -> str:
    return COLORS.get(name, F.MODEL_COLORS[i % len(F.MODEL_COLORS)])


def _fig_error_vs_k(evals: Mapping[str, Any], d: int) -> str:
    with F.report_style():
        fig, axes = F.new_figure(1, 2, figsize=(10.5, 3.6))
        for col, log in enumerate((False, True)):
            ax = axes[0, col]
            for i, (name, e) in enumerate(evals.items()):
                k = e["k"]
                mean = [max(v, FLOOR) if log else v for v in e["mean"]]
                low = [max(v, FLOOR) if log else v for v in e["low"]]
                high = [max(v, FLOOR) if log else v for v in e["high"]]
                lw = 2.4 if name == "transformer" else 1.4
                ax.plot(k, mean, "o-" if name == "transformer" else "-", lw=lw, ms=3.5, color=_color(name, i),
                        label=name, zorder=3 if name == "transformer" else 2)
                ax.fill_between(k, low, high, color=_color(name, i), alpha=0.15, lw=0)
            ax.axvline(d, color="#adb5bd", ls=":", lw=1.2)
            ax.set_xlabel("in-context examples k")
            ax.set_ylabel("(ŷ − y)² / d")
            if log:
                ax.set_yscale("log")
                ax.set_title("log scale")
            else:
                ax.set_ylim(0, 1.6)
                ax.set_title(f"error vs k (dotted: k = d = {d})")
                ax.legend(frameon=False, fontsize=8)
        return F.fig_to_data_uri(fig)


def _fig_training(metrics: Mapping[str, Any], d: int, n: int) -> str:
    ks = sorted({k for k in (0, 1, d // 2, d - 1, d, 2 * d, n - 1) if 0 <= k < n})
    probe = []
    for i, k in enumerate(ks):
        steps, values = S.series(metrics, metric("probe", f"err_k{k}"))  # named as the experiment logs them
        probe.append(F.Curve(steps, np.maximum(values, FLOOR), label=f"k = {k}", lw=1.6,
                             color=F.MODEL_COLORS[i] if i < len(F.MODEL_COLORS) else "#495057"))
    loss = F.Curve(*S.series(metrics, metric("train", "loss")), color=F.TRAIN_COLOR, lw=1.4)
    return F.curve_panels([F.Panel("probe error by k over training", probe, log=True),
                           F.Panel("training loss (MSE over all positions)", [loss], log=True)],
                          figsize=(10.5, 3.4), legend_cols=2)


def _table(evals: Mapping[str, Any], k_values: list[int], tr: Mapping[str, Any], n_eval: Any, what: str) -> Markup:
    names = list(evals)
    rows = []
    for i, k in enumerate(k_values):
        cells = []
        for name in names:
            e = evals[name]
            cell = fmt(e["mean"][i], 4)
            if name == "transformer":
                cell += f" [{fmt(e['low'][i], 4)}, {fmt(e['high'][i], 4)}]"
            cells.append(cell)
        rows.append({"k": k, "cells": cells})
    distances = sorted((tr.get("prediction_distance") or {}).items(), key=lambda kv: kv[1])
    return render_fragment("icl_regression_table.html", names=names, rows=rows, closest=tr.get("closest", "—"),
                           distances=[(n, fmt(v, 4)) for n, v in distances], n_eval=n_eval, what=what)


def render_icl_regression_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of an ``icl-regression`` run."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    evals = dict(data.get("eval") or {})
    metrics = dict(data.get("metrics") or {})
    checks = [dict(c) for c in summary.get("checks") or []]
    d = int(summary.get("d", 1))
    k_values = list(summary.get("k_values") or [])
    tr = dict(summary.get("tracks") or {})
    n_eval = (data.get("config") or {}).get("analysis", {}).get("eval_size", "—")
    curve_parts = [
        render_fragment("figure.html", figures=[{
            "src": _fig_error_vs_k(evals, d), "alt": "Error vs number of in-context examples",
            "caption": "Mean normalized squared error by k with 90% bootstrap bands. Least squares falls as "
                       "1 − k/d and reaches 0 at k = d; averaging falls as (d + 1)/k."}]),
        _table(evals, k_values, tr, n_eval, "prompts from the training distribution"),
    ]
    fresh = dict(summary.get("fresh") or {})
    fresh_evals = dict(data.get("eval_fresh") or {})
    diversity = dict(summary.get("task_diversity") or {})
    if fresh_evals and diversity.get("pool_size"):  # the task-diversity view (finite pool)
        curve_parts += [
            render_fragment("icl_regression_diversity.html", **diversity),
            render_fragment("figure.html", figures=[{
                "src": _fig_error_vs_k(fresh_evals, d), "alt": "Error vs k on tasks outside the pool",
                "caption": f"The same learners on prompts whose w ~ N(0, I) is not one of the "
                           f"{diversity.get('pool_size')} pretraining tasks."}]),
            _table(fresh_evals, k_values, dict(fresh.get("tracks") or {}), n_eval, "fresh tasks outside the pool"),
        ]
    curves = Markup("\n").join(curve_parts)
    sections = [
        checks_section(checks, "Whether this run meets the experiment's acceptance thresholds (each check names its "
                               "own). This project set them for its small CPU model after Garg et al. 2022, where a "
                               "12-layer transformer comes within about 0.02 of least squares at k = d.",
                       title="Acceptance checks",
                       empty_text="No check applies: the thresholds are for noiseless dense linear functions with a "
                                  "fresh function in every prompt."),
        Section("curves", "Error vs in-context examples", curves,
                lead="How the prediction improves with more examples in the prompt, next to known learners."),
        Section("training", "Error over training",
                render_fragment("figure.html", figures=[{
                    "src": _fig_training(metrics, d, len(k_values)), "alt": "Probe error over training",
                    "caption": "Error on a fixed probe batch at several k, logged during training."}]),
                lead="When in-context learning appears: the error at large k falls while k = 0 stays at 1."),
    ]
    meta = run_meta(run, checks, {"d": d, "tracks": tr.get("closest", "—")})
    if diversity.get("pool_size"):
        meta |= {"task pool": diversity.get("pool_size"), "outside the pool": diversity.get("behaves_like")}
    return render_run_page(TITLE, data, sections, provenance=wall_rows({"wall time": data.get("wall_seconds")}),
                           subtitle=SUBTITLE, meta=meta)
