"""RBF network: exact interpolation, width heuristics, the 1e-6 approximation targets, classification,
the nn.Module layer, and clear errors on bad input."""

import math

import numpy as np
import pytest
import torch

from emergelab.errors import NotFittedError
from emergelab.models.rbf import (
    RBFClassifier,
    RBFLayer,
    RBFNetwork,
    grid_centers,
    max_dist_width,
    nearest_widths,
)
from emergelab.models.som import SOM
from emergelab.registry import estimators


def x_squared_errors(k: int) -> float:
    """Max abs error of x^2 on 1,000 held-out points, grid centers, d_max / sqrt(2K) widths, float64 lstsq."""
    x = np.linspace(-1, 1, 200)[:, None]
    x_test = np.random.default_rng(0).uniform(-1, 1, size=(1000, 1))
    net = RBFNetwork(k, centers="grid", width="max_dist").fit(x, x[:, 0] ** 2)
    return float(np.abs(net.predict(x_test) - x_test[:, 0] ** 2).max())


def test_x_squared_targets_k10_and_k20():
    assert x_squared_errors(10) <= 1e-4
    assert x_squared_errors(20) <= 1e-6


def test_exact_interpolation_with_one_center_per_training_point():
    X = np.random.default_rng(1).uniform(-1, 1, size=(15, 2))
    y = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1])
    net = RBFNetwork(centers=X, width=0.5, alpha=0.0).fit(X, y)
    assert net.centers_.dtype == torch.float64 and net.centers_.shape == (15, 2)
    assert np.abs(net.predict(X) - y).max() < 1e-8
    # ridge trades the exact fit for smaller weights
    ridge = RBFNetwork(centers=X, width=0.5, alpha=1e-2).fit(X, y)
    assert np.abs(ridge.predict(X) - y).max() > 1e-4
    assert ridge.weights_.norm() < net.weights_.norm()


def test_width_heuristics_on_hand_computed_centers():
    C = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # pairwise distances 3, 4, 5
    assert max_dist_width(torch.tensor(C)) == pytest.approx(5 / math.sqrt(6))
    X = np.random.default_rng(0).normal(size=(20, 2))
    net = RBFNetwork(centers=C, width="max_dist").fit(X, X[:, 0])
    assert torch.allclose(net.widths_, torch.full((3,), 5 / math.sqrt(6), dtype=torch.float64))
    assert nearest_widths(torch.tensor(C), 1).tolist() == [3.0, 3.0, 4.0]
    net = RBFNetwork(centers=C, width="nearest", n_neighbors=2).fit(X, X[:, 0])
    assert net.widths_.tolist() == [3.5, 4.0, 4.5]
    assert RBFNetwork(centers=C, width=0.7).fit(X, X[:, 0]).widths_.tolist() == [0.7] * 3


def test_grid_centers_span_the_data():
    X = torch.tensor([[0.0, -1.0], [2.0, 1.0]])
    g = grid_centers(X, 9)
    assert g.shape == (9, 2) and g[:, 0].unique().tolist() == [0.0, 1.0, 2.0]
    assert g[:, 1].unique().tolist() == [-1.0, 0.0, 1.0]


def test_multi_output_regression_and_transform():
    x = np.linspace(-1, 1, 50)[:, None]
    Y = np.hstack([x**2, np.sin(3 * x)])
    net = RBFNetwork(12, centers="grid").fit(x, Y)
    assert net.predict(x).shape == (50, 2) and np.abs(net.predict(x) - Y).max() < 1e-3
    phi = net.transform(x)
    assert phi.shape == (50, 12) and (phi > 0).all() and (phi <= 1).all()


def test_kmeans_and_random_centers_are_seeded():
    X = np.random.default_rng(0).normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    for centers in ("kmeans", "random"):
        a = RBFNetwork(10, centers=centers, seed=4).fit(X, y)
        b = RBFNetwork(10, centers=centers, seed=4).fit(X, y)
        c = RBFNetwork(10, centers=centers, seed=5).fit(X, y)
        assert torch.equal(a.centers_, b.centers_) and not torch.equal(a.centers_, c.centers_)
    picked = RBFNetwork(10, centers="random", seed=0).fit(X, y).centers_.numpy()
    assert all(np.any(np.all(row == X, axis=1)) for row in picked)  # random centers are training points


def test_som_codebook_as_centers_and_save_load(tmp_path):
    X = np.random.default_rng(0).normal(size=(100, 2))
    y = np.sin(X[:, 0]) + X[:, 1]
    som = SOM(3, 3, seed=0).fit(X)
    net = RBFNetwork(centers=som.codebook_).fit(X, y)
    assert np.allclose(net.centers_.numpy(), som.codebook_)
    back = RBFNetwork.load(net.save(tmp_path / "rbf.safetensors"))
    assert np.array_equal(back.predict(X), net.predict(X))


def test_gradient_descent_learns_centers_and_widths():
    x = np.linspace(-1, 1, 100)[:, None]
    net = RBFNetwork(8, centers="grid", solver="gd", n_epochs=300, lr=0.02, seed=0).fit(x, np.sin(3 * x[:, 0]))
    assert net.centers_.dtype == torch.float32
    assert net.loss_curve_[-1] < net.loss_curve_[0] / 50
    start = grid_centers(torch.tensor(x), 8).float()
    assert not torch.allclose(net.centers_, start)  # centers moved
    assert not torch.allclose(net.widths_, net.widths_[0].expand(8))  # widths diverged from the shared start


@pytest.mark.parametrize("solver", ["lstsq", "gd"])
def test_classification_on_separable_blobs(solver):
    rng = np.random.default_rng(0)
    means = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    idx = np.repeat(np.arange(3), 30)
    X = means[idx] + 0.4 * rng.standard_normal((90, 2))
    labels = np.array(["cat", "dog", "eel"])[idx]
    clf = RBFClassifier(9, solver=solver, n_epochs=200, lr=0.05, seed=0).fit(X, labels)
    assert clf.classes_ == ["cat", "dog", "eel"]
    proba = clf.predict_proba(X)
    assert proba.shape == (90, 3) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert (clf.predict(X) == labels).all() and clf.score(X, labels) == 1.0
    assert (np.asarray(clf.classes_)[proba.argmax(1)] == clf.predict(X)).all()
    same = RBFNetwork(9, solver=solver, task="classification", n_epochs=200, lr=0.05, seed=0).fit(X, idx)
    assert same.classes_.tolist() == [0, 1, 2] and (same.predict(X) == idx).all()


def test_rbf_layer_shapes_gradients_and_hook():
    C = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    layer = RBFLayer(C, widths=None, learnable=True)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    phi = layer(x)
    assert phi.shape == (5, 6) and layer(x[None].expand(2, 5, 4)).shape == (2, 5, 6)
    torch.testing.assert_close(phi[0, 0], torch.exp(-((x[0] - C[0]) ** 2).sum() / (2 * layer.widths[0] ** 2)))
    phi.sum().backward()
    assert layer.centers.grad is not None and layer.centers.grad.abs().sum() > 0
    assert layer.log_widths.grad is not None and layer.log_widths.grad.abs().sum() > 0
    _, cache = layer.run_with_cache(x)
    assert torch.equal(cache["hook_activations"], phi.detach())
    fixed = RBFLayer(C, widths=0.5, learnable=False)
    assert list(fixed.parameters()) == [] and torch.allclose(fixed.widths, torch.full((6,), 0.5))
    with pytest.raises(ValueError, match="4 features"):
        layer(torch.randn(5, 3))
    with pytest.raises(ValueError, match="widths must be positive"):
        RBFLayer(C, widths=-1.0)


def test_registered_with_contract_examples():
    assert estimators.get("rbf") is RBFNetwork and estimators.get("rbf-classifier") is RBFClassifier
    est, X, y = RBFNetwork.contract_example(0)
    assert est.fit(X, y).score(X, y) > 0.9


def test_not_fitted_and_bad_input_errors():
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = X[:, 0]
    net = RBFNetwork(5)
    for method in (net.predict, net.transform):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(ValueError, match="NaN"):
        net.fit(np.where(X > 1.5, np.nan, X), y)
    with pytest.raises(ValueError, match="2-dimensional"):
        net.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="30 rows but y has 29"):
        net.fit(X, y[:-1])
    net.fit(X, y)
    with pytest.raises(ValueError, match="3 features, but this RBFNetwork was fitted with 2"):
        net.predict(np.ones((4, 3)))
    with pytest.raises(AttributeError, match="classification"):
        net.predict_proba(X)
    with pytest.raises(ValueError, match="n_centers <= number of samples"):
        RBFNetwork(50).fit(X, y)
    with pytest.raises(ValueError, match="n_centers = m\\^2"):
        RBFNetwork(10, centers="grid").fit(X, y)
    with pytest.raises(ValueError, match="single class"):
        RBFClassifier(3).fit(X, np.zeros(30))
    bad_params = [dict(centers="kmean"), dict(width=-1.0), dict(width="widest"), dict(solver="sgd"),
                  dict(alpha=-1.0), dict(task="ranking"), dict(n_centers=0), dict(centers=[[np.nan, 0.0]]),
                  dict(n_centers=3, centers=np.zeros((2, 2)))]
    for params in bad_params:
        with pytest.raises(ValueError):
            RBFNetwork(**params)
