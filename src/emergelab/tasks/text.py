"""Short labelled texts: the corpus loader, a stratified split and a word-level tokenizer.

Used by the `text-attention` experiment (the source text's section 4.3.3: an attention model whose
softmax weights explain which words decided a text's class).

- `load_corpus(path=None)`: the shipped 5-topic corpus (`emergelab/data/topics.jsonl`) or any JSONL
  file of `{"text": ..., "label": ...}` rows -> `TextCorpus`.
- `stratified_split(labels, test_fraction, seed)`: the same class proportions in both parts;
  `split_corpus(path, test_fraction, seed)` -> `SplitCorpus` (a corpus and its split, as a run holds it).
- `word_spans(text)` / `tokenize(text)`: lowercase words, punctuation stripped; each word keeps its
  character span so explanations can be drawn on the original text.
- `WordTokenizer(min_count).fit(train_texts)`: vocabulary from the training split only, with `<pad>`
  (id 0) and `<unk>` (id 1); `encode(texts)` -> padded ids (B, N) int64 + mask (B, N) bool.

Example:
    >>> corpus = load_corpus()
    >>> train_idx, test_idx = stratified_split(corpus.labels, 0.3, seed=0)
    >>> tok = WordTokenizer(min_count=1).fit([corpus.texts[i] for i in train_idx])
    >>> batch = tok.encode(["The striker scored, again!"])
    >>> batch.ids.shape, batch.mask.tolist()        # (1, 4), [[True, True, True, True]]
    >>> tok.decode(batch.ids[0])                    # ['the', 'striker', 'scored', '<unk>'] if 'again' is unseen
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..estimator import Estimator

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SHIPPED_CORPUS = "topics.jsonl"

# A word: letters/digits (any script), with inner apostrophes kept ("don't", "franchise's").
# Everything else (spaces, punctuation, hyphens, underscores) separates words.
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


class CorpusError(DataError, ValueError):
    """A corpus file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class TextCorpus:
    """`texts[i]` has class `classes[labels[i]]`; classes in order of first appearance in the file."""

    texts: list[str]
    labels: list[int]
    classes: list[str]
    source: str  # where it came from, for provenance

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts[i] for i, c in enumerate(self.classes)}


def parse_corpus(text: str, source: str = "<string>") -> TextCorpus:
    """Parse JSONL rows `{"text": str, "label": str}` (blank lines skipped); errors name the line."""
    texts, names = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{source} line {n} is not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{source} line {n} must be a JSON object with 'text' and 'label'")
        t, label = row.get("text"), row.get("label")
        if not isinstance(t, str) or not t.strip():
            raise CorpusError(f"{source} line {n} needs a non-empty string 'text'")
        if not isinstance(label, str | int) or isinstance(label, bool) or str(label) == "":
            raise CorpusError(f"{source} line {n} needs a non-empty 'label' (string or integer)")
        texts.append(t)
        names.append(str(label))
    classes = list(dict.fromkeys(names))
    if len(classes) < 2:
        raise CorpusError(f"{source} must hold at least 2 classes, found {len(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    return TextCorpus(texts, [index[c] for c in names], classes, source)


def load_corpus(path: str | Path | None = None) -> TextCorpus:
    """The shipped topics corpus (`path=None`), or a JSONL file of `{"text", "label"}` rows."""
    if path is None or str(path) == "":
        from ..data import read_data_text

        return parse_corpus(read_data_text(SHIPPED_CORPUS), f"emergelab/data/{SHIPPED_CORPUS}")
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"Corpus file '{path}' does not exist")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"Corpus file '{path}' is not UTF-8 text") from None
    return parse_corpus(content, str(path))


def stratified_split(labels: Sequence[int], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, test indices), each sorted; every class is split in the same proportion.

    Example:
        >>> train, test = stratified_split([0] * 10 + [1] * 10, 0.3, seed=0)
        >>> len(train), len(test)
        (14, 6)
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    counts = np.bincount(labels)
    if (counts[counts > 0] < 2).any():
        raise ValueError("every class needs at least 2 texts for a stratified split")
    try:
        train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction, stratify=labels,
                                       random_state=seed)
    except ValueError as e:  # e.g. a test set smaller than the number of classes
        raise ValueError(f"cannot split {len(labels)} texts with test_fraction={test_fraction}: {e}") from None
    return sorted(train.tolist()), sorted(test.tolist())


@dataclass
class SplitCorpus:
    """A corpus and its stratified split, as a run stores it (results "data"): `texts[i]` has class
    `classes[labels[i]]`; `train` and `test` are sorted indices into `texts`."""

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
        """(len(texts),) int64 labels."""
        return torch.tensor(self.labels, dtype=torch.long)


def split_corpus(path: str | Path | None, test_fraction: float, seed: int) -> SplitCorpus:
    """`load_corpus(path)` split by `stratified_split`; a corpus too small to split is a CorpusError.

    Example:
        >>> data = split_corpus(None, 0.3, seed=0)        # the shipped corpus
        >>> len(data.train), len(data.test)
        (175, 75)
    """
    corpus = load_corpus(path)
    try:
        train, test = stratified_split(corpus.labels, test_fraction, seed)
    except ValueError as e:
        raise CorpusError(f"{corpus.source}: {e}") from None
    return SplitCorpus(corpus.texts, corpus.labels, corpus.classes, train, test, corpus.source)


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans `(start, end)` of the words of `text`, in order.

    Example:
        >>> word_spans("Hi, there!")
        [(0, 2), (4, 9)]
    """
    return [m.span() for m in _WORD.finditer(text)]


def tokenize(text: str) -> list[str]:
    """Lowercase words, punctuation stripped (a curly apostrophe becomes a straight one).

    Example:
        >>> tokenize("Don't stop: 2-1, Café!")
        ["don't", 'stop', '2', '1', 'café']
    """
    return [text[s:e].lower().replace("\u2019", "'") for s, e in word_spans(text)]


@dataclass
class EncodedTexts:
    ids: torch.Tensor  # (B, N) int64, PAD_ID after each text's last word
    mask: torch.Tensor  # (B, N) bool, True on real tokens
    n_words: list[int]  # words per text (a text without words is encoded as one <unk>, n_words 0)

    def __len__(self) -> int:
        return self.ids.shape[0]


class WordTokenizer(Estimator):
    """Word-level tokenizer with a vocabulary learned from training texts.

    Vocabulary order is deterministic: `<pad>`, `<unk>`, then words by descending count, ties
    alphabetical. Words seen fewer than `min_count` times in training map to `<unk>`.
    """

    def __init__(self, min_count: int = 1):
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
        self.min_count = min_count
        self._index: dict[str, int] | None = None
        self._index_of: list[str] | None = None

    def fit(self, texts: Sequence[str]) -> WordTokenizer:
        if isinstance(texts, str) or not len(texts):
            raise ValueError("texts must be a non-empty list of strings")
        counts = Counter(w for t in texts for w in tokenize(t))
        kept = sorted((w for w, c in counts.items() if c >= self.min_count), key=lambda w: (-counts[w], w))
        self.vocab_ = [PAD, UNK, *kept]
        return self

    @property
    def vocab_size(self) -> int:
        self.check_fitted()
        return len(self.vocab_)

    def _ids(self) -> dict[str, int]:
        if self._index_of is not self.vocab_:  # rebuilt after fit() or load()
            self._index, self._index_of = {w: i for i, w in enumerate(self.vocab_)}, self.vocab_
        return self._index

    def token_ids(self, text: str) -> list[int]:
        self.check_fitted()
        index = self._ids()
        return [index.get(w, UNK_ID) for w in tokenize(text)]

    def encode(self, texts: Sequence[str], max_len: int | None = None) -> EncodedTexts:
        """Pad to the longest text (or truncate to `max_len`). ids (B, N) int64, mask (B, N) bool."""
        self.check_fitted()
        if isinstance(texts, str):
            raise ValueError("encode() takes a list of texts; wrap a single text in a list")
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        rows = [self.token_ids(t) for t in texts]
        n_words = [len(r) for r in rows]
        rows = [(r or [UNK_ID])[:max_len] for r in rows]  # [:None] keeps everything
        N = max((len(r) for r in rows), default=1)
        ids = torch.full((len(rows), N), PAD_ID, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask = torch.arange(N)[None, :] < torch.tensor([len(r) for r in rows], dtype=torch.long)[:, None]
        return EncodedTexts(ids, mask, n_words)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Token strings of one encoded row, padding dropped."""
        self.check_fitted()
        return [self.vocab_[int(i)] for i in ids if int(i) != PAD_ID]
