"""In-context regression baselines: their known error curves on many prompts."""

import numpy as np
import pytest
import torch

from emergelab.icl import (
    DMMSE,
    Averaging,
    Lasso,
    LeastSquares,
    NearestNeighbors,
    Ridge,
    TwoLayerNN,
    bootstrap_mean,
    error_by_k,
    predict_by_k,
)


def linear_prompts(B: int, N: int, d: int, seed: int = 0, noise: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(B, N, d, generator=g)
    w = torch.randn(B, d, generator=g)
    ys = (xs @ w[:, :, None])[..., 0] + noise * torch.randn(B, N, generator=g)
    return xs, ys, w


def test_least_squares_matches_one_minus_k_over_d():
    d = 5
    xs, ys, _ = linear_prompts(4000, 2 * d + 1, d)
    curve = error_by_k(LeastSquares(), xs, ys, n_boot=200)
    for k in range(d):
        assert abs(curve["mean"][k] - (1 - k / d)) < 0.05, (k, curve["mean"][k])
        assert curve["low"][k] <= curve["mean"][k] <= curve["high"][k]
    assert max(curve["mean"][d:]) < 1e-8


def test_averaging_near_d_plus_one_over_k():
    d = 5
    xs, ys, _ = linear_prompts(4000, 41, d, seed=1)
    curve = error_by_k(Averaging(), xs, ys, n_boot=200)
    assert curve["mean"][0] == pytest.approx(1.0, abs=0.08)  # predicts 0: error = E(w.x)^2 / d = 1
    for k in (10, 20, 40):
        assert curve["mean"][k] == pytest.approx((d + 1) / k, rel=0.15), k


def test_ridge_tends_to_least_squares_and_beats_it_with_noise():
    d = 4
    xs, ys, _ = linear_prompts(500, 9, d, seed=2)
    ls = predict_by_k(LeastSquares(), xs, ys)
    assert torch.allclose(predict_by_k(Ridge(1e-9), xs, ys), ls, atol=1e-2)
    assert not torch.allclose(predict_by_k(Ridge(1.0), xs, ys), ls, atol=1e-1)
    xs, ys, _ = linear_prompts(4000, 9, d, seed=3, noise=1.0)  # noise variance 1: ridge(1) is Bayes-optimal
    r = error_by_k(Ridge(1.0), xs, ys, n_boot=50)["mean"]
    s = error_by_k(LeastSquares(), xs, ys, n_boot=50)["mean"]
    assert r[d] < 0.7 * s[d]  # least squares interpolates the noise at k = d


def test_dmmse_single_task_pool_is_exact_and_identifies_pool_tasks():
    d = 5
    g = torch.Generator().manual_seed(4)
    pool = torch.randn(1, d, generator=g)
    xs = torch.randn(64, 6, d, generator=g)
    ys = (xs @ pool.T)[..., 0]
    preds = predict_by_k(DMMSE(pool), xs, ys)
    assert torch.allclose(preds, ys.double(), atol=1e-5)  # even at k = 0
    pool = torch.randn(8, d, generator=g)
    idx = torch.randint(0, 8, (64,), generator=g)
    ys = (xs @ pool[idx][:, :, None])[..., 0]
    preds = predict_by_k(DMMSE(pool, noise_std=0.1), xs, ys)
    assert torch.allclose(preds[:, 4:], ys[:, 4:].double(), atol=1e-4)  # a few examples single out the task
    exact = predict_by_k(DMMSE(pool), xs, ys)  # noise_std=0: one example already does
    assert torch.allclose(exact[:, 1:], ys[:, 1:].double(), atol=1e-4)


def test_knn_uses_nearest_examples_and_fewer_when_k_small():
    xs = torch.tensor([[[0.0], [1.0], [10.0], [11.0], [12.0]]])
    ys = torch.tensor([[1.0, 2.0, 30.0, 40.0, 50.0]])
    q = torch.tensor([[0.2]])
    assert NearestNeighbors(3)(xs, ys, q).item() == pytest.approx(11.0)
    assert NearestNeighbors(3)(xs[:, :2], ys[:, :2], q).item() == pytest.approx(1.5)
    assert NearestNeighbors(3)(xs[:, :0], ys[:, :0], q).item() == 0.0


def test_lasso_beats_least_squares_on_sparse_tasks():
    d, B = 10, 60
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(B, 8, d, generator=g)
    w = torch.zeros(B, d)
    w[:, :2] = torch.randn(B, 2, generator=g)
    ys = (xs @ w[:, :, None])[..., 0]
    k = 6
    lasso = ((Lasso(0.01)(xs[:, :k], ys[:, :k], xs[:, k]) - ys[:, k]) ** 2).mean()
    ls = ((LeastSquares()(xs[:, :k], ys[:, :k], xs[:, k]) - ys[:, k]) ** 2).mean()
    assert lasso < 0.3 * ls


def test_two_layer_nn_fits_its_examples_and_beats_linear_learners_on_relu_functions():
    from emergelab.tasks.regression import RegressionTask, RegressionTaskConfig

    b = RegressionTask(RegressionTaskConfig(d=3, function="relu", n_points=13)).sample(
        128, torch.Generator().manual_seed(6))
    nn = TwoLayerNN(hidden=100, steps=300, lr=5e-3)
    k = 8
    seen = nn(b.xs[:, :k], b.ys[:, :k], b.xs[:, 2])  # query = an example it was fitted to: interpolates
    assert ((seen - b.ys[:, 2].double()) ** 2).mean() < 0.02 * (b.ys[:, 2] ** 2).mean()
    again = nn(b.xs[:, :k], b.ys[:, :k], b.xs[:, 2])
    assert torch.equal(seen, again)  # seeded initialization: deterministic
    assert (nn(b.xs[:, :0], b.ys[:, :0], b.xs[:, 0]) == 0).all()
    err = {L.name: error_by_k(L, b.xs, b.ys, n_boot=20)["mean"][12]
           for L in (nn, LeastSquares(), Averaging())}
    assert err["two_layer_nn"] < 0.8 * min(err["least_squares"], err["averaging"]), err
    with pytest.raises(ValueError, match="hidden"):
        TwoLayerNN(hidden=0)


def test_bad_shapes_and_bootstrap():
    with pytest.raises(ValueError, match="x_query"):
        LeastSquares()(torch.zeros(2, 3, 4), torch.zeros(2, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="alpha"):
        Ridge(-1.0)
    m, lo, hi = bootstrap_mean(np.arange(100.0))
    assert lo < m == 49.5 < hi


# --- prompts (tasks/regression.py) ------------------------------------------------------------------------
def test_prompt_round_trip_and_layout():
    from emergelab.tasks.regression import RegressionTask, RegressionTaskConfig, from_sequence, to_sequence

    task = RegressionTask(RegressionTaskConfig(d=3))
    b = task.sample(4, torch.Generator().manual_seed(0))
    assert b.xs.shape == (4, 7, 3) and b.ys.shape == (4, 7)
    assert torch.allclose(b.ys, (b.xs @ b.w[:, :, None])[..., 0])
    seq = to_sequence(b.xs, b.ys)
    assert seq.shape == (4, 13, 3)
    assert torch.equal(seq[:, 1::2, 1:], torch.zeros(4, 6, 2))  # y embedded as [y, 0, 0]
    xs, ys = from_sequence(seq)
    assert torch.equal(xs, b.xs) and torch.equal(ys, b.ys[:, :-1])
    again = task.sample(4, torch.Generator().manual_seed(0))
    assert torch.equal(again.xs, b.xs) and torch.equal(again.w, b.w)


def test_function_classes_pool_and_bad_config():
    from emergelab.errors import ConfigError
    from emergelab.tasks.regression import RegressionTask, RegressionTaskConfig

    g = torch.Generator().manual_seed(1)
    sparse = RegressionTask(RegressionTaskConfig(d=6, function="sparse", sparsity=2)).sample(50, g)
    assert ((sparse.w != 0).sum(1) == 2).all()
    relu = RegressionTask(RegressionTaskConfig(d=4, function="relu", noise_std=0.1)).sample(50, g)
    assert relu.w is None and relu.ys.shape == (50, 9) and relu.ys.std() > 0.1
    pooled = RegressionTask(RegressionTaskConfig(d=4, pool_size=3))
    w = pooled.sample(200, g).w
    assert len(torch.unique(w, dim=0)) == 3
    assert torch.equal(pooled.pool, RegressionTask(RegressionTaskConfig(d=4, pool_size=3)).pool)
    with pytest.raises(ConfigError, match="pool_size"):
        RegressionTaskConfig(function="relu", pool_size=4)
    with pytest.raises(ConfigError, match="sparsity"):
        RegressionTaskConfig(d=3, function="sparse", sparsity=5)


def test_curriculum_sampling():
    from emergelab.tasks.configs import CurriculumConfig
    from emergelab.tasks.regression import RegressionTask, RegressionTaskConfig

    cur = CurriculumConfig(enabled=True, d_start=2, n_start=5, interval=100)
    assert cur.at(0, 5, 11) == (2, 5) and cur.at(250, 5, 11) == (4, 9) and cur.at(10_000, 5, 11) == (5, 11)
    assert CurriculumConfig().at(0, 5, 11) == (5, 11)
    b = RegressionTask(RegressionTaskConfig(d=5)).sample(8, torch.Generator().manual_seed(0), d_active=2, n=5)
    assert b.xs.shape == (8, 5, 5) and (b.xs[..., 2:] == 0).all() and (b.xs[..., :2] != 0).all()
    assert torch.allclose(b.ys, (b.xs[..., :2] @ b.w[:, :2, None])[..., 0])
