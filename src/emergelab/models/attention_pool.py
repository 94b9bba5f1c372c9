"""Attention pooling: a learned query scores a set of tokens; the softmax weights explain the decision.

The source text's explanation model: alpha_j = softmax_j(theta^T A_j), pooled = sum_j alpha_j A_j,
over any set of "tokens" (words, SOM units, image patches). Padding positions can be masked.

Example:
    >>> pool = AttentionPooling(d_in=32)
    >>> pooled, alpha = pool(tokens)            # tokens (B, N, 32) -> (B, 32), (B, N); alpha rows sum to 1
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..hooks import HookedModule, HookPoint


class AttentionPooling(HookedModule):
    def __init__(self, d_in: int, d_key: int | None = None, n_queries: int = 1, temperature: float = 1.0):
        super().__init__()
        d_key = d_key or d_in
        self.key = nn.Linear(d_in, d_key)  # A_j -> key space; theta is the learned query
        self.query = nn.Parameter(torch.randn(n_queries, d_key) / math.sqrt(d_key))
        self.temperature = temperature
        self.hook_scores, self.hook_alpha = HookPoint(), HookPoint()
        self.setup_hooks()

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, N, d_in), mask (B, N) bool (True = real token) -> pooled (B, d_in) or (B, Q, d_in) for
        several queries, alpha (B, N) or (B, Q, N)."""
        keys = torch.tanh(self.key(tokens))  # (B, N, d_key)
        scores = torch.einsum("bnk,qk->bqn", keys, self.query) / (self.temperature * math.sqrt(keys.shape[-1]))
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        alpha = self.hook_alpha(self.hook_scores(scores).softmax(dim=-1))  # (B, Q, N)
        pooled = alpha @ tokens  # (B, Q, d_in)
        if alpha.shape[1] == 1:
            return pooled[:, 0], alpha[:, 0]
        return pooled, alpha
