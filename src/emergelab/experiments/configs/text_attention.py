"""The config of the `text-attention` experiment: every key `emergelab config text-attention` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/text_attention.py`
runs it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...config import at_least, in_interval, invalid
from ..base import RunSettings
from ..budget import Budget, Term
from .schema import CHECKS, under

Encoder = Literal["learned", "minilm"]
MINILM_PARAMS = 22.7e6  # all-MiniLM-L6-v2's parameters: it encodes each text once per run
MINILM_DIM = 384  # its token vectors (tasks/text_inputs.py)


@dataclass
class TextAttentionConfig(RunSettings):
    corpus: str = ""  # JSONL file of {"text", "label"} rows; "" = the shipped 5-topic corpus
    test_fraction: float = 0.3  # stratified held-out share; the vocabulary never sees it
    encoders: list[Encoder] = field(default_factory=lambda: ["learned", "minilm"])  # compared side by side
    embed_dim: int = 32  # learned encoder's word vectors (MiniLM's are 384-d); 32 beat 64 and 128 here
    min_count: int = 1  # learned: training words seen fewer times become <unk>
    epochs: int = 40  # passes over the training split
    batch_size: int = 32  # training texts per optimizer step
    lr: float = 1e-2  # AdamW peak learning rate (cosine decay)
    weight_decay: float = 0.1  # strong: 175 training texts, most words seen once
    dropout: float = 0.5  # on token vectors before pooling, drawn from the step's seeded generator
    max_pieces: int = 128  # MiniLM word pieces per text, [CLS]/[SEP] included; longer texts are cut
    top_words: int = 8  # words listed per class in the explanations

    def validate(self) -> None:
        super().validate()
        if self.corpus and not Path(self.corpus).is_file():
            invalid("corpus", "file does not exist (leave empty for the shipped topics corpus)")
        in_interval(self, "(0, 1)", "test_fraction")
        if not self.encoders:
            invalid("encoders", "must list at least one of learned, minilm")
        if len(set(self.encoders)) != len(self.encoders):
            invalid("encoders", "encoders must be distinct")
        at_least(self, 1, "embed_dim", "min_count", "epochs", "batch_size", "top_words")
        if self.max_pieces < 3:
            invalid("max_pieces", "must be >= 3 ([CLS], one piece, [SEP])")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            invalid("lr", "must be a positive number")
        at_least(self, 0, "weight_decay")
        in_interval(self, "[0, 1)", "dropout")

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py): one section per encoder (an encoder that could
        not be loaded is left out, with a line in `notes`), then the best encoder's numbers and the data's."""
        deletion = ("n", "top_word_drop", "random_word_drop", "top_word_flips")
        encoder = ["test_accuracy", "macro_f1", "train_accuracy", "confusion_matrix.*.*", "attention_sum_error",
                   "attention_on_padding", *under("deletion", deletion), "wall_seconds"]
        return [*(p for enc in self.encoders for p in under(f"encoders.{enc}", encoder)), "best_encoder",
                "test_accuracy", "macro_f1", "classes.*", "n_train", "n_test", "test_class_counts.*",
                "chance_accuracy", "notes.*", *CHECKS, "wall_seconds"]


def budget(cfg: TextAttentionConfig, *, n_texts: int, n_train: int, n_words: int, max_words: int,
           n_classes: int) -> Budget:
    """Memory and compute of a run on a corpus of `n_texts` texts (`n_train` of them trained on) holding `n_words`
    words, the longest `max_words` (experiments/budget.py); encoders train one after another."""
    steps = cfg.epochs * -(-n_train // cfg.batch_size)
    memory, compute = [], []
    for enc in cfg.encoders:
        d, vocab = (cfg.embed_dim, n_words + 2) if enc == "learned" else (MINILM_DIM, 0)
        length = max_words if enc == "learned" else min(cfg.max_pieces, 512)
        params = vocab * d + d * d + 2 * d + d * n_classes + n_classes
        sizes = ("embed_dim", "batch_size") if enc == "learned" else ("batch_size", "max_pieces")
        memory.append(Term(f"the {enc} encoder's parameters, gradients and AdamW state", 16 * params, sizes[:1]))
        memory.append(Term(f"the {enc} encoder's activations of one batch", 24 * cfg.batch_size * length * d, sizes,
                           transient=True))
        flops = 6 * cfg.epochs * n_train * length * (d * d + d * n_classes)
        compute.append(Term(f"the {enc} encoder's training", flops, ("epochs", *sizes), steps=steps))
        if enc == "minilm":
            compute.append(Term("encoding the texts with MiniLM", 2 * MINILM_PARAMS * n_texts * length,
                                ("max_pieces",)))
    return Budget(memory, compute)
