"""`icl-regression`: a transformer learns linear regression in context (Garg et al. 2022; Raventós et al. 2023).

Prompts x_1, y_1, ..., x_N with a fresh function per prompt (tasks/regression.py) go through a linear
read-in (d -> d_model), our Transformer's `forward_embeds` and a linear read-out (d_model -> 1) at every x
position; the loss is the MSE over all N positions. Evaluated on fresh prompts: the normalized squared
error (y_hat - y)^2 / d by number of in-context examples k, for the transformer and the baselines of
icl/baselines.py (least squares, ridge, 3-NN, averaging; Lasso for sparse tasks; dMMSE for a finite pool).

Store layout:
    metrics  train/loss, train/lr, probe/err_k{k} (fixed probe batch, every log step)
    results  "eval" (error_by_k curves with 90% intervals, per learner), "eval_fresh" (the same on tasks
             outside a finite pool), "wall_seconds", "summary"

Example:
    >>> result = run_experiment("icl-regression", overrides=["task.d=8"])
    >>> result.summary["error_by_k"]["transformer"][16]    # error at k = 2d
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from ..config import from_dict, invalid
from ..errors import StoreError
from ..hooks import HookedModule
from ..icl.baselines import (
    DMMSE,
    Averaging,
    Lasso,
    LeastSquares,
    NearestNeighbors,
    Ridge,
    TwoLayerNN,
    errors_from_predictions,
    predict_by_k,
)
from ..models.transformer import Transformer, TransformerConfig
from ..registry import experiments
from ..runs.context import RunContext
from ..runs.store import Run, RunStore
from ..tasks.regression import RegressionBatch, RegressionTask, RegressionTaskConfig, to_sequence
from ..train.checkpoint import list_checkpoints, load_model
from ..train.loop import Callback, TrainConfig, TrainState, train
from .base import Experiment, TransformerShape, check_seed_and_threads

PROBE_SEED_OFFSET = 1_000_003  # probe / eval prompts never coincide with a training batch
EVAL_SEED_OFFSET = 2_000_003
MAX_ABOVE_LS = 0.05  # targets (issue 4): within 0.05 of least squares for k < d,
MAX_ERR_AT_2D = 0.03  # <= 0.03 at k = 2d,
MAX_FRACTION_OF_NAIVE = 0.5  # at most half of 3-NN's and averaging's error for every k >= 2


@dataclass
class CurriculumConfig:
    """Garg et al.'s curriculum: start with few active dimensions and short prompts, grow both every
    `interval` steps until the task's d and n are reached. Off by default (d = 5 trains without it)."""

    enabled: bool = False
    d_start: int = 2  # active input coordinates at step 0 (the rest of x is 0)
    n_start: int = 5  # points per prompt at step 0
    d_step: int = 1  # added every interval
    n_step: int = 2
    interval: int = 500  # steps between increments

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("d_start", "n_start", "d_step", "n_step", "interval"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")

    def at(self, step: int, d: int, n: int) -> tuple[int, int]:
        """(active dimensions, points per prompt) at `step`."""
        if not self.enabled:
            return d, n
        stage = step // self.interval
        return min(d, self.d_start + stage * self.d_step), min(n, self.n_start + stage * self.n_step)


@dataclass
class ICLAnalysisConfig:
    eval_size: int = 1280  # fresh prompts for the final error-by-k curves
    probe_size: int = 256  # fixed prompts for the telemetry over training
    n_boot: int = 1000  # bootstrap resamples for the 90% intervals
    lasso_alpha: float = 0.01  # L1 strength of the Lasso baseline (function='sparse')
    nn_steps: int = 100  # Adam steps of the 2-layer ReLU network baseline per prompt (function='relu'; Garg et al.)
    nn_lr: float = 5e-3

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("eval_size", "probe_size", "n_boot", "nn_steps"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")
        for key in ("lasso_alpha", "nn_lr"):
            if not getattr(self, key) > 0:
                invalid(key, "must be > 0")


@dataclass
class ICLTrainConfig(TrainConfig):
    """TrainConfig with this experiment's defaults as field defaults, so `train.steps=...` keeps the others."""

    steps: int = 12000  # 8000 left k = 2d at ~0.05 (target 0.03); 12000 reaches ~0.01
    batch_size: int = 64
    lr: float = 1.5e-3
    weight_decay: float = 0.0  # a fresh function every step: nothing to overfit
    warmup_steps: int = 200
    schedule: Literal["constant", "cosine"] = "cosine"  # decaying to 0.1 lr polishes the error at large k
    log_every: int = 250
    checkpoint_every: int = 1000


@dataclass
class ICLRegressionConfig:
    seed: int = 0  # model init, training prompts and probes derive from it
    threads: int = 0  # torch threads; 0 = torch's default
    task: RegressionTaskConfig = field(default_factory=RegressionTaskConfig)
    # pre-LN blocks train stably on real-valued inputs; at d = 5, 3 x 64 (d_mlp 128) stays ~0.07 above least
    # squares at k = d - 1, 4 x 64 (d_mlp 256) within 0.03
    model: TransformerShape = field(default_factory=lambda: TransformerShape(
        n_layers=4, d_model=64, n_heads=4, d_mlp=256, layernorm=True))
    train: ICLTrainConfig = field(default_factory=ICLTrainConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    analysis: ICLAnalysisConfig = field(default_factory=ICLAnalysisConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_seed_and_threads(self)

    def transformer(self) -> TransformerConfig:
        m = self.model
        # d_vocab=1 + tied embeddings: the token embedding is unused (inputs come through the read-in)
        return TransformerConfig(n_layers=m.n_layers, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
                                 n_ctx=2 * self.task.n - 1, d_vocab=1, layernorm=m.layernorm,
                                 tie_embeddings=True)


class ICLRegressor(HookedModule):
    """seq (B, 2N - 1, d) -> predictions (B, N) read out at the x positions.

    Hook names are the transformer's, prefixed: `transformer.blocks.0.attn.hook_pattern`.
    """

    def __init__(self, d: int, cfg: TransformerConfig, seed: int | None = 0):
        super().__init__()
        self.read_in = nn.Linear(d, cfg.d_model)
        self.transformer = Transformer(cfg, seed=seed)
        self.read_out = nn.Linear(cfg.d_model, 1)
        if seed is not None:
            g = torch.Generator().manual_seed(seed + 1)
            for lin in (self.read_in, self.read_out):
                nn.init.normal_(lin.weight, 0.0, 1 / lin.in_features**0.5, generator=g)
                nn.init.zeros_(lin.bias)
        self.setup_hooks()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        resid = self.transformer.forward_embeds(self.read_in(seq))  # (B, 2N - 1, d_model)
        return self.read_out(resid[:, 0::2])[..., 0]  # (B, N)

    def predict(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """xs (B, N, d), ys (B, N) -> (B, N): prediction k uses the first k examples only (causal)."""
        return self(to_sequence(xs, ys))

    def loss(self, batch: RegressionBatch) -> torch.Tensor:
        return ((self.predict(batch.xs, batch.ys) - batch.ys) ** 2).mean()


def make_model(cfg: ICLRegressionConfig, seed: int | None) -> ICLRegressor:
    return ICLRegressor(cfg.task.d, cfg.transformer(), seed=seed)


def sample(task: RegressionTask, n: int, seed: int) -> RegressionBatch:
    return task.sample(n, torch.Generator().manual_seed(seed))


@torch.no_grad()
def batched_predict(model: ICLRegressor, xs: torch.Tensor, ys: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model.predict(xs[i: i + chunk], ys[i: i + chunk]) for i in range(0, len(xs), chunk)])


class Telemetry(Callback):
    """Error by k on a fixed probe batch, every log step."""

    def __init__(self, ctx: RunContext, probe: RegressionBatch, d: int):
        self.ctx, self.probe, self.d = ctx, probe, d

    def on_train_start(self, state: TrainState) -> None:
        self.ctx.store.delete_metrics_after(self.ctx.id, state.step)

    def on_log(self, state: TrainState) -> None:
        preds = batched_predict(state.model, self.probe.xs, self.probe.ys)
        err = ((preds - self.probe.ys) ** 2).mean(0) / self.d  # (N,)
        values = {f"probe/err_k{k}": v for k, v in enumerate(err.tolist())}
        if state.step > 0:
            values["train/loss"] = state.window_loss
            values["train/lr"] = state.lr
        self.ctx.log(state.step, values)


# --- training ---------------------------------------------------------------------------------------------
def train_model(cfg: ICLRegressionConfig, ctx: RunContext, resume: bool = False) -> None:
    task = RegressionTask(cfg.task)
    probe = sample(task, cfg.analysis.probe_size, cfg.seed + PROBE_SEED_OFFSET)
    model = make_model(cfg, cfg.seed)

    def batch_fn(step: int, g: torch.Generator) -> RegressionBatch:
        d_active, n = cfg.curriculum.at(step, cfg.task.d, cfg.task.n)
        return task.sample(cfg.train.batch_size, g, d_active=d_active, n=n)

    t0 = time.perf_counter()
    before = ctx.store.get_result(ctx.id, "wall_seconds", 0.0)
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} d={cfg.task.d}", total=cfg.train.steps, loss="-")

        def show(state: TrainState) -> None:
            ctx.progress.update(bar, completed=state.step, loss=f"{state.loss:.3f}")

        try:
            train(model, lambda m, b: m.loss(b), batch_fn, cfg.train,
                  seed=cfg.seed, checkpoint_dir=ctx.dir / "checkpoints", resume=resume,
                  callbacks=[Telemetry(ctx, probe, cfg.task.d)], progress=show, label="icl-regression")
        finally:
            ctx.store.put_result(ctx.id, "wall_seconds", before + time.perf_counter() - t0)


# --- analysis (store + checkpoints only) ------------------------------------------------------------------
def baselines(cfg: ICLRegressionConfig, task: RegressionTask) -> dict[str, Any]:
    """The learners to compare against, by summary name."""
    learners: dict[str, Any] = {"least_squares": LeastSquares(), "ridge": Ridge(cfg.task.noise_std**2),
                                "knn3": NearestNeighbors(3), "averaging": Averaging()}
    if cfg.task.function == "sparse":
        learners["lasso"] = Lasso(cfg.analysis.lasso_alpha)
    if cfg.task.function == "relu":
        learners["two_layer_nn"] = TwoLayerNN(cfg.task.hidden, cfg.analysis.nn_steps, cfg.analysis.nn_lr,
                                              seed=cfg.seed)
    if task.pool is not None:
        learners["dmmse"] = DMMSE(task.pool, cfg.task.noise_std)
    return learners


def final_model(run: Run, cfg: ICLRegressionConfig) -> ICLRegressor:
    found = list_checkpoints(run.dir / "checkpoints")
    if not found or found[-1][0] != cfg.train.steps:
        raise StoreError(f"Run {run.id} has no final checkpoint; resume it first")
    return load_model(found[-1][1], make_model(cfg, seed=None))


def target_checks(d: int, curves: dict[str, list[float]]) -> list[dict[str, Any]]:
    t, ls = curves["transformer"], curves["least_squares"]
    checks = []
    gap = max(t[k] - ls[k] for k in range(min(d, len(t))))
    checks.append({"name": f"within {MAX_ABOVE_LS} of least squares for every k < d", "passed": gap <= MAX_ABOVE_LS,
                   "detail": f"largest excess {gap:.4f}"})
    if len(t) > 2 * d:
        checks.append({"name": f"error <= {MAX_ERR_AT_2D} at k = 2d = {2 * d}", "passed": t[2 * d] <= MAX_ERR_AT_2D,
                       "detail": f"{t[2 * d]:.4f}"})
    ratios = [t[k] / min(curves["knn3"][k], curves["averaging"][k]) for k in range(2, len(t))]
    if ratios:
        worst = max(ratios)
        checks.append({"name": "at most half of 3-NN's and averaging's error for every k >= 2",
                       "passed": worst <= MAX_FRACTION_OF_NAIVE,
                       "detail": f"largest ratio {worst:.3f} (k = {2 + ratios.index(worst)})"})
    return checks


def tracks(preds: dict[str, torch.Tensor], d: int) -> dict[str, Any]:
    """The learner whose predictions are nearest the transformer's: mean (ŷ_transformer − ŷ_learner)² / d over
    prompts and k (Raventós et al.'s ΔPMSE). preds: {learner: (B, N)}, "transformer" included."""
    t = preds["transformer"].double()
    dist = {name: float(((t - p.double()) ** 2).mean() / d) for name, p in preds.items() if name != "transformer"}
    return {"closest": min(dist, key=dist.get), "prediction_distance": {k: round(v, 6) for k, v in dist.items()}}


def evaluate(model: ICLRegressor, learners: dict[str, Any], batch: RegressionBatch, d: int,
             n_boot: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Error by k (with intervals) and the predictions (B, N) of the transformer and every learner."""
    preds = {"transformer": batched_predict(model, batch.xs, batch.ys)}
    preds |= {name: predict_by_k(learner, batch.xs, batch.ys) for name, learner in learners.items()}
    return {name: errors_from_predictions(p, batch.ys, d, n_boot=n_boot) for name, p in preds.items()}, preds


def _curves(evals: dict[str, Any]) -> dict[str, list[float]]:
    return {name: [round(v, 6) for v in e["mean"]] for name, e in evals.items()}


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    cfg = from_dict(ICLRegressionConfig, run.config)
    task = RegressionTask(cfg.task)
    d, nb = cfg.task.d, cfg.analysis.n_boot
    model = final_model(run, cfg)
    learners = baselines(cfg, task)
    evals, preds = evaluate(model, learners, sample(task, cfg.analysis.eval_size, cfg.seed + EVAL_SEED_OFFSET),
                            d, nb)
    store.put_result(run.id, "eval", evals)
    curves = _curves(evals)
    out = {
        "d": d,
        "function": cfg.task.function,
        "noise_std": cfg.task.noise_std,
        "pool_size": cfg.task.pool_size,
        "k_values": evals["transformer"]["k"],
        "error_by_k": curves,
        "interval_90": {name: {"low": [round(v, 6) for v in e["low"]], "high": [round(v, 6) for v in e["high"]]}
                        for name, e in evals.items()},
        "tracks": tracks(preds, d),
    }
    # Raventós et al.: on tasks from the full distribution (outside the pool), is the model dMMSE or ridge?
    # Without a pool (M = infinity) those are the training tasks, so the main evaluation answers it.
    fresh_preds = preds
    if task.pool is not None:
        fresh_task = RegressionTask(replace(cfg.task, pool_size=0))
        fresh_evals, fresh_preds = evaluate(
            model, learners, sample(fresh_task, cfg.analysis.eval_size, cfg.seed + EVAL_SEED_OFFSET + 1), d, nb)
        store.put_result(run.id, "eval_fresh", fresh_evals)
        out["fresh"] = {"error_by_k": _curves(fresh_evals), "tracks": tracks(fresh_preds, d)}
    else:
        out["fresh"] = {"error_by_k": curves, "tracks": out["tracks"]}
    if cfg.task.function != "relu":
        dist = out["fresh"]["tracks"]["prediction_distance"]
        to_dmmse = dist.get("dmmse")
        out["task_diversity"] = {
            "pool_size": cfg.task.pool_size,
            "distance_to_dmmse": to_dmmse,  # None without a pool
            "distance_to_ridge": dist["ridge"],
            "behaves_like": "dmmse" if to_dmmse is not None and to_dmmse < dist["ridge"] else "ridge",
        }
    out["wall_seconds"] = round(store.get_result(run.id, "wall_seconds", 0.0), 2)
    targets_apply = cfg.task.function == "linear" and cfg.task.pool_size == 0 and cfg.task.noise_std == 0
    out["checks"] = target_checks(d, curves) if targets_apply else []
    return out


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    summary = store.get_result(run.id, "summary")
    evals = store.get_result(run.id, "eval")
    if summary is None or evals is None:
        raise StoreError(f"Run {run.id} has no analysis yet; resume it first")
    metrics = store.metrics(run.id)
    return {
        "run": run.info(),
        "config": run.config,
        "summary": summary,
        "eval": evals,
        "eval_fresh": store.get_result(run.id, "eval_fresh"),
        "metrics": {name: {"steps": s, "values": v} for name, (s, v) in metrics.items()},
        "wall_seconds": store.get_result(run.id, "wall_seconds"),
    }


def report(store: RunStore, run: Run) -> str:
    from ..report.icl_regression import render_icl_regression_report

    return render_icl_regression_report(report_data(store, run))


EXPERIMENT = experiments.register(
    "icl-regression",
    "transformer learns linear regression in context: error by k vs least squares, ridge, 3-NN (Garg 2022)",
)(Experiment("icl-regression", ICLRegressionConfig, train_model, analyze, report,
              sweep_metrics=("tracks.closest", "task_diversity.distance_to_dmmse", "task_diversity.distance_to_ridge",
                             "fresh.error_by_k.transformer.-1", "error_by_k.transformer.-1")))
