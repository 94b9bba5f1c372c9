"""The config of the `induction` experiment: every key `emergelab config induction` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/induction.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import at_least, in_interval, invalid
from ...tasks.configs import InductionTaskConfig
from ...train.config import TrainConfig
from ..base import RunSettings
from ..budget import Budget, one_after_another, transformer_budget
from .schema import CHECKS, HEAD, PHASE_CHANGE, under


@dataclass
class InductionModelConfig:
    depths: list[int] = field(default_factory=lambda: [2, 1])  # one model per depth; summary keys "2L", "1L"
    d_model: int = 48  # width of the residual stream (embedding size)
    n_heads: int = 4  # must divide d_model
    d_mlp: int = 0  # 0 = attention-only, the setting where induction heads are cleanest
    layernorm: bool = False  # pre-LN blocks and a final LayerNorm; off: the toy circuits read more easily
    tie_embeddings: bool = False  # unembedding = embedding transposed (fewer parameters)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.depths:
            invalid("depths", "must list at least one depth")
        if any(d < 1 for d in self.depths):
            invalid("depths", "every depth must be >= 1")
        if len(set(self.depths)) != len(self.depths):
            invalid("depths", "depths must be distinct")
        at_least(self, 1, "d_model", "n_heads")
        if self.d_model % self.n_heads:
            invalid("n_heads", f"must divide d_model ({self.d_model})")
        at_least(self, 0, "d_mlp")


@dataclass
class InductionAnalysisConfig:
    probe_size: int = 128  # fixed probe batch for telemetry
    eval_size: int = 512  # fresh batch for the final evaluation and ablations
    icl_early: int = 4  # ICL score = loss at target position icl_late - loss at icl_early
    icl_late: int = 56  # ... the later token position (< task.seq_len - 1)
    induction_threshold: float = 0.3  # prefix-matching score that names an induction head
    previous_token_threshold: float = 0.4  # previous-token score that names a previous-token head
    min_drop_fraction: float = 0.5  # phase change: repeated-token loss falls by >= this fraction
    max_window_fraction: float = 0.5  # ... inside a window of at most this fraction of training
    smooth_window: int = 3  # points in the moving average before detection
    ablation: Literal["mean", "zero"] = "mean"  # removed head writes: its mean output per position, or 0
    control_draws: int = 10  # most random control head sets ablated; the control effect is their mean

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "probe_size", "eval_size", "smooth_window", "control_draws")
        if not 0 <= self.icl_early < self.icl_late:
            invalid("icl_late", f"must be > icl_early ({self.icl_early}) >= 0")
        in_interval(self, "(0, 1]", "induction_threshold", "previous_token_threshold", "min_drop_fraction",
                    "max_window_fraction")


@dataclass
class InductionConfig(RunSettings):
    task: InductionTaskConfig = field(default_factory=InductionTaskConfig)
    model: InductionModelConfig = field(default_factory=InductionModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=64, lr=3e-3, weight_decay=0.01, warmup_steps=100, schedule="constant",
        grad_clip=1.0, log_every=50, checkpoint_every=250))
    analysis: InductionAnalysisConfig = field(default_factory=InductionAnalysisConfig)

    def validate(self) -> None:
        super().validate()
        if self.analysis.icl_late >= self.task.seq_len - 1:
            invalid("analysis.icl_late", f"must be < task.seq_len - 1 ({self.task.seq_len - 1})")

    def budget(self) -> Budget:
        """Memory and compute of the run, checked before it starts (experiments/budget.py): one model per depth.
        Its forward passes on a probe-sized batch: the telemetry (every log step and step 0), then the analysis
        (experiments/induction.py `analyze_model`): the clean pass, the induction heads ablated, up to
        `analysis.control_draws` control sets ablated, each head ablated alone, and for mean ablation the pass
        that measures the heads' mean outputs."""
        t, m, tr, a = self.task, self.model, self.train, self.analysis
        ablations = 2 + a.control_draws + (a.ablation == "mean")  # clean + induction heads + controls (+ means)
        keys = {"layers": "model.depths", "d_model": "model.d_model", "d_mlp": "model.d_mlp",
                "heads": "model.n_heads", "seq": "task.seq_len", "vocab": "task.vocab_size",
                "batch": "train.batch_size", "steps": "train.steps", "probe": "analysis.eval_size"}
        return one_after_another(transformer_budget(
            what=f"the {depth}-layer model", n_layers=depth, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
            seq_len=t.seq_len, d_vocab=t.d_vocab, tied=m.tie_embeddings, batch_size=tr.batch_size, steps=tr.steps,
            keys=keys, probe_size=max(a.eval_size, a.probe_size),
            probes=tr.steps / tr.log_every + 1 + ablations + depth * m.n_heads)
            for depth in m.depths)

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py): one section per depth ('2L', '1L'), then the
        checks and the total wall time."""
        losses = ("repeated_loss", "first_loss")
        pool = (*HEAD, "previous_token_score", "prefix_matching_score")
        draw = (*under("heads.*", HEAD), *losses)
        control = ["choice", "how", "n_heads", *under("pool.*", pool), "exhaustive", *under("draws.*", draw), *losses,
                   "repeated_loss_min", "repeated_loss_max", "repeated_loss_std"]
        ablation = ["kind", *under("heads.*", HEAD), "clean_repeated_loss", "clean_first_loss",
                    "ablated_repeated_loss", "ablated_first_loss", *under("control", control),
                    *under("per_head.*", (*HEAD, *losses))]
        model = ["n_layers", "n_heads", *under("phase_change", PHASE_CHANGE),
                 *under("final", ("loss", "repeated_loss", "first_loss", "icl_score")),
                 *under("induction_heads.*", (*HEAD, "score")), *under("previous_token_heads.*", (*HEAD, "score")),
                 *under("heads_rising_in_window.*", ("kind", *HEAD, "before", "after")),
                 *under("ablation", ablation), "wall_seconds"]
        return [p for depth in self.model.depths for p in under(f"{depth}L", model)] + [*CHECKS, "wall_seconds"]
