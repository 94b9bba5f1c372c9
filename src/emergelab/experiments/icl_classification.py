"""`icl-classification`: in-context vs in-weights learning on bursty item-label sequences (Reddy 2023).

A small attention-only transformer reads N item-label pairs and a query item (all D-dim vectors) through a
`VectorSequenceModel` (linear read-in, our Transformer, a linear read-out over the L labels at the last
position) and names the query's label. Bursty training data (the query's class appears B times in the
context) makes the network learn to look its label up in context (ICL); non-bursty data (B = 0) leaves only
memorising class -> label (IWL); Zipfian class frequencies let both coexist (Chan et al. 2022).

Metrics over training (fixed probe batches, see tasks/bursty.py):
    probe/icl_accuracy           novel classes with random labels: only the context can tell
    probe/iwl_accuracy           trained classes, the query's class absent from the context
    probe/flip_follows_context   trained classes, labels permuted consistently: prediction = permuted label
    probe/flip_follows_weights   ... prediction = the label the weights learned
    heads/previous_token/L{l}H{h}  attention from each label token to the item just before it (pairing)
    heads/induction/L{l}H{h}       attention from the query to the label tokens that follow items of the
                                   query's class (the ICL look-up), on the novel-class probe
Phase change: emergence/phase.py on 1 - ICL accuracy in excess of the copy-a-context-label plateau (see
`icl_gap`).

Store layout: the metrics above plus train/{loss, lr}; results "summary", "wall_seconds", "trained".

The three regimes of the issue (2,000 steps each, about 4-5 minutes on one busy core):
    >>> run_experiment("icl-classification")                                      # bursty B = 4: ICL >= 0.9
    >>> run_experiment("icl-classification", overrides=["task.burstiness=0"])     # control: ICL at chance
    >>> run_experiment("icl-classification", overrides=["task.zipf_alpha=1", "task.n_classes=512"])  # both
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F

from ..devices import to_device
from ..emergence.phase import detect_phase_change
from ..interpret.heads import attention_patterns, query_mean_score
from ..models.sequence import VectorSequenceModel, vector_config
from ..report.icl_classification import render_icl_classification_report
from ..runs.context import RunContext
from ..runs.names import metric
from ..runs.store import Run, RunStore
from ..tasks.bursty import BurstyBatch, BurstyProbes, BurstyTask, head_score_masks, make_probes
from . import kit
from .configs.icl_classification import ICLClassificationConfig
from .head_scores import head_grid_at, head_score_metrics, heads_rising

SCORE_KINDS = ("previous_token", "induction")
PROBES = ("icl_accuracy", "iwl_accuracy", "flip_follows_context", "flip_follows_weights")


def make_model(cfg: ICLClassificationConfig, seed: int | None) -> VectorSequenceModel:
    """tokens (B, 2N+1, D) -> label logits (B, L) at the query (last) position."""
    return VectorSequenceModel(cfg.task.dim, cfg.task.n_labels, vector_config(cfg.task.seq_len, **asdict(cfg.model)),
                               read_at="last", seed=seed)


def loss_fn(model: VectorSequenceModel, batch: BurstyBatch) -> torch.Tensor:
    return F.cross_entropy(model(batch.tokens), batch.target)


# --- measuring a model ------------------------------------------------------------------------
def probes_at(seed: int, task: BurstyTask, n: int, burstiness: int) -> BurstyProbes:
    return make_probes(task, n, burstiness, kit.generator(seed))


@torch.no_grad()
def head_score_grid(model: VectorSequenceModel, batch: BurstyBatch) -> dict[str, torch.Tensor]:
    """{kind: (n_layers, n_heads)} mean attention mass on the keys of `head_score_masks`."""
    patterns = attention_patterns(model, batch.tokens)  # (L, B, H, T, T)
    return {k: query_mean_score(patterns, m) for k, m in head_score_masks(batch).items()}


@torch.no_grad()
def accuracies(model: VectorSequenceModel, probes: BurstyProbes) -> dict[str, float]:
    was = model.training
    model.eval()
    icl = (model(probes.novel.tokens).argmax(-1) == probes.novel.target).float().mean().item()
    iwl = (model(probes.no_context.tokens).argmax(-1) == probes.no_context.target).float().mean().item()
    flip_pred = model(probes.flip.tokens).argmax(-1)
    follows_ctx = (flip_pred == probes.flip.target).float().mean().item()
    follows_w = (flip_pred == probes.flip.weights_target).float().mean().item()
    model.train(was)
    return {"icl_accuracy": icl, "iwl_accuracy": iwl, "flip_follows_context": follows_ctx,
            "flip_follows_weights": follows_w}


@torch.no_grad()
def measure(model: VectorSequenceModel, probes: BurstyProbes) -> dict[str, float]:
    """probe/{accuracies} and heads/{kind}/L{l}H{h} on `probes` (moved to the model's device)."""
    probes = to_device(probes, next(model.parameters()).device)
    out = {metric("probe", k): v for k, v in accuracies(model, probes).items()}
    was = model.training
    model.eval()
    out |= head_score_metrics(head_score_grid(model, probes.novel))
    model.train(was)
    return out


# --- training ---------------------------------------------------------------------------------
def train_model(cfg: ICLClassificationConfig, ctx: RunContext, resume: bool = False) -> None:
    task = BurstyTask(cfg.task)
    probes = probes_at(kit.probe_seed(cfg.seed), task, cfg.analysis.probe_size, cfg.analysis.probe_burstiness)
    callback = kit.ProbeCallback(ctx, lambda state: measure(state.model, probes))
    kit.train_timed(ctx, make_model(cfg, cfg.seed), loss_fn, lambda s, g: task.sample(cfg.train.batch_size, g),
                    cfg.train, seed=cfg.seed, resume=resume, callbacks=[callback], device=cfg.device)


# --- analysis (store + checkpoints only) ------------------------------------------------------
def copy_baseline(cfg: ICLClassificationConfig) -> float:
    """ICL-probe accuracy of a model that copies a random context label: the probe's context holds
    n_context / probe_burstiness classes. Networks reach this plateau early, before the look-up forms."""
    return cfg.analysis.probe_burstiness / cfg.task.n_context


def icl_gap(icl: list[float], baseline: float) -> list[float]:
    """1 - ICL accuracy in excess of the copying plateau, (acc - b) / (1 - b) clipped at 0.

    The phase change is detected on this curve, so its window brackets the jump from the copying plateau to
    the look-up rather than the early, easy rise to the plateau (1 - acc would merge both).
    """
    return [1 - max(0.0, (v - baseline) / (1 - baseline)) for v in icl]


def target_checks(cfg: ICLClassificationConfig, final: dict[str, float], phase: dict,
                  heads: dict[str, list[list[float]]]) -> kit.Checks:
    """The issue's targets for the regime this config trains in: Zipfian (zipf_alpha > 0), else the B = 0
    control, else bursty."""
    checks = kit.Checks()
    chance = 1 / cfg.task.n_labels
    a = cfg.analysis
    icl, iwl = final["icl_accuracy"], final["iwl_accuracy"]
    if cfg.task.zipf_alpha > 0:
        checks.add("Zipfian: ICL and in-weights accuracy both well above chance (>= 5x)",
                   icl >= 5 * chance and iwl >= 5 * chance, f"ICL {icl:.3f}, IWL {iwl:.3f}, chance {chance:.3f}")
    elif cfg.task.burstiness == 0 or cfg.task.p_bursty == 0:
        # The probe context has N / probe_burstiness classes: a model that merely copies some context label
        # scores probe_burstiness / N; "near chance" allows up to half of that.
        limit = max(3 * chance, 0.5 * copy_baseline(cfg))
        checks.add("B = 0: novel-class ICL accuracy stays near chance", icl <= limit,
                   f"{icl:.3f} (chance {chance:.3f}, limit {limit:.3f})")
    else:
        checks.add(f"bursty: novel-class ICL accuracy >= {a.icl_target}", icl >= a.icl_target, f"{icl:.3f}")
        checks.add("bursty: phase change in ICL accuracy", phase["detected"],
                   f"window {phase['start_step']}-{phase['end_step']}" if phase["detected"] else phase["reason"])
        if cfg.model.n_layers >= 2:
            prev, look = max(heads["previous_token"][0]), max(heads["induction"][-1])
            checks.add(f"bursty: previous-token head in layer 0 and look-up head in the last layer "
                       f"(>= {a.head_threshold})", prev >= a.head_threshold and look >= a.head_threshold,
                       f"{prev:.2f}, {look:.2f}")
    return checks


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = kit.FinishedRun(store, run, ICLClassificationConfig)
    cfg, a = view.cfg, view.cfg.analysis
    metrics = view.metrics()
    steps, icl = metrics[metric("probe", "icl_accuracy")]
    phase = detect_phase_change(steps, icl_gap(icl, copy_baseline(cfg)), min_drop_fraction=a.min_drop_fraction,
                                max_window_fraction=a.max_window_fraction, smooth_window=a.smooth_window)
    # final numbers on fresh, larger probes from the final checkpoint
    model = kit.final_checkpoint(run, make_model(cfg, seed=None), cfg.train.steps, device=cfg.device)
    probes = probes_at(kit.eval_seed(cfg.seed), BurstyTask(cfg.task), a.eval_size, a.probe_burstiness)
    final = {k: round(v, 6) for k, v in accuracies(model, to_device(probes, next(model.parameters()).device)).items()}
    L, H = cfg.model.n_layers, cfg.model.n_heads
    # head scores at 4 digits, also where rises are compared with 0.1 (as this experiment always has)
    scores = {name: (s, [round(v, 4) for v in values]) for name, (s, values) in view.metrics("heads/").items()}
    heads = {kind: head_grid_at(scores, kind, L, H, steps[-1]) for kind in SCORE_KINDS}
    rose = heads_rising(scores, SCORE_KINDS, L, H, phase["start_step"], phase["end_step"]) \
        if phase["detected"] else []
    return {
        "chance": round(1 / cfg.task.n_labels, 6),
        "copy_baseline": round(copy_baseline(cfg), 6),
        "final": final,
        "final_probe": {k: round(metrics[metric("probe", k)][1][-1], 6) for k in PROBES},
        "phase_change": phase,
        "head_scores_final": heads,
        "heads_rising_in_window": rose,
        "checks": target_checks(cfg, final, phase, heads).rows,
        "wall_seconds": round(view.result("wall_seconds", 0.0), 2),
    }


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    view = kit.FinishedRun(store, run, ICLClassificationConfig)
    return view.report_data(metrics=view.curves())


SWEEP_METRICS = ("final.icl_accuracy", "final.iwl_accuracy", "final.flip_follows_context",
                 "phase_change.steepest_step")
TINY = ("task.n_classes=64", "task.dim=15", "model.d_model=16", "train.steps=20", "train.batch_size=32",
        "train.log_every=10", "train.checkpoint_every=10", "train.warmup_steps=5", "analysis.probe_size=32",
        "analysis.eval_size=64")

EXPERIMENT = kit.register(
    "icl-classification",
    ICLClassificationConfig, train_model, analyze, report_data=report_data, render=render_icl_classification_report,
    sweep_metrics=SWEEP_METRICS, tiny=TINY)
