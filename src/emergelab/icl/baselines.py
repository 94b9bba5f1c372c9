"""In-context learners with known behaviour: the yardsticks a trained transformer is compared against.

Every learner is a callable on a batch of prompts

    learner(xs (B, k, d), ys (B, k), x_query (B, d)) -> y_hat (B,)

that predicts y at `x_query` from the k examples alone (k may be 0). Baselines compute in float64:
the least-squares error near k = d is a difference of large numbers.

`error_by_k(learner, xs, ys)` scores a learner on full prompts (B, N, d) / (B, N): for every k = 0..N-1
it predicts ys[:, k] from the first k examples and returns the normalized squared error
(y_hat - y)^2 / d with bootstrap 90% intervals (Garg et al. 2022, fig. 2).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> xs = torch.randn(256, 11, 5, generator=g); w = torch.randn(256, 5, generator=g)
    >>> ys = (xs @ w[:, :, None])[..., 0]
    >>> curve = error_by_k(LeastSquares(), xs, ys)       # curve["mean"][k] ~ 1 - k/5 for k < 5, ~0 after
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["Averaging", "DMMSE", "Lasso", "LeastSquares", "NearestNeighbors", "Ridge", "TwoLayerNN",
           "bootstrap_mean", "error_by_k", "errors_from_predictions", "predict_by_k"]


def _prep(xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> tuple[torch.Tensor, ...]:
    if xs.dim() != 3 or ys.dim() != 2 or x_query.dim() != 2:
        raise ValueError(f"expected xs (B, k, d), ys (B, k), x_query (B, d); got {tuple(xs.shape)}, "
                         f"{tuple(ys.shape)}, {tuple(x_query.shape)}")
    if xs.shape[:2] != ys.shape or xs.shape[0] != x_query.shape[0] or xs.shape[2] != x_query.shape[1]:
        raise ValueError(f"prompt shapes disagree: xs {tuple(xs.shape)}, ys {tuple(ys.shape)}, "
                         f"x_query {tuple(x_query.shape)}")
    return xs.double(), ys.double(), x_query.double()


class LeastSquares:
    """Minimum-norm least squares: w_hat = pinv(X) y (the Bayes-optimal learner for w ~ N(0, I), no noise)."""

    name = "least_squares"

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        xs, ys, xq = _prep(xs, ys, x_query)
        if xs.shape[1] == 0:
            return torch.zeros(xs.shape[0], dtype=torch.float64)
        w = torch.linalg.pinv(xs) @ ys[:, :, None]  # (B, d, 1)
        return (xq[:, None, :] @ w)[:, 0, 0]


class Ridge:
    """w_hat = (X^T X + alpha I)^-1 X^T y; alpha = noise variance is Bayes-optimal for w ~ N(0, I).

    alpha = 0 is minimum-norm least squares.
    """

    name = "ridge"

    def __init__(self, alpha: float):
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        if self.alpha == 0:
            return LeastSquares()(xs, ys, x_query)
        xs, ys, xq = _prep(xs, ys, x_query)
        d = xs.shape[2]
        gram = xs.transpose(1, 2) @ xs + self.alpha * torch.eye(d, dtype=torch.float64)  # (B, d, d)
        w = torch.linalg.solve(gram, xs.transpose(1, 2) @ ys[:, :, None])  # (B, d, 1)
        return (xq[:, None, :] @ w)[:, 0, 0]


class NearestNeighbors:
    """Mean of the ys of the `n_neighbors` examples nearest to the query (fewer when k is smaller; 0 at k = 0)."""

    def __init__(self, n_neighbors: int = 3):
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
        self.n_neighbors = n_neighbors
        self.name = f"knn{n_neighbors}"

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        xs, ys, xq = _prep(xs, ys, x_query)
        k = xs.shape[1]
        if k == 0:
            return torch.zeros(xs.shape[0], dtype=torch.float64)
        dist = ((xs - xq[:, None, :]) ** 2).sum(-1)  # (B, k)
        idx = dist.topk(min(self.n_neighbors, k), dim=1, largest=False).indices
        return ys.gather(1, idx).mean(1)


class Averaging:
    """w_hat = mean_i(y_i x_i): one step of gradient descent from 0; unbiased for x ~ N(0, I) but noisy."""

    name = "averaging"

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        xs, ys, xq = _prep(xs, ys, x_query)
        if xs.shape[1] == 0:
            return torch.zeros(xs.shape[0], dtype=torch.float64)
        w = (ys[:, :, None] * xs).mean(1)  # (B, d)
        return (w * xq).sum(-1)


class Lasso:
    """scikit-learn's Lasso per prompt (no intercept): the sparse-regression baseline. CPU, one fit per prompt."""

    name = "lasso"

    def __init__(self, alpha: float = 0.01, max_iter: int = 10_000):
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha, self.max_iter = float(alpha), max_iter

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import Lasso as SkLasso

        xs, ys, xq = _prep(xs, ys, x_query)
        out = torch.zeros(xs.shape[0], dtype=torch.float64)
        if xs.shape[1] == 0:
            return out
        X, Y, Q = xs.numpy(), ys.numpy(), xq.numpy()
        model = SkLasso(alpha=self.alpha, fit_intercept=False, max_iter=self.max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for b in range(X.shape[0]):
                out[b] = float(model.fit(X[b], Y[b]).coef_ @ Q[b])
        return out


class DMMSE:
    """Bayes over a finite task pool (Raventós et al. 2023): the posterior-weighted mean of the pool's w.

    pool (M, d) holds the pretraining tasks; with Gaussian noise of std `noise_std` the posterior is
    p(w_m | data) ∝ exp(-sum_i (y_i - w_m·x_i)^2 / (2 noise_std^2)). noise_std = 0 is the limit: the
    residual-minimizing tasks share the weight equally.
    """

    name = "dmmse"

    def __init__(self, pool: torch.Tensor, noise_std: float = 0.0):
        if pool.dim() != 2 or pool.shape[0] < 1:
            raise ValueError(f"pool must be (M, d) with M >= 1, got {tuple(pool.shape)}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.pool = pool.double()
        self.noise_std = float(noise_std)

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        xs, ys, xq = _prep(xs, ys, x_query)
        if xs.shape[2] != self.pool.shape[1]:
            raise ValueError(f"pool has d={self.pool.shape[1]}, prompts have d={xs.shape[2]}")
        resid = ys[:, :, None] - xs @ self.pool.T  # (B, k, M)
        sse = (resid**2).sum(1)  # (B, M)
        if self.noise_std > 0:
            logp = -sse / (2 * self.noise_std**2)
        else:  # the sigma -> 0 limit: uniform over the tasks that fit best (relative tolerance for rounding)
            best = sse.min(1, keepdim=True).values
            logp = torch.where(sse <= best * (1 + 1e-9) + 1e-12, 0.0, -torch.inf).double()
        post = logp.softmax(1)  # (B, M)
        return ((post @ self.pool) * xq).sum(-1)


class TwoLayerNN:
    """A ReLU network x -> a·relu(V x + b) + c fitted to each prompt's k examples by full-batch Adam: the
    baseline of Garg et al. 2022 for the random-ReLU-network function class.

    One network per prompt, all trained at once: parameters are (B, d, hidden) etc. and the loss is the sum
    over prompts of each prompt's mean squared error, so (Adam being elementwise) every prompt's network
    follows exactly the steps it would follow alone. Initialization is seeded: the same prompts give the
    same predictions.
    """

    name = "two_layer_nn"

    def __init__(self, hidden: int = 100, steps: int = 500, lr: float = 5e-3, seed: int = 0):
        if hidden < 1 or steps < 1 or not lr > 0:
            raise ValueError(f"need hidden >= 1, steps >= 1, lr > 0; got {hidden}, {steps}, {lr}")
        self.hidden, self.steps, self.lr, self.seed = hidden, steps, float(lr), seed

    def __call__(self, xs: torch.Tensor, ys: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        xs, ys, xq = _prep(xs, ys, x_query)
        B, k, d = xs.shape
        if k == 0:
            return torch.zeros(B, dtype=torch.float64)
        xs, ys, xq = xs.float(), ys.float(), xq.float()  # float32: GD noise dwarfs rounding here
        g = torch.Generator().manual_seed(self.seed)
        V = (torch.randn(B, d, self.hidden, generator=g) / d**0.5).requires_grad_()  # (B, d, H)
        b = torch.zeros(B, 1, self.hidden, requires_grad=True)  # (B, 1, H)
        a = (torch.randn(B, self.hidden, 1, generator=g) / self.hidden**0.5).requires_grad_()  # (B, H, 1)
        c = torch.zeros(B, 1, 1, requires_grad=True)
        opt = torch.optim.Adam([V, b, a, c], lr=self.lr)

        def net(x: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n)
            return ((x @ V + b).relu() @ a + c)[..., 0]

        with torch.enable_grad():
            for _ in range(self.steps):
                opt.zero_grad(set_to_none=True)
                ((net(xs) - ys) ** 2).mean(1).sum().backward()
                opt.step()
        with torch.no_grad():
            return net(xq[:, None, :])[:, 0].double()


# --- scoring ----------------------------------------------------------------------------------------------
def bootstrap_mean(values: np.ndarray, n_boot: int = 1000, level: float = 0.9, seed: int = 0) -> tuple[float, ...]:
    """values (n,) -> (mean, low, high): the percentile bootstrap interval of the mean."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(lo), float(hi)


def errors_from_predictions(preds: torch.Tensor, ys: torch.Tensor, d: int, *, n_boot: int = 1000,
                            seed: int = 0) -> dict[str, Any]:
    """preds, ys (B, N) -> {"k": [0..N-1], "mean", "low", "high"}: (pred - y)^2 / d by k with 90% intervals."""
    if preds.shape != ys.shape or preds.dim() != 2:
        raise ValueError(f"preds and ys must both be (B, N), got {tuple(preds.shape)} and {tuple(ys.shape)}")
    sq = ((preds.double() - ys.double()) ** 2 / d).numpy()  # (B, N)
    stats = [bootstrap_mean(sq[:, k], n_boot=n_boot, seed=seed + k) for k in range(sq.shape[1])]
    return {"k": list(range(sq.shape[1])), "mean": [s[0] for s in stats], "low": [s[1] for s in stats],
            "high": [s[2] for s in stats]}


def predict_by_k(learner, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """xs (B, N, d), ys (B, N) -> preds (B, N): preds[:, k] from the first k examples at xs[:, k]."""
    N = xs.shape[1]
    return torch.stack([learner(xs[:, :k], ys[:, :k], xs[:, k]) for k in range(N)], 1)


def error_by_k(learner, xs: torch.Tensor, ys: torch.Tensor, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Normalized squared error of `learner` by number of in-context examples k = 0..N-1, with 90% intervals.

    xs (B, N, d), ys (B, N). Returns {"k", "mean", "low", "high"} (lists of length N).
    """
    if xs.dim() != 3 or ys.shape != xs.shape[:2]:
        raise ValueError(f"expected xs (B, N, d) and ys (B, N), got {tuple(xs.shape)} and {tuple(ys.shape)}")
    return errors_from_predictions(predict_by_k(learner, xs, ys), ys, xs.shape[2], n_boot=n_boot, seed=seed)
