"""Label log-probs of k-shot prompts under a causal LM, with the shared prefix encoded once.

For one (seed, shots, condition) every prompt starts with the same ids (`EncodedPrompts.prefix`), so the
prefix is run once (its key/value cache kept) and each batch of queries runs only its own ids on a copy of
that cache. `score_prompts(..., cached=False)` runs the full prompts and gives the same log-probs (within
float rounding); tests and the benchmark check both against a plain forward over the prompt text's ids.

Example:
    >>> lp = score_prompts(model, prompts)          # (n_queries, n_labels), float32
    >>> lp.argmax(1)                                # the predicted label of each query
"""

from __future__ import annotations

import copy
import inspect

import torch

from .prompts import EncodedPrompts

__all__ = ["score_prompts"]


def _sequences(prompts: EncodedPrompts) -> tuple[list[list[int]], list[tuple[int, int, int]]]:
    """Continuation sequences after the prefix, and what to read from each.

    If every verbalizer is one token, one sequence per query scores all labels at its last position.
    Otherwise one sequence per (query, label): query + verbalizer. Returns the sequences and
    rows (query index, label index or -1 for all labels, query length).
    """
    seqs, rows = [], []
    if all(len(v) == 1 for v in prompts.verbalizers):
        for q, ids in enumerate(prompts.queries):
            seqs.append(ids)
            rows.append((q, -1, len(ids)))
    else:
        for q, ids in enumerate(prompts.queries):
            for j, v in enumerate(prompts.verbalizers):
                seqs.append(ids + v)
                rows.append((q, j, len(ids)))
    return seqs, rows


def _cache_keyword(model: torch.nn.Module) -> str:
    # transformers renamed past_key_values -> cache (5.2x; the old name goes in 5.40): accept both
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def score_prompts(model: torch.nn.Module, prompts: EncodedPrompts, *, cached: bool = True,
                  batch_size: int = 32) -> torch.Tensor:
    """Label log-probs (n_queries, n_labels), float32 on the CPU: sum over each verbalizer's tokens of
    log p(token | prompt), computed on the model's device.

    cached=True encodes the prefix once and runs only the query ids against a copy of its key/value
    cache; cached=False runs prefix + query for every sequence. Sequences are right-padded and the pads
    masked (with causal attention no real token could see them anyway), so both paths compute the same
    function.
    """
    dev = next(model.parameters()).device
    P = len(prompts.prefix)
    seqs, rows = _sequences(prompts)
    n_q, n_l = len(prompts.queries), len(prompts.verbalizers)
    out = torch.zeros(n_q, n_l, dtype=torch.float64)
    use_cache = cached and P > 0
    kw = _cache_keyword(model)
    prefix = torch.tensor([prompts.prefix], dtype=torch.long, device=dev).reshape(1, P)  # (1, P)
    prefix_cache = model(prefix, use_cache=True)[kw] if use_cache else None
    for s in range(0, len(seqs), batch_size):
        chunk = seqs[s : s + batch_size]
        B, T = len(chunk), max(map(len, chunk))
        ids = torch.zeros(B, T, dtype=torch.long)  # right padding: with causal attention no real token sees a pad
        mask = torch.zeros(B, P + T, dtype=torch.long)
        mask[:, :P] = 1
        for b, c in enumerate(chunk):
            ids[b, : len(c)] = torch.tensor(c)
            mask[b, P : P + len(c)] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        if use_cache:
            past = copy.deepcopy(prefix_cache)  # the model appends to the cache it is given: keep the prefix clean
            past.batch_repeat_interleave(B)
            logits = model(ids, attention_mask=mask, use_cache=True, **{kw: past}).logits  # (B, T, vocab)
            off = 0
        else:
            full = torch.cat([prefix.expand(B, P), ids], dim=1)  # (B, P + T)
            logits = model(full, attention_mask=mask, use_cache=False).logits  # (B, P + T, vocab)
            off = P
        # only the positions that predict a verbalizer token are normalized, in float64 on the CPU: a float32
        # log-softmax over a 49k-token vocabulary alone is off by ~1e-5 (and MPS has no float64)
        picks = []  # (row in this batch, position, token ids to read there)
        for b, (_, j, qlen) in enumerate(rows[s : s + batch_size]):
            # logits at position t predict token t + 1; the first verbalizer token is predicted at qlen - 1
            if j < 0:
                picks.append((b, off + qlen - 1, [v[0] for v in prompts.verbalizers]))
            else:
                picks += [(b, off + qlen - 1 + i, [t]) for i, t in enumerate(prompts.verbalizers[j])]
        where = torch.tensor([(b, t) for b, t, _ in picks], device=dev)
        logp = logits[where[:, 0], where[:, 1]].cpu().double().log_softmax(-1)  # (n_picks, vocab)
        n = 0
        for q, j, _ in rows[s : s + batch_size]:
            if j < 0:
                out[q] = logp[n, picks[n][2]]
                n += 1
            else:
                k = len(prompts.verbalizers[j])
                out[q, j] = sum(logp[n + i, picks[n + i][2][0]] for i in range(k))
                n += k
    del prefix_cache
    return out.float()
