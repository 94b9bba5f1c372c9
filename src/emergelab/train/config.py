"""`TrainConfig`: the `train` section of an experiment config (torch-free, so configs load without torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..config import at_least, in_interval, invalid


@dataclass
class TrainConfig:
    steps: int = 3000  # optimizer updates
    batch_size: int = 64  # training examples (sequences) per optimizer update
    lr: float = 1e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.01  # decoupled; 1.0 delays the induction phase change a lot
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW's two moment decay rates, in [0, 1)
    warmup_steps: int = 100  # linear warmup from lr/warmup_steps
    schedule: Literal["constant", "cosine", "one_cycle"] = "constant"  # one_cycle: warmup_steps = its rise
    min_lr_ratio: float = 0.1  # cosine floor, as a fraction of lr
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    log_every: int = 50  # telemetry period, in steps
    checkpoint_every: int = 500  # must be a multiple of log_every (resume replays whole log windows)
    keep_checkpoints: int = 2  # older step checkpoints are deleted

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            invalid("lr", "must be a positive number")
        at_least(self, 0, "weight_decay")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            invalid("betas", "must be two numbers in [0, 1)")
        at_least(self, 0, "warmup_steps")
        in_interval(self, "[0, 1]", "min_lr_ratio")
        if self.grad_clip < 0:
            invalid("grad_clip", "must be >= 0 (0 disables clipping)")
        if self.checkpoint_every % self.log_every:
            invalid("checkpoint_every", f"must be a multiple of log_every ({self.log_every})")
