"""`rbf-approx`: how closely an RBF network fits smooth 1-D functions, as the number of centers K grows.

Fits f(x) = x^2 and sin(3x) on [-1, 1] with K in {5, 10, 20} Gaussian units (grid centers, Haykin's width
d_max / sqrt(2K), output weights by float64 least squares) and measures the maximum absolute error and the
RMSE on 1,000 held-out points. Targets: x^2 with K=10 to within 1e-4, with K=20 to within 1e-6. Wide,
strongly overlapping Gaussians are what make this precise; narrow nearest-neighbour widths leave bumps.

Deterministic: the fits take milliseconds, the report a few seconds. Store layout:
    metrics  "{function}/max_abs_error", "{function}/rmse", "{function}/train_rmse" at step K
    results  "data" (x_test), "fit/{function}/K{k}" (metrics, centers, widths, weights, bias, held-out predictions),
             "wall_seconds", "summary" (what summary.json holds), "curves" (analysis: what the report draws,
             the target, the fit and its Gaussians on a grid and |error| on the held-out points)

Example:
    >>> result = run_experiment("rbf-approx", overrides=["k_values=[5, 10, 20, 40]"])
    >>> result.summary["results"][0]
    {'function': 'x^2', 'k': 5, 'max_abs_error': 0.000638..., 'rmse': 0.000179...}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import StoreError
from ..models.rbf import RBFNetwork, gaussian_activations
from ..report.rbf_approx import render_rbf_approx_report
from ..runs.context import RunContext
from ..runs.names import metric
from ..runs.store import Run, RunStore
from . import kit
from .configs.rbf_approx import CURVE_POINTS, FUNCTION_NAMES, RBFApproxConfig

DOMAIN = (-1.0, 1.0)
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # the config's FUNCTION_NAMES, computed
    "x^2": np.square,
    "sin(3x)": lambda x: np.sin(3 * x),
    "|x|": np.abs,
}
assert tuple(FUNCTIONS) == FUNCTION_NAMES
TARGETS = [("x^2", 10, 1e-4), ("x^2", 20, 1e-6)]  # (function, K, max abs error on held-out points)
# Held-out points never share a stream with anything seeded by `seed` itself. This offset predates the kit's
# eval_seed(); it stays so the held-out points, and so every published error, stay the same.
TEST_SEED_OFFSET = 7919


def fit_key(function: str, k: int) -> str:
    return metric("fit", function, f"K{k}")


def make_network(cfg: RBFApproxConfig, k: int) -> RBFNetwork:
    return RBFNetwork(k, centers=cfg.centers, width=cfg.width, n_neighbors=cfg.n_neighbors, solver=cfg.solver,
                      alpha=cfg.alpha, n_epochs=cfg.n_epochs, lr=cfg.lr, seed=cfg.seed)


def data(cfg: RBFApproxConfig) -> tuple[np.ndarray, np.ndarray]:
    """-> (x_train (n_train,), x_test (n_test,) sorted), float64 on [-1, 1]."""
    x_train = np.linspace(*DOMAIN, cfg.n_train)
    x_test = np.sort(np.random.default_rng(cfg.seed + TEST_SEED_OFFSET).uniform(*DOMAIN, cfg.n_test))
    return x_train, x_test


def fit_one(cfg: RBFApproxConfig, function: str, k: int, x_train: np.ndarray, x_test: np.ndarray) -> dict[str, Any]:
    """Fit f with K centers; -> errors on the held-out points and the fitted network, JSON-able."""
    f = FUNCTIONS[function]
    net = make_network(cfg, k).fit(x_train[:, None], f(x_train))
    pred = net.predict(x_test[:, None])
    err = pred - f(x_test)
    train_err = net.predict(x_train[:, None]) - f(x_train)
    return {
        "function": function,
        "k": k,
        "max_abs_error": float(np.abs(err).max()),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "train_rmse": float(np.sqrt(np.mean(train_err**2))),
        "centers": net.centers_[:, 0].tolist(),
        "widths": net.widths_.tolist(),
        "weights": net.weights_[:, 0].tolist(),
        "bias": float(net.bias_[0]),
        "pred_test": pred.tolist(),  # for the report's error-vs-x plot (full precision: JSON floats round-trip)
    }


# --- training ---------------------------------------------------------------------------------------------
def train_fits(cfg: RBFApproxConfig, ctx: RunContext, resume: bool = False) -> None:
    x_train, x_test = data(cfg)
    ctx.store.put_result(ctx.id, "data", {"x_test": x_test.tolist(), "domain": list(DOMAIN)})
    jobs = [(fn, k) for fn in cfg.functions for k in sorted(cfg.k_values)]
    t0 = time.perf_counter()
    before = ctx.store.get_result(ctx.id, "wall_seconds", 0.0)
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} fits", total=len(jobs), loss="-")
        for i, (fn, k) in enumerate(jobs):
            if ctx.store.get_result(ctx.id, fit_key(fn, k)) is None:  # resume: done fits are kept
                fit = fit_one(cfg, fn, k, x_train, x_test)
                ctx.store.put_result(ctx.id, fit_key(fn, k), fit)
                ctx.log(k, {metric(fn, m): fit[m] for m in ("max_abs_error", "rmse", "train_rmse")})
            ctx.progress.update(bar, completed=i + 1)
    ctx.store.put_result(ctx.id, "wall_seconds", before + time.perf_counter() - t0)


# --- analysis (store only) --------------------------------------------------------------------------------
def stored_fits(view: kit.FinishedRun) -> list[dict[str, Any]]:
    fits = []
    for fn in view.cfg.functions:
        for k in sorted(view.cfg.k_values):
            fit = view.result(fit_key(fn, k))
            if fit is None:
                raise StoreError(f"Run {view.run.id} has no fit for {fn} with K={k}; resume it first")
            fits.append(fit)
    return fits


def target_checks(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets (where this run has them) and: the error falls as K grows, for every function."""
    by = {(r["function"], r["k"]): r for r in results}
    checks = kit.Checks()
    for fn, k, limit in TARGETS:
        if (fn, k) in by:
            e = by[(fn, k)]["max_abs_error"]
            checks.add(f"{fn} with K={k}: max abs error <= {limit:.0e}", e <= limit, f"{e:.2e} on the held-out points")
    for fn in dict.fromkeys(r["function"] for r in results):
        rows = sorted((r for r in results if r["function"] == fn), key=lambda r: r["k"])
        if len(rows) > 1:
            errs = [r["max_abs_error"] for r in rows]
            falls = all(b < a for a, b in zip(errs, errs[1:], strict=False))
            checks.add(f"{fn}: max abs error falls as K grows", falls, " > ".join(
                f"{e:.1e} (K={r['k']})" for e, r in zip(errs, rows, strict=True)))
    return checks.rows


def fit_curves(fit: dict[str, Any], xs: np.ndarray, x_test: np.ndarray) -> dict[str, Any]:
    """What the report draws of one stored fit: y_hat and the K Gaussians phi (K, n) on the grid `xs` (n,),
    through the network's own Gaussian layer in float64, and |error| at the held-out points (n_test,)."""
    centers = torch.tensor(fit["centers"], dtype=torch.float64)[:, None]  # (K, 1)
    widths = torch.tensor(fit["widths"], dtype=torch.float64)  # (K,)
    phi = gaussian_activations(torch.from_numpy(xs)[:, None], centers, widths).numpy()  # (n, K)
    y_hat = phi @ np.asarray(fit["weights"], dtype=float) + float(fit["bias"])
    error = np.abs(np.asarray(fit["pred_test"], dtype=float) - FUNCTIONS[fit["function"]](x_test))
    # rounded for size only: 4 decimals is below what a line can show, 4 significant digits on a log axis
    return {"function": fit["function"], "k": fit["k"], "fit": np.round(y_hat, 6).tolist(),
            "basis": np.round(phi.T, 4).tolist(), "abs_error": [float(f"{e:.4g}") for e in error]}


def curves(cfg: RBFApproxConfig, fits: list[dict[str, Any]], x_test: np.ndarray) -> dict[str, Any]:
    xs = np.linspace(*DOMAIN, CURVE_POINTS)
    return {"x": xs.round(6).tolist(), "x_test": x_test.tolist(),
            "targets": {fn: np.round(FUNCTIONS[fn](xs), 6).tolist() for fn in cfg.functions},
            "fits": [fit_curves(fit, xs, x_test) for fit in fits]}


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = kit.FinishedRun(store, run, RBFApproxConfig)
    fits = stored_fits(view)
    store.put_result(run.id, "curves", curves(view.cfg, fits, np.asarray(view.require("data")["x_test"])))
    results = [{key: fit[key] for key in ("function", "k", "max_abs_error", "rmse")} for fit in fits]
    # no wall time here, so two runs of one config give the same summary.json
    return {"results": results, "checks": target_checks(results)}


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    view = kit.FinishedRun(store, run, RBFApproxConfig)
    cfg = view.cfg
    return view.report_data(
        data=view.require("data"), fits=stored_fits(view), curves=view.require("curves"),
        targets=[{"function": fn, "k": k, "limit": limit} for fn, k, limit in TARGETS
                 if fn in cfg.functions and k in cfg.k_values],
        wall_seconds=view.result("wall_seconds"))


EXPERIMENT = kit.register(
    "rbf-approx",
    RBFApproxConfig, train_fits, analyze, report_data=report_data, render=render_rbf_approx_report,
    sweep_metrics=("results.0.max_abs_error", "results.-1.max_abs_error"),
    tiny=("functions=[x^2]", "k_values=[10, 20]", "n_test=200"))
