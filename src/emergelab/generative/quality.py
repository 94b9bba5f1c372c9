"""Sample quality of generative models of the 8x8 digits, measured through a digits classifier trained on real
training images (Inception features mean nothing on 8x8 digits, so this is the project's own small-scale FID).

    DigitsClassifier   an MLP (scikit-learn) on pixels in [0, 1]: class probabilities and penultimate features
    frechet_distance   Frechet distance of two feature sets' Gaussians, float64 (FID, Heusel et al. 2017)
    precision_recall   k-NN manifold precision and recall (Kynkaenniemi et al. 2019), k = 3
    class_coverage     class histogram of samples and how many classes are present
    sample_quality     all of them for one sample set against held-out real images, with the real-vs-real floor

Example:
    >>> clf = DigitsClassifier(seed=0).fit(X_train / 16, y_train)      # X (n, 64) pixels in [0, 1]
    >>> clf.score(X_test / 16, y_test)                                  # ~0.97
    >>> frechet_distance(clf.features(A), clf.features(B))             # >= 0; ~0 for A == B
    >>> sample_quality(clf, X_test / 16, samples)["fid"]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import cdist

from ..errors import ConfigError


class DigitsClassifier:
    """An MLP (ReLU hidden layers `hidden`, dropout-free) trained full-batch with AdamW on real images (n, d) in
    [0, 1]: seconds on a CPU, deterministic for a seed.

    `predict_proba(X)` -> (n, C); `features(X)` -> (n, hidden[-1]): the last hidden layer's activations, the
    space FID and precision/recall are measured in.
    """

    def __init__(self, hidden: tuple[int, ...] = (128, 64), *, steps: int = 300, lr: float = 5e-3,
                 weight_decay: float = 1e-2, input_noise: float = 0.1, seed: int = 0):
        self.hidden, self.steps, self.lr, self.weight_decay = tuple(hidden), steps, lr, weight_decay
        self.input_noise, self.seed = input_noise, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> DigitsClassifier:
        self.classes_, yi = np.unique(np.asarray(y), return_inverse=True)
        x, t = torch.as_tensor(np.asarray(X), dtype=torch.float32), torch.as_tensor(yi, dtype=torch.long)
        g = torch.Generator().manual_seed(self.seed)
        sizes = [x.shape[1], *self.hidden]
        layers: list[torch.nn.Module] = []
        with torch.random.fork_rng(devices=[]):  # the init is seeded here, not by global state
            torch.manual_seed(self.seed)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True):
                layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
            self.body_ = torch.nn.Sequential(*layers)
            self.head_ = torch.nn.Linear(sizes[-1], len(self.classes_))
        params = [*self.body_.parameters(), *self.head_.parameters()]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.steps):  # full batch: the 8x8 training set is ~1,300 images
            xb = x + self.input_noise * torch.randn(x.shape, generator=g)  # noise: robust to imperfect samples
            loss = torch.nn.functional.cross_entropy(self.head_(self.body_(xb)), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.body_.eval()
        return self

    def _check(self) -> None:
        if not hasattr(self, "body_"):
            raise RuntimeError("DigitsClassifier is not fitted; call fit(X, y) first")

    @torch.no_grad()
    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check()
        h = self.body_(torch.as_tensor(np.asarray(X), dtype=torch.float32))
        return h.double().numpy(), self.head_(h).softmax(-1).double().numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._forward(X)[1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def features(self, X: np.ndarray) -> np.ndarray:
        """(n, hidden[-1]) float64 activations of the last hidden layer (ReLU)."""
        return self._forward(X)[0]


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) of two feature sets (n_a, d), (n_b, d), in float64.

    The trace of the matrix square root by the symmetric eigen route (exact for PSD covariances, singular ones
    included; pytorch-fid's scipy.linalg.sqrtm agrees to round-off). Never below 0 (round-off).

    Example:
        >>> frechet_distance(F, F)            # ~0 (up to round-off)
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ConfigError(f"frechet_distance needs two (n >= 2, d) feature sets of one d, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # Tr (C_a C_b)^(1/2) = Tr (S C_b S)^(1/2) with S = C_a^(1/2): symmetric PSD, so eigenvalues suffice, and
    # singular covariances (dead ReLU units, fewer points than dimensions) need no regularizing
    w, V = np.linalg.eigh(ca)
    s = (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh(s @ cb @ s), 0.0, None)).sum())
    d = float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca) + np.trace(cb) - 2.0 * tr_covmean)
    return max(d, 0.0)


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    """(n,) distance of every point of x (n, d) to its k-th nearest other point of x."""
    d = cdist(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaenniemi et al. 2019) of `fake` (m, d) against `real` (n, d).

    Each set's manifold is the union of balls around its points with radius the distance to the k-th nearest
    neighbour in that set. precision = the fraction of fake points inside the real manifold (samples look real);
    recall = the fraction of real points inside the fake manifold (the real variety is covered).

    Example:
        >>> precision_recall(X, X)              # {'precision': 1.0, 'recall': 1.0}
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(len(real), len(fake)) <= k:
        raise ConfigError(f"precision_recall with k={k} needs more than {k} points per set, "
                          f"got {len(real)} real and {len(fake)} fake")
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = cdist(fake, real)  # (m, n)
    precision = float(np.mean((d <= r_real[None, :]).any(axis=1)))
    recall = float(np.mean((d.T <= r_fake[None, :]).any(axis=1)))
    return {"precision": precision, "recall": recall}


def class_coverage(proba: np.ndarray) -> dict[str, Any]:
    """Class histogram of samples' predicted classes (proba (n, C)) and how many classes appear at all."""
    proba = np.asarray(proba)
    hist = np.bincount(proba.argmax(1), minlength=proba.shape[1])
    return {"histogram": [int(h) for h in hist], "n_present": int((hist > 0).sum()), "n_classes": int(proba.shape[1])}


def mean_confidence(proba: np.ndarray) -> float:
    """Mean over samples of the classifier's top class probability."""
    return float(np.asarray(proba).max(1).mean())


def sample_quality(clf: DigitsClassifier, real: np.ndarray, fake: np.ndarray, *, k: int = 3,
                   seed: int = 0) -> dict[str, Any]:
    """Every sample metric of `fake` (m, d) against held-out `real` (n, d), both pixels in [0, 1].

    The held-out real images are split in two random halves A and B (seeded): `fid` is FID(A, the first |B|
    samples) and `fid_floor` is FID(A, B), the value a perfect model would reach with that many images (FID is
    biased upwards at small n). Precision and recall compare all real images with all samples (and, as the
    floor, A with B).
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    fa, fb = clf.features(real[order[:half]]), clf.features(real[order[half:]])
    ff = clf.features(fake)
    proba = clf.predict_proba(fake)
    real_proba = clf.predict_proba(real)
    return {
        "n_samples": int(len(fake)),
        "confidence": round(mean_confidence(proba), 6),
        "confidence_real": round(mean_confidence(real_proba), 6),
        "coverage": class_coverage(proba),
        "fid": round(frechet_distance(fa, ff[: len(fb)]), 6),
        "fid_floor": round(frechet_distance(fa, fb), 6),
        **{key: round(v, 6) for key, v in precision_recall(clf.features(real), ff, k).items()},
        **{f"{key}_floor": round(v, 6) for key, v in precision_recall(fa, fb, k).items()},
    }
