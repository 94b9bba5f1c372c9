"""The logit lens (nostalgebraist 2020) for causal LMs: what the model would predict if it stopped after layer l.

The residual stream after each layer (and after the embedding: `blocks.0.hook_resid_pre`) goes through the
model's own final norm and unembedding; per layer and position this gives the top-k tokens with their
probabilities and the rank and probability of a target token. At the last layer it is the model's output.

Models: our Transformer (its `ln_final` and `unembed`, or the tied embedding) and `transformers` causal LMs of
the mapped families with a final norm (GPT-2; Llama, Mistral, Qwen2/3, SmolLM; GPT-NeoX / Pythia), whose norm
and LM head are found from `names.hf_name_map` (the sites of `ln_final.hook_normalized` and `logits`).

Memory stays bounded: one layer at a time goes through the unembedding, at the positions asked for, and only
the top-k and the target's numbers are kept ((L + 1) x B x P x k), never (L + 1) x B x T x V logits.

Example:
    >>> lm = load_hf_model("models/smollm2")
    >>> lens = logit_lens(lm, "The capital of France is", target=" Paris", positions=[-1])
    >>> lens.target_rank[:, 0, 0]          # (31,): the rank of ' Paris' after the embedding and each block
    >>> lens.top_tokens[-1][0][0]          # the last layer's top 5 at the last position: [' Paris', ...]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.transformer import Transformer
from .attention import encode, token_strings
from .names import LOGITS, hf_name_map
from .tracing import trace

__all__ = ["LogitLens", "logit_lens", "resolve_target", "unembedding"]

FINAL_NORM = "ln_final.hook_normalized"


@dataclass
class LogitLens:
    """The logit lens of one forward pass. Row r of every tensor is the residual stream `names[r]`: row 0 the
    embedding (`blocks.0.hook_resid_pre`), row i + 1 the stream after block i (`blocks.{i}.hook_resid_post`).
    R = n_layers + 1 rows, B sequences, P positions (`positions`), k top tokens."""

    names: list[str]  # (R,) the residual-stream activation read in each row
    positions: list[int]  # (P,) non-negative positions in the input
    top_ids: torch.Tensor  # (R, B, P, k) int64, most likely first
    top_probs: torch.Tensor  # (R, B, P, k) float
    top_tokens: list | None  # [R][B][P][k] decoded token strings, None without a tokenizer
    input_tokens: list[list[str]] | None  # [B][T] the input's tokens, None without a tokenizer
    target_id: int | None = None
    target_rank: torch.Tensor | None = None  # (R, B, P) int64, 1 = the most likely token
    target_prob: torch.Tensor | None = None  # (R, B, P) float

    @property
    def labels(self) -> list[str]:
        """A short label per row: 'embed', 'block 0', 'block 1', ..."""
        return ["embed"] + [f"block {i}" for i in range(len(self.names) - 1)]

    def first_in_top(self, k: int | None = None, batch: int = 0, position: int = -1) -> int | None:
        """The first row (0 = embedding, i + 1 = after block i) from which the target stays within the top `k`
        (default: the k of the lens) at every later layer, for one sequence and position index; None if it
        is not in the top k after the last block."""
        if self.target_rank is None:
            raise ConfigError("first_in_top needs a target: call logit_lens(..., target=TOKEN)")
        k = self.top_ids.shape[-1] if k is None else k
        inside = (self.target_rank[:, batch, position] <= k).tolist()
        if not inside[-1]:
            return None
        row = len(inside) - 1
        while row > 0 and inside[row - 1]:
            row -= 1
        return row


def unembedding(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's final norm followed by its unembedding: a residual stream (..., C) -> logits (..., V).

    model: our Transformer, a `transformers` causal LM of a mapped family, or an HFModel holding one.
    Applied to the last block's `hook_resid_post` it gives the model's logits.
    """
    module = _module(model)
    if isinstance(module, Transformer):
        norm = module.ln_final
        if module.unembed is not None:
            head: Callable[[torch.Tensor], torch.Tensor] = module.unembed
        else:
            def head(x: torch.Tensor) -> torch.Tensor:
                return x @ module.embed.weight.T  # tied embeddings
        return lambda x: head(norm(x))
    name_map = hf_name_map(module)
    if name_map is None or LOGITS not in name_map.sites or FINAL_NORM not in name_map.sites:
        what = f"this {name_map.family} model" if name_map else type(module).__name__
        raise ConfigError(f"The logit lens needs a causal LM with a final norm and an unembedding (our Transformer, "
                          f"or a GPT-2, Llama/Qwen/SmolLM or GPT-NeoX causal LM); {what} has none "
                          f"(load it with kind='causal')")
    norm_module = module.get_submodule(name_map.sites[FINAL_NORM].module)
    head_module = module.get_submodule(name_map.sites[LOGITS].module)
    return lambda x: head_module(norm_module(x))


def resolve_target(model: Any, target: int | str, vocab_size: int | None = None) -> int:
    """The token id of `target`: an id, or a string that is exactly one token of the model's tokenizer (tried as
    text first, then as a vocabulary entry such as 'ĠParis'). Anything else is a ConfigError naming the target."""
    tokenizer = getattr(model, "tokenizer", None)
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise ConfigError(f"target must be a token string or a token id, got {type(target).__name__}")
    if isinstance(target, int):
        if target < 0 or (vocab_size is not None and target >= vocab_size):
            raise ConfigError(f"Target token id {target} is not in the vocabulary (ids 0..{vocab_size - 1})"
                              if vocab_size else f"Target token id {target} must be >= 0")
        return target
    if tokenizer is None:
        raise ConfigError(f"Target token {target!r} is text and the model has no tokenizer: pass a token id")
    if not target:
        raise ConfigError("Target token is empty: give one token, e.g. ' Paris'")
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    vocab = tokenizer.get_vocab()
    if len(ids) != 1 and target in vocab:
        ids = [vocab[target]]  # a vocabulary entry written as the vocabulary spells it ('ĠParis')
    if len(ids) > 1:
        pieces = " + ".join(repr(t) for t in token_strings(tokenizer, torch.tensor([ids]))[0])
        raise ConfigError(f"Target {target!r} is {len(ids)} tokens for this tokenizer ({pieces}), not one: give a "
                          f"single token (mind the leading space) or a token id")
    unk = getattr(tokenizer, "unk_token_id", None)
    if not ids or (ids[0] == unk and target != tokenizer.unk_token) or (vocab_size and ids[0] >= vocab_size):
        raise ConfigError(f"Target {target!r} is not in the model's vocabulary")
    return int(ids[0])


def logit_lens(model: Any, inputs: Any, target: int | str | None = None, k: int = 5,
               positions: int | Sequence[int] | None = None) -> LogitLens:
    """The logit lens of `model` on `inputs` (see the module docstring; shapes in `LogitLens`).

    model: our Transformer, a `transformers` causal LM of a mapped family, or the HFModel `load_hf_model` returns
        (which tokenizes text inputs and decodes the top tokens).
    inputs: token ids (B, T) or (T,), a tokenizer's output, or text / a list of texts with an HFModel.
    target: a token (a string that is exactly one token, e.g. ' Paris') or a token id, whose rank and probability
        are reported at every layer and position; None: none.
    k: how many top tokens per layer and position.
    positions: the positions to read (ints, negative from the end); None = every position.

    Example:
        >>> lens = logit_lens(our_model, tokens, target=7, k=3, positions=-1)
        >>> lens.top_ids.shape, lens.target_rank[-1]   # (n_layers + 1, B, 1, 3); rank after the last block
    """
    module = _module(model)
    unembed = unembedding(model)
    enc = encode(model, inputs)
    if enc.ids is None:
        raise ConfigError("The logit lens needs token ids (B, T) (or text with an HFModel)")
    B, T = enc.ids.shape
    vocab_size = _vocab_size(module)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= vocab_size:
        raise ConfigError(f"k must be an integer from 1 to the vocabulary size ({vocab_size}), got {k!r}")
    target_id = None if target is None else resolve_target(model, target, vocab_size)
    where = _positions(positions, T)
    n_layers = module.cfg.n_layers if isinstance(module, Transformer) else len(hf_name_map(module).blocks)
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(n_layers)]
    cache = trace(model, enc.inputs, names=names)
    cache.output = None  # the model's own (B, T, V) logits are not needed: free them now
    index = torch.tensor(where)
    top_ids, top_probs, ranks, probs = [], [], [], []
    with torch.no_grad():
        for name in names:
            resid = cache.pop(name)  # (B, T, C); dropped once read
            logp = unembed(resid[:, index.to(resid.device)]).float().log_softmax(-1)  # (B, P, V)
            p, i = logp.topk(k, dim=-1)
            top_probs.append(p.exp().cpu())
            top_ids.append(i.cpu())
            if target_id is not None:
                t = logp[..., target_id]  # (B, P)
                ranks.append(((logp > t[..., None]).sum(-1) + 1).cpu())
                probs.append(t.exp().cpu())
            del logp
    ids = torch.stack(top_ids)  # (R, B, P, k)
    return LogitLens(
        names=names, positions=where, top_ids=ids, top_probs=torch.stack(top_probs),
        top_tokens=token_strings(enc.tokenizer, ids) if enc.tokenizer is not None else None,
        input_tokens=enc.tokens, target_id=target_id,
        target_rank=torch.stack(ranks) if ranks else None, target_prob=torch.stack(probs) if probs else None)


def _module(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module):
        return model.model  # an HFModel from models.hf
    if not isinstance(model, nn.Module):
        raise ConfigError(f"The logit lens needs a torch model, got {type(model).__name__}")
    return model


def _vocab_size(module: nn.Module) -> int:
    if isinstance(module, Transformer):
        return module.cfg.d_vocab
    head = module.get_output_embeddings()
    return int(head.weight.shape[0])


def _positions(positions: int | Sequence[int] | None, T: int) -> list[int]:
    if positions is None:
        return list(range(T))
    chosen = [positions] if isinstance(positions, int) else list(positions)
    if not chosen:
        raise ConfigError("positions must name at least one position (None for every position)")
    for p in chosen:
        if isinstance(p, bool) or not isinstance(p, int) or not -T <= p < T:
            raise ConfigError(f"positions must be integers from {-T} to {T - 1} (the input has {T} tokens), "
                              f"got {p!r}")
    return [p % T for p in chosen]
