"""Head scores over training, as experiments log and analyze them (induction, icl-classification).

Scores are logged one metric per head and kind, named by `runs.names.head_metric`:
`[prefix/]heads/{kind}/L{l}H{h}`. These helpers turn score tensors into metrics and stored metric series
back into (layer x head) grids.

Example:
    >>> values = head_score_metrics({"induction": scores})          # scores (n_layers, n_heads)
    >>> grid = head_grid_at(metrics, "induction", n_layers, n_heads, step=500, prefix="2L")
    >>> named_heads(grid, threshold=0.3)                            # [{"layer", "head", "score"}, ...]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..runs.names import head_metric

Series = tuple[list[int], list[float]]


def head_score_metrics(scores: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{kind: (n_layers, n_heads) tensor} -> {'heads/{kind}/L{l}H{h}': value}."""
    out = {}
    for kind, s in scores.items():
        for layer in range(s.shape[0]):
            for head in range(s.shape[1]):
                out[head_metric(kind, layer, head)] = s[layer, head].item()
    return out


def nearest_index(steps: Sequence[int], step: int) -> int:
    """Index of the logged step nearest `step` (the earlier one on ties)."""
    return min(range(len(steps)), key=lambda j: abs(steps[j] - step))


def head_grid_at(metrics: Mapping[str, Series], kind: str, n_layers: int, n_heads: int, step: int,
                 prefix: str = "") -> list[list[float]]:
    """(n_layers, n_heads) grid of score `kind` at the logged step nearest `step`."""
    grid = []
    for layer in range(n_layers):
        row = []
        for head in range(n_heads):
            steps, values = metrics[head_metric(kind, layer, head, prefix)]
            row.append(values[nearest_index(steps, step)])
        grid.append(row)
    return grid


def named_heads(grid: Sequence[Sequence[float]], threshold: float) -> list[dict]:
    """Heads scoring >= threshold, best first: [{"layer", "head", "score"}] (scores rounded to 4 digits)."""
    heads = [{"layer": layer, "head": head, "score": round(v, 4)}
             for layer, row in enumerate(grid) for head, v in enumerate(row) if v >= threshold]
    return sorted(heads, key=lambda h: -h["score"])


def heads_rising(metrics: Mapping[str, Series], kinds: Sequence[str], n_layers: int, n_heads: int,
                 start_step: int, end_step: int, min_rise: float = 0.1, prefix: str = "") -> list[dict]:
    """Heads whose score rose by >= `min_rise` between two steps (e.g. a phase window's ends):
    [{"kind", "layer", "head", "before", "after"}]."""
    rose = []
    for kind in kinds:
        g0 = head_grid_at(metrics, kind, n_layers, n_heads, start_step, prefix)
        g1 = head_grid_at(metrics, kind, n_layers, n_heads, end_step, prefix)
        rose += [{"kind": kind, "layer": layer, "head": head, "before": round(g0[layer][head], 4),
                  "after": round(g1[layer][head], 4)}
                 for layer in range(n_layers) for head in range(n_heads)
                 if g1[layer][head] - g0[layer][head] >= min_rise]
    return rose
