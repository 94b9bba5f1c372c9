"""The config of the `icl-regression` experiment: every key `emergelab config icl-regression` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/icl_regression.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import at_least, positive
from ...tasks.configs import CurriculumConfig, RegressionTaskConfig
from ...train.config import TrainConfig
from ..base import RunSettings, TransformerShape


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
