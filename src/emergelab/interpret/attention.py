"""Attention on any model `trace` reads: patterns with their token strings, the head detectors, attention rollout.

    attention(model, inputs, layers)      AttentionPatterns: patterns (L, B, H, T, T), token ids and strings
    attention_patterns(model, inputs)     the patterns alone (L, B, H, T, T) (interpret/heads.py, re-exported)
    head_detectors(model, tokens)         {previous_token, duplicate_token, induction: (L, H)} scores
    rollout(patterns, head_fusion, ...)   Abnar & Zuidema (2020) attention rollout (B, T, T)

Grouped-query attention (Llama / SmolLM2: 9 query heads sharing 3 KV heads) gives one pattern per query head.

Example:
    >>> lm = load_hf_model("models/smollm2")
    >>> att = attention(lm, "The capital of France is")
    >>> att.patterns.shape, att.tokens[0][:3]          # (30, 1, 9, 5, 5), ['The', ' capital', ' of']
    >>> scores = head_detectors(lm, torch.randint(0, 49152, (4, 50)).repeat(1, 2))["induction"]  # (30, 9)
    >>> rollout(att.patterns, head_fusion="max", discard_ratio=0.9)[0, -1]   # (T,): last token's rollout
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..errors import ConfigError
from .heads import DETECTORS, attention_patterns, detection_patterns, head_scores, pattern_layers

__all__ = ["AttentionPatterns", "attention", "attention_patterns", "encode", "head_detectors", "rollout",
           "token_strings"]

HeadFusion = Literal["mean", "max", "min"]
HEAD_FUSIONS = ("mean", "max", "min")


@dataclass
class Encoded:
    """Inputs ready for `trace` with the token ids they hold and, when a tokenizer is known, their strings."""

    inputs: Any  # what to pass to trace (token ids, a BatchEncoding, a tuple of arguments)
    ids: torch.Tensor | None  # (B, T) int64, or None when the inputs are not token ids (e.g. vectors)
    tokens: list[list[str]] | None  # (B, T) token strings (each id decoded alone), or None without a tokenizer
    tokenizer: Any = None


def encode(model: Any, inputs: Any) -> Encoded:
    """Tokenize text with the model's tokenizer (an HFModel's), find the token ids of any input, and their strings.

    inputs: a string or list of strings (needs a tokenizer), token ids (B, T) or (T,), a mapping with
    `input_ids` (a tokenizer's output), or anything else `trace` takes (passed through, ids None).
    """
    tokenizer = getattr(model, "tokenizer", None)
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and all(isinstance(x, str) for x in inputs)):
        if tokenizer is None:
            raise ConfigError("Text inputs need the model's tokenizer: pass the HFModel that load_hf_model "
                              "returns, or token ids")
        try:
            inputs = tokenizer(inputs, return_tensors="pt", padding=isinstance(inputs, list))
        except ValueError as e:  # e.g. a batch of texts and a tokenizer without a padding token
            raise ConfigError(f"Could not tokenize the inputs: {str(e).strip().splitlines()[0]}") from None
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 1 and not inputs.is_floating_point():
        inputs = inputs[None]  # one sequence (T,) -> (1, T)
    ids = None
    if isinstance(inputs, Mapping) and isinstance(inputs.get("input_ids"), torch.Tensor):
        ids = inputs["input_ids"]
    elif isinstance(inputs, torch.Tensor) and not inputs.is_floating_point():
        ids = inputs
    tokens = token_strings(tokenizer, ids) if ids is not None and tokenizer is not None else None
    return Encoded(inputs, ids, tokens, tokenizer)


def token_strings(tokenizer: Any, ids: torch.Tensor) -> list:
    """Each token id decoded on its own (' Paris', not the vocabulary's 'ĠParis'), nested as `ids` is shaped:
    ids (B, T) -> B lists of T strings. One batch_decode call for all of them."""
    flat = tokenizer.batch_decode(ids.reshape(-1, 1).tolist())
    out: list = flat
    for size in reversed(ids.shape[1:]):
        out = [out[i:i + size] for i in range(0, len(out), size)]
    return out


@dataclass
class AttentionPatterns:
    """One forward pass's attention: `patterns[i]` is layer `layers[i]`, (B, H, T_query, T_key)."""

    patterns: torch.Tensor  # (L, B, H, T, T)
    layers: list[int]  # the model's layer index of each row of `patterns`
    ids: torch.Tensor | None  # (B, T) token ids, None for non-token inputs
    tokens: list[list[str]] | None  # (B, T) token strings, None without a tokenizer


def attention(model: Any, inputs: Any, layers: Sequence[int] | None = None) -> AttentionPatterns:
    """The attention patterns of `model` on `inputs` with the token strings they were computed on.

    model, inputs, layers as in `attention_patterns`; text inputs are tokenized with the model's tokenizer.

    Example:
        >>> att = attention(minilm, "a cat sat", layers=[0, -1])
        >>> att.patterns.shape, att.layers, att.tokens[0]   # (2, 1, 12, 5, 5), [0, 5], ['[CLS]', 'a', ..., '[SEP]']
    """
    enc = encode(model, inputs)
    patterns = attention_patterns(model, enc.inputs, layers)
    return AttentionPatterns(patterns, pattern_layers(model, layers)[1], enc.ids, enc.tokens)


def head_detectors(model: Any, tokens: Any, exclude_bos: bool = False) -> dict[str, torch.Tensor]:
    """Score every head of `model` with the three TransformerLens detectors -> {name: (L, H)} in [0, 1].

    tokens: token ids (B, T) or (T,) (or text, with an HFModel); for induction, a random sequence repeated
        (`torch.cat([x, x], 1)`) so that earlier copies exist. Scores are `heads.mul_score`: the share of a
        head's attention on the detection pattern (previous token, earlier copies of the current token, the
        token after an earlier copy of the current token), averaged over the batch.
    exclude_bos: zero the attention on position 0 first (many pretrained heads park attention there).

    Example:
        >>> x = torch.randint(0, 49152, (4, 50), generator=torch.Generator().manual_seed(0))
        >>> scores = head_detectors(smollm2, torch.cat([x, x], 1))
        >>> scores["induction"].flatten().topk(3)                 # the three best induction heads (layer * H + head)
    """
    enc = encode(model, tokens)
    if enc.ids is None:
        raise ConfigError("head_detectors needs token ids (B, T) (or text with an HFModel): the detection "
                          "patterns compare tokens")
    patterns = attention_patterns(model, enc.inputs)  # (L, B, H, T, T)
    detections = detection_patterns(enc.ids.to(patterns.device))
    if exclude_bos:
        patterns = patterns.clone()
        patterns[..., 0] = 0
    scores = head_scores(patterns, detections)
    return {name: scores[name] for name in DETECTORS}


def rollout(patterns: torch.Tensor, head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0,
            add_residual: bool = True, start_layer: int = 0) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each token's final representation draws on each input
    token, following attention through the layers. patterns (L, B, H, T, T) -> (B, T_query, T_input).

    Per layer l (from start_layer): fuse the heads (mean, or the element-wise max / min over heads), set the
    `int(discard_ratio * T * T)` lowest fused weights of each sequence to zero except those on key 0 (the CLS /
    first token, which often holds most of the attention), add the residual connection, A_hat = 0.5 A + 0.5 I
    (add_residual), and renormalize each row to sum to 1. The rollout is A_hat[L-1] @ ... @ A_hat[start_layer].

    As jacobgil/vit-explain's `rollout` (the reference implementation), which discards the lowest weights of the
    flattened fused matrix and keeps element 0; here every sequence of the batch is discarded on (the reference
    edits only the first), the whole key-0 column is kept, and rows are renormalized (the reference divides
    by `a.sum(dim=-1)` without keepdim, which broadcasts the row sums along the wrong axis). Masked (future)
    weights of a causal model are zeros and so count among the lowest.

    Example:
        >>> r = rollout(attention(minilm, "a cat sat").patterns)   # (1, 5, 5): rows sum to 1
        >>> r[0, 0]                                                   # what [CLS] gathers from each token
    """
    if not isinstance(patterns, torch.Tensor) or patterns.dim() != 5 or patterns.shape[-1] != patterns.shape[-2]:
        shape = tuple(patterns.shape) if isinstance(patterns, torch.Tensor) else type(patterns).__name__
        raise ConfigError(f"rollout needs patterns of shape (L, B, H, T, T) (attention_patterns' output), got {shape}")
    if head_fusion not in HEAD_FUSIONS:
        raise ConfigError(f"head_fusion must be one of {', '.join(HEAD_FUSIONS)}, got {head_fusion!r}")
    if isinstance(discard_ratio, bool) or not isinstance(discard_ratio, (int, float)) or not 0 <= discard_ratio < 1:
        raise ConfigError(f"discard_ratio must be a number in [0, 1), got {discard_ratio!r}")
    L, B, H, T, _ = patterns.shape
    if isinstance(start_layer, bool) or not isinstance(start_layer, int) or not -L <= start_layer < L:
        raise ConfigError(f"start_layer must be an integer from {-L} to {L - 1} (the patterns hold {L} layers), "
                          f"got {start_layer!r}")
    stack = patterns[start_layer:]
    if not stack.is_floating_point() or stack.dtype in (torch.float16, torch.bfloat16):
        stack = stack.float()  # a product of many layers: half precision would lose it
    eye = torch.eye(T, dtype=stack.dtype, device=stack.device)
    n_discard = int(discard_ratio * T * T)
    result = eye.expand(B, T, T)
    for A in stack:  # (B, H, T, T)
        fused = A.mean(1) if head_fusion == "mean" else A.amax(1) if head_fusion == "max" else A.amin(1)  # (B, T, T)
        if n_discard:
            fused = _discard_lowest(fused, n_discard)
        a = 0.5 * fused + 0.5 * eye if add_residual else fused
        a = a / a.sum(-1, keepdim=True).clamp_min(1e-12)
        result = a @ result  # (B, T, T)
    return result


def _discard_lowest(fused: torch.Tensor, n: int) -> torch.Tensor:
    """fused (B, T, T) with its n lowest weights per sequence set to 0, the weights on key 0 excepted."""
    B, T, _ = fused.shape
    flat = fused.reshape(B, T * T)
    _, lowest = flat.topk(n, dim=-1, largest=False)  # (B, n) flat indices
    keep = lowest % T == 0  # the key-0 column is never discarded
    dropped = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, lowest, ~keep)
    return flat.masked_fill(dropped, 0).view(B, T, T)
