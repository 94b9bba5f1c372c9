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

Encoder = Literal["learned", "minilm"]


@dataclass
class TextAttentionConfig(RunSettings):
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
