"""Attention over words: per-word weights of a text, a deletion test of their faithfulness, and the words
each class's decisions rest on. For classifiers that pool token vectors with one softmax
(`models.text_classifier.AttentionTextClassifier`), whose positions map to words through
`tasks.text_inputs.TokenInputs.word_index`.

Example:
    >>> logits, alpha = model.explain(inputs.x, inputs.mask)                  # alpha (B, N)
    >>> weights = [word_weights(alpha[b], inputs.word_index[b], len(word_spans(t))) for b, t in enumerate(texts)]
    >>> deletion_test(model, inputs, weights, logits.argmax(-1), seed=0)      # {"n", "top_word_drop", ...}
    >>> top_words_per_class(texts, weights, logits.argmax(-1).tolist(), classes, k=8)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..devices import to_device
from ..tasks.text import tokenize
from ..tasks.text_inputs import TokenInputs


def word_weights(alpha: torch.Tensor, word_index: torch.Tensor, n_words: int) -> np.ndarray:
    """Attention per word of one text: the sum over its positions (word pieces). alpha, word_index (N,)
    -> (n_words,) float64; positions of no word (word_index -1) are left out."""
    w = torch.zeros(n_words + 1, dtype=torch.float64)
    idx = torch.where(word_index >= 0, word_index, torch.full_like(word_index, n_words))
    w.index_add_(0, idx.cpu(), alpha.detach().double().cpu())
    return w[:n_words].numpy()


@torch.no_grad()
def deletion_test(model: nn.Module, inputs: TokenInputs, weights: list[np.ndarray], pred: torch.Tensor,
                  seed: int) -> dict[str, float]:
    """Faithfulness: drop the most-attended word (all its positions) from the pooling, vs a random other
    word; mean fall of the predicted class's probability. Texts with fewer than 2 words are left out.

    model(x, mask) -> logits (B, C); inputs and pred (B,) on the CPU (moved to the model's device here);
    weights[b] the word weights of text b; the random words are drawn from numpy's generator `seed`."""
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
    device = next(model.parameters()).device
    x, full, no_top, no_rand = to_device((inputs.x[r], inputs.mask[r], top_mask[r], rand_mask[r]), device)
    p_full, p_top, p_rand = (model(x, m).softmax(-1).cpu() for m in (full, no_top, no_rand))
    c = pred[r][:, None]
    drop_top = (p_full.gather(1, c) - p_top.gather(1, c)).mean().item()
    drop_rand = (p_full.gather(1, c) - p_rand.gather(1, c)).mean().item()
    flips = (p_top.argmax(-1) != pred[r]).float().mean().item()
    return {"n": len(rows), "top_word_drop": round(drop_top, 4), "random_word_drop": round(drop_rand, 4),
            "top_word_flips": round(flips, 4)}


def top_words_per_class(texts: Sequence[str], weights: Sequence[np.ndarray], groups: Sequence[int],
                        classes: Sequence[str], k: int) -> dict[str, list[dict[str, Any]]]:
    """Per class (texts grouped by `groups`): words ranked by mean attention x frequency, i.e. the total
    attention the class's texts put on the word.

    Example:
        >>> top_words_per_class(["goal win", "bread"], [np.array([0.7, 0.3]), np.array([1.0])], [0, 1],
        ...                     ["sports", "food"], k=1)["sports"]
        [{'word': 'goal', 'score': 0.7, 'count': 1, 'mean': 0.7}]
    """
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
