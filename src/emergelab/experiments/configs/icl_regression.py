"""The config of the `icl-regression` experiment: every key `emergelab config icl-regression` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/icl_regression.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import at_least, positive
from ...tasks.configs import CurriculumConfig, RegressionTaskConfig
from ...train.config import TrainConfig
from ..base import RunSettings, TransformerShape
from ..budget import Budget, Term, transformer_budget
from .schema import CHECKS, under


@dataclass
class ICLAnalysisConfig:
    eval_size: int = 1280  # fresh prompts for the final error-by-k curves
    probe_size: int = 256  # fixed prompts for the telemetry over training
    n_boot: int = 1000  # bootstrap resamples for the 90% intervals
    lasso_alpha: float = 0.01  # L1 strength of the Lasso baseline (function='sparse')
    nn_steps: int = 100  # Adam steps of the 2-layer ReLU network baseline per prompt (function='relu'; Garg et al.)
    nn_lr: float = 5e-3  # Adam learning rate of that ReLU network baseline

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "eval_size", "probe_size", "n_boot", "nn_steps")
        positive(self, "lasso_alpha", "nn_lr")


@dataclass
class ICLRegressionConfig(RunSettings):
    task: RegressionTaskConfig = field(default_factory=RegressionTaskConfig)
    # pre-LN blocks train stably on real-valued inputs; at d = 5, 3 x 64 (d_mlp 128) stays ~0.07 above least
    # squares at k = d - 1, 4 x 64 (d_mlp 256) within 0.03
    model: TransformerShape = field(default_factory=lambda: TransformerShape(
        n_layers=4, d_model=64, n_heads=4, d_mlp=256, layernorm=True))
    # steps: 8000 left k = 2d at ~0.05 (target 0.03), 12000 reaches ~0.01; no weight decay: a fresh function
    # every step leaves nothing to overfit; the cosine decay to 0.1 lr polishes the error at large k
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=12000, batch_size=64, lr=1.5e-3, weight_decay=0.0, warmup_steps=200, schedule="cosine",
        log_every=250, checkpoint_every=1000))
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    analysis: ICLAnalysisConfig = field(default_factory=ICLAnalysisConfig)

    def budget(self) -> Budget:
        """Memory and compute of the run, checked before it starts (experiments/budget.py): the transformer, the
        task pool, the baselines and the bootstrap intervals on the evaluation prompts."""
        t, m, tr, a = self.task, self.model, self.train, self.analysis
        n, E, M = t.n, a.eval_size, t.pool_size
        chunk = max(a.probe_size, min(E, 256))  # evaluation runs in chunks of 256 prompts
        evals = 2 * E if M else E  # a finite pool is evaluated on fresh tasks too
        need = transformer_budget(
            what="the transformer", n_layers=m.n_layers, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
            seq_len=2 * n - 1, d_vocab=1, tied=True, d_in=t.d, d_out=1, batch_size=tr.batch_size, steps=tr.steps,
            keys={"layers": "model.n_layers", "d_model": "model.d_model", "d_mlp": "model.d_mlp",
                  "heads": "model.n_heads", "seq": "task.n_points" if t.n_points else "task.d",
                  "batch": "train.batch_size", "steps": "train.steps", "probe": "analysis.probe_size"},
            probe_size=chunk, probes=((tr.steps / tr.log_every + 1) * a.probe_size + evals) / chunk, patterns=False)
        extra = Budget(
            memory=[Term("the bootstrap resamples", 16 * a.n_boot * E, ("analysis.n_boot", "analysis.eval_size"),
                         transient=True)],
            compute=[Term("the bootstrap resamples", 14 * a.n_boot * E * n, ("analysis.n_boot", "analysis.eval_size"))])
        if M:
            extra.memory += [Term("the task pool", 4 * M * t.d, ("task.pool_size", "task.d")),
                             Term("the dMMSE baseline", 24 * E * n * M, ("task.pool_size", "analysis.eval_size"),
                                  transient=True)]
            extra.compute.append(Term("the dMMSE baseline", 2 * evals * n * n * M * t.d,
                                      ("task.pool_size", "analysis.eval_size")))
        if t.function == "relu":  # each prompt's function is a random ReLU net of `hidden` units
            extra.memory += [Term("the random ReLU functions of one batch", 4 * max(tr.batch_size, E) * t.d * t.hidden,
                                  ("task.hidden", "train.batch_size", "analysis.eval_size"), transient=True),
                             Term("the 2-layer network baseline", 16 * E * t.d * t.hidden,
                                  ("task.hidden", "analysis.eval_size"), transient=True)]
            extra.compute += [Term("the random ReLU functions", 2 * tr.steps * tr.batch_size * n * t.d * t.hidden,
                                   ("train.steps", "task.hidden", "train.batch_size")),
                              Term("the 2-layer network baseline", 3 * a.nn_steps * evals * n * n * t.d * t.hidden,
                                   ("analysis.nn_steps", "task.hidden", "analysis.eval_size"), steps=a.nn_steps * n)]
        return need + extra

    def baseline_names(self) -> list[str]:
        """The learners the transformer is compared with, by summary name (experiments/icl_regression.py
        `baselines` builds them): always least squares, ridge, 3-NN and averaging; Lasso for sparse functions, a
        2-layer ReLU network for ReLU ones, and the discrete MMSE estimator when tasks come from a finite pool."""
        t = self.task
        return ["least_squares", "ridge", "knn3", "averaging", *(["lasso"] if t.function == "sparse" else []),
                *(["two_layer_nn"] if t.function == "relu" else []), *(["dmmse"] if t.pool_size else [])]

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py); lists run over `k` (0 .. n_points - 1)."""
        learners = self.baseline_names()
        models = ["transformer", *learners]
        errors = [f"{m}.*" for m in models]
        tracks = ["closest", *under("prediction_distance", learners)]
        diversity = under("task_diversity", ("pool_size", "distance_to_dmmse", "distance_to_ridge", "behaves_like"))
        return ["d", "function", "noise_std", "pool_size", "k_values.*", *under("error_by_k", errors),
                *under("interval_90", [f"{m}.{end}.*" for m in models for end in ("low", "high")]),
                *under("tracks", tracks), *under("fresh.error_by_k", errors), *under("fresh.tracks", tracks),
                *(diversity if self.task.function != "relu" else []), "wall_seconds", *CHECKS]
