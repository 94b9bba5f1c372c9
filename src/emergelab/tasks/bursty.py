"""Bursty item-label sequences: in-context vs in-weights learning (Reddy 2023, after Chan et al. 2022).

K classes, each a Gaussian mean mu_k ~ N(0, I_D / D). An item of class k is
x = (mu_k + eps * eta) / sqrt(1 + eps^2), eta ~ N(0, I_D / D). Each class carries one of L labels
(a fixed random assignment); each label is a fixed random vector in D dims, so items and labels
share one token space. A sequence is N item-label pairs, then a query item:

    x_1, l_1, x_2, l_2, ..., x_N, l_N, x_q          (T = 2N + 1 tokens of D dims)

and the model must output the query's label (one of L) at the last position.

Knobs:
    burstiness B   B > 0: the context holds N / B classes, each exactly B times, the query's class among
                   them (so the most frequent context label is no shortcut: every context label appears
                   B times). B = 0: the N context items are drawn i.i.d. from the class distribution,
                   never from the query's class: the context says nothing about the query.
    zipf_alpha     class frequencies p_k ~ k^-alpha (0 = uniform)
    p_novel        fraction of training sequences built from fresh classes with fresh random labels:
                   only the context can tell their labels
    p_bursty       fraction of training sequences that are bursty (the rest use B = 0)

Probes (for the metrics over training):
    novel     fresh classes, random labels, bursty context -> ICL accuracy
    no-context query from a trained class, context from other classes -> in-weights (IWL) accuracy
    flip      trained classes, bursty context, every label (context and target) passed through one
              random permutation of the L labels -> does the model follow the context or its weights?

Example:
    >>> task = BurstyTask(BurstyTaskConfig(n_classes=128, n_labels=32, n_context=8, burstiness=4))
    >>> b = task.sample(64, torch.Generator().manual_seed(0))
    >>> b.tokens.shape, b.target.shape     # (64, 17, 63), (64,)
    >>> probes = make_probes(task, 256, burstiness=2, g=torch.Generator().manual_seed(1))
    >>> head_score_masks(probes.novel)["induction"].shape   # (256, 17, 17)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..registry import tasks
from .configs import BurstyTaskConfig


@dataclass
class BurstyBatch:
    tokens: torch.Tensor  # (B, 2N+1, D) float32: x_1, l_1, ..., x_N, l_N, x_q
    target: torch.Tensor  # (B,) int64 label of the query (after any flip)
    classes: torch.Tensor  # (B, N+1) int64 class of each context item and the query (last); -1.. for novel
    labels: torch.Tensor  # (B, N) int64 label of each context item (after any flip)
    weights_target: torch.Tensor  # (B,) int64 the query's label in the trained map (-1 for novel classes)

    @property
    def query_in_context(self) -> torch.Tensor:
        """(B, N) bool: context item i belongs to the query's class."""
        return self.classes[:, :-1] == self.classes[:, -1:]


@tasks.register("bursty", "item-label sequences with bursty / Zipfian classes: ICL vs IWL (Reddy 2023)")
class BurstyTask:
    def __init__(self, cfg: BurstyTaskConfig):
        self.cfg = cfg
        g = torch.Generator().manual_seed(cfg.seed)
        D = cfg.dim
        self.means = torch.randn(cfg.n_classes, D, generator=g) / math.sqrt(D)  # (K, D)
        self.label_vectors = torch.randn(cfg.n_labels, D, generator=g) / math.sqrt(D)  # (L, D)
        self.class_label = torch.randint(0, cfg.n_labels, (cfg.n_classes,), generator=g)  # (K,)
        ranks = torch.arange(1, cfg.n_classes + 1, dtype=torch.float64)
        p = ranks ** -cfg.zipf_alpha
        self.class_probs = (p / p.sum()).float()  # (K,)

    # --- building blocks --------------------------------------------------------------------------
    def _items(self, means: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """means (..., D) -> noisy items (..., D)."""
        eps = self.cfg.within_class_noise
        noise = torch.randn(means.shape, generator=g) / math.sqrt(self.cfg.dim)
        return (means + eps * noise) / math.sqrt(1 + eps**2)

    def _draw_classes(self, n: int, k: int, g: torch.Generator, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """(n, k) distinct classes per row from the Zipf distribution, avoiding `exclude` (n,) if given."""
        p = self.class_probs.expand(n, -1).clone()
        if exclude is not None:
            p[torch.arange(n), exclude] = 0
        return torch.multinomial(p, k, replacement=False, generator=g)

    def _context_layout(self, n: int, burstiness: int, g: torch.Generator) -> torch.Tensor:
        """(n, N) slot -> which of the N/B context classes sits there (class 0 is the query's), shuffled."""
        N = self.cfg.n_context
        base = torch.arange(N) // burstiness  # each class index B times
        order = torch.argsort(torch.rand(n, N, generator=g), dim=1)
        return base[order]

    def _assemble(self, items: torch.Tensor, labels: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """items (n, N, D), labels (n, N) int, query (n, D) -> tokens (n, 2N+1, D)."""
        n, N, D = items.shape
        lab = self.label_vectors[labels]  # (n, N, D)
        pairs = torch.stack([items, lab], dim=2).reshape(n, 2 * N, D)
        return torch.cat([pairs, query[:, None]], dim=1)

    # --- sequences --------------------------------------------------------------------------------
    def bursty(self, n: int, g: torch.Generator, burstiness: int, novel: bool = False,
               flip: bool = False) -> BurstyBatch:
        """n sequences whose context holds N/B classes B times each, the query's class first among them.

        novel: fresh class means and random distinct labels (only the context tells them).
        flip: trained classes, all labels mapped through one random permutation per sequence.
        """
        cfg = self.cfg
        m = cfg.n_context // burstiness  # classes in the context
        if novel:
            means = torch.randn(n, m, cfg.dim, generator=g) / math.sqrt(cfg.dim)  # (n, m, D)
            lab = torch.argsort(torch.rand(n, cfg.n_labels, generator=g), dim=1)[:, :m]  # distinct labels
            classes = -1 - torch.arange(m).expand(n, m)  # negative ids: not trained classes
            weights_lab = torch.full((n, m), -1)
        else:
            classes = self._draw_classes(n, m, g)  # (n, m), classes[:, 0] is the query's class
            means = self.means[classes]
            lab = self.class_label[classes]
            weights_lab = lab
            if flip:
                perm = torch.argsort(torch.rand(n, cfg.n_labels, generator=g), dim=1)  # (n, L)
                lab = torch.gather(perm, 1, lab)
        slot = self._context_layout(n, burstiness, g)  # (n, N)
        rows = torch.arange(n)[:, None]
        items = self._items(means[rows, slot], g)  # (n, N, D)
        query = self._items(means[:, 0], g)
        ctx_labels = lab[rows, slot]
        tokens = self._assemble(items, ctx_labels, query)
        cls = torch.cat([classes[rows, slot], classes[:, :1]], dim=1)
        return BurstyBatch(tokens, lab[:, 0].clone(), cls, ctx_labels, weights_lab[:, 0].clone())

    def no_context(self, n: int, g: torch.Generator) -> BurstyBatch:
        """Query from a trained class; the N context items from other classes (i.i.d., Zipf): B = 0."""
        cfg = self.cfg
        query_cls = torch.multinomial(self.class_probs, n, replacement=True, generator=g)  # (n,)
        p = self.class_probs.expand(n, -1).clone()
        p[torch.arange(n), query_cls] = 0
        ctx_cls = torch.multinomial(p, cfg.n_context, replacement=True, generator=g)  # (n, N)
        items = self._items(self.means[ctx_cls], g)
        query = self._items(self.means[query_cls], g)
        ctx_labels = self.class_label[ctx_cls]
        target = self.class_label[query_cls]
        tokens = self._assemble(items, ctx_labels, query)
        return BurstyBatch(tokens, target, torch.cat([ctx_cls, query_cls[:, None]], 1), ctx_labels, target.clone())

    def sample(self, n: int, g: torch.Generator) -> BurstyBatch:
        """A training batch: a mix of bursty / non-bursty and trained / novel sequences, per the config."""
        cfg = self.cfg
        bursty = torch.rand(n, generator=g) < cfg.p_bursty if cfg.burstiness else torch.zeros(n, dtype=torch.bool)
        novel = torch.rand(n, generator=g) < cfg.p_novel
        parts: list[tuple[torch.Tensor, BurstyBatch]] = []
        for is_bursty in (True, False):
            for is_novel in (True, False):
                idx = torch.nonzero((bursty == is_bursty) & (novel == is_novel)).flatten()
                if len(idx) == 0:
                    continue
                if is_bursty:
                    b = self.bursty(len(idx), g, cfg.burstiness, novel=is_novel)
                elif is_novel:
                    # non-bursty novel sequences: nothing in the context or the weights says the label
                    b = self.no_context(len(idx), g)
                    b.target = torch.randint(0, cfg.n_labels, (len(idx),), generator=g)
                    b.tokens[:, -1] = self._items(torch.randn(len(idx), cfg.dim, generator=g) / math.sqrt(cfg.dim), g)
                    b.classes[:, -1] = -1
                    b.weights_target = torch.full((len(idx),), -1)
                else:
                    b = self.no_context(len(idx), g)
                parts.append((idx, b))
        return _merge(n, parts)


@dataclass
class BurstyProbes:
    """The three probe batches of the module docstring (fixed over training, fresh for the final numbers)."""

    novel: BurstyBatch  # fresh classes, random labels: ICL accuracy
    no_context: BurstyBatch  # the query's class absent from the context: in-weights accuracy
    flip: BurstyBatch  # labels permuted consistently: context vs weights


def make_probes(task: BurstyTask, n: int, burstiness: int, g: torch.Generator) -> BurstyProbes:
    """n sequences per probe, drawn in this order from `g`; the ICL and flip probes have `burstiness` B."""
    return BurstyProbes(task.bursty(n, g, burstiness, novel=True), task.no_context(n, g),
                        task.bursty(n, g, burstiness, flip=True))


def head_score_masks(batch: BurstyBatch) -> dict[str, torch.Tensor]:
    """(B, T, T) 0/1 masks of the keys an ideal head attends to, per query position (on the batch's device).

    previous_token: label position 2i+1 -> item 2i (pairing each label with its item).
    induction: query (2N) -> the labels of the context items of the query's class (the ICL look-up).
    """
    B, T = batch.tokens.shape[:2]
    N, dev = (T - 1) // 2, batch.tokens.device
    lab = item_positions(N).to(dev) + 1
    prev = torch.zeros(B, T, T, device=dev)
    prev[:, lab, lab - 1] = 1
    ind = torch.zeros(B, T, T, device=dev)
    ind[:, T - 1, lab] = batch.query_in_context.float()
    return {"previous_token": prev, "induction": ind}


def _merge(n: int, parts: list[tuple[torch.Tensor, BurstyBatch]]) -> BurstyBatch:
    """Scatter sub-batches back to their rows."""
    first = parts[0][1]
    out = BurstyBatch(*(torch.empty((n, *t.shape[1:]), dtype=t.dtype) for t in (
        first.tokens, first.target, first.classes, first.labels, first.weights_target)))
    for idx, b in parts:
        out.tokens[idx], out.target[idx], out.classes[idx] = b.tokens, b.target, b.classes
        out.labels[idx], out.weights_target[idx] = b.labels, b.weights_target
    return out


def item_positions(n_context: int) -> torch.Tensor:
    """Token positions of the context items: 0, 2, ..., 2N-2 (labels sit at +1, the query at 2N)."""
    return torch.arange(n_context) * 2
