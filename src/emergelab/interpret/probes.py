"""Linear probes and 2-D projections of cached activations (from `trace`, or any (B, T, C) / (N, C) array).

    linear_probe(X, y)        scikit-learn LogisticRegression on a stratified held-out split: held-out accuracy
                              (mean and spread over seeds) against chance (always the majority training class)
    probe_layers(acts, y)     one probe per named activation, e.g. every layer's resid_post: which layer
                              linearly encodes a property
    project(X, method)        (N, 2) coordinates: "pca", "tsne" (scikit-learn), "umap" (umap-learn, where
                              installed), "som" (models/som.py: each point at its best-matching unit, jittered)

Inputs: X (N, C), or (B, T, C) with per-token labels y (B, T) (flattened to N = B*T tokens), or with one label
per row (B,) after picking a position (`X[:, -1]`). `mask` (same leading shape as X, True = keep) drops pad
tokens. Tensors or arrays; everything returned is numpy. The figures live in `report/probe_figures.py`.

Example:
    >>> cache = trace(minilm, batch, names=lambda n: n.endswith("hook_resid_post"))
    >>> results = probe_layers(cache, is_capitalized, mask=batch["attention_mask"])   # name -> ProbeResult
    >>> {n: round(r.accuracy, 3) for n, r in results.items()}, results[n].chance
    >>> xy = project(cache["blocks.3.hook_resid_post"], "pca", mask=batch["attention_mask"])   # (N, 2)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..registry import did_you_mean

__all__ = ["PROJECTIONS", "ProbeResult", "flatten_activations", "linear_probe", "probe_layers", "project"]

PROJECTIONS = ("pca", "tsne", "umap", "som")


@dataclass
class ProbeResult:
    accuracy: float  # held-out accuracy, mean over seeds
    accuracy_std: float  # its standard deviation over seeds (0 for one seed)
    chance: float  # held-out accuracy of always answering the majority training class (mean over seeds)
    train_accuracy: float  # mean over seeds
    n_train: int
    n_test: int
    classes: list[Any]
    seeds: list[int]
    accuracies: list[float] = field(default_factory=list)  # per seed
    probe: Any = None  # the fitted scikit-learn pipeline of the first seed (scaler + LogisticRegression)

    @property
    def above_chance(self) -> float:
        return self.accuracy - self.chance


def _array(X: Any, what: str) -> np.ndarray:
    if hasattr(X, "detach"):  # a torch tensor, without importing torch
        X = X.detach().float().cpu().numpy()
    a = np.asarray(X)
    if a.dtype == object:
        raise ConfigError(f"{what} must be a numeric array, got objects of shape {a.shape}")
    return a


def flatten_activations(X: Any, y: Any = None, mask: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """X (N, C) or (B, T, C) -> (N, C) float, and y -> (N,) (per-token labels (B, T) flattened alongside);
    rows where `mask` ((N,) or (B, T)) is False are dropped."""
    a = _array(X, "activations")
    if a.ndim not in (2, 3) or 0 in a.shape:
        raise ConfigError(f"activations must be (N, C) or (B, T, C), got shape {a.shape}")
    lead = a.shape[:-1]
    labels = None
    if y is not None:
        labels = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
        if labels.shape != lead:
            hint = (" (one label per row: pick a position first, e.g. X[:, -1], or give per-token labels (B, T))"
                    if a.ndim == 3 and labels.shape == lead[:1] else "")
            raise ConfigError(f"labels of shape {labels.shape} do not match activations {a.shape}{hint}")
        labels = labels.reshape(-1)
    a = a.reshape(-1, a.shape[-1]).astype(np.float32, copy=False)
    if mask is not None:
        keep = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask).astype(bool)
        if keep.shape != lead:
            raise ConfigError(f"mask of shape {keep.shape} does not match activations {lead} (+ channels)")
        keep = keep.reshape(-1)
        a, labels = a[keep], (labels[keep] if labels is not None else None)
    if not np.isfinite(a).all():
        raise ConfigError("activations contain NaN or infinite values")
    return a, labels


def linear_probe(X: Any, y: Any, *, mask: Any = None, test_size: float = 0.25, seeds: int | Sequence[int] = 0,
                 C: float = 1.0, max_iter: int = 1000, standardize: bool = True) -> ProbeResult:
    """Fit a logistic-regression probe y ~ X on a stratified split; held-out accuracy vs chance.

    X: (N, C) or (B, T, C) activations; y: labels (N,) or (B, T) (any hashable values, >= 2 classes, each
    with >= 2 examples); mask: rows to keep. seeds: one seed or several (one split + fit each; the result
    gives their mean, spread and per-seed accuracies). C: inverse L2 strength. standardize: z-score each
    feature on the training part first (residual streams have a few huge dimensions).
    Returns a ProbeResult.

    Example:
        >>> r = linear_probe(cache["blocks.2.hook_resid_post"], labels, mask=mask, seeds=[0, 1, 2])
        >>> r.accuracy, r.accuracy_std, r.chance
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, labels = flatten_activations(X, y, mask)
    if not 0 < test_size < 1:
        raise ConfigError(f"test_size must be between 0 and 1, got {test_size!r}")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ConfigError(f"labels have a single class ({classes.tolist()[0]!r}); a probe needs at least 2")
    if counts.min() < 2:
        raise ConfigError(f"class {classes.tolist()[counts.argmin()]!r} has 1 example; a stratified split needs >= 2 "
                          "per class")
    n_test = int(np.ceil(test_size * len(labels)))
    if n_test < len(classes) or len(labels) - n_test < len(classes):
        raise ConfigError(f"{len(labels)} examples cannot hold {len(classes)} classes in both parts of a "
                          f"test_size={test_size} split")
    seed_list = [seeds] if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("seeds must name at least one seed")
    accs, chances, trains, first = [], [], [], None
    for seed in seed_list:
        Xtr, Xte, ytr, yte = train_test_split(a, labels, test_size=test_size, stratify=labels, random_state=seed)
        steps = [StandardScaler()] if standardize else []
        pipe = make_pipeline(*steps, LogisticRegression(C=C, max_iter=max_iter, random_state=seed)).fit(Xtr, ytr)
        accs.append(float(pipe.score(Xte, yte)))
        trains.append(float(pipe.score(Xtr, ytr)))
        chances.append(float(DummyClassifier(strategy="most_frequent").fit(Xtr, ytr).score(Xte, yte)))
        first = first or pipe
    return ProbeResult(float(np.mean(accs)), float(np.std(accs)), float(np.mean(chances)), float(np.mean(trains)),
                       len(labels) - n_test, n_test, classes.tolist(), seed_list, accs, first)


def probe_layers(activations: Mapping[str, Any], y: Any, **kwargs: Any) -> dict[str, ProbeResult]:
    """One `linear_probe` per named activation (e.g. a TraceCache), same labels and options for all.

    Example:
        >>> res = probe_layers({n: cache[n] for n in cache if n.endswith("resid_post")}, labels, mask=mask)
        >>> max(res, key=lambda n: res[n].accuracy)
    """
    if not activations:
        raise ConfigError("probe_layers needs at least one activation")
    return {name: linear_probe(x, y, **kwargs) for name, x in activations.items()}


def project(X: Any, method: str = "pca", *, mask: Any = None, seed: int = 0, standardize: bool = False,
            perplexity: float | None = None, n_neighbors: int = 15, som_shape: tuple[int, int] = (10, 10),
            jitter: float = 0.35) -> np.ndarray:
    """2-D coordinates (N, 2) of activations X (N, C) or (B, T, C) (rows kept by `mask`), for a scatter plot.

    method: "pca" (sklearn PCA), "tsne" (sklearn TSNE, PCA init; perplexity None = min(30, (N - 1) / 3)),
        "umap" (umap-learn's UMAP with `n_neighbors`; needs the umap-learn package), "som" (a SOM of
        `som_shape` fitted on X; each point sits at its best-matching unit's grid position (row, col) plus
        uniform noise of +-`jitter` grid units, so points sharing a unit stay visible).
    standardize: z-score each feature first. seed: every random choice (t-SNE, UMAP, SOM, jitter).

    Example:
        >>> xy = project(cache["blocks.3.hook_resid_post"][:, -1], "tsne", seed=0)      # (B, 2)
    """
    if method not in PROJECTIONS:
        raise ConfigError(f"Unknown projection '{method}'.{did_you_mean(method, list(PROJECTIONS))}")
    a, _ = flatten_activations(X, None, mask)
    N = len(a)
    if N < 3:
        raise ConfigError(f"project needs at least 3 points, got {N}")
    if standardize:
        a = (a - a.mean(0)) / np.maximum(a.std(0), 1e-12)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(a) if a.shape[1] >= 2 else np.c_[a, np.zeros(N)]
    if method == "tsne":
        from sklearn.manifold import TSNE

        p = perplexity if perplexity is not None else min(30.0, (N - 1) / 3)
        if not 0 < p < N:
            raise ConfigError(f"perplexity must be between 0 and the number of points ({N}), got {p}")
        return TSNE(n_components=2, perplexity=p, init="pca", random_state=seed).fit_transform(a)
    if method == "umap":
        if importlib.util.find_spec("umap") is None:
            raise ConfigError("project(method='umap') needs the umap-learn package (pip install umap-learn); "
                              "or use 'pca', 'tsne' or 'som'")
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, N - 1), random_state=seed).fit_transform(a)
    from ..models.som import SOM

    rows, cols = som_shape
    som = SOM(int(rows), int(cols), seed=seed).fit(a)
    grid = som.grid_[som.predict(a)]  # (N, 2) (row, col) of each point's best-matching unit
    noise = np.random.default_rng(seed).uniform(-jitter, jitter, size=grid.shape)
    return (grid + noise).astype(np.float64)
