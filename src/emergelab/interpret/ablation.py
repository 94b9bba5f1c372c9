"""Head ablation of our hooked models, kept for its callers (experiments/induction.py, induction_probe.py);
built on `interpret.intervene`, whose `ablate_heads` does the same on any model (transformers included).

Two ways to remove a head: zero its output (`zero_ablate`), or replace it by what the head writes on
average (`mean_ablate`, with the averages from `head_means`). Mean ablation keeps the head's constant
part (an offset the later layers are used to) and removes only what depends on the input, so the loss
it costs is the information the head carries rather than the shock of an input the model never saw.

The path in front of `blocks.{l}.attn.hook_z` ('' for a Transformer, 'transformer.' for a model wrapping
one) is found from the model's hook points, or given as `prefix`.

Example:
    >>> with zero_ablate(model, [(1, 2), (1, 3)]):
    ...     logits = model(tokens)          # heads L1H2 and L1H3 contribute nothing
    >>> means = head_means(model, tokens)   # {layer: (T, n_heads, d_head)}
    >>> with mean_ablate(model, [(1, 2)], means):
    ...     logits = model(tokens)          # L1H2 writes its average output at every position
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

import torch

from ..hooks import HookedModule
from .heads import block_layers
from .intervene import Z, ablate_names, head_names
from .tracing import TraceCache, trace

__all__ = ["head_means", "mean_ablate", "zero_ablate"]


def _prefix(model: HookedModule, prefix: str | None) -> str:
    return block_layers(model.hook_names(), Z)[0] if prefix is None else prefix


def zero_ablate(model: HookedModule, heads: Iterable[tuple[int, int]],
                prefix: str | None = None) -> contextlib.AbstractContextManager[HookedModule]:
    """Zero the output (z) of each (layer, head) for the duration of the block.

    prefix: the path in front of `blocks.{l}.attn.hook_z`; None finds it from the model's hook points.
    """
    heads = list(heads)
    names = head_names(model, heads, _prefix(model, prefix) if heads else "")
    return ablate_names(model, names, "zero")


def head_means(model: HookedModule, tokens: torch.Tensor, prefix: str | None = None) -> dict[int, torch.Tensor]:
    """Every head's output (z) on `tokens` averaged over the batch, position by position:
    {layer: (T, n_heads, d_head)}, on the model's device. The reference `mean_ablate` writes in."""
    prefix = _prefix(model, prefix)
    _, layers = block_layers(model.hook_names(), Z, prefix)
    cache = trace(model, tokens, names=[f"{prefix}blocks.{layer}.{Z}" for layer in layers])
    return {layer: cache[f"{prefix}blocks.{layer}.{Z}"].mean(0) for layer in layers}  # (T, n_heads, d_head)


def mean_ablate(model: HookedModule, heads: Iterable[tuple[int, int]], means: Mapping[int, torch.Tensor],
                prefix: str | None = None) -> contextlib.AbstractContextManager[HookedModule]:
    """Replace the output (z) of each (layer, head) by its mean from `head_means` (the same position's
    average, for sequences up to the length the means were taken on) for the duration of the block."""
    heads = list(heads)
    prefix = _prefix(model, prefix) if heads else ""
    names = head_names(model, heads, prefix)
    reference = TraceCache()  # (1, T, H, D): its mean over the batch is the mean given
    reference.update({f"{prefix}blocks.{layer}.{Z}": means[layer][None] for layer, _ in heads if layer in means})
    return ablate_names(model, names, "mean", reference)
