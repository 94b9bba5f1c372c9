"""`icl-classification`: in-context vs in-weights learning on bursty item-label sequences (Reddy 2023).

A small attention-only transformer reads N item-label pairs and a query item (all D-dim vectors, through
a linear read-in) and names the query's label (a linear read-out over the L labels at the last position).
Bursty training data (the query's class appears B times in the context) makes the network learn to
look its label up in context (ICL); non-bursty data (B = 0) leaves only memorising class -> label (IWL);
Zipfian class frequencies let both coexist (Chan et al. 2022).

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

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict, invalid
from ..emergence.phase import detect_phase_change
from ..errors import StoreError
from ..hooks import HookedModule
from ..interpret.heads import query_mean_score
from ..models.transformer import Transformer, TransformerConfig
from ..registry import experiments
from ..runs.context import RunContext
from ..runs.store import Run, RunStore
from ..tasks.bursty import BurstyBatch, BurstyTask, BurstyTaskConfig
from ..train.checkpoint import list_checkpoints, load_model
from ..train.loop import Callback, TrainConfig, TrainState, train
from .base import Experiment, TransformerShape, check_seed_and_threads

PROBE_SEED_OFFSET = 1_000_003  # probe data never coincide with a training batch
EVAL_SEED_OFFSET = 2_000_003
SCORE_KINDS = ("previous_token", "induction")
PROBES = ("icl_accuracy", "iwl_accuracy", "flip_follows_context", "flip_follows_weights")


@dataclass
class ICLAnalysisConfig:
    probe_size: int = 512  # sequences per probe batch (telemetry); accuracy resolution ~ 1/512
    eval_size: int = 2048  # fresh sequences per probe for the final numbers
    probe_burstiness: int = 2  # context layout of the ICL and flip probes: N/B classes B times each
    icl_target: float = 0.9  # bursty training must reach this ICL accuracy
    min_drop_fraction: float = 0.5  # phase change: the ICL gap (see icl_gap) falls by >= this fraction ...
    max_window_fraction: float = 0.5  # ... inside a window of at most this fraction of training
    smooth_window: int = 3  # points in the moving average before detection
    head_threshold: float = 0.5  # head score that counts as a formed previous-token / look-up head

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("probe_size", "eval_size", "probe_burstiness", "smooth_window"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")
        for key in ("icl_target", "min_drop_fraction", "max_window_fraction", "head_threshold"):
            if not 0 < getattr(self, key) <= 1:
                invalid(key, "must be in (0, 1]")


def _default_train() -> TrainConfig:
    return TrainConfig(steps=2000, batch_size=128, lr=3e-3, weight_decay=0.0, warmup_steps=100,
                       schedule="constant", grad_clip=1.0, log_every=50, checkpoint_every=500)


@dataclass
class ICLClassificationConfig:
    seed: int = 0  # model init, training data and probes all derive from it (task.seed fixes the classes)
    threads: int = 0  # torch threads; 0 = torch's default (all cores)
    task: BurstyTaskConfig = field(default_factory=BurstyTaskConfig)
    # Reddy 2023's minimal network: two attention-only layers (previous-token pairing, then the look-up)
    model: TransformerShape = field(default_factory=lambda: TransformerShape(
        n_layers=2, d_model=64, n_heads=2, d_mlp=0, layernorm=False))
    train: TrainConfig = field(default_factory=_default_train)
    analysis: ICLAnalysisConfig = field(default_factory=ICLAnalysisConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_seed_and_threads(self)
        pb = self.analysis.probe_burstiness
        if self.task.n_context % pb or self.task.n_context // pb > self.task.n_labels:
            invalid("analysis.probe_burstiness", f"must divide task.n_context ({self.task.n_context}) into at "
                    f"most task.n_labels ({self.task.n_labels}) classes")

    def transformer(self) -> TransformerConfig:
        m = self.model
        # d_vocab=1 + tied embeddings: the token embedding is unused (inputs come through read_in)
        return TransformerConfig(n_layers=m.n_layers, d_model=m.d_model, n_heads=m.n_heads, d_mlp=m.d_mlp,
                                 n_ctx=self.task.seq_len, d_vocab=1, layernorm=m.layernorm, tie_embeddings=True)


class ICLClassifier(HookedModule):
    """tokens (B, 2N+1, D) -> label logits (B, L) at the query (last) position.

    Linear read-in to d_model, the transformer's `forward_embeds`, a linear read-out. Hook names carry the
    `transformer.` prefix, e.g. `transformer.blocks.1.attn.hook_pattern`.

    Example:
        >>> model = ICLClassifier(ICLClassificationConfig(), seed=0)
        >>> model(torch.randn(4, 17, 63)).shape      # (4, 32)
    """

    def __init__(self, cfg: ICLClassificationConfig, seed: int | None = 0):
        super().__init__()
        self.cfg = cfg
        d_model = cfg.model.d_model
        self.read_in = nn.Linear(cfg.task.dim, d_model)
        self.transformer = Transformer(cfg.transformer(), seed=seed)
        self.read_out = nn.Linear(d_model, cfg.task.n_labels)
        g = torch.Generator().manual_seed(seed + 1) if seed is not None else None
        with torch.no_grad():
            for lin in (self.read_in, self.read_out):
                nn.init.normal_(lin.weight, 0.0, 1 / lin.in_features ** 0.5, generator=g)
                lin.bias.zero_()
        self.setup_hooks()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        resid = self.transformer.forward_embeds(self.read_in(tokens))  # (B, T, d_model)
        return self.read_out(resid[:, -1])  # (B, L)


def loss_fn(model: ICLClassifier, batch: BurstyBatch) -> torch.Tensor:
    return F.cross_entropy(model(batch.tokens), batch.target)


# --- measuring a model ------------------------------------------------------------------------
@dataclass
class Probes:
    novel: BurstyBatch
    no_context: BurstyBatch
    flip: BurstyBatch


def make_probes(task: BurstyTask, n: int, burstiness: int, seed: int) -> Probes:
    g = torch.Generator().manual_seed(seed)
    return Probes(task.bursty(n, g, burstiness, novel=True), task.no_context(n, g),
                  task.bursty(n, g, burstiness, flip=True))


def head_masks(batch: BurstyBatch) -> dict[str, torch.Tensor]:
    """(B, T, T) 0/1 masks of the keys each score looks at, per query position.

    previous_token: label position 2i+1 -> item 2i.  induction: query (2N) -> labels of the query's class.
    """
    B, T = batch.tokens.shape[:2]
    N = (T - 1) // 2
    prev = torch.zeros(B, T, T)
    lab = torch.arange(N) * 2 + 1
    prev[:, lab, lab - 1] = 1
    ind = torch.zeros(B, T, T)
    ind[:, T - 1, lab] = batch.query_in_context.float()
    return {"previous_token": prev, "induction": ind}


@torch.no_grad()
def head_score_grid(model: ICLClassifier, batch: BurstyBatch) -> dict[str, torch.Tensor]:
    """{kind: (n_layers, n_heads)} mean attention mass on the keys of `head_masks`."""
    _, cache = model.run_with_cache(batch.tokens, names=lambda n: n.endswith("hook_pattern"))
    L = model.cfg.model.n_layers
    patterns = torch.stack([cache[f"transformer.blocks.{i}.attn.hook_pattern"] for i in range(L)])  # (L,B,H,T,T)
    return {k: query_mean_score(patterns, m) for k, m in head_masks(batch).items()}


@torch.no_grad()
def accuracies(model: ICLClassifier, probes: Probes) -> dict[str, float]:
    model.eval()
    icl = (model(probes.novel.tokens).argmax(-1) == probes.novel.target).float().mean().item()
    iwl = (model(probes.no_context.tokens).argmax(-1) == probes.no_context.target).float().mean().item()
    flip_pred = model(probes.flip.tokens).argmax(-1)
    follows_ctx = (flip_pred == probes.flip.target).float().mean().item()
    follows_w = (flip_pred == probes.flip.weights_target).float().mean().item()
    model.train()
    return {"icl_accuracy": icl, "iwl_accuracy": iwl, "flip_follows_context": follows_ctx,
            "flip_follows_weights": follows_w}


def head_name(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


@torch.no_grad()
def measure(model: ICLClassifier, probes: Probes) -> dict[str, float]:
    out = {f"probe/{k}": v for k, v in accuracies(model, probes).items()}
    was = model.training
    model.eval()
    for kind, grid in head_score_grid(model, probes.novel).items():
        for layer in range(grid.shape[0]):
            for head in range(grid.shape[1]):
                out[f"heads/{kind}/{head_name(layer, head)}"] = grid[layer, head].item()
    model.train(was)
    return out


class Telemetry(Callback):
    def __init__(self, ctx: RunContext, probes: Probes):
        self.ctx, self.probes = ctx, probes

    def on_train_start(self, state: TrainState) -> None:
        # metrics after the checkpoint we resume from are logged again, identically
        self.ctx.store.delete_metrics_after(self.ctx.id, state.step)

    def on_log(self, state: TrainState) -> None:
        values = measure(state.model, self.probes)
        if state.step > 0:
            values["train/loss"] = state.window_loss
            values["train/lr"] = state.lr
        self.ctx.log(state.step, values)


# --- training ---------------------------------------------------------------------------------
def train_model(cfg: ICLClassificationConfig, ctx: RunContext, resume: bool = False) -> None:
    if ctx.store.get_result(ctx.id, "trained"):
        return
    task = BurstyTask(cfg.task)
    probes = make_probes(task, cfg.analysis.probe_size, cfg.analysis.probe_burstiness, cfg.seed + PROBE_SEED_OFFSET)
    model = ICLClassifier(cfg, seed=cfg.seed)
    with ctx.progress:
        bar = ctx.progress.add_task(ctx.id, total=cfg.train.steps, loss="-")

        def show(state: TrainState) -> None:
            ctx.progress.update(bar, completed=state.step, loss=f"{state.loss:.3f}")

        t0 = time.perf_counter()
        before = ctx.store.get_result(ctx.id, "wall_seconds", 0.0)
        try:
            train(model, loss_fn, lambda s, g: task.sample(cfg.train.batch_size, g), cfg.train, seed=cfg.seed,
                  checkpoint_dir=ctx.dir / "checkpoints", resume=resume, callbacks=[Telemetry(ctx, probes)],
                  progress=show, label="icl")
        finally:
            ctx.store.put_result(ctx.id, "wall_seconds", before + time.perf_counter() - t0)
    ctx.store.put_result(ctx.id, "trained", True)


# --- analysis (store + checkpoints only) ------------------------------------------------------
def final_model(run: Run, cfg: ICLClassificationConfig) -> ICLClassifier:
    found = list_checkpoints(run.dir / "checkpoints")
    if not found or found[-1][0] != cfg.train.steps:
        raise StoreError(f"Run {run.id} has no final checkpoint; resume it first")
    return load_model(found[-1][1], ICLClassifier(cfg, seed=None))


def _grid_at(metrics: dict, kind: str, n_layers: int, n_heads: int, step: int) -> list[list[float]]:
    grid = []
    for layer in range(n_layers):
        steps, _ = metrics[f"heads/{kind}/{head_name(layer, 0)}"]
        i = min(range(len(steps)), key=lambda j: abs(steps[j] - step))  # nearest logged step
        grid.append([round(metrics[f"heads/{kind}/{head_name(layer, h)}"][1][i], 4) for h in range(n_heads)])
    return grid


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
                  heads: dict[str, list[list[float]]]) -> list[dict]:
    """The issue's targets for the regime this config trains in: Zipfian (zipf_alpha > 0), else the B = 0
    control, else bursty."""
    checks: list[dict] = []
    chance = 1 / cfg.task.n_labels
    a = cfg.analysis

    def add(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": bool(passed), "detail": detail})

    icl, iwl = final["icl_accuracy"], final["iwl_accuracy"]
    if cfg.task.zipf_alpha > 0:
        add("Zipfian: ICL and in-weights accuracy both well above chance (>= 5x)",
            icl >= 5 * chance and iwl >= 5 * chance, f"ICL {icl:.3f}, IWL {iwl:.3f}, chance {chance:.3f}")
    elif cfg.task.burstiness == 0 or cfg.task.p_bursty == 0:
        # The probe context has N / probe_burstiness classes: a model that merely copies some context label
        # scores probe_burstiness / N; "near chance" allows up to half of that.
        limit = max(3 * chance, 0.5 * copy_baseline(cfg))
        add("B = 0: novel-class ICL accuracy stays near chance", icl <= limit,
            f"{icl:.3f} (chance {chance:.3f}, limit {limit:.3f})")
    else:
        add(f"bursty: novel-class ICL accuracy >= {a.icl_target}", icl >= a.icl_target, f"{icl:.3f}")
        add("bursty: phase change in ICL accuracy", phase["detected"],
            f"window {phase['start_step']}-{phase['end_step']}" if phase["detected"] else phase["reason"])
        if cfg.model.n_layers >= 2:
            prev, look = max(heads["previous_token"][0]), max(heads["induction"][-1])
            add(f"bursty: previous-token head in layer 0 and look-up head in the last layer (>= {a.head_threshold})",
                prev >= a.head_threshold and look >= a.head_threshold, f"{prev:.2f}, {look:.2f}")
    return checks


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    cfg = from_dict(ICLClassificationConfig, run.config)
    a = cfg.analysis
    metrics = store.metrics(run.id)
    steps, icl = metrics["probe/icl_accuracy"]
    phase = detect_phase_change(steps, icl_gap(icl, copy_baseline(cfg)), min_drop_fraction=a.min_drop_fraction,
                                max_window_fraction=a.max_window_fraction, smooth_window=a.smooth_window)
    # final numbers on fresh, larger probes from the final checkpoint
    model = final_model(run, cfg)
    task = BurstyTask(cfg.task)
    probes = make_probes(task, a.eval_size, a.probe_burstiness, cfg.seed + EVAL_SEED_OFFSET)
    final = {k: round(v, 6) for k, v in accuracies(model, probes).items()}
    L, H = cfg.model.n_layers, cfg.model.n_heads
    heads = {kind: _grid_at(metrics, kind, L, H, steps[-1]) for kind in SCORE_KINDS}
    rose = []
    if phase["detected"]:
        for kind in SCORE_KINDS:
            g0 = _grid_at(metrics, kind, L, H, phase["start_step"])
            g1 = _grid_at(metrics, kind, L, H, phase["end_step"])
            rose += [{"kind": kind, "layer": i, "head": h, "before": g0[i][h], "after": g1[i][h]}
                     for i in range(L) for h in range(H) if g1[i][h] - g0[i][h] >= 0.1]
    return {
        "chance": round(1 / cfg.task.n_labels, 6),
        "copy_baseline": round(copy_baseline(cfg), 6),
        "final": final,
        "final_probe": {k: round(metrics[f"probe/{k}"][1][-1], 6) for k in PROBES},
        "phase_change": phase,
        "head_scores_final": heads,
        "heads_rising_in_window": rose,
        "checks": target_checks(cfg, final, phase, heads),
        "wall_seconds": round(store.get_result(run.id, "wall_seconds", 0.0), 2),
    }


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    summary = store.get_result(run.id, "summary")
    if summary is None:
        raise StoreError(f"Run {run.id} has no analysis yet; resume it first")
    metrics = store.metrics(run.id)
    return {
        "run": run.info(),
        "config": run.config,
        "metrics": {name: {"steps": s, "values": v} for name, (s, v) in metrics.items()},
        "summary": summary,
    }


def report(store: RunStore, run: Run) -> str:
    from ..report.icl_classification import render_icl_classification_report

    return render_icl_classification_report(report_data(store, run))


EXPERIMENT = experiments.register(
    "icl-classification",
    "bursty item-label sequences: in-context vs in-weights learning and the induction head (Reddy 2023)",
)(Experiment("icl-classification", ICLClassificationConfig, train_model, analyze, report,
              sweep_metrics=("final.icl_accuracy", "final.iwl_accuracy", "final.flip_follows_context",
                             "phase_change.steepest_step")))
