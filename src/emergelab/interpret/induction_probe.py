"""Measuring a transformer on repeated random segments (`tasks.induction`): the losses that show
in-context learning, the head scores that show induction heads, and the ablations that confirm them.

Pure measurement: no store, no run. The `induction` experiment streams `measure` over training and
runs the ablations on the final model; any other caller (a notebook, another experiment) can too.

Devices: the forward passes run on the model's device (the batch is moved there); head scores are
computed on the CPU, where the batch was drawn: the attention patterns come back (a few MB), the
detection masks are built from the CPU batch and never move.

Example:
    >>> batch = InductionTask(InductionTaskConfig()).sample(128, torch.Generator().manual_seed(0))
    >>> losses, scores = measure(model, batch, icl_early=4, icl_late=56)
    >>> losses["repeated_loss"], scores["prefix_matching"].shape     # float, (n_layers, n_heads)
    >>> control = ablation_control([(1, 0)], prev={(0, 2)}, prefix_grid=grid, n_layers=2, n_heads=4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..devices import to_device
from ..models.transformer import Transformer, per_token_loss
from ..tasks.induction import InductionBatch, InductionTask
from .ablation import zero_ablate
from .heads import detection_patterns, head_scores, prefix_matching_pattern, stack_patterns

Head = tuple[int, int]  # (layer, head)
LOSS_KEYS = ("loss", "repeated_loss", "first_loss", "icl_score")


def _patterns_only(name: str) -> bool:
    return name.endswith("hook_pattern")


def _on_model(model: torch.nn.Module, batch: InductionBatch) -> InductionBatch:
    return to_device(batch, next(model.parameters()).device)


@torch.no_grad()
def measure(model: Transformer, batch: InductionBatch, icl_early: int,
            icl_late: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Losses and every head score of `model` on `batch`, from one forward pass.

    Returns ({"loss", "repeated_loss", "first_loss", "icl_score"}: float, {score kind: (n_layers, n_heads)}).
    ICL score = mean loss at target position `icl_late` minus at `icl_early` (negative: later tokens are easier).
    """
    model.eval()
    on = _on_model(model, batch)
    logits, cache = model.run_with_cache(on.tokens, names=_patterns_only)
    tok_loss = per_token_loss(logits, on.tokens)  # (B, T-1)
    rep = on.repeated
    losses = {
        "loss": tok_loss.mean().item(),
        "repeated_loss": tok_loss[rep].mean().item(),
        "first_loss": tok_loss[~rep].mean().item(),
        "icl_score": (tok_loss[:, icl_late].mean() - tok_loss[:, icl_early].mean()).item(),
    }
    T = batch.tokens.shape[1]
    patterns = stack_patterns(cache, model.cfg.n_layers).cpu()  # (L, B, H, T, T), scored on the CPU
    prefix = prefix_matching_pattern(batch.start, batch.segment_len, batch.n_repeats, T)
    return losses, head_scores(patterns, detection_patterns(batch.tokens), prefix)


@torch.no_grad()
def split_losses(model: Transformer, batch: InductionBatch) -> tuple[float, float]:
    """(repeated-token loss, first-occurrence loss) of `model` on `batch`."""
    on = _on_model(model, batch)
    tok_loss = per_token_loss(model(on.tokens), on.tokens)  # (B, T-1)
    return tok_loss[on.repeated].mean().item(), tok_loss[~on.repeated].mean().item()


def ablation_control(ablated: Sequence[Head], prev: set[Head], prefix_grid: Sequence[Sequence[float]],
                     n_layers: int, n_heads: int) -> list[Head]:
    """As many heads as `ablated`, chosen among the others, to ablate as a control.

    Heads that are not previous-token heads (`prev`) come first (the ablated heads' own layers first, lowest
    prefix-matching score first); previous-token heads only when nothing else is left, since induction heads
    compose with them and ablating them breaks induction too.
    """
    layers = {layer for layer, _ in ablated}
    others = [(layer, head) for layer in range(n_layers) for head in range(n_heads) if (layer, head) not in ablated]
    others.sort(key=lambda lh: ((lh in prev), lh[0] not in layers, prefix_grid[lh[0]][lh[1]]))
    return others[: len(ablated)]


def ablation_effects(model: Transformer, batch: InductionBatch, ablated: Sequence[Head], control: Sequence[Head],
                     prev: set[Head]) -> dict[str, Any]:
    """Split losses clean, with `ablated` zeroed, with `control` zeroed, and with each single head zeroed
    (losses rounded to 6 digits): the summary's "ablation" section."""
    clean_rep, clean_first = split_losses(model, batch)
    with zero_ablate(model, ablated):
        abl_rep, abl_first = split_losses(model, batch)
    with zero_ablate(model, control):
        ctl_rep, ctl_first = split_losses(model, batch)
    per_head = []
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            with zero_ablate(model, [(layer, head)]):
                r, f = split_losses(model, batch)
            per_head.append({"layer": layer, "head": head, "repeated_loss": round(r, 6), "first_loss": round(f, 6)})
    return {
        "heads": [{"layer": l_, "head": h} for l_, h in ablated],
        "control_heads": [{"layer": l_, "head": h} for l_, h in control],
        "control_includes_previous_token_heads": any(lh in prev for lh in control),
        "clean_repeated_loss": round(clean_rep, 6), "clean_first_loss": round(clean_first, 6),
        "ablated_repeated_loss": round(abl_rep, 6), "ablated_first_loss": round(abl_first, 6),
        "control_repeated_loss": round(ctl_rep, 6), "control_first_loss": round(ctl_first, 6),
        "per_head": per_head,
    }


@torch.no_grad()
def example_attention(model: Transformer, task: InductionTask, batch: InductionBatch, induction_heads: list[dict],
                      prev_heads: list[dict], index: int = 0) -> dict[str, Any]:
    """Every head's attention pattern on sequence `index` of `batch`, with its role (induction heads first,
    then previous-token heads, then the others): {"tokens", "repeat", "heads": [{"layer", "head", "role",
    "pattern": (T, T) nested lists, rounded to 4 digits}]}."""
    one = _on_model(model, batch).tokens[index: index + 1]  # (1, T)
    _, cache = model.run_with_cache(one, names=_patterns_only)
    patterns = stack_patterns(cache, model.cfg.n_layers)[:, 0].cpu()  # (L, H, T, T)
    roles = {(h["layer"], h["head"]): "induction" for h in induction_heads}
    for h in prev_heads:
        roles.setdefault((h["layer"], h["head"]), "previous_token")
    heads = [{"layer": layer, "head": head, "role": roles.get((layer, head), "other"),
              "pattern": [[round(v, 4) for v in row] for row in patterns[layer, head].tolist()]}
             for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    order = {"induction": 0, "previous_token": 1, "other": 2}
    heads.sort(key=lambda h: (order[h["role"]], h["layer"], h["head"]))
    return {"tokens": task.token_labels(batch.tokens[index]), "repeat": batch.repeat_of(index), "heads": heads}
