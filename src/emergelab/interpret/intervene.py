"""Interventions through trace's names: `edit` replaces activations, `ablate_heads` / `ablate` remove them.

`trace()` reads an activation where a canonical name (or a module path) lives; `edit()` writes it there, by
the same sites (`interpret/names.py`) and the same hook code (`Target.hook` in tracing.py), on our HookedModules
and on any `transformers` model of a mapped family:

    OUTPUT sites   a forward hook returns the module's output with its first tensor replaced (tuples and
                   ModelOutputs keep their other elements)
    INPUT / HEADS  a forward pre-hook replaces the module's first input (or `hidden_states`); `attn.hook_z`
                   is edited as (B, T, H, D) (per query head, also under grouped-query attention)

Attention patterns (`attn.hook_pattern`) of transformers models cannot be edited (the weights are applied
inside the attention module): edit `attn.hook_z`. On our own models every HookPoint can be edited.

Ablation (Olsson et al. 2022; Wang et al. 2022): `how` says what replaces the ablated activation

    zero      zeros
    mean      the per-position mean over a reference batch of inputs (T_ref >= T; positions 0..T-1 are used)
    resample  the same activation on other inputs: the reference batch (same batch size, or 1) at the same
              positions, or, without a reference, the other examples of the batch itself (rolled by one)

Every hook is removed when the block ends, whatever happens inside it. The context managers compute
nothing themselves (the reference batch of mean / resample ablation is traced once, on entry), and they do
not switch off gradients: `edit` also serves attribution patching (interpret/patching.py).

Example:
    >>> with edit(lm, {"blocks.3.hook_resid_post": lambda x: x * 0.5}):
    ...     logits = lm.model(ids).logits
    >>> with edit(model, {"blocks.0.attn.hook_z": clean_z}):          # a tensor replaces the activation
    ...     patched = model(corrupted_ids)
    >>> with ablate_heads(lm, [(3, 1), (4, 7)], how="mean", reference=other_ids):
    ...     ablated = lm.model(ids).logits
    >>> with ablate(lm, ["blocks.0.hook_resid_pre"], positions=[5], how="resample", reference=other_ids):
    ...     ...
"""

from __future__ import annotations

import contextlib
import inspect
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch

from ..errors import ConfigError
from .tracing import Handle, Target, TraceCache, resolve, trace

__all__ = ["ABLATIONS", "ReferenceMismatch", "ablate", "ablate_heads", "ablate_names", "edit", "head_names"]

ABLATIONS = ("zero", "mean", "resample")
Z = "attn.hook_z"  # (B, T, H, D)
Edit = Callable[..., torch.Tensor | None] | torch.Tensor


@contextlib.contextmanager
def edit(model: Any, edits: Mapping[str, Edit]) -> Iterator[Any]:
    """Replace the named activations for the duration of the block; yields `model`.

    edits: {name: fn or tensor}. A name is a canonical name (`activation_names(model)`) or a module path.
        fn(activation) or fn(activation, name) -> the new activation (same shape), or None to keep the
        activation (edited in place); it runs in every forward inside the block.
        A tensor replaces the activation (broadcast to its shape, cast to its dtype and device).
    Shapes are trace's (`interpret/tracing.py`): (B, T, C) for the stream, (B, T, H, D) for `attn.hook_z`.
    An unknown name is an UnknownActivationName listing the valid ones; hooks are removed on exit, always.

    Example:
        >>> def zero_head_2(z):                       # z: (B, T, H, D)
        ...     z = z.clone(); z[:, :, 2] = 0; return z
        >>> with edit(lm, {"blocks.1.attn.hook_z": zero_head_2}):
        ...     out = lm.model(ids)
    """
    target = resolve(model)
    if not isinstance(edits, Mapping):
        raise ConfigError(f"edit() takes a mapping {{name: function or tensor}}, got {type(edits).__name__}")
    names = target.select(list(edits))
    handles: list[Handle] = []
    try:
        for name, module in zip(names, target.modules(names), strict=True):
            handles.append(target.hook(name, module, _writer(name, edits[name]), write=True))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def _writer(name: str, value: Edit) -> Callable[[torch.Tensor], torch.Tensor | None]:
    if isinstance(value, torch.Tensor):
        def replace(t: torch.Tensor) -> torch.Tensor:
            try:
                return torch.broadcast_to(value.to(dtype=t.dtype, device=t.device), t.shape)
            except RuntimeError:
                raise ConfigError(f"The tensor for '{name}' has shape {tuple(value.shape)}, which does not "
                                  f"broadcast to the activation's {tuple(t.shape)}") from None

        return replace
    if not callable(value):
        raise ConfigError(f"The edit of '{name}' must be a function or a tensor, got {type(value).__name__}")
    if _positional_arity(value) >= 2:
        return lambda t: value(t, name)
    return value


def _positional_arity(fn: Callable) -> int:
    """How many positional arguments `fn` takes (2 or more: it also gets the name); 1 when unknown."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


# --- ablation ---------------------------------------------------------------------------------------------------
class ReferenceMismatch(ConfigError, ValueError):
    """The reference of a mean / resample ablation does not fit the inputs (too short, another batch size)."""


Source = Callable[[torch.Tensor], torch.Tensor]  # activation (B, T, ...) -> what replaces it, broadcastable


def ablate_heads(model: Any, heads: Iterable[tuple[int, int]], how: str = "zero", reference: Any = None,
                 positions: Sequence[int] | None = None) -> contextlib.AbstractContextManager[Any]:
    """Ablate attention heads for the duration of the block (yields `model`): the per-head output z
    (`blocks.{layer}.attn.hook_z`, (B, T, H, D), one per query head also under grouped-query attention) of
    each (layer, head) is replaced by zeros, its mean, or its value on other inputs (`how`, see the module
    docstring), at every position or only at `positions` (query positions; negative counts from the end).

    reference: inputs of the model (what `trace` takes: token ids (B_ref, T_ref), a BatchEncoding, text with an
        HFModel), or a TraceCache holding the heads' `attn.hook_z`; needed for how="mean", optional for
        "resample" (default: the batch's other examples).

    Example:
        >>> with ablate_heads(lm, [(4, 2), (5, 7)], how="mean", reference=random_ids):   # SmolLM2: 9 heads
        ...     loss = lm.model(ids, labels=ids).loss
    """
    return ablate_names(model, head_names(model, heads), how, reference, positions)


def head_names(model: Any, heads: Iterable[tuple[int, int]], prefix: str | None = None) -> dict[str, list[int]]:
    """{`blocks.{layer}.attn.hook_z`: [heads]} for (layer, head) pairs, checked against the model (unknown layer:
    UnknownActivationName; head out of range: ConfigError). prefix: the path in front of `blocks.` on our
    wrapped models (None: found)."""
    target = resolve(model)
    by_layer: dict[int, list[int]] = {}
    for item in heads:
        layer, head = _head(item)
        by_layer.setdefault(layer, []).append(head)
    names = {}
    for layer, idx in by_layer.items():
        name = target.layer_name(layer, Z) if prefix is None else target.select([f"{prefix}blocks.{layer}.{Z}"])[0]
        _check_heads(target, name, idx)
        names[name] = sorted(set(idx))
    return names


def ablate(model: Any, names: Sequence[str] | str, how: str = "zero", reference: Any = None,
           positions: Sequence[int] | None = None) -> contextlib.AbstractContextManager[Any]:
    """Ablate whole activations (any names `trace` knows, (B, T, ...)) at every position or at `positions`,
    for the duration of the block; `how` and `reference` as in `ablate_heads`.

    Example:
        >>> with ablate(lm, "blocks.0.hook_resid_pre", positions=[3], how="resample", reference=other_ids):
        ...     out = lm.model(ids)               # token 3 enters the blocks as it was in the other inputs
    """
    wanted = [names] if isinstance(names, str) else list(names)
    return ablate_names(model, dict.fromkeys(resolve(model).select(wanted)), how, reference, positions)


def _head(item: Any) -> tuple[int, int]:
    try:
        layer, head = item
        if isinstance(layer, bool) or isinstance(head, bool):
            raise TypeError
        return operator.index(layer), operator.index(head)  # ints, numpy or 0-d torch integers
    except (TypeError, ValueError):
        raise ConfigError(f"A head is a (layer, head) pair of integers, got {item!r}") from None


def _check_heads(target: Target, name: str, idx: list[int]) -> None:
    n = target.n_heads if target.n_heads is not None else _our_heads(target.model)
    bad = [h for h in idx if not 0 <= h < (n if n is not None else 1 << 30)]
    if bad:
        raise ConfigError(f"No head {bad[0]} in '{name}': {target.what} has {n} heads per layer (0..{n - 1})")


def _our_heads(model: torch.nn.Module) -> int | None:
    for module in model.modules():
        cfg = getattr(module, "cfg", None)
        if isinstance(getattr(cfg, "n_heads", None), int):
            return cfg.n_heads
    return None


@contextlib.contextmanager
def ablate_names(model: Any, names: Mapping[str, list[int] | None], how: str = "zero", reference: Any = None,
                 positions: Sequence[int] | None = None) -> Iterator[Any]:
    """Replace each named activation (checked names, e.g. from `head_names`) by its ablation source; where
    heads are listed (`attn.hook_z` names) only those heads (axis 2); only at `positions` (axis 1) if given."""
    target = resolve(model)
    if how not in ABLATIONS:
        raise ConfigError(f"Unknown ablation '{how}' (choose from {', '.join(ABLATIONS)})")
    if positions is not None:
        positions = [_position(p) for p in positions]
    sources = _sources(model, target, list(names), how, reference)

    def writer(name: str, heads: list[int] | None) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn(t: torch.Tensor) -> torch.Tensor:
            return torch.where(_mask(t, heads, positions, name), sources[name](t), t)

        return fn

    with edit(model, {name: writer(name, heads) for name, heads in names.items()}):
        yield model


def _position(p: Any) -> int:
    try:
        if isinstance(p, bool):
            raise TypeError
        return operator.index(p)
    except TypeError:
        raise ConfigError(f"Positions are integers, got {p!r}") from None


def _mask(t: torch.Tensor, heads: list[int] | None, positions: list[int] | None, name: str) -> torch.Tensor:
    """(1, T, H, 1) (heads) or (1, T, 1, ...) booleans: True where the activation is ablated."""
    T = t.shape[1]
    if positions is not None and any(not -T <= p < T for p in positions):
        bad = next(p for p in positions if not -T <= p < T)
        raise ConfigError(f"Position {bad} is outside the {T} positions of '{name}'")
    rows = torch.arange(T) if positions is None else torch.tensor(positions, dtype=torch.long) % T
    if heads is None:
        mask = torch.zeros(T, dtype=torch.bool)
        mask[rows] = True
        return mask.view(1, T, *[1] * (t.dim() - 2)).to(t.device)
    mask = torch.zeros(T, t.shape[2], dtype=torch.bool)
    mask[rows[:, None], torch.tensor(heads, dtype=torch.long)[None, :]] = True
    return mask.view(1, T, t.shape[2], *[1] * (t.dim() - 3)).to(t.device)


def _sources(model: Any, target: Target, names: list[str], how: str, reference: Any) -> dict[str, Source]:
    if how == "zero":
        return {name: torch.zeros_like for name in names}
    if how == "mean" and reference is None:
        raise ConfigError("Mean ablation needs reference inputs (reference=...): the mean is taken over them")
    if reference is None:  # resample from the batch itself
        def other_examples(t: torch.Tensor) -> torch.Tensor:
            if t.shape[0] < 2:
                raise ConfigError("Resample ablation without a reference needs a batch of at least 2 inputs")
            return t.roll(1, dims=0)

        return dict.fromkeys(names, other_examples)
    cache = reference if isinstance(reference, TraceCache) else trace(model, reference, names=names)
    missing = [n for n in names if n not in cache]
    if missing:
        raise ReferenceMismatch(f"The reference has no '{missing[0]}'")
    return {name: (_mean_source if how == "mean" else _resample_source)(name, cache[name]) for name in names}


def _mean_source(name: str, ref: torch.Tensor) -> Source:
    mean = ref.mean(0)  # (T_ref, ...)

    def source(t: torch.Tensor) -> torch.Tensor:
        T = t.shape[1]
        if mean.shape[0] < T:
            raise ReferenceMismatch(f"The reference of '{name}' has {mean.shape[0]} positions; these inputs have {T}: "
                              "take the mean on inputs at least as long")
        return mean[:T].to(dtype=t.dtype, device=t.device)  # broadcast over the batch

    return source


def _resample_source(name: str, ref: torch.Tensor) -> Source:
    def source(t: torch.Tensor) -> torch.Tensor:
        B, T = t.shape[:2]
        if ref.shape[1] < T or ref.shape[0] not in (B, 1):
            raise ReferenceMismatch(f"The reference of '{name}' has shape {tuple(ref.shape)}; resampling a batch of "
                              f"{tuple(t.shape)} needs {B} (or 1) inputs of at least {T} positions")
        return ref[:, :T].to(dtype=t.dtype, device=t.device)

    return source
