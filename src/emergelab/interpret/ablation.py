"""Head ablation through the `hook_z` hook points (B, T, n_heads, d_head).

Two ways to remove a head: zero its output (`zero_ablate`), or replace it by what the head writes on
average (`mean_ablate`, with the averages from `head_means`). Mean ablation keeps the head's constant
part (an offset the later layers are used to) and removes only what depends on the input, so the loss
it costs is the information the head carries rather than the shock of an input the model never saw.

Works on any of our hooked models: the path in front of `blocks.{l}.attn.hook_z` ('' for a Transformer,
'transformer.' for a model wrapping one) is found from the model's hook points.

Example:
    >>> with zero_ablate(model, [(1, 2), (1, 3)]):
    ...     logits = model(tokens)          # heads L1H2 and L1H3 contribute nothing
    >>> means = head_means(model, tokens)   # {layer: (T, n_heads, d_head)}
    >>> with mean_ablate(model, [(1, 2)], means):
    ...     logits = model(tokens)          # L1H2 writes its average output at every position
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

from ..hooks import HookedModule, HookPoint
from .heads import block_layers

Z = "attn.hook_z"  # (B, T, n_heads, d_head)


def _prefix(model: HookedModule, prefix: str | None) -> str:
    return block_layers(model.hook_names(), Z)[0] if prefix is None else prefix


def _by_layer(heads: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))
    return by_layer


@contextlib.contextmanager
def _replace_heads(model: HookedModule, heads: Iterable[tuple[int, int]], prefix: str | None,
                   fill: Callable[[int, list[int], torch.Tensor], torch.Tensor]) -> Iterator[HookedModule]:
    """Set z[:, :, idx] = fill(layer, idx, z) for the heads of each layer, for the duration of the block."""
    by_layer = _by_layer(heads)
    if by_layer:
        prefix = _prefix(model, prefix)

    def make(layer: int, idx: list[int]):
        def hook(z: torch.Tensor, hook: HookPoint) -> torch.Tensor:
            z = z.clone()
            z[:, :, idx] = fill(layer, idx, z)
            return z

        return hook

    with model.hooks([(f"{prefix}blocks.{layer}.{Z}", make(layer, idx)) for layer, idx in by_layer.items()]):
        yield model


def zero_ablate(model: HookedModule, heads: Iterable[tuple[int, int]],
                prefix: str | None = None) -> contextlib.AbstractContextManager[HookedModule]:
    """Zero the output (z) of each (layer, head) for the duration of the block.

    prefix: the path in front of `blocks.{l}.attn.hook_z`; None finds it from the model's hook points.
    """
    return _replace_heads(model, heads, prefix, lambda layer, idx, z: 0.0)


@torch.no_grad()
def head_means(model: HookedModule, tokens: torch.Tensor, prefix: str | None = None) -> dict[int, torch.Tensor]:
    """Every head's output (z) on `tokens` averaged over the batch, position by position:
    {layer: (T, n_heads, d_head)}, on the model's device. The reference `mean_ablate` writes in."""
    prefix = _prefix(model, prefix)
    _, cache = model.run_with_cache(tokens, names=lambda n: n.startswith(f"{prefix}blocks.") and n.endswith(Z))
    _, layers = block_layers(cache.keys(), Z, prefix)
    return {layer: cache[f"{prefix}blocks.{layer}.{Z}"].mean(0) for layer in layers}  # (T, n_heads, d_head)


def mean_ablate(model: HookedModule, heads: Iterable[tuple[int, int]], means: Mapping[int, torch.Tensor],
                prefix: str | None = None) -> contextlib.AbstractContextManager[HookedModule]:
    """Replace the output (z) of each (layer, head) by its mean from `head_means` (the same position's
    average, for sequences up to the length the means were taken on) for the duration of the block."""
    def fill(layer: int, idx: list[int], z: torch.Tensor) -> torch.Tensor:
        T = z.shape[1]
        if layer not in means or means[layer].shape[0] < T:
            raise ValueError(f"no mean output of layer {layer} for sequences of {T} positions: "
                             "take head_means on inputs at least as long")
        return means[layer][:T, idx].to(z.dtype)  # (T, len(idx), d_head), broadcast over the batch

    return _replace_heads(model, heads, prefix, fill)
