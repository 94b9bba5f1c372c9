"""Head ablation through the `hook_z` hook points (B, T, n_heads, d_head).

Example:
    >>> with zero_ablate(model, [(1, 2), (1, 3)]):
    ...     logits = model(tokens)          # heads L1H2 and L1H3 contribute nothing
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch

from ..hooks import HookedModule, HookPoint


@contextlib.contextmanager
def zero_ablate(model: HookedModule, heads: Iterable[tuple[int, int]]) -> Iterator[HookedModule]:
    """Zero the output (z) of each (layer, head) for the duration of the block."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))

    def make(idx: list[int]):
        def hook(z: torch.Tensor, hook: HookPoint) -> torch.Tensor:
            z = z.clone()
            z[:, :, idx] = 0.0
            return z

        return hook

    with model.hooks([(f"blocks.{layer}.attn.hook_z", make(idx)) for layer, idx in by_layer.items()]):
        yield model
