"""An attention text classifier whose softmax weights explain its decisions (source text 4.3.3).

Each text is a set of token vectors A_j (learned word embeddings, or frozen vectors of a pretrained
encoder); a learned query theta scores them, alpha_j = softmax_j(theta^T A_j) (`AttentionPooling`), and
the pooled vector sum_j alpha_j A_j goes through a linear softmax classifier. alpha says which tokens the
decision rested on.

Hook points: `pool.hook_scores` (B, 1, N) and `pool.hook_alpha` (B, 1, N).

Example:
    >>> model = AttentionTextClassifier(n_classes=5, d_in=32, vocab_size=1000, seed=0)
    >>> logits = model(ids, mask)               # ids (B, N) int64, mask (B, N) bool -> (B, 5)
    >>> logits, alpha = model.explain(ids, mask)  # alpha (B, N): rows sum to 1 over real tokens
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..hooks import HookedModule
from ..registry import models
from .attention_pool import AttentionPooling


class TextExplanation(NamedTuple):
    logits: torch.Tensor  # (B, n_classes)
    alpha: torch.Tensor  # (B, N) attention over tokens: rows sum to 1 over real tokens, 0 on padding


@models.register("attention-text-classifier",
                 "token vectors (learned or frozen) -> attention pooling -> linear softmax; alpha explains")
class AttentionTextClassifier(HookedModule):
    """tokens -> [embedding] -> AttentionPooling -> linear.

    Args:
        n_classes: outputs of the linear read-out.
        d_in: size of a token vector (the learned embedding's size when `vocab_size` is given).
        vocab_size: learn word embeddings for ids < vocab_size (id 0 is padding); None: x holds vectors.
        seed: initializes every weight from its own generator (None: torch's global RNG).
    """

    def __init__(self, n_classes: int, d_in: int, vocab_size: int | None = None, seed: int | None = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_in, padding_idx=0) if vocab_size else None
        self.pool = AttentionPooling(d_in)
        self.head = nn.Linear(d_in, n_classes)
        self.setup_hooks()
        self.reset_parameters(torch.Generator().manual_seed(seed) if seed is not None else None)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        d = self.head.in_features
        if self.embed is not None:
            # small vectors: tanh keys start unsaturated and weight decay can keep rare words near zero
            nn.init.normal_(self.embed.weight, 0.0, 0.1, generator=generator)
            self.embed.weight[0].zero_()  # <pad>: never attended, never trained
        bound = 1 / math.sqrt(d)
        for lin in (self.pool.key, self.head):
            nn.init.uniform_(lin.weight, -bound, bound, generator=generator)
            lin.bias.zero_()
        nn.init.normal_(self.pool.query, 0.0, bound, generator=generator)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x) if self.embed is not None else x  # (B, N, d)

    def explain(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor | None = None) -> TextExplanation:
        """The forward pass with its attention: logits (B, n_classes), alpha (B, N)."""
        tokens = self.tokens(x)  # (B, N, d)
        if keep is not None:  # dropout mask, already scaled by 1/(1-p)
            tokens = tokens * keep
        pooled, alpha = self.pool(tokens, mask)  # (B, d), (B, N)
        return TextExplanation(self.head(pooled), alpha)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N) ids or (B, N, d) vectors, mask (B, N) bool -> logits (B, n_classes)."""
        return self.explain(x, mask, keep).logits

    @staticmethod
    def inputs(batch: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What `forward` takes from a batch (x, mask, y[, keep]): (x, mask, keep). keep (B, N, d) is a dropout
        mask already scaled by 1/(1-p) (e.g. `tasks.text_inputs.TextBatch`); None or absent: no dropout."""
        x, mask, _, *keep = batch
        return x, mask, keep[0] if keep else None

    def loss(self, batch: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Mean cross-entropy of the labels y (B,) of a batch (x, mask, y[, keep])."""
        return F.cross_entropy(self(*self.inputs(batch)), batch[2])

    # --- the model contract (tests/contract): a tiny instance and a learnable batch ---------
    @classmethod
    def tiny(cls, seed: int = 0) -> AttentionTextClassifier:
        return cls(n_classes=3, d_in=16, vocab_size=20, seed=seed)

    def example_batch(self, batch_size: int, generator: torch.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids (B, 6), mask (B, 6), y (B,)): texts of 2-6 filler ids (5..19) with ONE planted id (2, 3 or 4)
        that alone gives the class."""
        B, N = batch_size, 6
        x = torch.randint(5, 20, (B, N), generator=generator)
        lengths = torch.randint(2, N + 1, (B,), generator=generator)
        y = torch.randint(0, 3, (B,), generator=generator)
        where = (torch.rand(B, generator=generator) * lengths).long()  # a real position of each text
        x[torch.arange(B), where] = 2 + y
        mask = torch.arange(N)[None, :] < lengths[:, None]
        return x.masked_fill(~mask, 0), mask, y
