"""In-context regression prompts (Garg et al. 2022), with finite task pools (Raventós et al. 2023).

A prompt is N points x_i ~ N(0, I_d) with y_i = f(x_i) (+ noise) for ONE function f drawn per prompt.
Function classes:
    linear   y = w·x, w ~ N(0, I_d)
    sparse   y = w·x, w has `sparsity` nonzero N(0, 1) coordinates at random places
    relu     y = sum_j a_j relu(v_j·x), v_j ~ N(0, I_d), a_j ~ N(0, 2/hidden) (a small random 2-layer net)
With `pool_size` M > 0 (linear or sparse only) every prompt's w is one of M fixed tasks drawn once from
`pool_seed`: low M invites memorizing the pool (dMMSE), high M forces learning ridge regression.

The transformer reads the interleaved sequence x_1, y_1, ..., x_N (2N - 1 vectors of size d, the last y is
never an input), y embedded as [y, 0, ..., 0]; its read-out at x position k predicts y_k from k examples.

Example:
    >>> task = RegressionTask(RegressionTaskConfig(d=5))
    >>> batch = task.sample(64, torch.Generator().manual_seed(0))
    >>> batch.xs.shape, batch.ys.shape, to_sequence(batch.xs, batch.ys).shape
    (torch.Size([64, 11, 5]), torch.Size([64, 11]), torch.Size([64, 21, 5]))
    >>> d_active, n = CurriculumConfig(enabled=True).at(step=0, d=5, n=11)      # (2, 5): Garg et al.'s start
    >>> task.sample(64, torch.Generator().manual_seed(1), d_active=d_active, n=n).xs.shape   # (64, 5, 5)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..registry import tasks
from .configs import RegressionTaskConfig


@dataclass
class RegressionBatch:
    xs: torch.Tensor  # (B, N, d) float32
    ys: torch.Tensor  # (B, N) float32, noise included
    w: torch.Tensor | None  # (B, d) the linear task of each prompt; None for relu


@tasks.register("regression", "in-context regression prompts: linear, sparse or random-ReLU functions")
class RegressionTask:
    def __init__(self, cfg: RegressionTaskConfig):
        self.cfg = cfg
        self.pool = self._draw_w(cfg.pool_size, torch.Generator().manual_seed(cfg.pool_seed)) if cfg.pool_size \
            else None  # (M, d)

    def _draw_w(self, n: int, g: torch.Generator) -> torch.Tensor:
        d = self.cfg.d
        w = torch.randn(n, d, generator=g)
        if self.cfg.function == "sparse":
            keep = torch.rand(n, d, generator=g).argsort(1) < self.cfg.sparsity  # random support per task
            w = w * keep
        return w

    def sample(self, batch_size: int, generator: torch.Generator, *, d_active: int | None = None,
               n: int | None = None) -> RegressionBatch:
        """A batch of prompts. Curriculum (Garg et al.): only the first `d_active` coordinates of x are nonzero,
        and prompts have `n` points instead of cfg.n."""
        c = self.cfg
        xs = torch.randn(batch_size, n or c.n, c.d, generator=generator)
        if d_active is not None and d_active < c.d:
            xs[..., d_active:] = 0.0
        if c.function == "relu":
            v = torch.randn(batch_size, c.d, c.hidden, generator=generator)
            a = torch.randn(batch_size, c.hidden, generator=generator) * (2 / c.hidden) ** 0.5
            ys, w = ((xs @ v).relu() @ a[:, :, None])[..., 0], None
        else:
            if self.pool is not None:
                w = self.pool[torch.randint(0, len(self.pool), (batch_size,), generator=generator)]
            else:
                w = self._draw_w(batch_size, generator)
            ys = (xs @ w[:, :, None])[..., 0]
        if c.noise_std > 0:
            ys = ys + c.noise_std * torch.randn(ys.shape, generator=generator)
        return RegressionBatch(xs, ys, w)


def to_sequence(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """xs (B, N, d), ys (B, N) -> the model's input (B, 2N - 1, d): x_1, [y_1, 0...], ..., x_N."""
    B, N, d = xs.shape
    y_vec = torch.zeros_like(xs)
    y_vec[..., 0] = ys
    seq = torch.stack([xs, y_vec], 2).reshape(B, 2 * N, d)  # x_1, y_1, x_2, y_2, ...
    return seq[:, :-1]


def from_sequence(seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `to_sequence`: (B, 2N - 1, d) -> xs (B, N, d), ys (B, N - 1) (the last y is not in it)."""
    if seq.dim() != 3 or seq.shape[1] % 2 != 1:
        raise ValueError(f"expected (B, 2N - 1, d), got {tuple(seq.shape)}")
    return seq[:, 0::2], seq[:, 1::2, 0]
