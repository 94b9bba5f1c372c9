"""Repeated random segments: the task on which induction heads form.

Each sequence: BOS, a random-length run of random tokens, a random segment of random tokens
repeated `n_repeats` times, then random tokens up to `seq_len`. The segment length and the
start are drawn per sequence, so repeats sit at varying offsets and no fixed-position
shortcut can solve the task: only looking back for the earlier copy can.

A target (next token) counts as *repeated* when it can be predicted by induction: it lies in
a later copy and its predecessor does too (so the first token of the second copy is not
repeated: nothing before it says what comes next).

Token ids: 0 is BOS, 1..vocab_size are the random tokens (d_vocab = vocab_size + 1).

Example:
    >>> task = InductionTask(InductionTaskConfig(vocab_size=128, seq_len=64))
    >>> batch = task.sample(32, torch.Generator().manual_seed(0))
    >>> batch.tokens.shape, batch.repeated.shape     # (32, 64), (32, 63)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..registry import tasks
from .configs import InductionTaskConfig

BOS = 0


@dataclass
class InductionBatch:
    tokens: torch.Tensor  # (B, T) int64
    repeated: torch.Tensor  # (B, T-1) bool: target tokens[:, 1:] predictable by induction
    start: torch.Tensor  # (B,) position of the first copy
    segment_len: torch.Tensor  # (B,)
    n_repeats: int

    def relative_positions(self) -> torch.Tensor:
        """(B, T): position minus the first copy's start."""
        T = self.tokens.shape[1]
        return torch.arange(T, device=self.start.device)[None, :] - self.start[:, None]

    def in_later_copy(self) -> torch.Tensor:
        """(B, T) bool: the position lies in copy 2..n of the segment."""
        rel, L = self.relative_positions(), self.segment_len[:, None]
        return (rel >= L) & (rel < self.n_repeats * L)

    def repeat_of(self, index: int) -> dict[str, int]:
        """Where sequence `index` repeats its segment: {"start", "segment_len", "n_repeats"}."""
        return {"start": int(self.start[index]), "segment_len": int(self.segment_len[index]),
                "n_repeats": self.n_repeats}


@tasks.register("induction", "random segments repeated at random offsets (induction heads)")
class InductionTask:
    def __init__(self, cfg: InductionTaskConfig):
        self.cfg = cfg

    def sample(self, batch_size: int, generator: torch.Generator) -> InductionBatch:
        c = self.cfg
        B, T, n = batch_size, c.seq_len, c.n_repeats
        tokens = torch.randint(1, c.vocab_size + 1, (B, T), generator=generator)
        tokens[:, 0] = BOS
        L = torch.randint(c.segment_min, c.segment_max + 1, (B,), generator=generator)
        # start in [1 + prefix_min, T - n*L]: all copies fit
        room = T - n * L - (1 + c.prefix_min) + 1  # (B,) number of valid starts, >= 1
        start = 1 + c.prefix_min + (torch.rand(B, generator=generator) * room).long().clamp(max=room - 1)
        rel = torch.arange(T)[None, :] - start[:, None]  # (B, T)
        later = (rel >= L[:, None]) & (rel < n * L[:, None])
        src = (start[:, None] + rel.remainder(L[:, None])).clamp(0, T - 1)
        tokens = torch.where(later, tokens.gather(1, src), tokens)
        target_rel = rel[:, 1:]
        repeated = (target_rel >= L[:, None] + 1) & (target_rel < n * L[:, None])
        return InductionBatch(tokens, repeated, start, L, n)

    def token_labels(self, tokens: torch.Tensor) -> list[str]:
        return ["BOS" if int(t) == BOS else f"t{int(t)}" for t in tokens]
