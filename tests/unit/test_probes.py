"""interpret/probes.py and report/probe_figures.py: a planted linear feature is found, random labels are not,
projections match scikit-learn and have the right shape, the figures draw every class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from emergelab.errors import ConfigError
from emergelab.interpret.probes import flatten_activations, linear_probe, probe_layers, project
from emergelab.report.figures import fig_to_data_uri
from emergelab.report.probe_figures import probe_accuracy_figure, projection_figure, projection_panels


def _planted(n=600, d=32, seed=0):
    """Gaussian activations; label = the sign of one random direction (with a margin): linearly separable."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d)
    s = X @ w
    X += (np.sign(s)[:, None] * 0.5 * w / np.linalg.norm(w)).astype(np.float32)  # a margin along w
    return X, (s > 0).astype(int)


def test_probe_finds_a_planted_linear_feature():
    X, y = _planted()
    r = linear_probe(X, y, seeds=[0, 1, 2])
    assert r.accuracy > 0.97 and r.chance < 0.6 and r.seeds == [0, 1, 2] and len(r.accuracies) == 3
    assert r.n_train + r.n_test == 600 and r.n_test == 150 and r.classes == [0, 1]
    assert r.probe.predict(X[:5]).shape == (5,)


def test_probe_on_random_labels_is_near_chance():
    X, _ = _planted()
    y = np.random.default_rng(5).integers(0, 3, size=len(X))
    r = linear_probe(X, y, seeds=[0, 1, 2])
    assert abs(r.accuracy - 1 / 3) < 0.1 and abs(r.chance - 1 / 3) < 0.05
    assert r.train_accuracy > r.accuracy  # it fits the training noise, which does not generalize


def test_per_token_labels_and_mask_on_a_bt_c_cache():
    X, y = _planted(n=400)
    Xt, yt = torch.from_numpy(X).reshape(20, 20, 32), torch.from_numpy(y).reshape(20, 20)
    mask = torch.ones(20, 20, dtype=torch.bool)
    mask[:, 15:] = False  # padding: its labels are garbage
    yt[:, 15:] = 1 - yt[:, 15:]
    flat, labels = flatten_activations(Xt, yt, mask)
    assert flat.shape == (300, 32) and labels.shape == (300,)
    assert linear_probe(Xt, yt, mask=mask).accuracy > 0.95
    with pytest.raises(ConfigError, match="pick a position"):
        linear_probe(Xt, yt[:, 0])


def test_probe_layers_tells_the_encoding_layer_from_the_others():
    X, y = _planted()
    noise = np.random.default_rng(1).normal(size=X.shape)
    res = probe_layers({"blocks.0.hook_resid_post": noise, "blocks.1.hook_resid_post": X}, y)
    assert res["blocks.1.hook_resid_post"].accuracy > 0.95 > 0.7 > res["blocks.0.hook_resid_post"].accuracy


def test_probe_bad_labels():
    X, y = _planted(n=50)
    with pytest.raises(ConfigError, match="single class"):
        linear_probe(X, np.zeros(50))
    y = y.copy()
    y[0] = 7
    with pytest.raises(ConfigError, match="class 7 has 1 example"):
        linear_probe(X, y)
    with pytest.raises(ConfigError, match="do not match"):
        linear_probe(X, y[:10])


def test_pca_matches_sklearn_and_tsne_som_shapes():
    X, y = _planted(n=120, d=10)
    np.testing.assert_allclose(project(X, "pca"), PCA(n_components=2, random_state=0).fit_transform(X), atol=1e-5)
    assert project(X, "tsne", seed=0).shape == (120, 2)
    xy = project(X, "som", som_shape=(4, 5), seed=0, jitter=0.3)
    assert xy.shape == (120, 2)
    assert xy[:, 0].min() >= -0.3 and xy[:, 0].max() <= 3.3 and xy[:, 1].max() <= 4.3  # inside the 4 x 5 grid
    cells = np.round(xy).astype(int)
    assert len({tuple(c) for c in cells}) > 5  # the points spread over the map
    np.testing.assert_array_equal(xy, project(X, "som", som_shape=(4, 5), seed=0, jitter=0.3))  # seeded


def test_umap_missing_or_present():
    import importlib.util

    X, _ = _planted(n=40, d=6)
    if importlib.util.find_spec("umap") is None:
        with pytest.raises(ConfigError, match="umap-learn"):
            project(X, "umap")
    else:
        assert project(X, "umap").shape == (40, 2)
    with pytest.raises(ConfigError, match="Did you mean: tsne"):
        project(X, "tnse")


def test_figures_draw_every_class_and_render():
    X, y = _planted(n=90, d=8)
    xy = project(X, "pca")
    fig = projection_figure(xy, np.where(y == 1, "pos", "neg"), title="planted", label_name="sign")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == [f"neg ({(y == 0).sum()})", f"pos ({(y == 1).sum()})"]
    assert fig_to_data_uri(fig).startswith("data:image/png;base64,")
    many = projection_figure(xy, np.arange(90) * 1.5)  # 90 numeric values: a colorbar, not 90 legend rows
    assert many.axes[0].get_legend() is None and len(many.axes) == 2
    panels = projection_panels({"PCA": xy, "SOM": project(X, "som", som_shape=(3, 3))}, y, label_name="y")
    assert [a.get_title() for a in panels.axes[:2]] == ["PCA", "SOM"]
    acc = probe_accuracy_figure(probe_layers({"L0": X, "L1": X[:, ::-1]}, y))
    assert fig_to_data_uri(acc).startswith("data:image/png;base64,")
