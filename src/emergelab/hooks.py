"""HookPoints: named identity modules where activations can be read, ablated or patched.

Names follow TransformerLens (`blocks.0.attn.hook_pattern`), so users already know them.
A `HookedModule` gives every HookPoint its dotted name and offers:

- `run_with_cache(*args, names=...)` -> (output, ActivationCache)
- `hooks([(name_or_filter, fn), ...])` a context manager; hooks are removed on exit, always.

A hook function is `fn(activation, hook) -> new_activation | None` (None keeps the value).

Example:
    >>> logits, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    >>> cache["blocks.1.attn.hook_pattern"].shape      # (B, n_heads, T, T)
    >>> def zero_head(z, hook): z[:, :, 2] = 0          # z: (B, T, n_heads, d_head)
    >>> with model.hooks([("blocks.1.attn.hook_z", zero_head)]):
    ...     ablated = model(tokens)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]
NameFilter = str | Sequence[str] | Callable[[str], bool] | None


class HookPoint(nn.Module):
    """Identity; exists so that forward hooks can be attached at a stable, named place."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""

    @property
    def active(self) -> bool:
        """True when something is listening (models use it to pick a slower, inspectable path)."""
        return bool(self._forward_hooks)

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        def wrapped(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            return fn(output, self)

        return self.register_forward_hook(wrapped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _matcher(names: NameFilter) -> Callable[[str], bool]:
    if names is None:
        return lambda n: True
    if callable(names):
        return names
    if isinstance(names, str):
        return lambda n: n == names
    wanted = set(names)
    return lambda n: n in wanted


class ActivationCache(dict):
    """name -> tensor, detached. `cache["blocks.0.attn.hook_pattern"]` or `cache["pattern", 0]`."""

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, tuple):
            short, layer = key
            matches = [k for k in self if k.startswith(f"blocks.{layer}.") and k.endswith(f"hook_{short}")]
            if len(matches) != 1:
                raise KeyError(f"{key!r} matches {matches or 'nothing'} in the cache")
            key = matches[0]
        return super().__getitem__(key)


class HookedModule(nn.Module):
    """Base class: call `self.setup_hooks()` at the end of `__init__`."""

    def setup_hooks(self) -> None:
        self.hook_points: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_points[name] = module

    def hook_names(self) -> list[str]:
        return list(self.hook_points)

    def _resolve(self, names: NameFilter) -> list[HookPoint]:
        if isinstance(names, str) and names not in self.hook_points:
            from .registry import did_you_mean

            raise KeyError(f"No hook point '{names}'.{did_you_mean(names, self.hook_names())}")
        if isinstance(names, (list, tuple, set)):
            for n in names:
                self._resolve(n)
        match = _matcher(names)
        return [hp for n, hp in self.hook_points.items() if match(n)]

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[NameFilter, HookFn]]) -> Iterator[HookedModule]:
        """Attach forward hooks for the duration of the block; they are removed even on error."""
        handles = []
        try:
            for names, fn in fwd_hooks:
                for hp in self._resolve(names):
                    handles.append(hp.add_hook(fn))
            yield self
        finally:
            for h in handles:
                h.remove()

    def run_with_cache(
        self, *args: Any, names: NameFilter = None, **kwargs: Any
    ) -> tuple[Any, ActivationCache]:
        """Forward pass that records the (detached) output of every HookPoint matching `names`."""
        cache = ActivationCache()

        def save(x: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = x.detach()

        with self.hooks([(names, save)]):
            out = self(*args, **kwargs)
        return out, cache
