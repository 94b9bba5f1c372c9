"""Attention-head detectors.

The three TransformerLens `head_detector` patterns, scored with its "mul" measure
(sum(A * D) / sum(A) per sequence, averaged over the batch; A the head's attention
pattern, D a 0/1 lower-triangular detection pattern):

- previous token:  D[i, i-1] = 1
- duplicate token: D[i, j] = 1 iff tok_i == tok_j and j < i
- induction:       D[i, j] = 1 iff tok_{j-1} == tok_i, 1 <= j <= i

and Olsson et al.'s prefix-matching score on repeated sequences: the mean attention from a
token in a later copy of a repeated segment to the token just after its earlier copies.

Example:
    >>> _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    >>> patterns = stack_patterns(cache, model.cfg.n_layers)        # (L, B, H, T, T)
    >>> scores = head_scores(patterns, detection_patterns(tokens))  # {"previous_token": (L, H), ...}
"""

from __future__ import annotations

import torch

from ..hooks import ActivationCache

DETECTORS = ("previous_token", "duplicate_token", "induction")


def previous_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """tokens (B, T) -> (B, T, T) float, D[i, i-1] = 1."""
    B, T = tokens.shape
    return torch.diag(torch.ones(T - 1), -1).expand(B, T, T).clone()


def duplicate_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """D[i, j] = 1 iff tok_i == tok_j and j < i."""
    T = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]  # (B, T, T)
    return (same & torch.ones(T, T, dtype=torch.bool).tril(-1)).float()


def induction_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """D[i, j] = 1 iff tok_{j-1} == tok_i, 1 <= j <= i."""
    B, T = tokens.shape
    prev = torch.cat([torch.full((B, 1), -1, dtype=tokens.dtype), tokens[:, :-1]], dim=1)  # prev[j] = tok_{j-1}
    match = tokens[:, :, None] == prev[:, None, :]  # (B, T_i, T_j)
    return (match & torch.ones(T, T, dtype=torch.bool).tril()).float()


def detection_patterns(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "previous_token": previous_token_pattern(tokens),
        "duplicate_token": duplicate_token_pattern(tokens),
        "induction": induction_pattern(tokens),
    }


def prefix_matching_pattern(start: torch.Tensor, segment_len: torch.Tensor, n_repeats: int, T: int) -> torch.Tensor:
    """(B, T, T) 0/1: for a query in copy >= 2 of the segment, the keys just after its earlier copies.

    start, segment_len: (B,) position of the first copy and segment length.
    """
    rel = torch.arange(T)[None, :] - start[:, None]  # (B, T)
    L = segment_len[:, None, None]
    rq, rk = rel[:, :, None], rel[:, None, :]  # (B, T, 1), (B, 1, T)
    query_ok = (rq >= L) & (rq < n_repeats * L)
    gap = rq - rk + 1  # key j = q - c L + 1  <=>  gap = c L, c >= 1
    key_ok = (rk >= 1) & (gap >= L) & (gap.remainder(L) == 0)
    return (query_ok & key_ok).float()


def mul_score(pattern: torch.Tensor, detection: torch.Tensor, exclude_bos: bool = False,
              exclude_current_token: bool = False) -> torch.Tensor:
    """pattern (..., B, H, T, T), detection (B, T, T) -> (..., H): TransformerLens's "mul" score."""
    A = pattern
    if exclude_bos or exclude_current_token:
        A = A.clone()
        if exclude_bos:
            A[..., 0] = 0
        if exclude_current_token:
            A = A * (1 - torch.eye(A.shape[-1]))
    D = detection[:, None]  # (B, 1, T, T)
    per_seq = (A * D).sum((-1, -2)) / A.sum((-1, -2)).clamp_min(1e-12)  # (..., B, H)
    return per_seq.mean(-2)


def query_mean_score(pattern: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the queries that have any 1 in `mask` (B, T, T) of the attention mass on those keys.

    pattern (..., B, H, T, T) -> (..., H).
    """
    mass = (pattern * mask[:, None]).sum(-1)  # (..., B, H, T)
    has = mask.any(-1)[:, None].float()  # (B, 1, T)
    return (mass * has).sum((-1, -3)) / has.sum().clamp_min(1)


def stack_patterns(cache: ActivationCache, n_layers: int) -> torch.Tensor:
    """-> (n_layers, B, H, T, T)."""
    return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n_layers)])


def head_scores(patterns: torch.Tensor, detections: dict[str, torch.Tensor],
                prefix_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """patterns (L, B, H, T, T) -> {score name: (L, H)}."""
    out = {name: mul_score(patterns, d) for name, d in detections.items()}
    if prefix_mask is not None:
        out["prefix_matching"] = query_mean_score(patterns, prefix_mask)
    return out
