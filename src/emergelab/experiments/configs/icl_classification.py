"""The config of the `icl-classification` experiment: every key `emergelab config icl-classification` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/icl_classification.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import at_least, in_interval, invalid
from ...tasks.configs import BurstyTaskConfig
from ...train.config import TrainConfig
from ..base import RunSettings, TransformerShape
from ..budget import Budget, Term, transformer_budget
from .schema import CHECKS, HEAD, PHASE_CHANGE, under


@dataclass
class ICLAnalysisConfig:
    probe_size: int = 512  # sequences per probe batch (telemetry); accuracy resolution ~ 1/512
    eval_size: int = 2048  # fresh sequences per probe for the final numbers
    probe_burstiness: int = 2  # context layout of the ICL and flip probes: N/B classes B times each
    icl_target: float = 0.9  # bursty training must reach this ICL accuracy
    min_drop_fraction: float = 0.5  # phase change: the ICL gap (see icl_gap) falls by >= this fraction ...
    max_window_fraction: float = 0.5  # ... inside a window of at most this fraction of training
    smooth_window: int = 3  # points in the moving average before detection
    head_threshold: float = 0.5  # head score that counts as a formed previous-token / look-up head

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "probe_size", "eval_size", "probe_burstiness", "smooth_window")
        in_interval(self, "(0, 1]", "icl_target", "min_drop_fraction", "max_window_fraction", "head_threshold")


@dataclass
class ICLClassificationConfig(RunSettings):
    task: BurstyTaskConfig = field(default_factory=BurstyTaskConfig)  # task.seed fixes the classes
    # Reddy 2023's minimal network: two attention-only layers (previous-token pairing, then the look-up)
    model: TransformerShape = field(default_factory=lambda: TransformerShape(
        n_layers=2, d_model=64, n_heads=2, d_mlp=0, layernorm=False))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=128, lr=3e-3, weight_decay=0.0, warmup_steps=100, schedule="constant",
        grad_clip=1.0, log_every=50, checkpoint_every=500))
    analysis: ICLAnalysisConfig = field(default_factory=ICLAnalysisConfig)

    def validate(self) -> None:
        super().validate()
        pb = self.analysis.probe_burstiness
        if self.task.n_context % pb or self.task.n_context // pb > self.task.n_labels:
            invalid("analysis.probe_burstiness", f"must divide task.n_context ({self.task.n_context}) into at "
                    f"most task.n_labels ({self.task.n_labels}) classes")

    def budget(self) -> Budget:
        """Memory and compute of the run, checked before it starts (experiments/budget.py): the transformer and
        the task's class means."""
        t, m, tr, a = self.task, self.model, self.train, self.analysis
        need = transformer_budget(
            what="the transformer", n_layers=m.n_layers, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
            seq_len=t.seq_len, d_vocab=1, tied=True, d_in=t.dim, d_out=t.n_labels, batch_size=tr.batch_size,
            steps=tr.steps,
            keys={"layers": "model.n_layers", "d_model": "model.d_model", "d_mlp": "model.d_mlp",
                  "heads": "model.n_heads", "seq": "task.n_context", "batch": "train.batch_size",
                  "steps": "train.steps", "probe": "analysis.eval_size"},
            probe_size=max(a.eval_size, a.probe_size), probes=4 * (tr.steps / tr.log_every + 2))
        classes = ("task.n_classes", "task.dim")
        return need + Budget(memory=[Term("the class means", 4 * t.n_classes * t.dim + 32 * t.n_classes, classes)],
                             compute=[Term("drawing the class means", 4 * t.n_classes * t.dim, classes)])

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py); head scores are [layer][head] grids."""
        accuracies = ("icl_accuracy", "iwl_accuracy", "flip_follows_context", "flip_follows_weights")
        kinds = ("previous_token", "induction")
        return ["chance", "copy_baseline", *under("final", accuracies), *under("final_probe", accuracies),
                *under("phase_change", PHASE_CHANGE), *(f"head_scores_final.{kind}.*.*" for kind in kinds),
                *under("heads_rising_in_window.*", ("kind", *HEAD, "before", "after")), *CHECKS, "wall_seconds"]
