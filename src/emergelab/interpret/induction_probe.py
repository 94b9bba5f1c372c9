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
    >>> control = ablation_control([(1, 0)], prev={(0, 2)}, n_layers=2, n_heads=4, draws=10, rng=random.Random(0))
    >>> ablation_effects(model, batch, [(1, 0)], control, kind="mean")["control"]["repeated_loss"]
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..devices import to_device
from ..models.transformer import Transformer, per_token_loss
from ..tasks.induction import InductionBatch, InductionTask
from .ablation import head_means, mean_ablate, zero_ablate
from .heads import detection_patterns, head_scores, prefix_matching_pattern, stack_patterns

Head = tuple[int, int]  # (layer, head)
LOSS_KEYS = ("loss", "repeated_loss", "first_loss", "icl_score")
ABLATION_KINDS = ("mean", "zero")  # how an ablated head is removed (`ablation_effects`)


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


def head_dicts(heads: Sequence[Head]) -> list[dict[str, int]]:
    return [{"layer": layer, "head": head} for layer, head in heads]


def _layers_text(layers: Sequence[int]) -> str:
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(str(x) for x in layers)


def ablation_control(named: Sequence[Head], prev: set[Head], n_layers: int, n_heads: int, draws: int,
                     rng: random.Random) -> dict[str, Any]:
    """The control for ablating the `named` induction heads: sets of as many heads that are not part of the
    induction circuit, to ablate in their place. Previous-token heads (`prev`) are part of the circuit (the
    induction heads read their output), so no control ever holds one.

    The pool is the heads that are neither named nor previous-token heads, from the named heads' own layers
    when those hold enough of them ("same_layers"), else from every layer ("other_layers"). With more
    possible sets than `draws`, `draws` distinct sets are drawn at random (`rng`); otherwise every set is
    used. A model with fewer such heads than named ones gets one set of all of them ("fewer_heads"); one
    with none, or no named heads, gets no control ("none").

    Returns {"choice", "how" (a sentence for readers), "n_heads", "pool", "sets": [[Head, ...], ...],
    "exhaustive" (every possible set is in "sets")}.
    """
    named_set, k = set(named), len(named)
    outside = [(layer, head) for layer in range(n_layers) for head in range(n_heads)
               if (layer, head) not in named_set and (layer, head) not in prev]
    named_layers = sorted({layer for layer, _ in named})
    same = [lh for lh in outside if lh[0] in named_layers]
    circuit = "that are neither induction nor previous-token heads"

    def result(choice: str, how: str, pool: list[Head], sets: list[list[Head]], exhaustive: bool) -> dict:
        return {"choice": choice, "how": how, "n_heads": len(sets[0]) if sets else 0, "pool": pool, "sets": sets,
                "exhaustive": exhaustive}

    if not k:
        return result("none", "no induction heads were named, so there is nothing to control for", [], [], True)
    if not outside:
        return result("none", "every head is an induction or previous-token head, so no head is left to ablate "
                              "as a control", [], [], True)
    if len(outside) < k:
        few = (f"only {len(outside)} heads {circuit}" if len(outside) > 1 else
               "only 1 head that is neither an induction nor a previous-token head")
        return result("fewer_heads", f"{few} (fewer than the {k} induction heads): "
                                     f"{'all of them, as one set' if len(outside) > 1 else 'that head alone'}",
                      outside, [outside], True)
    choice, pool = ("same_layers", same) if len(same) >= k else ("other_layers", outside)
    own = "layer" if len(named_layers) == 1 else "layers"
    where = (f"in {_layers_text(named_layers)} (the induction heads' {own}) {circuit}" if choice == "same_layers"
             else f"in any layer {circuit} ({_layers_text(named_layers)} {'has' if own == 'layer' else 'have'} "
                  "too few)")
    n_sets = math.comb(len(pool), k)
    if n_sets <= draws:
        sets = [list(c) for c in itertools.combinations(pool, k)]
        drawn = "the only possible set" if n_sets == 1 else f"every one of the {n_sets} possible sets"
    else:
        seen: set[tuple[Head, ...]] = set()
        sets = []
        while len(sets) < draws:  # terminates: more possible sets than draws
            s = tuple(sorted(rng.sample(pool, k)))
            if s not in seen:
                seen.add(s)
                sets.append(list(s))
        drawn = f"{draws} random sets of the {n_sets} possible"
    how = f"{k} of the {len(pool)} heads {where}; {drawn}"
    return result(choice, how, pool, sets, n_sets <= draws)


def control_effects(control: dict[str, Any], losses: Callable[[Sequence[Head]], tuple[float, float]]) -> dict[str, Any]:
    """The "control" section of an ablation summary: `losses(heads) -> (repeated loss, first loss)` with each set of
    `control` (`ablation_control`) removed, rounded to 6 digits; "repeated_loss" and "first_loss" are the means over
    the sets (None without a control), with the smallest and largest repeated loss and the standard deviation over
    the sets beside them. Shared by every model family's ablation (this module's and `lm_induction_probe`'s)."""
    draws = []
    for heads in control["sets"]:
        r, f = losses(heads)
        draws.append({"heads": head_dicts(heads), "repeated_loss": round(r, 6), "first_loss": round(f, 6)})
    reps = [d["repeated_loss"] for d in draws]

    def stat(value: float | None) -> float | None:
        return None if value is None else round(value, 6)

    return {
        "choice": control["choice"], "how": control["how"], "n_heads": control["n_heads"],
        "pool": head_dicts(control["pool"]), "exhaustive": control["exhaustive"], "draws": draws,
        "repeated_loss": stat(statistics.fmean(reps) if reps else None),
        "first_loss": stat(statistics.fmean(d["first_loss"] for d in draws) if draws else None),
        "repeated_loss_min": stat(min(reps, default=None)), "repeated_loss_max": stat(max(reps, default=None)),
        "repeated_loss_std": stat(statistics.pstdev(reps) if reps else None),
    }


def _ablator(model: Transformer, batch: InductionBatch, kind: str) -> Callable[[Sequence[Head]], Any]:
    if kind == "zero":
        return lambda heads: zero_ablate(model, heads)
    if kind == "mean":
        means = head_means(model, _on_model(model, batch).tokens)
        return lambda heads: mean_ablate(model, heads, means)
    raise ValueError(f"unknown ablation kind {kind!r}: use one of {', '.join(ABLATION_KINDS)}")


def ablation_effects(model: Transformer, batch: InductionBatch, ablated: Sequence[Head], control: dict[str, Any],
                     kind: str = "mean") -> dict[str, Any]:
    """Split losses clean, with the `ablated` heads removed, with each set of the `control`
    (`ablation_control`) removed, and with each single head removed: the summary's "ablation" section.

    kind: "mean" (each removed head writes its average output over `batch`, position by position) or
    "zero" (it writes nothing). Losses rounded to 6 digits; the control's "repeated_loss" and "first_loss"
    are the means over its sets (None without a control), with the smallest and largest repeated loss and
    the standard deviation over the sets beside them.
    """
    ablate = _ablator(model, batch, kind)

    def losses(heads: Sequence[Head]) -> tuple[float, float]:
        with ablate(heads):
            return split_losses(model, batch)

    clean_rep, clean_first = split_losses(model, batch)
    abl_rep, abl_first = losses(ablated)
    ctl = control_effects(control, losses)
    per_head = []
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            r, f = losses([(layer, head)])
            per_head.append({"layer": layer, "head": head, "repeated_loss": round(r, 6), "first_loss": round(f, 6)})
    return {
        "kind": kind,
        "heads": head_dicts(ablated),
        "clean_repeated_loss": round(clean_rep, 6), "clean_first_loss": round(clean_first, 6),
        "ablated_repeated_loss": round(abl_rep, 6), "ablated_first_loss": round(abl_first, 6),
        "control": ctl,
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
