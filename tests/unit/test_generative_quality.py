"""Sample-quality metrics of generative models (generative/quality.py): the small-scale FID against scipy's
sqrtm formula, ~0 for a set against itself and growing with noise; k-NN precision / recall on identical, disjoint
and half-covering point clouds; the digits classifier's held-out accuracy; class coverage."""

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from emergelab.errors import ConfigError
from emergelab.generative.quality import (
    DigitsClassifier,
    class_coverage,
    frechet_distance,
    precision_recall,
    sample_quality,
)


@pytest.fixture(scope="module")
def digits_split():
    torch.set_num_threads(1)
    d = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(d.data / 16, d.target, test_size=0.25, stratify=d.target, random_state=0)
    return Xtr, Xte, ytr, yte, DigitsClassifier(seed=0).fit(Xtr, ytr)


def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) @ np.diag([1, 2, 3, 1, 0.5, 1]) + 0.7
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * np.real(scipy.linalg.sqrtm(ca @ cb)))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_fid_against_itself_is_zero_and_grows_with_noise(digits_split):
    _, Xte, _, _, clf = digits_split
    feats = clf.features(Xte)
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)  # dead ReLU units: singular, still 0
    rng = np.random.default_rng(1)
    fids = [frechet_distance(feats, clf.features(np.clip(Xte + s * rng.normal(size=Xte.shape), 0, 1)))
            for s in (0.05, 0.2, 0.5)]
    assert 0 < fids[0] < fids[1] < fids[2]


def test_precision_recall_identical_disjoint_and_half_covered():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    assert precision_recall(x, x.copy(), k=3) == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(x, x + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0}
    # fake covers only one mode of a two-mode real set: precise, but it recalls about half
    real = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 50])
    fake = rng.normal(size=(200, 2))
    pr = precision_recall(real, fake, k=3)
    assert pr["precision"] > 0.9 and 0.4 < pr["recall"] < 0.6
    with pytest.raises(ConfigError, match="k=3"):
        precision_recall(x[:3], x, k=3)


def test_classifier_is_accurate_and_coverage_counts_classes(digits_split):
    Xtr, Xte, ytr, yte, clf = digits_split
    assert clf.score(Xte, yte) >= 0.95
    assert clf.features(Xte).shape == (len(Xte), 64) and clf.predict_proba(Xte).shape == (len(Xte), 10)
    assert np.allclose(clf.predict_proba(Xte).sum(1), 1.0)
    again = DigitsClassifier(seed=0).fit(Xtr, ytr)
    assert np.array_equal(again.predict_proba(Xte[:20]), clf.predict_proba(Xte[:20]))  # same seed, same model
    cov = class_coverage(np.eye(10)[[0, 0, 3, 9]])
    assert cov == {"histogram": [2, 0, 0, 1, 0, 0, 0, 0, 0, 1], "n_present": 3, "n_classes": 10}


def test_real_images_score_near_the_floor_and_noise_far_from_it(digits_split):
    Xtr, Xte, _, _, clf = digits_split
    real = sample_quality(clf, Xte, Xtr[: len(Xte)])
    noise = sample_quality(clf, Xte, np.random.default_rng(0).uniform(size=Xte.shape))
    assert real["coverage"]["n_present"] == 10 and real["confidence"] > 0.9
    assert real["fid"] < 2 * real["fid_floor"] and noise["fid"] > 5 * real["fid_floor"]
    assert real["precision"] > 0.8 and real["recall"] > 0.8
    assert noise["precision"] < 0.6 and noise["recall"] < 0.3
