"""SOM -> RBF -> attention -> softmax: the source text's interpretable classifier (chapters 3-5).

The codebook of a self-organizing map becomes the centers of a Gaussian RBF layer. Every map unit j is a
token t_j = [a_j, a_j * e_j]: its normalized RBF activation a_j (the activations sum to K over the K
units) and a learned unit embedding e_j scaled by it. Attention pooling with `n_queries` learned queries
weighs the units; a linear layer reads the pooled vectors of all queries. The attention weights name the
map units a decision rests on, and each unit is a prototype image.

Hook points: `rbf.hook_activations` (B, K) raw Gaussians, `hook_rbf` (B, K) normalized activations,
`pool.hook_scores` / `pool.hook_alpha` (B, Q, K), `hook_pooled` (B, Q * (1 + E)).

Example:
    >>> net = SOMAttentionNet.from_som(som, X_train, n_classes=10, seed=0)   # som fitted on X_train (n, d)
    >>> logits = net(x)                         # x (B, d) -> (B, 10)
    >>> out = net.explain(x)                    # logits (B, 10), alpha (B, Q, K), rbf (B, K), pooled (B, Q*(1+E))
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..hooks import HookedModule, HookPoint
from ..registry import models
from .attention_pool import AttentionPooling
from .rbf import RBFLayer


class SOMAttentionOutput(NamedTuple):
    logits: torch.Tensor  # (B, C)
    alpha: torch.Tensor  # (B, Q, K) attention over map units, rows sum to 1
    rbf: torch.Tensor  # (B, K) normalized RBF activations (mean 1 over units)
    pooled: torch.Tensor  # (B, Q * (1 + E)) what the linear read-out sees


@models.register("som-attention", "SOM codebook -> RBF layer -> attention over map units -> linear softmax")
class SOMAttentionNet(HookedModule):
    """x (B, d) -> logits (B, n_classes), with attention over the K = len(centers) map units.

    Args:
        centers: (K, d) initial RBF centers, e.g. a SOM codebook.
        width: initial Gaussian width of every unit (learned per unit from there).
        n_classes: outputs of the linear read-out.
        unit_dim: E, the size of each unit's learned embedding.
        n_queries: Q, attention queries (each pools the units its own way).
        learn_centers: train the centers with the rest (fine-tuning the codebook) or keep them fixed.
        seed: initializes every weight from its own generator (no global RNG is touched).
    """

    def __init__(self, centers: Any, width: float, n_classes: int, unit_dim: int = 16, n_queries: int = 4,
                 learn_centers: bool = True, seed: int = 0):
        super().__init__()
        K = len(centers)
        self.rbf = RBFLayer(centers, widths=width, learnable=learn_centers)
        self.unit_embed = nn.Parameter(torch.empty(K, unit_dim))
        self.pool = AttentionPooling(unit_dim + 1, n_queries=n_queries)
        self.head = nn.Linear(n_queries * (unit_dim + 1), n_classes)
        self.hook_rbf, self.hook_pooled = HookPoint(), HookPoint()
        self.setup_hooks()
        self.reset_parameters(torch.Generator().manual_seed(seed))

    @classmethod
    def from_som(cls, som: Any, X: np.ndarray, n_classes: int, **kwargs: Any) -> SOMAttentionNet:
        """Centers = the fitted SOM's codebook; width = the median distance of a row of X (n, d) to its
        best-matching unit, so a typical image activates its nearest prototype at exp(-1/2)."""
        centers = torch.from_numpy(np.asarray(som.codebook_, dtype=np.float32))
        width = float(torch.cdist(torch.as_tensor(X, dtype=torch.float32), centers).min(1).values.median())
        return cls(centers, width, n_classes, **kwargs)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Unit embeddings N(0, 0.5^2); linear layers as torch's default U(+-1/sqrt(fan_in)), from `generator`."""
        nn.init.normal_(self.unit_embed, 0.0, 0.5, generator=generator)
        for lin in (self.pool.key, self.head):
            bound = 1 / math.sqrt(lin.in_features)
            nn.init.uniform_(lin.weight, -bound, bound, generator=generator)
            nn.init.uniform_(lin.bias, -bound, bound, generator=generator)
        nn.init.normal_(self.pool.query, 0.0, 1 / math.sqrt(self.pool.query.shape[1]), generator=generator)

    def explain(self, x: torch.Tensor) -> SOMAttentionOutput:
        """The forward pass with everything an explanation needs."""
        B = x.shape[0]
        phi = self.rbf(x)  # (B, K)
        a = self.hook_rbf(phi / phi.sum(-1, keepdim=True).clamp_min(1e-30) * phi.shape[-1])  # mean 1 over units
        tokens = torch.cat([a[..., None], a[..., None] * self.unit_embed], dim=-1)  # (B, K, 1 + E)
        pooled, alpha = self.pool(tokens)  # (B, Q, 1 + E), (B, Q, K); without the Q axis when Q == 1
        if alpha.ndim == 2:
            pooled, alpha = pooled[:, None], alpha[:, None]
        flat = self.hook_pooled(pooled.reshape(B, -1))  # (B, Q * (1 + E))
        return SOMAttentionOutput(self.head(flat), alpha, a, flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, d) -> logits (B, n_classes)."""
        return self.explain(x).logits

    # --- the model contract (tests/contract): a tiny instance and a learnable batch ---------
    @classmethod
    def tiny(cls, seed: int = 0) -> SOMAttentionNet:
        centers = torch.randn(6, 5, generator=torch.Generator().manual_seed(1000 + seed))
        return cls(centers, width=1.5, n_classes=3, unit_dim=4, n_queries=2, seed=seed)

    def example_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x (B, d), y (B,)): points around 3 fixed class means in the centers' space."""
        d = self.rbf.centers.shape[1]
        means = 2 * torch.eye(3, d)  # fixed, so every instance sees the same task
        y = torch.randint(0, 3, (batch_size,), generator=generator)
        return means[y] + 0.3 * torch.randn(batch_size, d, generator=generator), y

    @staticmethod
    def inputs(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor]:
        """What `forward` takes from a batch (the contract tests call `model(*model.inputs(batch))`)."""
        return (batch[0],)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of the labels."""
        x, y = batch
        return F.cross_entropy(self(x), y)
