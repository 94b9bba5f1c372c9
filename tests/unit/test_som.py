"""SOM: the sklearn shape, hand-checkable metrics, topology, validation."""

import math

import numpy as np
import pytest

from emergelab.errors import NotFittedError
from emergelab.models.som import SOM


def blobs(n=120, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def line(n=200):
    t = np.linspace(0, 1, n, dtype=np.float32)
    return np.stack([t, 2 * t], axis=1)  # points on a line in 2-D, ordered by t


def hand_built(rows, cols, codebook, topology="rectangular"):
    """A SOM whose codebook is set by hand after a (throwaway) fit gave it a grid."""
    codebook = np.asarray(codebook, dtype=np.float32)
    som = SOM(rows, cols, topology=topology, n_iter=1).fit(np.eye(2, codebook.shape[1]))
    som.codebook_ = codebook
    return som


def test_fit_returns_self_and_learned_state_ends_in_underscore():
    som = SOM(3, 4, n_iter=3)
    assert som.fitted_attributes() == {}
    assert som.fit(blobs()) is som
    assert set(som.fitted_attributes()) == {"codebook_", "grid_", "n_features_in_"}
    assert som.codebook_.shape == (12, 4) and som.codebook_.dtype == np.float32
    assert som.grid_.shape == (12, 2) and som.n_features_in_ == 4
    assert np.array_equal(som.grid_[5], [1, 1])  # row-major: unit 5 of a 3x4 grid is row 1, column 1


@pytest.mark.parametrize("method", ["predict", "transform", "quantization_error", "topographic_error", "hit_map"])
def test_using_an_unfitted_som_raises(method):
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(SOM(2, 2), method)(blobs())
    with pytest.raises(NotFittedError):
        SOM(2, 2).u_matrix()


@pytest.mark.parametrize("mode", ["batch", "online"])
def test_same_seed_same_codebook_other_seed_differs(mode):
    X = blobs()
    kw = dict(init="random", mode=mode, n_iter=5 if mode == "batch" else 300)
    a, b, c = (SOM(3, 3, seed=s, **kw).fit(X) for s in (7, 7, 8))
    assert np.array_equal(a.codebook_, b.codebook_)
    assert not np.allclose(a.codebook_, c.codebook_)


def test_save_load_round_trip(tmp_path):
    X = blobs()
    som = SOM(3, 4, topology="hexagonal", n_iter=4).fit(X)
    path = som.save(tmp_path / "som.safetensors")
    back = SOM.load(path)
    assert back.get_params() == som.get_params()
    assert np.array_equal(back.codebook_, som.codebook_) and isinstance(back.codebook_, np.ndarray)
    assert back.n_features_in_ == 4
    assert np.array_equal(back.predict(X), som.predict(X))
    assert back.topographic_error(X) == som.topographic_error(X)


@pytest.mark.parametrize("mode,neighborhood", [("batch", "gaussian"), ("batch", "bubble"), ("online", "gaussian")])
def test_a_1d_map_on_a_line_orders_itself(mode, neighborhood):
    X = line()
    som = SOM(1, 8, init="random", mode=mode, neighborhood=neighborhood, sigma=4.0,
              n_iter=30 if mode == "batch" else 3000, seed=1).fit(X)
    steps = np.diff(som.codebook_[:, 0])
    assert (steps > 0).all() or (steps < 0).all()  # the units lie along the line in grid order
    assert som.topographic_error(X) == 0.0


def test_quantization_error_is_mean_distance_to_nearest_codebook_vector():
    X = blobs(d=5)
    som = SOM(4, 4, n_iter=5).fit(X)
    d = np.linalg.norm(X[:, None, :] - som.codebook_[None, :, :], axis=2)  # (n, units) in numpy
    assert som.quantization_error(X) == pytest.approx(d.min(1).mean(), rel=1e-6)
    assert np.array_equal(som.predict(X), d.argmin(1))
    assert np.allclose(som.transform(X), d, atol=1e-4)


def test_u_matrix_on_a_hand_built_codebook():
    som = hand_built(1, 3, [[0.0], [1.0], [3.0]])
    assert np.allclose(som.u_matrix(), [[1.0, 1.5, 2.0]])
    # 2x2 rectangular: every unit's 3 others are neighbours (diagonal included, as in MiniSom)
    square = hand_built(2, 2, [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert square.u_matrix().shape == (2, 2)
    assert np.allclose(square.u_matrix(), (2 + math.sqrt(2)) / 3)


def test_hit_map_counts_per_unit_and_per_class():
    X = blobs(n=90)
    y = np.repeat(["a", "b", "c"], 30)
    som = SOM(3, 3, n_iter=4).fit(X)
    hits = som.hit_map(X)
    assert hits.shape == (3, 3) and hits.sum() == 90
    assert np.array_equal(hits.reshape(-1), np.bincount(som.predict(X), minlength=9))
    per_class = som.hit_map(X, y)
    assert per_class.shape == (3, 3, 3)
    assert per_class.sum(axis=(1, 2)).tolist() == [30, 30, 30]
    assert np.array_equal(per_class.sum(0), hits)


def test_hexagonal_grid_has_six_neighbours_at_distance_one():
    som = hand_built(3, 3, np.arange(9)[:, None], topology="hexagonal")
    d = np.linalg.norm(som.grid_[:, None] - som.grid_[None], axis=2)
    near = lambda k: set(np.flatnonzero(np.isclose(d[k], 1.0)).tolist())  # noqa: E731
    assert near(4) == {1, 2, 3, 5, 7, 8}  # odd row 1 is shifted +0.5: its upper neighbours are columns 1 and 2
    assert near(0) == {1, 3}


@pytest.mark.parametrize("topology,expected", [("rectangular", 0.0), ("hexagonal", 1.0)])
def test_topographic_error_follows_the_topology(topology, expected):
    # units 4 and 6 win a sample: diagonal neighbours on a 3x3 rectangle (row 1 col 1 vs row 2 col 0),
    # sqrt(3) apart on the hexagonal grid
    codebook = 100.0 + 10 * np.arange(9, dtype=np.float32)[:, None]
    codebook[4], codebook[6] = 0.0, -1.0
    som = hand_built(3, 3, codebook, topology=topology)
    assert som.topographic_error([[-0.4]]) == expected
    codebook[8] = 1.0  # now unit 8 is second: a neighbour of 4 on both grids
    som.codebook_ = codebook
    assert som.topographic_error([[0.4]]) == 0.0


def test_rectangular_topographic_error_counts_units_two_apart():
    som = hand_built(1, 3, [[0.0], [10.0], [1.0]])
    assert som.topographic_error([[0.2]]) == 1.0  # best 0, second 2: not adjacent


def test_batch_size_only_chunks_the_work():
    X = blobs(n=100)
    a = SOM(3, 3, n_iter=6).fit(X)
    b = SOM(3, 3, n_iter=6, batch_size=7).fit(X)
    assert np.allclose(a.codebook_, b.codebook_, atol=1e-5)


def test_defaults_beat_minisom_reference_on_digits():
    # MiniSom(10, 10, 64, sigma=1.5, learning_rate=0.5).train_random(X, 10_000): QE ~4.38, TE ~0.15 (see RESULTS.md)
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_digits().data).astype(np.float32)
    som = SOM(10, 10).fit(X)
    assert som.quantization_error(X) < 4.38
    assert som.topographic_error(X) < 0.15


@pytest.mark.parametrize("X,match", [
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.zeros((0, 3)), "empty"),
    (np.zeros(5), "2-dimensional"),
    ([["a", "b"]], "numeric"),
])
def test_bad_training_data_is_refused(X, match):
    with pytest.raises(ValueError, match=match):
        SOM(2, 2).fit(X)


def test_wrong_feature_count_and_bad_labels_are_refused():
    som = SOM(2, 2, n_iter=2).fit(blobs(d=4))
    with pytest.raises(ValueError, match="3 features.*fitted with 4"):
        som.predict(blobs(d=3))
    with pytest.raises(ValueError, match="labels"):
        som.hit_map(blobs(d=4), y=[0, 1])
    with pytest.raises(ValueError, match="single unit"):
        SOM(1, 1, n_iter=1).fit(blobs()).topographic_error(blobs())


@pytest.mark.parametrize("kw,match", [
    (dict(rows=0), "rows"), (dict(topology="hex"), "topology"), (dict(mode="minibatch"), "mode"),
    (dict(neighborhood="mexican_hat"), "neighborhood"), (dict(sigma_end=0), "sigma_end"), (dict(sigma=-1.0), "sigma"),
    (dict(n_iter=0), "n_iter"), (dict(init="zeros"), "init"),
])
def test_bad_parameters_are_refused_at_construction(kw, match):
    args = dict(rows=2, cols=2) | kw
    with pytest.raises(ValueError, match=match):
        SOM(args.pop("rows"), args.pop("cols"), **args)
