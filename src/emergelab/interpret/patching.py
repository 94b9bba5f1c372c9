"""Activation patching and attribution patching, on trace's names, for our models and transformers models.

Activation patching (Meng et al. 2022; Wang et al. 2022; Heimersheim & Nanda 2024) runs the model on a
corrupted input with one activation taken from the clean run, and measures how much of the clean behaviour
that one activation restores, by a user metric on the output logits (e.g. a logit difference):

    effect[l, j] = metric(corrupted run with unit (l, j) patched from the clean run) - metric(corrupted)
    normalized   = effect / (metric(clean) - metric(corrupted))      (1 = fully restored; 0 where clean ==
                                                                      corrupted (within 1e-6 relative), the
                                                                      ratio being undefined)

Grids (`what`), L blocks, T positions, H query heads:

    resid_pre / resid_post   (L, T)  the stream entering / leaving block l at position t (hook_resid_pre/post)
    attn_out / mlp_out       (L, T)  what the attention / MLP of block l adds at position t
    heads                    (L, H)  the per-head output z of head h of block l, every position at once (hook_z)

Exact patching costs one forward per cell; they are batched, `batch_size` patched copies of the corrupted
input per forward (default: as many as keep about 2,048 tokens in one forward).

Attribution patching (Nanda 2023, "Attribution Patching: Activation Patching At Industrial Scale") estimates
every cell to first order from one clean forward and one corrupted forward + backward:

    effect[l, j] ~= sum over the cell's elements of (act_clean - act_corrupted) * d metric / d act  (at corrupted)

The metric takes the logits (B, T, V) of a batch as large as the inputs' and returns a scalar tensor (for
exact patching it is called on each patched copy separately, so it must not depend on the batch size);
models without logits (BertModel) give their first output tensor instead.

Example:
    >>> clean, corrupt = ids_repeat, ids_first_half_changed        # (B, T) each, same shape
    >>> answer = ids_repeat[:, -1]
    >>> metric = lambda logits: logits[:, -2].gather(-1, answer[:, None]).mean()
    >>> exact = activation_patching(lm, clean, corrupt, metric, what="resid_pre")
    >>> approx = attribution_patching(lm, clean, corrupt, metric, what="resid_pre")
    >>> exact.effect.shape, exact.rows[0], exact.cols[:2]        # (L, T), 'blocks.0.hook_resid_pre', tokens
    >>> patching_figure(exact)                                     # report/patching_figures.py
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from .intervene import edit
from .tracing import Target, resolve, trace

__all__ = ["GRIDS", "PatchingResult", "activation_patching", "attribution_patching"]

Metric = Callable[[torch.Tensor], torch.Tensor]
GRIDS = {"resid_pre": "hook_resid_pre", "resid_post": "hook_resid_post", "attn_out": "hook_attn_out",
         "mlp_out": "hook_mlp_out", "heads": "attn.hook_z"}
EMBED = "hook_embed"  # the token embeddings, interpolated by attribution_patching(steps > 1)
TOKENS_PER_FORWARD = 2048  # exact patching's default batch: patched copies x B x T stay near this


@dataclass
class PatchingResult:
    """One patching grid. `effect` and `normalized` are (L, T) or (L, H) on the CPU, float32."""

    what: str  # a key of GRIDS
    method: str  # "exact" (activation patching) or "attribution" (its first-order estimate)
    effect: torch.Tensor  # metric(patched) - metric(corrupted)
    normalized: torch.Tensor  # effect / (clean - corrupted); zeros where clean == corrupted
    rows: list[str]  # the activation name of each row (one per block)
    cols: list[str]  # tokens of the clean input's first example (or position numbers), or 'H0', 'H1', ...
    clean: float  # metric on the clean inputs
    corrupted: float  # metric on the corrupted inputs
    seconds: float = 0.0
    forwards: int = 0  # forward passes (attribution: 1 clean + `steps` corrupted, each with a backward)
    corrupted_cols: list[str] | None = field(default=None)  # the corrupted input's tokens (position grids)

    @property
    def layers(self) -> list[str]:
        """Short row labels: 'L0', 'L1', ..."""
        return [f"L{i}" for i in range(len(self.rows))]


def activation_patching(model: Any, clean: Any, corrupted: Any, metric: Metric, what: str = "resid_pre",
                        batch_size: int | None = None) -> PatchingResult:
    """Exact activation patching of the `what` grid (see the module docstring): one patched corrupted run per
    cell, `batch_size` cells per forward.

    model: one of our HookedModules, a transformers model, or an HFModel (then text inputs are tokenized).
    clean, corrupted: inputs as `trace` takes them (token ids (B, T), a BatchEncoding, text), of equal shape.
    metric: logits (B, T, V) -> scalar tensor.
    Returns a PatchingResult with effect (L, T) or (L, H).

    Example:
        >>> r = activation_patching(lm, clean_ids, corrupt_ids, metric, what="heads")
        >>> r.effect.shape                                   # (L, H)
    """
    start = time.perf_counter()
    grid = _Grid.of(model, clean, corrupted, what)
    with torch.no_grad():
        cache = trace(model, grid.clean, names=grid.rows)
        clean_value = _metric(metric, grid.target, cache.output)
        corrupt_value = _metric(metric, grid.target, grid.target.call(grid.corrupted))
        B = grid.batch
        k_max = batch_size or max(1, min(grid.units, TOKENS_PER_FORWARD // max(1, B * grid.length)))
        if isinstance(k_max, bool) or not isinstance(k_max, int) or k_max < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        effect = torch.zeros(len(grid.rows), grid.units)
        forwards = 2
        repeated: dict[int, Any] = {}
        for row, name in enumerate(grid.rows):
            source = cache[name]  # (B, T, ...) clean
            for first in range(0, grid.units, k_max):
                units = list(range(first, min(first + k_max, grid.units)))
                k = len(units)
                if k not in repeated:
                    repeated[k] = _repeat(grid.corrupted, k)
                with edit(grid.target.model, {name: _patcher(source, units, grid.axis)}):
                    output = grid.target.call(repeated[k])
                logits = _logits(grid.target, output)
                for i, unit in enumerate(units):
                    effect[row, unit] = float(metric(logits[i * B:(i + 1) * B])) - corrupt_value
                forwards += 1
    return grid.result("exact", effect, clean_value, corrupt_value, time.perf_counter() - start, forwards)


def attribution_patching(model: Any, clean: Any, corrupted: Any, metric: Metric, what: str = "resid_pre",
                         steps: int = 1) -> PatchingResult:
    """Attribution patching (Nanda 2023): the first-order estimate of `activation_patching`'s grid,
    (act_clean - act_corrupted) . grad of the metric at the corrupted run, summed over each cell (the batch
    and the features; for `heads` also every position), from one clean forward and one corrupted forward and
    backward. Arguments and result as in `activation_patching` (method "attribution").

    steps > 1: the gradient is averaged over `steps` runs whose token embeddings (`hook_embed`) go from the
        corrupted input's (alpha 0: the plain estimate's run) towards the clean one's (alpha = k / steps), as in
        EAP-IG (Hanna et al. 2024): an integrated-gradients estimate, less fooled where attention is saturated
        in the corrupted run (a head that attends nowhere useful has no gradient there), at 1 + steps passes.

    Example:
        >>> approx = attribution_patching(lm, clean_ids, corrupt_ids, metric)   # (L, T), in ~3 passes
        >>> better = attribution_patching(lm, clean_ids, corrupt_ids, metric, steps=8)
    """
    start = time.perf_counter()
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    grid = _Grid.of(model, clean, corrupted, what)
    if steps > 1 and EMBED not in grid.target.sites:
        raise ConfigError(f"steps > 1 interpolates the token embeddings ('{EMBED}'), which {grid.target.what} "
                          f"does not name")
    cache = trace(model, grid.clean, names=grid.rows + ([EMBED] if steps > 1 else []))
    clean_value = _metric(metric, grid.target, cache.output)
    corrupt_acts: dict[str, torch.Tensor] = {}
    total: list[torch.Tensor | None] = [None] * len(grid.rows)
    corrupt_value = 0.0
    for k in range(steps):
        acts: dict[str, torch.Tensor] = {}
        leaves: dict[str, torch.Tensor] = {}
        edits: dict[str, Any] = dict.fromkeys(grid.rows, _tap(acts, leaves))
        if k:
            edits[EMBED] = _towards(cache[EMBED], k / steps)
        with torch.enable_grad(), edit(grid.target.model, edits):
            value = metric(_logits(grid.target, grid.target.call(grid.corrupted)))
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ConfigError("The metric must return a scalar tensor (e.g. a mean logit difference)")
            if not value.requires_grad:
                raise ConfigError("The metric does not depend on the logits it was given: nothing to differentiate")
            grads = torch.autograd.grad(value, [leaves[n] for n in grid.rows], allow_unused=True)
        if k == 0:
            corrupt_acts, corrupt_value = acts, float(value.detach())
        for i, grad in enumerate(grads):
            if grad is not None:
                total[i] = grad / steps if total[i] is None else total[i] + grad / steps
    rows = []
    for name, grad in zip(grid.rows, total, strict=True):
        delta = cache[name].to(corrupt_acts[name].device) - corrupt_acts[name]
        product = delta * grad if grad is not None else torch.zeros_like(delta)
        keep = grid.axis  # sum over everything but the unit axis
        rows.append(product.sum(dim=[d for d in range(product.dim()) if d != keep]).float().cpu())
    effect = torch.stack(rows)
    return grid.result("attribution", effect, clean_value, corrupt_value, time.perf_counter() - start, 1 + steps)


def _tap(acts: dict[str, torch.Tensor], leaves: dict[str, torch.Tensor]) -> Callable[..., torch.Tensor]:
    """An edit that records the activation and adds a zero leaf to it: the leaf's gradient is the activation's,
    and the graph stays whole (upstream layers keep theirs; frozen parameters do not matter)."""
    def tap(t: torch.Tensor, name: str) -> torch.Tensor:
        acts[name] = t.detach()
        leaves[name] = torch.zeros_like(t, requires_grad=True)
        return t + leaves[name]

    return tap


def _towards(clean: torch.Tensor, alpha: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """An edit moving an activation a fraction `alpha` of the way to its clean value."""
    def move(t: torch.Tensor) -> torch.Tensor:
        return t + alpha * (clean.to(t.device, t.dtype) - t)

    return move


# --- the grid: inputs, names, labels ----------------------------------------------------------------------------
@dataclass
class _Grid:
    target: Target
    what: str
    clean: Any  # encoded inputs
    corrupted: Any
    rows: list[str]
    axis: int  # the unit axis of each activation: 1 (positions) or 2 (heads of z, (B, T, H, D))
    units: int
    batch: int
    length: int
    ids: tuple[torch.Tensor | None, torch.Tensor | None]

    @classmethod
    def of(cls, model: Any, clean: Any, corrupted: Any, what: str) -> _Grid:
        if what not in GRIDS:
            raise ConfigError(f"Unknown patching grid '{what}' (choose from {', '.join(GRIDS)})")
        target = resolve(model)
        clean, corrupted = target.encode(clean), target.encode(corrupted)
        shapes = _shapes(clean), _shapes(corrupted)
        if not shapes[0]:
            raise ConfigError("Patching needs tensor inputs (token ids (B, T), a BatchEncoding, or text)")
        if shapes[0] != shapes[1]:
            raise ConfigError(f"Clean and corrupted inputs must have the same shape (equal length): "
                              f"{_show(shapes[0])} vs {_show(shapes[1])}")
        B, T = shapes[0][0][:2] if len(shapes[0][0]) >= 2 else (shapes[0][0][0], 1)
        n_layers = len(target.blocks)
        if not n_layers:
            raise ConfigError(f"Patching needs a model whose blocks are known; {target.what} has none mapped")
        rows = [target.layer_name(layer, GRIDS[what]) for layer in range(n_layers)]
        axis = 2 if what == "heads" else 1
        units = T
        if what == "heads":
            units = target.n_heads or _heads_of(target, rows[0], clean)
        return cls(target, what, clean, corrupted, rows, axis, units, B, T, (_ids(clean), _ids(corrupted)))

    def result(self, method: str, effect: torch.Tensor, clean: float, corrupted: float, seconds: float,
               forwards: int) -> PatchingResult:
        span = clean - corrupted
        same = abs(span) <= 1e-6 * max(1.0, abs(clean))  # clean == corrupted (up to float rounding)
        normalized = torch.zeros_like(effect) if same else effect / span
        if self.what == "heads":
            cols, corrupted_cols = [f"H{h}" for h in range(self.units)], None
        else:
            cols, corrupted_cols = self.tokens(self.ids[0]), self.tokens(self.ids[1])
        return PatchingResult(self.what, method, effect.float(), normalized.float(), self.rows, cols, clean,
                              corrupted, seconds, forwards, corrupted_cols)

    def tokens(self, ids: torch.Tensor | None) -> list[str]:
        tok = self.target.tokenizer
        if ids is None or ids.dim() != 2 or ids.shape[1] != self.length:
            return [str(t) for t in range(self.length)]
        first = ids[0].tolist()
        if tok is not None and hasattr(tok, "convert_ids_to_tokens"):
            return [str(t) for t in tok.convert_ids_to_tokens(first)]
        return [str(t) for t in first]


def _shapes(inputs: Any) -> list[tuple[int, ...]]:
    values = inputs.values() if isinstance(inputs, Mapping) else inputs if isinstance(inputs, tuple) else [inputs]
    return [tuple(v.shape) for v in values if isinstance(v, torch.Tensor)]


def _show(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(str(s) for s in shapes)


def _ids(inputs: Any) -> torch.Tensor | None:
    if isinstance(inputs, Mapping):
        ids = inputs.get("input_ids")
    else:
        ids = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
    return ids if isinstance(ids, torch.Tensor) and not ids.is_floating_point() else None


def _heads_of(target: Target, name: str, inputs: Any) -> int:
    """Our models: the number of heads, read off one traced z (B, T, H, D) (stopped after block 0)."""
    return int(trace(target.model, inputs, names=[name], stop_at_layer=1)[name].shape[2])


def _repeat(inputs: Any, k: int) -> Any:
    """The inputs k times along the batch axis (tensors only)."""
    def rep(v: Any) -> Any:
        return v.repeat(k, *[1] * (v.dim() - 1)) if isinstance(v, torch.Tensor) and v.dim() else v

    if isinstance(inputs, Mapping):
        return {key: rep(v) for key, v in inputs.items()}
    if isinstance(inputs, tuple):
        return tuple(rep(v) for v in inputs)
    return rep(inputs)


def _patcher(source: torch.Tensor, units: list[int], axis: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Patched copy i (batch rows i*B .. (i+1)*B - 1) takes unit units[i] (a position or a head) from `source`."""
    def patch(t: torch.Tensor) -> torch.Tensor:
        k = len(units)
        B = t.shape[0] // k
        view = t.view(k, B, *t.shape[1:])  # (k, B, T, ...)
        shape = [k] + [1] * (view.dim() - 1)
        shape[axis + 1] = t.shape[axis]
        mask = torch.zeros(shape, dtype=torch.bool, device=t.device)
        index = [slice(None)] * len(shape)
        for i, unit in enumerate(units):
            index[0], index[axis + 1] = i, unit
            mask[tuple(index)] = True
        return torch.where(mask, source.to(t.dtype)[None], view).reshape(t.shape)

    return patch


def _logits(target: Target, output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    first = output[0] if isinstance(output, (tuple, list)) or hasattr(output, "to_tuple") else None
    if isinstance(first, torch.Tensor):
        return first
    raise ConfigError(f"{target.what} returned {type(output).__name__}: no logits for the metric")


def _metric(metric: Metric, target: Target, output: Any) -> float:
    value = metric(_logits(target, output))
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ConfigError("The metric must return a scalar tensor (e.g. a mean logit difference)")
    return float(value)
