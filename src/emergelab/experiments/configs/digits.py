"""The config of the `digits` experiment: every key `emergelab config digits` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/digits.py`
runs it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...config import at_least, in_interval, invalid, positive
from ..base import RunSettings
from ..budget import Budget, Term
from .schema import CHECKS, under

BASELINES = ("logistic_regression", "svm_rbf", "rbf_network")  # compared on each split (key `baselines`)
TEST_METRICS = ("test_accuracy", "macro_recall", "macro_f1", "roc_auc_ovr")  # of each model, on each test split


@dataclass
class DigitsDataConfig:
    path: str | None = None  # folder of MNIST-style IDX files; None = scikit-learn's bundled 8x8 digits
    test_size: float = 0.25  # stratified hold-out fraction
    clip: float = 3.0  # standardized pixels clipped at +-clip: near-constant border pixels explode otherwise
    max_samples: int = 0  # 0 = all; else a stratified subsample (large IDX sets)

    def __post_init__(self) -> None:
        in_interval(self, "(0, 1)", "test_size")
        positive(self, "clip")
        at_least(self, 0, "max_samples")


@dataclass
class DigitsSOMConfig:
    rows: int = 10  # map units down; rows x cols units = the RBF centers and attention tokens
    cols: int = 10  # map units across
    epochs: int = 20  # batch-SOM epochs
    sigma_end: float = 0.5  # final neighbourhood radius: lower = lower QE, higher TE

    def __post_init__(self) -> None:
        at_least(self, 1, "rows", "cols", "epochs")
        if self.rows * self.cols < 2:
            invalid("cols", "the map needs at least 2 units")
        positive(self, "sigma_end")


@dataclass
class DigitsModelConfig:
    unit_dim: int = 16  # learned embedding of each map unit
    n_queries: int = 4  # attention queries (each pools the units its own way)
    fine_tune_centers: bool = True  # train the SOM codebook as RBF centers (+1.5 to 3 points)

    def __post_init__(self) -> None:
        at_least(self, 1, "unit_dim", "n_queries")


@dataclass
class DigitsTrainConfig:
    epochs: int = 100  # passes over the training split
    batch_size: int = 64  # training images per update
    lr: float = 8e-3  # one-cycle peak (AdamW); 3-split mean acc at seed 0/1: 3e-3 .976/.980, 8e-3 .982/.985
    warmup: float = 0.3  # fraction of the updates rising to lr (torch OneCycleLR's pct_start)
    start_lr_ratio: float = 0.04  # one-cycle start = lr x this (OneCycleLR's 1/div_factor); the end is 1e-4 of it
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    input_noise: float = 0.5  # Gaussian noise on standardized inputs during training (a strong regularizer here)
    grad_clip: float = 0.0  # max global grad norm; 0 = none

    def __post_init__(self) -> None:
        at_least(self, 1, "epochs", "batch_size")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            invalid("lr", "must be a positive number")
        in_interval(self, "[0, 1)", "warmup")
        in_interval(self, "(0, 1]", "start_lr_ratio")
        at_least(self, 0, "weight_decay", "input_noise", "grad_clip")


@dataclass
class DigitsConfig(RunSettings):
    threads: int = 1  # torch threads (0 = torch's default); batches of 64 x 100 units run fastest on one
    split_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # results are averaged over these splits
    data: DigitsDataConfig = field(default_factory=DigitsDataConfig)
    som: DigitsSOMConfig = field(default_factory=DigitsSOMConfig)
    model: DigitsModelConfig = field(default_factory=DigitsModelConfig)
    train: DigitsTrainConfig = field(default_factory=DigitsTrainConfig)
    baselines: bool = True  # logistic regression, RBF-SVM and the RBF network alone on the same split
    explain_samples: int = 8  # correctly classified test images explained in the report (plus every mistake)
    tsne_perplexity: float = 30.0  # t-SNE's effective neighbours per point in the report's maps (capped at (n-1)/3)

    def validate(self) -> None:
        super().validate()
        seeds = self.split_seeds
        if not seeds or min(seeds) < 0:
            invalid("split_seeds", "must list at least one seed, all >= 0")
        if len(set(seeds)) != len(seeds):
            invalid("split_seeds", "must be distinct")
        at_least(self, 0, "explain_samples")
        positive(self, "tsne_perplexity")

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py): means over the splits, their spreads, the
        baselines' means and spreads, and every split's own numbers."""
        som = ("quantization_error", "topographic_error")
        base = [f"{b}.{m}" for b in BASELINES for m in TEST_METRICS] if self.baselines else []
        split = ["seed", *under("model", TEST_METRICS), *under("som", som), *under("baselines", base)]
        return [*TEST_METRICS, *under("std", TEST_METRICS), *under("som", som), *under("baselines", base),
                *under("baselines_std", base), *under("per_split.*", split), "wall_seconds", *CHECKS,
                "wall_seconds_analysis"]


def budget(cfg: DigitsConfig, *, n_samples: int, n_features: int) -> Budget:
    """Memory and compute of a run on `n_samples` images of `n_features` pixels (experiments/budget.py): per split,
    the SOM (its units' neighbourhood matrix), then the SOM -> RBF -> attention network on every map unit."""
    U, d, u, q = cfg.som.rows * cfg.som.cols, n_features, cfg.model.unit_dim + 1, cfg.model.n_queries
    n_test = math.ceil(n_samples * cfg.data.test_size)
    n_train = n_samples - n_test
    splits = len(cfg.split_seeds)
    t = cfg.train
    units = ("som.rows", "som.cols")
    per_sample = 2 * U * d + 4 * U * u * q  # RBF distances to every unit, then attention over the units
    return Budget(
        memory=[
            Term("the SOM's neighbourhood matrices", 8 * U * U, units),
            Term("the network's parameters, gradients and AdamW state", 16 * (U * d + U * u + u * u * q), units),
            Term("the network's activations on the test images", 16 * n_test * U * u, (*units, "model.unit_dim"),
                 transient=True),
            Term("the network's activations of one batch", 24 * t.batch_size * U * u,
                 ("train.batch_size", *units, "model.unit_dim"), transient=True)],
        compute=[
            Term("fitting the SOM", splits * cfg.som.epochs * (2 * n_train * U * d + 2 * U * U * (d + 1)),
                 ("som.epochs", *units, "split_seeds")),
            Term("training the network", splits * t.epochs * (3 * n_train + n_test) * per_sample,
                 ("train.epochs", *units, "model.unit_dim", "model.n_queries", "split_seeds"),
                 steps=splits * t.epochs * math.ceil(n_train / t.batch_size))])
