"""Explanations of a prototype-attention classifier (`models.som_attention.SOMAttentionNet`).

Each map unit is a prototype image; an image's attention weights over the K units sum to 1 and say how
much of the pooled vector the classifier reads comes from each prototype, so the weights of the listed units
add up to their share of the attention (a decision "rests on" a few prototypes only when that share is
large). From the model's outputs on a test set this builds what the digits report shows: per-image
explanations (the five most attended units and their weights), the mean attention per class, the confusion
matrix, the SOM's maps, and 2-D views (PCA, t-SNE) of three stages with their silhouette scores by true class.

Example:
    >>> out = net.explain(torch.from_numpy(split.X_test))
    >>> ex = explain_prototypes(out, net, som, split, classes=task.classes, shape=task.shape, n_correct=8)
    >>> ex["silhouette"]["tsne"]["pooled"] > ex["silhouette"]["tsne"]["input"]    # classes separate later on
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import confusion_matrix, silhouette_score

LAYERS = ("input", "rbf", "pooled")  # the stages of the pipeline whose representations are projected
PROJECTIONS = ("pca", "tsne")
TOP_UNITS = 5  # units listed per explained image and per class


def project_2d(Z: np.ndarray, seed: int, perplexity: float) -> dict[str, np.ndarray]:
    """Z (n, k) -> {"pca": (n, 2), "tsne": (n, 2)}; t-SNE's perplexity is capped at (n - 1) / 3 for small n."""
    pca = PCA(n_components=2, random_state=seed).fit_transform(Z)
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(Z) - 1) / 3), init="pca",
                random_state=seed).fit_transform(Z)
    return {"pca": pca, "tsne": tsne}


def silhouette(xy: np.ndarray, labels: np.ndarray) -> float | None:
    """Silhouette of a 2-D view by true class, in [-1, 1]: do classes separate here? None when undefined."""
    n_labels = len(np.unique(labels))
    if len(xy) < 3 or n_labels < 2 or n_labels >= len(xy):
        return None
    return round(float(silhouette_score(xy, labels)), 4)


def _rounded(a: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def explain_prototypes(out: Any, net: Any, som: Any, split: Any, *, classes: list[str], shape: tuple[int, int],
                       n_correct: int, seed: int = 0, perplexity: float = 30.0) -> dict[str, Any]:
    """The report's explanation block for one split (JSON-safe; shapes in `render_digits_report`'s docstring).

    `out`: the model's `explain` output on `split.X_test` (logits, alpha, rbf, pooled; any device), `net` its
    model (fine-tuned centers), `som` the fitted map, `split` a `tasks.digits.DigitsSplit`. Explains the first
    `n_correct` correctly classified test images and every misclassified one.
    """
    logits, alpha, rbf, pooled = (t.detach().cpu().numpy() for t in out)
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    y, pred = split.y_test, proba.argmax(1)
    weight = alpha.mean(1)  # (n, K): attention per unit, averaged over queries; each row sums to 1
    samples = []
    correct, wrong = np.flatnonzero(pred == y)[:n_correct], np.flatnonzero(pred != y)
    for i in [*correct, *wrong]:
        top = np.argsort(-weight[i], kind="stable")[:TOP_UNITS]
        samples.append({"index": int(i), "image": _rounded(split.X_test_raw[i], 3), "label": int(y[i]),
                        "prediction": int(pred[i]), "probabilities": _rounded(proba[i], 4),
                        "top_units": [{"unit": int(u), "weight": round(float(weight[i, u]), 4)} for u in top]})
    n_classes = len(classes)
    importance = np.round(np.stack([weight[y == c].mean(0) if (y == c).any() else np.zeros(weight.shape[1])
                                    for c in range(n_classes)]).astype(np.float64), 5)  # (C, K) mean attention
    fine = split.to_pixels(net.rbf.centers.detach().cpu().numpy())
    before = split.to_pixels(som.codebook_)
    embeddings: dict[str, dict[str, list]] = {}
    sil: dict[str, dict[str, float | None]] = {p: {} for p in PROJECTIONS}
    for layer, Z in zip(LAYERS, (split.X_test, rbf, pooled), strict=True):
        views = project_2d(Z, seed, perplexity)
        embeddings[layer] = {p: _rounded(xy, 4) for p, xy in views.items()}
        for p in views:  # of the stored (rounded) coordinates, so anyone can recompute it from the store
            sil[p][layer] = silhouette(np.asarray(embeddings[layer][p]), y)
    return {
        "image_shape": list(shape),
        "classes": list(classes),
        "som_shape": [som.rows, som.cols],
        "u_matrix": _rounded(som.u_matrix(), 4),
        "hit_map": som.hit_map(split.X_train, split.y_train).astype(int).tolist(),
        "prototypes": _rounded(fine, 3),
        "som_prototypes": _rounded(before, 3),
        "prototype_shift": round(float(np.abs(fine - before).mean()), 4),  # mean pixel change by fine-tuning
        "confusion": confusion_matrix(y, pred, labels=np.arange(n_classes)).tolist(),
        "embeddings": embeddings,
        "silhouette": sil,
        "test_labels": y.astype(int).tolist(),
        "test_predictions": pred.astype(int).tolist(),
        "class_importance": importance.tolist(),
        "class_top_units": [[{"unit": int(u), "weight": float(row[u])}
                             for u in np.argsort(-row, kind="stable")[:TOP_UNITS]] for row in importance],
        "samples": samples,
    }
