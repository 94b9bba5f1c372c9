"""Induction heads of any causal language model, on repeated random tokens (Olsson et al. 2022, section 3).

A batch of random token sequences, each written twice after a BOS token, is all a model needs to show
in-context copying: the first copy cannot be predicted (its loss is about ln(vocab) or worse), the second
can, by looking back at what followed the current token last time. Heads that do that look-up score high
on the prefix-matching detector; ablating them must bring the second copy's loss back up.

    repeated_random_tokens(...)   the batch (RepeatedTokens): tokens (B, T), where each copy starts
    measure_clean(lm, batch)      one traced forward: every head's detector scores, the per-token loss and
                                  every head's output (the reference of mean ablation)
    ablation_effects(...)         losses with the named heads ablated, with each control set (heads outside
                                  the circuit, `induction_probe.ablation_control`) and with each head alone, in
                                  the shape of the `induction` experiment's "ablation" summary, plus the loss by
                                  position

Pure measurement: no store, no run (the `lm-induction` experiment stores what these return). Works on any
model `trace` reads (a `transformers` causal LM of a mapped family, or the HFModel `models.hf.load_hf_model`
returns); heads are query heads, also under grouped-query attention (SmolLM2: 9 query heads share 3 KV heads).

Example:
    >>> lm = load_hf_model("/tmp/hf-cache/smollm2-135m-instruct")
    >>> batch = repeated_random_tokens(49152, n_seqs=8, seq_len=50, generator=torch.Generator().manual_seed(0),
    ...                                bos_id=1, exclude=lm.tokenizer.all_special_ids)
    >>> clean = measure_clean(lm, batch)
    >>> clean.scores["prefix_matching"].shape, batch.split(clean.token_loss)   # (30, 9), (first, repeated)
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .heads import detection_patterns, head_scores, prefix_matching_pattern, stack_patterns
from .induction_probe import Head, control_effects, head_dicts
from .intervene import ablate_heads
from .tracing import TraceCache, trace

SCORE_KINDS = ("prefix_matching", "previous_token", "duplicate_token", "induction")


@dataclass
class RepeatedTokens:
    """tokens (B, T): [BOS] + x + x for random x of `seq_len` tokens; `start` is where the first copy begins
    (1 with BOS, else 0). Per-token losses are (B, T - 1): index t scores the prediction of token t + 1."""

    tokens: torch.Tensor  # (B, T) int64, on the CPU
    start: int
    seq_len: int

    @property
    def first_targets(self) -> slice:
        """Loss indices of the first copy's tokens (its first token is not predicted without a BOS before it)."""
        return slice(max(self.start - 1, 0), self.start + self.seq_len - 1)

    @property
    def repeated_targets(self) -> slice:
        """Loss indices of the second copy's tokens."""
        return slice(self.start + self.seq_len - 1, self.start + 2 * self.seq_len - 1)

    def split(self, token_loss: torch.Tensor) -> tuple[float, float]:
        """(first-copy loss, repeated-copy loss): means of a (B, T - 1) per-token loss over each copy."""
        return (token_loss[:, self.first_targets].mean().item(), token_loss[:, self.repeated_targets].mean().item())

    def prefix_mask(self) -> torch.Tensor:
        """(B, T, T) 0/1: for a query in the second copy, the key just after the same token's first copy."""
        B, T = self.tokens.shape
        return prefix_matching_pattern(torch.full((B,), self.start), torch.full((B,), self.seq_len), 2, T)


def repeated_random_tokens(vocab_size: int, n_seqs: int, seq_len: int, generator: torch.Generator, *,
                           bos_id: int | None = None, exclude: Iterable[int] = ()) -> RepeatedTokens:
    """`n_seqs` sequences [bos_id] + x + x, x drawn uniformly (with replacement) from the vocabulary without the
    `exclude` ids (special tokens). -> RepeatedTokens with tokens (n_seqs, (bos_id is not None) + 2 seq_len)."""
    banned = set(int(i) for i in exclude)
    allowed = torch.tensor([i for i in range(vocab_size) if i not in banned], dtype=torch.long)
    if not len(allowed):
        raise ValueError("no token left to draw: every id of the vocabulary is excluded")
    x = allowed[torch.randint(len(allowed), (n_seqs, seq_len), generator=generator)]  # (B, seq_len)
    parts = ([torch.full((n_seqs, 1), int(bos_id), dtype=torch.long)] if bos_id is not None else []) + [x, x]
    return RepeatedTokens(torch.cat(parts, dim=1), int(bos_id is not None), seq_len)


def token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V), tokens (B, T) -> (B, T - 1) cross-entropy of each next-token prediction (float32)."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return -logp.gather(-1, tokens[:, 1:, None].to(logits.device))[..., 0].cpu()


def _logits(output: Any) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output


@dataclass
class CleanPass:
    scores: dict[str, torch.Tensor]  # {kind: (L, H)} on the CPU, kinds as in SCORE_KINDS
    token_loss: torch.Tensor  # (B, T - 1)
    z: TraceCache  # blocks.{l}.attn.hook_z: (B, T, H, D), every layer (the reference of mean ablation)


def _only(cache: TraceCache, suffix: str) -> TraceCache:
    part = TraceCache()
    part.update((k, v) for k, v in cache.items() if k.endswith(suffix))
    return part


def measure_clean(lm: Any, batch: RepeatedTokens) -> CleanPass:
    """One traced forward of the unablated model: the attention patterns (scored, then dropped: the largest
    tensors of the run), the logits and every head's output z."""
    cache = trace(lm, batch.tokens, names=lambda n: n.endswith(("attn.hook_pattern", "attn.hook_z")) or n == "logits")
    patterns = stack_patterns(_only(cache, "attn.hook_pattern")).cpu()  # (L, B, H, T, T)
    scores = head_scores(patterns, detection_patterns(batch.tokens), batch.prefix_mask())  # (L, H) each
    del patterns
    z = _only(cache, "attn.hook_z")
    logits = cache["logits"] if "logits" in cache else _logits(cache.output)
    return CleanPass({k: scores[k] for k in SCORE_KINDS}, token_loss(logits, batch.tokens), z)


@torch.no_grad()
def ablated_token_loss(lm: Any, batch: RepeatedTokens, heads: Sequence[Head], how: str,
                       reference: TraceCache | None) -> torch.Tensor:
    """(B, T - 1) per-token loss with `heads` ablated together (`interpret.intervene.ablate_heads`): "mean" writes
    each head's per-position mean over `reference`, "zero" nothing, "resample" its output on another sequence of
    the batch (the batch rolled by one)."""
    model = getattr(lm, "model", lm)
    device = next(model.parameters()).device
    ref = reference if how == "mean" else None
    with ablate_heads(lm, list(heads), how=how, reference=ref):
        logits = _logits(model(batch.tokens.to(device)))
    return token_loss(logits, batch.tokens)


def _curve(loss: torch.Tensor) -> list[float]:
    """(B, T - 1) -> the mean over the batch at each position, rounded (the report's loss-by-position lines)."""
    return [round(v, 5) for v in loss.mean(0).tolist()]


def ablation_effects(lm: Any, batch: RepeatedTokens, clean: CleanPass, ablated: Sequence[Head],
                     control: dict[str, Any], how: str = "mean", per_head: bool = True,
                     step: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The clean losses, the losses with the `ablated` heads removed together, with each set of `control`
    (`induction_probe.ablation_control`) removed, and, if `per_head`, with each ablated head removed alone.

    Returns the `induction` experiment's "ablation" shape ("kind", "heads", "clean_repeated_loss", ...,
    "control" with the mean, extremes and spread over its sets, "per_head") plus "positions": the loss at each
    token position (mean over the batch) clean, ablated, and the control's mean, min and max over its sets.
    `step()` is called after every forward pass (a progress bar).
    """
    clean_first, clean_rep = batch.split(clean.token_loss)
    curves: dict[str, list[float]] = {"clean": _curve(clean.token_loss)}

    def losses(heads: Sequence[Head]) -> tuple[float, float, torch.Tensor]:
        loss = ablated_token_loss(lm, batch, heads, how, clean.z)
        step()
        first, rep = batch.split(loss)
        return rep, first, loss

    out: dict[str, Any] = {"kind": how, "heads": head_dicts(ablated),
                           "clean_repeated_loss": round(clean_rep, 6), "clean_first_loss": round(clean_first, 6)}
    if ablated:
        rep, first, loss = losses(ablated)
        curves["ablated"] = _curve(loss)
        out.update(ablated_repeated_loss=round(rep, 6), ablated_first_loss=round(first, 6))
    else:  # nothing named: nothing removed
        out.update(ablated_repeated_loss=round(clean_rep, 6), ablated_first_loss=round(clean_first, 6))
    control_curves: list[list[float]] = []

    def control_losses(heads: Sequence[Head]) -> tuple[float, float]:
        rep, first, loss = losses(heads)
        control_curves.append(_curve(loss))
        return rep, first

    out["control"] = control_effects(control, control_losses)
    if control_curves:
        by_pos = list(zip(*control_curves, strict=True))
        curves["control_mean"] = [round(statistics.fmean(v), 5) for v in by_pos]
        curves["control_min"] = [min(v) for v in by_pos]
        curves["control_max"] = [max(v) for v in by_pos]
    out["per_head"] = []
    for layer, head in ablated if per_head else ():
        rep, first, _ = losses([(layer, head)])
        out["per_head"].append({"layer": layer, "head": head, "repeated_loss": round(rep, 6),
                                "first_loss": round(first, 6)})
    out["positions"] = curves
    return out
