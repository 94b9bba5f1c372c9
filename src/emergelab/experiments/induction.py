"""`induction`: in-context learning emerges with induction heads (Olsson et al. 2022).

Trains attention-only transformers of several depths (default: 2 layers and a 1-layer
control) on repeated random segments, watches the repeated-token loss fall in a sudden phase
change while induction heads form (2 layers only: induction needs a previous-token head in an
earlier layer), and confirms the mechanism by ablating the heads it names.

Store layout (metric names, per model label such as "2L"):
    {label}/train/loss, {label}/train/lr
    {label}/probe/{loss, repeated_loss, first_loss, icl_score}
    {label}/heads/{previous_token, duplicate_token, induction, prefix_matching}/L{l}H{h}
Results: "summary" (what summary.json holds) and "example/{label}" (attention on one sequence).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import from_dict, invalid
from ..emergence.phase import detect_phase_change
from ..errors import StoreError
from ..interpret.ablation import zero_ablate
from ..interpret.heads import detection_patterns, head_scores, prefix_matching_pattern, stack_patterns
from ..models.transformer import Transformer, TransformerConfig, per_token_loss
from ..registry import experiments
from ..runs.context import RunContext
from ..runs.store import Run, RunStore
from ..tasks.induction import InductionBatch, InductionTask, InductionTaskConfig
from ..train.checkpoint import list_checkpoints, load_model
from ..train.loop import Callback, TrainConfig, TrainState, train
from .base import Experiment, check_seed_and_threads

SCORE_KINDS = ("previous_token", "duplicate_token", "induction", "prefix_matching")
PROBE_SEED_OFFSET = 1_000_003  # probe/eval data never coincide with a training batch
EVAL_SEED_OFFSET = 2_000_003


@dataclass
class InductionModelConfig:
    depths: list[int] = field(default_factory=lambda: [2, 1])  # one model per depth; summary keys "2L", "1L"
    d_model: int = 48
    n_heads: int = 4  # must divide d_model
    d_mlp: int = 0  # 0 = attention-only, the setting where induction heads are cleanest
    layernorm: bool = False
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.depths:
            invalid("depths", "must list at least one depth")
        if any(d < 1 for d in self.depths):
            invalid("depths", "every depth must be >= 1")
        if len(set(self.depths)) != len(self.depths):
            invalid("depths", "depths must be distinct")
        if self.d_model < 1:
            invalid("d_model", "must be >= 1")
        if self.n_heads < 1 or self.d_model % self.n_heads:
            invalid("n_heads", f"must divide d_model ({self.d_model})")
        if self.d_mlp < 0:
            invalid("d_mlp", "must be >= 0")


@dataclass
class InductionAnalysisConfig:
    probe_size: int = 128  # fixed probe batch for telemetry
    eval_size: int = 512  # fresh batch for the final evaluation and ablations
    icl_early: int = 4  # ICL score = loss at target position icl_late - loss at icl_early
    icl_late: int = 56
    induction_threshold: float = 0.3  # prefix-matching score that names an induction head
    previous_token_threshold: float = 0.4  # previous-token score that names a previous-token head
    min_drop_fraction: float = 0.5  # phase change: repeated-token loss falls by >= this fraction
    max_window_fraction: float = 0.5  # ... inside a window of at most this fraction of training
    smooth_window: int = 3  # points in the moving average before detection

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("probe_size", "eval_size", "smooth_window"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")
        if not 0 <= self.icl_early < self.icl_late:
            invalid("icl_late", f"must be > icl_early ({self.icl_early}) >= 0")
        for key in ("induction_threshold", "previous_token_threshold", "min_drop_fraction", "max_window_fraction"):
            if not 0 < getattr(self, key) <= 1:
                invalid(key, "must be in (0, 1]")


def _default_train() -> TrainConfig:
    return TrainConfig(steps=2000, batch_size=64, lr=3e-3, weight_decay=0.01, warmup_steps=100,
                       schedule="constant", grad_clip=1.0, log_every=50, checkpoint_every=250)


@dataclass
class InductionConfig:
    seed: int = 0  # model init, training data and probes all derive from it
    threads: int = 0  # torch threads; 0 = torch's default (all cores)
    task: InductionTaskConfig = field(default_factory=InductionTaskConfig)
    model: InductionModelConfig = field(default_factory=InductionModelConfig)
    train: TrainConfig = field(default_factory=_default_train)
    analysis: InductionAnalysisConfig = field(default_factory=InductionAnalysisConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_seed_and_threads(self)
        if self.analysis.icl_late >= self.task.seq_len - 1:
            invalid("analysis.icl_late", f"must be < task.seq_len - 1 ({self.task.seq_len - 1})")

    def transformer(self, depth: int) -> TransformerConfig:
        m = self.model
        return TransformerConfig(n_layers=depth, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
                                 n_ctx=self.task.seq_len, d_vocab=self.task.d_vocab, layernorm=m.layernorm,
                                 tie_embeddings=m.tie_embeddings)


def label_of(depth: int) -> str:
    return f"{depth}L"


def head_name(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


# --- measuring a model ------------------------------------------------------------------------
@torch.no_grad()
def measure(model: Transformer, batch: InductionBatch, icl_early: int, icl_late: int) -> dict[str, Any]:
    """Losses, ICL score and every head score of `model` on `batch`.

    Returns flat metrics {"probe/loss": ..., "heads/induction/L1H2": ...} plus "_scores": {kind: (L, H)}.
    """
    model.eval()
    logits, cache = model.run_with_cache(batch.tokens, names=lambda n: n.endswith("hook_pattern"))
    tok_loss = per_token_loss(logits, batch.tokens)  # (B, T-1)
    rep = batch.repeated
    out: dict[str, Any] = {
        "probe/loss": tok_loss.mean().item(),
        "probe/repeated_loss": tok_loss[rep].mean().item(),
        "probe/first_loss": tok_loss[~rep].mean().item(),
        "probe/icl_score": (tok_loss[:, icl_late].mean() - tok_loss[:, icl_early].mean()).item(),
    }
    T = batch.tokens.shape[1]
    patterns = stack_patterns(cache, model.cfg.n_layers)  # (L, B, H, T, T)
    prefix = prefix_matching_pattern(batch.start, batch.segment_len, batch.n_repeats, T)
    scores = head_scores(patterns, detection_patterns(batch.tokens), prefix)
    for kind, s in scores.items():
        for layer in range(s.shape[0]):
            for head in range(s.shape[1]):
                out[f"heads/{kind}/{head_name(layer, head)}"] = s[layer, head].item()
    out["_scores"] = scores
    return out


@torch.no_grad()
def split_losses(model: Transformer, batch: InductionBatch) -> tuple[float, float]:
    """(repeated-token loss, first-occurrence loss) on `batch`."""
    tok_loss = per_token_loss(model(batch.tokens), batch.tokens)
    return tok_loss[batch.repeated].mean().item(), tok_loss[~batch.repeated].mean().item()


class Telemetry(Callback):
    """Streams probe metrics of one model to the store every log step."""

    def __init__(self, ctx: RunContext, label: str, probe: InductionBatch, cfg: InductionConfig):
        self.ctx, self.label, self.probe, self.cfg = ctx, label, probe, cfg

    def on_train_start(self, state: TrainState) -> None:
        # Metrics after the checkpoint we resume from will be logged again, identically.
        self.ctx.store.delete_metrics_after(self.ctx.id, state.step, prefix=f"{self.label}/")

    def on_log(self, state: TrainState) -> None:
        a = self.cfg.analysis
        values = {k: v for k, v in measure(state.model, self.probe, a.icl_early, a.icl_late).items()
                  if not k.startswith("_")}
        if state.step > 0:
            values["train/loss"] = state.window_loss
            values["train/lr"] = state.lr
        self.ctx.log(state.step, values, prefix=f"{self.label}/")


def sample(task: InductionTask, n: int, seed: int) -> InductionBatch:
    return task.sample(n, torch.Generator().manual_seed(seed))


# --- training ---------------------------------------------------------------------------------
def train_models(cfg: InductionConfig, ctx: RunContext, resume: bool = False) -> None:
    task = InductionTask(cfg.task)
    probe = sample(task, cfg.analysis.probe_size, cfg.seed + PROBE_SEED_OFFSET)
    with ctx.progress:
        for depth in cfg.model.depths:
            label = label_of(depth)
            if ctx.store.get_result(ctx.id, f"trained/{label}"):
                continue
            model = Transformer(cfg.transformer(depth), seed=cfg.seed + depth)
            bar = ctx.progress.add_task(f"{ctx.id} {label}", total=cfg.train.steps, loss="-")

            def show(state: TrainState, bar: int = bar) -> None:
                ctx.progress.update(bar, completed=state.step, loss=f"{state.loss:.3f}")

            t0 = time.perf_counter()
            before = ctx.store.get_result(ctx.id, f"wall_seconds/{label}", 0.0)
            try:
                train(model, lambda m, b: m.loss(b.tokens), lambda s, g: task.sample(cfg.train.batch_size, g),
                      cfg.train, seed=cfg.seed + depth, checkpoint_dir=ctx.dir / "checkpoints" / label,
                      resume=resume, callbacks=[Telemetry(ctx, label, probe, cfg)], progress=show, label=label)
            finally:
                ctx.store.put_result(ctx.id, f"wall_seconds/{label}", before + time.perf_counter() - t0)
            ctx.store.put_result(ctx.id, f"trained/{label}", True)


# --- analysis (store + checkpoints only) ------------------------------------------------------
def _scores_at(metrics: dict, label: str, kind: str, n_layers: int, n_heads: int, step: int) -> list[list[float]]:
    grid = []
    for layer in range(n_layers):
        row = []
        for head in range(n_heads):
            steps, values = metrics[f"{label}/heads/{kind}/{head_name(layer, head)}"]
            i = min(range(len(steps)), key=lambda j: abs(steps[j] - step))  # nearest logged step
            row.append(values[i])
        grid.append(row)
    return grid


def _named(grid: list[list[float]], threshold: float) -> list[dict]:
    heads = [{"layer": layer, "head": head, "score": round(v, 4)}
             for layer, row in enumerate(grid) for head, v in enumerate(row) if v >= threshold]
    return sorted(heads, key=lambda h: -h["score"])


def final_model(store: RunStore, run: Run, cfg: InductionConfig, depth: int) -> Transformer:
    found = list_checkpoints(run.dir / "checkpoints" / label_of(depth))
    if not found or found[-1][0] != cfg.train.steps:
        raise StoreError(f"Run {run.id} has no final checkpoint for {label_of(depth)}; resume it first")
    return load_model(found[-1][1], Transformer(cfg.transformer(depth), seed=None))


def analyze_model(store: RunStore, run: Run, cfg: InductionConfig, depth: int) -> tuple[dict, dict]:
    """-> (summary for this model, example attention for the report)."""
    label, a = label_of(depth), cfg.analysis
    n_layers, n_heads = depth, cfg.model.n_heads
    metrics = store.metrics(run.id, prefix=f"{label}/")
    steps, rep = metrics[f"{label}/probe/repeated_loss"]
    phase = detect_phase_change(steps, rep, min_drop_fraction=a.min_drop_fraction,
                                max_window_fraction=a.max_window_fraction, smooth_window=a.smooth_window)
    last = steps[-1]
    final = {k: round(metrics[f"{label}/probe/{k}"][1][-1], 6) for k in ("loss", "repeated_loss", "first_loss",
                                                                          "icl_score")}
    prefix_final = _scores_at(metrics, label, "prefix_matching", n_layers, n_heads, last)
    prev_final = _scores_at(metrics, label, "previous_token", n_layers, n_heads, last)
    induction_heads = _named(prefix_final, a.induction_threshold)
    prev_heads = _named(prev_final, a.previous_token_threshold)
    rose = []
    if phase["detected"]:
        for kind in ("prefix_matching", "previous_token"):
            g0 = _scores_at(metrics, label, kind, n_layers, n_heads, phase["start_step"])
            g1 = _scores_at(metrics, label, kind, n_layers, n_heads, phase["end_step"])
            rose += [{"kind": kind, "layer": layer, "head": head, "before": round(g0[layer][head], 4),
                      "after": round(g1[layer][head], 4)}
                     for layer in range(n_layers) for head in range(n_heads)
                     if g1[layer][head] - g0[layer][head] >= 0.1]

    model = final_model(store, run, cfg, depth)
    task = InductionTask(cfg.task)
    batch = sample(task, a.eval_size, cfg.seed + EVAL_SEED_OFFSET)
    clean_rep, clean_first = split_losses(model, batch)
    ablated = [(h["layer"], h["head"]) for h in induction_heads]
    # Control: as many other heads. Heads that are not previous-token heads come first (induction heads'
    # own layers first, lowest prefix-matching score first); previous-token heads only when nothing else
    # is left, since induction heads compose with them and ablating them breaks induction too.
    prev = {(h["layer"], h["head"]) for h in prev_heads}
    layers = {layer for layer, _ in ablated}
    others = [(layer, head) for layer in range(n_layers) for head in range(n_heads) if (layer, head) not in ablated]
    others.sort(key=lambda lh: ((lh in prev), lh[0] not in layers, prefix_final[lh[0]][lh[1]]))
    control = others[: len(ablated)]
    with zero_ablate(model, ablated):
        abl_rep, abl_first = split_losses(model, batch)
    with zero_ablate(model, control):
        ctl_rep, ctl_first = split_losses(model, batch)
    per_head = []
    for layer in range(n_layers):
        for head in range(n_heads):
            with zero_ablate(model, [(layer, head)]):
                r, f = split_losses(model, batch)
            per_head.append({"layer": layer, "head": head, "repeated_loss": round(r, 6), "first_loss": round(f, 6)})

    summary = {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "phase_change": phase,
        "final": final,
        "induction_heads": induction_heads,
        "previous_token_heads": prev_heads,
        "heads_rising_in_window": rose,
        "ablation": {
            "heads": [{"layer": l_, "head": h} for l_, h in ablated],
            "control_heads": [{"layer": l_, "head": h} for l_, h in control],
            "control_includes_previous_token_heads": any(lh in prev for lh in control),
            "clean_repeated_loss": round(clean_rep, 6), "clean_first_loss": round(clean_first, 6),
            "ablated_repeated_loss": round(abl_rep, 6), "ablated_first_loss": round(abl_first, 6),
            "control_repeated_loss": round(ctl_rep, 6), "control_first_loss": round(ctl_first, 6),
            "per_head": per_head,
        },
        "wall_seconds": round(store.get_result(run.id, f"wall_seconds/{label}", 0.0), 2),
    }
    example = example_attention(model, task, batch, induction_heads, prev_heads)
    return summary, example


@torch.no_grad()
def example_attention(model: Transformer, task: InductionTask, batch: InductionBatch,
                      induction_heads: list[dict], prev_heads: list[dict], index: int = 0) -> dict:
    tokens = batch.tokens[index: index + 1]
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    roles = {(h["layer"], h["head"]): "induction" for h in induction_heads}
    for h in prev_heads:
        roles.setdefault((h["layer"], h["head"]), "previous_token")
    heads = []
    for layer in range(model.cfg.n_layers):
        pat = cache[f"blocks.{layer}.attn.hook_pattern"][0]  # (H, T, T)
        for head in range(model.cfg.n_heads):
            heads.append({"layer": layer, "head": head, "role": roles.get((layer, head), "other"),
                          "pattern": [[round(v, 4) for v in row] for row in pat[head].tolist()]})
    order = {"induction": 0, "previous_token": 1, "other": 2}
    heads.sort(key=lambda h: (order[h["role"]], h["layer"], h["head"]))
    return {
        "tokens": task.token_labels(tokens[0]),
        "repeat": {"start": int(batch.start[index]), "segment_len": int(batch.segment_len[index]),
                   "n_repeats": batch.n_repeats},
        "heads": heads,
    }


def target_checks(cfg: InductionConfig, models: dict[str, dict]) -> list[dict]:
    """The issue's targets, evaluated on this run (deepest model vs the 1-layer control)."""
    checks = []

    def add(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": bool(passed), "detail": detail})

    ln_v = math.log(cfg.task.vocab_size)
    deep = max(cfg.model.depths)
    if deep >= 2:
        s = models[label_of(deep)]
        pc = s["phase_change"]
        add(f"{deep}L: phase change detected", pc["detected"],
            f"window {pc['start_step']}-{pc['end_step']}" if pc["detected"] else pc["reason"])
        add(f"{deep}L: final repeated-token loss <= 1.0 nat", s["final"]["repeated_loss"] <= 1.0,
            f"{s['final']['repeated_loss']:.3f} nats")
        add(f"{deep}L: induction heads in the last layer",
            any(h["layer"] == deep - 1 for h in s["induction_heads"]),
            ", ".join(head_name(h["layer"], h["head"]) for h in s["induction_heads"]) or "none")
        add(f"{deep}L: previous-token head in an earlier layer",
            any(h["layer"] < deep - 1 for h in s["previous_token_heads"]),
            ", ".join(head_name(h["layer"], h["head"]) for h in s["previous_token_heads"]) or "none")
        ab = s["ablation"]
        rise = ab["ablated_repeated_loss"] - ab["clean_repeated_loss"]
        moved = abs(ab["ablated_first_loss"] - ab["clean_first_loss"])
        add(f"{deep}L: ablating induction heads raises repeated-token loss by >= 1 nat, first-occurrence "
            "loss moves < 1/4 of that", rise >= 1.0 and moved < rise / 4,
            f"rise {rise:.2f} nats, first-occurrence moved {moved:.3f}")
    if 1 in cfg.model.depths:
        s1 = models["1L"]
        add("1L: no phase change", not s1["phase_change"]["detected"], s1["phase_change"]["reason"] or "detected")
        add("1L: repeated-token loss stays >= 0.6 ln(vocab)", s1["final"]["repeated_loss"] >= 0.6 * ln_v,
            f"{s1['final']['repeated_loss']:.3f} vs {0.6 * ln_v:.3f}")
        if deep >= 2:
            r = models[label_of(deep)]["final"]["repeated_loss"] / s1["final"]["repeated_loss"]
            add(f"{deep}L repeated-token loss <= 30% of 1L's", r <= 0.3, f"{r:.1%}")
    return checks


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    cfg = from_dict(InductionConfig, run.config)
    summary: dict[str, Any] = {}
    for depth in cfg.model.depths:
        summary[label_of(depth)], example = analyze_model(store, run, cfg, depth)
        store.put_result(run.id, f"example/{label_of(depth)}", example)
    summary["checks"] = target_checks(cfg, summary)
    summary["wall_seconds"] = round(sum(summary[label_of(d)]["wall_seconds"] for d in cfg.model.depths), 2)
    return summary


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    cfg = from_dict(InductionConfig, run.config)
    summary = store.get_result(run.id, "summary")
    if summary is None:
        raise StoreError(f"Run {run.id} has no analysis yet; resume it first")
    models = {}
    for depth in cfg.model.depths:
        label = label_of(depth)
        metrics = store.metrics(run.id, prefix=f"{label}/")
        models[label] = {
            "n_layers": depth,
            "n_heads": cfg.model.n_heads,
            "metrics": {name[len(label) + 1:]: {"steps": s, "values": v} for name, (s, v) in metrics.items()},
            "summary": summary[label],
            "example": store.get_result(run.id, f"example/{label}"),
        }
    return {
        "run": run.info(),
        "config": run.config,
        "models": models,
        "checks": summary.get("checks", []),
    }


def report(store: RunStore, run: Run) -> str:
    from ..report.induction import render_induction_report

    return render_induction_report(report_data(store, run))


EXPERIMENT = experiments.register(
    "induction",
    "2-layer vs 1-layer attention-only transformers: induction heads form in a phase change (Olsson 2022)",
)(Experiment("induction", InductionConfig, train_models, analyze, report,
              sweep_metrics=("2L.final.repeated_loss", "2L.phase_change.detected", "2L.phase_change.steepest_step",
                             "1L.final.repeated_loss", "wall_seconds")))
