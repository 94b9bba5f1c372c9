"""Head ablation through the `hook_z` hook points (B, T, n_heads, d_head).

Works on any of our hooked models: the path in front of `blocks.{l}.attn.hook_z` ('' for a Transformer,
'transformer.' for a model wrapping one) is found from the model's hook points.

Example:
    >>> with zero_ablate(model, [(1, 2), (1, 3)]):
    ...     logits = model(tokens)          # heads L1H2 and L1H3 contribute nothing
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch

from ..hooks import HookedModule, HookPoint
from .heads import block_layers

Z = "attn.hook_z"  # (B, T, n_heads, d_head)


@contextlib.contextmanager
def zero_ablate(model: HookedModule, heads: Iterable[tuple[int, int]],
                prefix: str | None = None) -> Iterator[HookedModule]:
    """Zero the output (z) of each (layer, head) for the duration of the block.

    prefix: the path in front of `blocks.{l}.attn.hook_z`; None finds it from the model's hook points.
    """
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))
    if prefix is None and by_layer:
        prefix = block_layers(model.hook_names(), Z)[0]

    def make(idx: list[int]):
        def hook(z: torch.Tensor, hook: HookPoint) -> torch.Tensor:
            z = z.clone()
            z[:, :, idx] = 0.0
            return z

        return hook

    with model.hooks([(f"{prefix}blocks.{layer}.{Z}", make(idx)) for layer, idx in by_layer.items()]):
        yield model
