"""`induction`: in-context learning emerges with induction heads (Olsson et al. 2022).

Trains attention-only transformers of several depths (default: 2 layers and a 1-layer
control) on repeated random segments, watches the repeated-token loss fall in a sudden phase
change while induction heads form (2 layers only: induction needs a previous-token head in an
earlier layer), and confirms the mechanism by ablating the heads it names against a control: as many
heads outside the induction circuit (neither induction nor previous-token heads). The measurements
themselves live in `interpret/induction_probe.py`.

Store layout (metric names, per model label such as "2L"; built with `runs.names`):
    {label}/train/loss, {label}/train/lr
    {label}/probe/{loss, repeated_loss, first_loss, icl_score}
    {label}/heads/{previous_token, duplicate_token, induction, prefix_matching}/L{l}H{h}
Results: "summary" (what summary.json holds) and "example/{label}" (attention on one sequence).
"""

from __future__ import annotations

import math
import random
from typing import Any

from ..emergence.phase import detect_phase_change
from ..interpret.induction_probe import LOSS_KEYS, ablation_control, ablation_effects, example_attention, measure
from ..models.transformer import Transformer, TransformerConfig
from ..report.induction import render_induction_report
from ..runs.context import RunContext
from ..runs.names import head_name, metric
from ..runs.store import Run, RunStore
from ..tasks.induction import InductionBatch, InductionTask
from . import kit
from .configs.induction import InductionAnalysisConfig, InductionConfig
from .head_scores import head_grid_at, head_score_metrics, heads_rising, named_heads


def transformer_config(cfg: InductionConfig, depth: int) -> TransformerConfig:
    """The `Transformer` of one depth: the model section's shape on the task's context and vocabulary."""
    m = cfg.model
    return TransformerConfig(n_layers=depth, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
                             n_ctx=cfg.task.seq_len, d_vocab=cfg.task.d_vocab, layernorm=m.layernorm,
                             tie_embeddings=m.tie_embeddings)


def label_of(depth: int) -> str:
    """The model label of a depth, prefix of its metrics and key of its summary: 2 -> '2L'."""
    return f"{depth}L"


def probe_metrics(model: Transformer, probe: InductionBatch, a: InductionAnalysisConfig) -> dict[str, float]:
    """The telemetry of one log step: 'probe/{loss, ...}' and 'heads/{kind}/L{l}H{h}'."""
    losses, scores = measure(model, probe, a.icl_early, a.icl_late)
    return {**{metric("probe", k): v for k, v in losses.items()}, **head_score_metrics(scores)}


# --- training ---------------------------------------------------------------------------------
def train_models(cfg: InductionConfig, ctx: RunContext, resume: bool = False) -> None:
    task = InductionTask(cfg.task)
    probe = task.sample(cfg.analysis.probe_size, kit.generator(kit.probe_seed(cfg.seed)))
    for depth in cfg.model.depths:
        label = label_of(depth)
        model = Transformer(transformer_config(cfg, depth), seed=cfg.seed + depth)
        telemetry = kit.ProbeCallback(ctx, lambda s: probe_metrics(s.model, probe, cfg.analysis), prefix=label)
        kit.train_timed(ctx, model, lambda m, b: m.loss(b.tokens),
                        lambda step, g: task.sample(cfg.train.batch_size, g), cfg.train, seed=cfg.seed + depth,
                        resume=resume, label=label, callbacks=[telemetry], device=cfg.device)


# --- analysis (store + checkpoints only) ------------------------------------------------------
def analyze_model(view: kit.FinishedRun, depth: int) -> tuple[dict, dict]:
    """-> (summary for this model, example attention for the report)."""
    cfg, label = view.cfg, label_of(depth)
    a, n_layers, n_heads = cfg.analysis, depth, cfg.model.n_heads
    metrics = view.metrics(label + "/")
    steps, rep = metrics[metric(label, "probe", "repeated_loss")]
    phase = detect_phase_change(steps, rep, min_drop_fraction=a.min_drop_fraction,
                                max_window_fraction=a.max_window_fraction, smooth_window=a.smooth_window)
    final = {k: round(metrics[metric(label, "probe", k)][1][-1], 6) for k in LOSS_KEYS}
    prefix_final = head_grid_at(metrics, "prefix_matching", n_layers, n_heads, steps[-1], prefix=label)
    prev_final = head_grid_at(metrics, "previous_token", n_layers, n_heads, steps[-1], prefix=label)
    induction_heads = named_heads(prefix_final, a.induction_threshold)
    prev_heads = named_heads(prev_final, a.previous_token_threshold)
    rose = heads_rising(metrics, ("prefix_matching", "previous_token"), n_layers, n_heads, phase["start_step"],
                        phase["end_step"], prefix=label) if phase["detected"] else []

    model = kit.final_checkpoint(view.run, Transformer(transformer_config(cfg, depth), seed=None), cfg.train.steps,
                                 label, device=cfg.device)
    task = InductionTask(cfg.task)
    batch = task.sample(a.eval_size, kit.generator(kit.eval_seed(cfg.seed)))
    ablated = [(h["layer"], h["head"]) for h in induction_heads]
    prev = {(h["layer"], h["head"]) for h in prev_heads}
    control = ablation_control(ablated, prev, n_layers, n_heads, a.control_draws,
                               random.Random(kit.eval_seed(cfg.seed, depth)))
    ablation = ablation_effects(model, batch, ablated, control, kind=a.ablation)
    for h in ablation["control"]["pool"]:  # how far the control's heads are from being named themselves
        h["previous_token_score"] = round(prev_final[h["layer"]][h["head"]], 4)
        h["prefix_matching_score"] = round(prefix_final[h["layer"]][h["head"]], 4)
    summary = {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "phase_change": phase,
        "final": final,
        "induction_heads": induction_heads,
        "previous_token_heads": prev_heads,
        "heads_rising_in_window": rose,
        "ablation": ablation,
        "wall_seconds": round(view.result(metric("wall_seconds", label), 0.0), 2),
    }
    return summary, example_attention(model, task, batch, induction_heads, prev_heads)


def control_check(label: str, ab: dict[str, Any]) -> tuple[str, bool, str]:
    """(name, passed, detail) of the specificity check on one model's "ablation" summary: ablating as many heads
    outside the induction circuit (the control; mean over its sets) raises the repeated-token loss by at most a
    third of what ablating the induction heads does. No control, or induction heads that do not hurt: failed."""
    name = f"{label}: control ablation raises repeated-token loss by <= 1/3 of the induction heads' ablation"
    ctl, clean = ab["control"], ab["clean_repeated_loss"]
    rise = ab["ablated_repeated_loss"] - clean
    if ctl["repeated_loss"] is None:
        return name, False, f"no control: {ctl['how']} (induction heads +{rise:.2f} nats)"
    c_rise = ctl["repeated_loss"] - clean
    n_sets, lo, hi = len(ctl["draws"]), ctl["repeated_loss_min"] - clean, ctl["repeated_loss_max"] - clean
    spread = f"mean of {n_sets} sets, {lo:+.2f} to {hi:+.2f}" if n_sets > 1 else "one set"
    fewer = f", fewer than the {len(ab['heads'])} induction heads" if ctl["choice"] == "fewer_heads" else ""
    ratio = f" ({c_rise / rise:.1%})" if rise > 0 else " (the induction heads' ablation does not raise it)"
    return (name, rise > 0 and c_rise <= rise / 3,
            f"control {c_rise:+.2f} vs induction heads {rise:+.2f} nats{ratio}; {ctl['n_heads']} control "
            f"head{'s' if ctl['n_heads'] != 1 else ''}{fewer}, {spread}")


def target_checks(cfg: InductionConfig, models: dict[str, dict]) -> list[dict]:
    """The experiment's target checks, evaluated on this run (deepest model vs the 1-layer control)."""
    checks = kit.Checks()
    ln_v = math.log(cfg.task.vocab_size)
    deep = max(cfg.model.depths)
    top = label_of(deep)

    def names(heads: list[dict]) -> str:
        return ", ".join(head_name(h["layer"], h["head"]) for h in heads) or "none"

    if deep >= 2:
        s = models[top]
        pc = s["phase_change"]
        checks.add(f"{top}: phase change detected", pc["detected"],
                   f"window {pc['start_step']}-{pc['end_step']}" if pc["detected"] else pc["reason"])
        checks.add(f"{top}: final repeated-token loss <= 1.0 nat", s["final"]["repeated_loss"] <= 1.0,
                   f"{s['final']['repeated_loss']:.3f} nats")
        checks.add(f"{top}: induction heads in the last layer",
                   any(h["layer"] == deep - 1 for h in s["induction_heads"]), names(s["induction_heads"]))
        checks.add(f"{top}: previous-token head in an earlier layer",
                   any(h["layer"] < deep - 1 for h in s["previous_token_heads"]), names(s["previous_token_heads"]))
        ab = s["ablation"]
        rise = ab["ablated_repeated_loss"] - ab["clean_repeated_loss"]
        moved = abs(ab["ablated_first_loss"] - ab["clean_first_loss"])
        checks.add(f"{top}: ablating induction heads raises repeated-token loss by >= 1 nat, first-occurrence "
                   "loss moves < 1/4 of that", rise >= 1.0 and moved < rise / 4,
                   f"rise {rise:.2f} nats, first-occurrence moved {moved:.3f}")
        checks.add(*control_check(top, ab))
    if 1 in cfg.model.depths:
        s1 = models[label_of(1)]
        checks.add("1L: no phase change", not s1["phase_change"]["detected"],
                   s1["phase_change"]["reason"] or "detected")
        checks.add("1L: repeated-token loss stays >= 0.6 ln(vocab)", s1["final"]["repeated_loss"] >= 0.6 * ln_v,
                   f"{s1['final']['repeated_loss']:.3f} vs {0.6 * ln_v:.3f}")
        if deep >= 2:
            r = models[top]["final"]["repeated_loss"] / s1["final"]["repeated_loss"]
            checks.add(f"{top} repeated-token loss <= 30% of 1L's", r <= 0.3, f"{r:.1%}")
    return checks.rows


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = kit.FinishedRun(store, run, InductionConfig)
    labels = [label_of(d) for d in view.cfg.model.depths]
    summary: dict[str, Any] = {}
    for depth, label in zip(view.cfg.model.depths, labels, strict=True):
        summary[label], example = analyze_model(view, depth)
        store.put_result(run.id, metric("example", label), example)
    summary["checks"] = target_checks(view.cfg, summary)
    summary["wall_seconds"] = round(sum(summary[label]["wall_seconds"] for label in labels), 2)
    return summary


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    view = kit.FinishedRun(store, run, InductionConfig)
    summary = view.summary
    models = {}
    for depth in view.cfg.model.depths:
        label = label_of(depth)
        models[label] = {"n_layers": depth, "n_heads": view.cfg.model.n_heads, "metrics": view.curves(label + "/"),
                         "summary": summary[label], "example": view.result(metric("example", label))}
    return view.report_data(models=models)


SWEEP_METRICS = ("2L.final.repeated_loss", "2L.phase_change.detected", "2L.phase_change.steepest_step",
                 "1L.final.repeated_loss", "wall_seconds")
TINY = ("model.d_model=16", "model.n_heads=2", "task.vocab_size=16", "task.seq_len=24", "task.segment_min=3",
        "task.segment_max=6", "train.steps=40", "train.batch_size=16", "train.log_every=10",
        "train.checkpoint_every=20", "analysis.icl_late=20", "analysis.eval_size=32", "analysis.probe_size=16")

EXPERIMENT = kit.register(
    "induction",
    InductionConfig, train_models, analyze, report_data=report_data, render=render_induction_report,
    sweep_metrics=SWEEP_METRICS, tiny=TINY)
