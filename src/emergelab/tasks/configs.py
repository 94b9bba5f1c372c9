"""The configs of the synthetic tasks, torch-free so that experiment configs load without torch
(`emergelab config`, `emergelab --help` stay fast). Each task module imports its config from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import at_least, in_interval, invalid


@dataclass
class InductionTaskConfig:
    vocab_size: int = 128  # random tokens; chance loss is ln(vocab_size) ~ 4.85 nats at 128
    seq_len: int = 64  # tokens per sequence, BOS included
    segment_min: int = 6  # shortest repeated segment
    segment_max: int = 16  # longest repeated segment
    n_repeats: int = 3  # copies of the segment (>= 2)
    prefix_min: int = 0  # fewest random tokens before the first copy

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 2, "vocab_size", "segment_min")
        if self.segment_max < self.segment_min:
            invalid("segment_max", f"must be >= segment_min ({self.segment_min})")
        if self.n_repeats < 2:
            invalid("n_repeats", "must be >= 2 (one copy repeats nothing)")
        at_least(self, 0, "prefix_min")
        need = 1 + self.prefix_min + self.n_repeats * self.segment_max
        if self.seq_len < need:
            invalid("seq_len", f"must be >= 1 + prefix_min + n_repeats * segment_max = {need}")

    @property
    def d_vocab(self) -> int:
        return self.vocab_size + 1


@dataclass
class BurstyTaskConfig:
    dim: int = 63  # D, the item / label vector dimension (Reddy 2023)
    n_classes: int = 2048  # K; many classes make memorising slow, so ICL wins (256 here: IWL wins)
    n_labels: int = 32  # L; chance accuracy is 1/L
    n_context: int = 8  # N item-label pairs before the query
    burstiness: int = 4  # B copies of each context class (query's class included); 0 = no copies
    zipf_alpha: float = 0.0  # class frequency ~ rank^-alpha; 0 = uniform
    within_class_noise: float = 0.1  # epsilon; items scatter around their class mean
    p_novel: float = 0.0  # fraction of training sequences from fresh classes with random labels
    p_bursty: float = 1.0  # fraction of training sequences that are bursty (others use B = 0)
    seed: int = 0  # class means, label vectors and the class -> label map

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "dim", "n_context")
        at_least(self, 2, "n_labels")
        if self.burstiness < 0 or (self.burstiness and self.n_context % self.burstiness):
            invalid("burstiness", f"must be 0 or divide n_context ({self.n_context})")
        if self.n_classes < max(2, self.n_context + 1):
            invalid("n_classes", f"must be >= n_context + 1 ({self.n_context + 1})")
        if self.burstiness and self.n_context // self.burstiness > self.n_labels:
            invalid("burstiness", f"n_context / burstiness classes need as many distinct labels (<= {self.n_labels})")
        at_least(self, 0, "zipf_alpha", "within_class_noise")
        in_interval(self, "[0, 1]", "p_novel", "p_bursty")
        at_least(self, 0, "seed")

    @property
    def seq_len(self) -> int:
        return 2 * self.n_context + 1


@dataclass
class RegressionTaskConfig:
    d: int = 5  # input dimension
    n_points: int = 0  # examples per prompt, the last one the query; 0 = 2d + 1 (reaches k = 2d)
    function: Literal["linear", "sparse", "relu"] = "linear"  # y = w.x, w.x with sparse w, or a random ReLU net
    sparsity: int = 2  # nonzero coordinates of w (function='sparse')
    hidden: int = 100  # hidden units of the random ReLU net (function='relu'; Garg et al. use 100)
    noise_std: float = 0.0  # Gaussian noise on y; ridge with alpha = noise_std^2 is then Bayes-optimal
    pool_size: int = 0  # M tasks to pretrain on (Raventós et al.); 0 = a fresh function every prompt
    pool_seed: int = 12345  # draws the pool; fixed so the pool is part of the task, not of the run's seed

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n(self) -> int:
        """Points per prompt (n_points resolved)."""
        return self.n_points or 2 * self.d + 1

    def validate(self) -> None:
        at_least(self, 1, "d")
        if self.n_points < 0:
            invalid("n_points", "must be >= 1 (or 0 for 2d + 1)")
        if self.function == "sparse" and not 1 <= self.sparsity <= self.d:
            invalid("sparsity", f"must be in [1, d={self.d}]")
        at_least(self, 1, "hidden")
        at_least(self, 0, "noise_std")
        if self.pool_size < 0:
            invalid("pool_size", "must be >= 0 (0 = infinite task diversity)")
        if self.pool_size and self.function == "relu":
            invalid("pool_size", "a finite task pool needs function 'linear' or 'sparse'")


@dataclass
class CurriculumConfig:
    """Garg et al.'s curriculum: start with few active dimensions and short prompts, grow both every
    `interval` steps until the task's d and n are reached. Off by default (d = 5 trains without it).

    Example:
        >>> CurriculumConfig(enabled=True, d_start=2, n_start=5, interval=100).at(250, d=5, n=11)
        (4, 9)
    """

    enabled: bool = False  # off: train on the full d and n from step 0
    d_start: int = 2  # active input coordinates at step 0 (the rest of x is 0)
    n_start: int = 5  # points per prompt at step 0
    d_step: int = 1  # added every interval
    n_step: int = 2  # points per prompt added every interval
    interval: int = 500  # steps between increments

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "d_start", "n_start", "d_step", "n_step", "interval")

    def at(self, step: int, d: int, n: int) -> tuple[int, int]:
        """(active dimensions, points per prompt) at `step`."""
        if not self.enabled:
            return d, n
        stage = step // self.interval
        return min(d, self.d_start + stage * self.d_step), min(n, self.n_start + stage * self.n_step)
