"""Attention-head detectors.

The three TransformerLens `head_detector` patterns, scored with its "mul" measure
(sum(A * D) / sum(A) per sequence, averaged over the batch; A the head's attention
pattern, D a 0/1 lower-triangular detection pattern):

- previous token:  D[i, i-1] = 1
- duplicate token: D[i, j] = 1 iff tok_i == tok_j and j < i
- induction:       D[i, j] = 1 iff tok_{j-1} == tok_i, 1 <= j <= i

and Olsson et al.'s prefix-matching score on repeated sequences: the mean attention from a
token in a later copy of a repeated segment to the token just after its earlier copies.

Hook names: our Transformer's blocks are `blocks.{l}.attn.hook_pattern`; a model wrapping one names them
with a prefix (`transformer.blocks.{l}.attn.hook_pattern` in models/sequence.py). The helpers here find
that prefix from the names themselves (`block_prefix`), so they work on any of our hooked models.

Example:
    >>> _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    >>> patterns = stack_patterns(cache, model.cfg.n_layers)        # (L, B, H, T, T)
    >>> scores = head_scores(patterns, detection_patterns(tokens))  # {"previous_token": (L, H), ...}
    >>> patterns = attention_patterns(icl_model, seq)               # the same, prefix found, one call
    >>> patterns = attention_patterns(hf_model, ids)                # any model `trace` reads (interpret/tracing.py)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ..errors import ConfigError
from ..hooks import ActivationCache, HookedModule
from .tracing import activation_names, trace

DETECTORS = ("previous_token", "duplicate_token", "induction")
PATTERN = "attn.hook_pattern"  # (B, H, T_query, T_key)
_BLOCK = re.compile(r"^(?P<prefix>(?:.+\.)?)blocks\.(?P<layer>\d+)\.(?P<hook>.+)$")


def block_layers(names: Iterable[str], hook: str = PATTERN, prefix: str | None = None) -> tuple[str, list[int]]:
    """(prefix, sorted layers) of the hook names `{prefix}blocks.{l}.{hook}` among `names` (a model's hook
    names or a cache's keys). prefix None: found from the names; blocks under two different prefixes are
    ambiguous (a ValueError: pass `prefix=`). No such name at all is a KeyError.

    Example:
        >>> block_layers(["transformer.blocks.0.attn.hook_pattern", "transformer.blocks.1.attn.hook_pattern"])
        ('transformer.', [0, 1])
    """
    found: dict[str, list[int]] = {}
    for name in names:
        m = _BLOCK.match(name)
        if m and m["hook"] == hook and (prefix is None or m["prefix"] == prefix):
            found.setdefault(m["prefix"], []).append(int(m["layer"]))
    if not found:
        where = f"'blocks.{{l}}.{hook}' under any prefix" if prefix is None else f"'{prefix}blocks.{{l}}.{hook}'"
        raise KeyError(f"no hook named {where}")
    if len(found) > 1:
        raise ValueError(f"blocks under several prefixes ({', '.join(repr(p) for p in sorted(found))}); "
                         f"pass prefix= to say which")
    (found_prefix, layers), = found.items()
    return found_prefix, sorted(layers)


def block_prefix(names: Iterable[str] | HookedModule, hook: str = PATTERN) -> str:
    """The path in front of `blocks.{l}.{hook}`: '' for a Transformer, 'transformer.' for a model wrapping
    one. `names` is a HookedModule (its hook points) or hook names / a cache."""
    if isinstance(names, HookedModule):
        names = names.hook_names()
    return block_layers(names, hook)[0]


def previous_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """tokens (B, T) -> (B, T, T) float, D[i, i-1] = 1."""
    B, T = tokens.shape
    return torch.diag(torch.ones(T - 1, device=tokens.device), -1).expand(B, T, T).clone()


def duplicate_token_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """D[i, j] = 1 iff tok_i == tok_j and j < i."""
    T = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]  # (B, T, T)
    return (same & torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)).float()


def induction_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """D[i, j] = 1 iff tok_{j-1} == tok_i, 1 <= j <= i."""
    B, T = tokens.shape
    pad = torch.full((B, 1), -1, dtype=tokens.dtype, device=tokens.device)
    prev = torch.cat([pad, tokens[:, :-1]], dim=1)  # prev[j] = tok_{j-1}
    match = tokens[:, :, None] == prev[:, None, :]  # (B, T_i, T_j)
    return (match & torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()).float()


def detection_patterns(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """tokens (B, T) -> {detector: (B, T, T) float}, on the tokens' device (as every pattern here)."""
    return {
        "previous_token": previous_token_pattern(tokens),
        "duplicate_token": duplicate_token_pattern(tokens),
        "induction": induction_pattern(tokens),
    }


def prefix_matching_pattern(start: torch.Tensor, segment_len: torch.Tensor, n_repeats: int, T: int) -> torch.Tensor:
    """(B, T, T) 0/1: for a query in copy >= 2 of the segment, the keys just after its earlier copies.

    start, segment_len: (B,) position of the first copy and segment length.
    """
    rel = torch.arange(T, device=start.device)[None, :] - start[:, None]  # (B, T)
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
            A = A * (1 - torch.eye(A.shape[-1], device=A.device))
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


def stack_patterns(cache: ActivationCache, n_layers: int | None = None, prefix: str | None = None) -> torch.Tensor:
    """The attention patterns of layers 0 .. n_layers - 1 -> (n_layers, B, H, T, T).

    prefix: the path in front of `blocks.{l}.attn.hook_pattern` ('' for a Transformer, 'transformer.' for a
    model wrapping one); None finds it from the cache's names. n_layers None: every layer in the cache.
    """
    prefix, layers = block_layers(cache, PATTERN, prefix)
    if n_layers is None:
        n_layers = len(layers)
    return torch.stack([cache[f"{prefix}blocks.{layer}.{PATTERN}"] for layer in range(n_layers)])


def attention_patterns(model: Any, inputs: Any, layers: Sequence[int] | None = None,
                       prefix: str | None = None) -> torch.Tensor:
    """The attention patterns of one forward pass, layer by layer -> (L, B, H, T_query, T_key).

    model: any model `trace` reads (our HookedModules, a `transformers` model of a mapped family, or the HFModel
        `models.hf.load_hf_model` returns); grouped-query attention gives one pattern per query head.
    inputs: what `trace` takes (token ids (B, T), a tuple of positional arguments, a tokenizer's output, or text
        with an HFModel).
    layers: the layers to return, in that order (negative counts from the end); None = every layer.
    prefix: the path in front of `blocks.{l}.attn.hook_pattern` for our wrapped models ('transformer.'); None
        finds it from the model's names. Only the pattern hooks listen: the rest of the model runs its fast path.

    Example:
        >>> attention_patterns(smollm2, "The capital of France is").shape   # (30, 1, 9, 5, 5)
        >>> attention_patterns(icl_model, seq, layers=[-1])                 # the last layer only: (1, B, H, T, T)
    """
    found_prefix, chosen = pattern_layers(model, layers, prefix)
    cache = trace(model, inputs, names=[f"{found_prefix}blocks.{layer}.{PATTERN}" for layer in chosen])
    return torch.stack([cache[f"{found_prefix}blocks.{layer}.{PATTERN}"] for layer in chosen])


def pattern_layers(model: Any, layers: Sequence[int] | None = None, prefix: str | None = None) -> tuple[str, list[int]]:
    """(prefix, layer indices) of the attention patterns `attention_patterns(model, ..., layers, prefix)` returns:
    every layer for None, else `layers` with negative indices counted from the end (a ConfigError if out of range).
    """
    try:
        found_prefix, available = block_layers(activation_names(model), PATTERN, prefix)
    except KeyError:
        raise ConfigError(f"{type(getattr(model, 'model', model)).__name__} has no attention patterns named "
                          f"'blocks.{{l}}.{PATTERN}' (see interpret/names.py for the mapped families)") from None
    return found_prefix, _pick_layers(available, layers)


def _pick_layers(available: list[int], layers: Sequence[int] | None) -> list[int]:
    if layers is None:
        return available
    n = len(available)
    picked = []
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int) or not -n <= layer < n:
            raise ConfigError(f"layers must hold integers from {-n} to {n - 1} (the model has {n} attention "
                              f"layers), got {layer!r}")
        picked.append(available[layer])
    if not picked:
        raise ConfigError("layers must name at least one layer (None for every layer)")
    return picked


def head_scores(patterns: torch.Tensor, detections: dict[str, torch.Tensor],
                prefix_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """patterns (L, B, H, T, T) -> {score name: (L, H)}."""
    out = {name: mul_score(patterns, d) for name, d in detections.items()}
    if prefix_mask is not None:
        out["prefix_matching"] = query_mean_score(patterns, prefix_mask)
    return out
