"""Self-organizing map (Kohonen), scikit-learn shaped and vectorized in torch.

A grid of `rows x cols` units, each holding a codebook vector in input space. Training pulls the
best-matching unit (BMU) of each sample, and its grid neighbours, towards the sample, so nearby
units come to represent nearby inputs.

Two training rules:

- `mode="batch"` (default; Kohonen's batch map): each of `n_iter` epochs finds every sample's BMU
  with one matmul, sums the samples per BMU, and sets every codebook vector to the
  neighbourhood-weighted mean of those sums, W = (H @ S) / (H @ N), where H[i, j] = h(grid
  distance(i, j); sigma_t), S the per-unit sums and N the per-unit counts. There is no learning rate:
  each epoch jumps to the fixed point for the current sigma, which is why few epochs suffice.
- `mode="online"` (the classic rule): `n_iter` single-sample steps, w_j += lr_t * h_bj * (x - w_j),
  samples drawn at random (with replacement) from a seeded generator.

Schedules decay exponentially from start to end over the run: sigma_t = sigma * (sigma_end /
sigma) ** (t / (T - 1)), the same for the learning rate (online only), t = 0 .. T-1; so the last
epoch / step uses exactly `sigma_end`. The final radius trades the two metrics: a small
`sigma_end` lowers the quantization error and raises the topographic error.

Public methods take array-likes and return numpy arrays; learned state is numpy too:
`codebook_` (rows*cols, d) float32, `grid_` (rows*cols, 2) float32 unit coordinates (row, col)
(hexagonal: odd rows shifted +0.5 along col, rows sqrt(3)/2 apart, so the six neighbours are at
distance 1), `n_features_in_`. Unit k sits at grid row k // cols, column k % cols.

Metrics follow MiniSom's definitions so comparisons are fair: quantization error = mean Euclidean
distance of a sample to its BMU; topographic error = fraction of samples whose first and second
BMUs are not grid neighbours, neighbours = 8-neighbourhood on a rectangular grid (MiniSom's
grid distance <= 1.42) and the six units at distance 1 on a hexagonal grid. The u-matrix uses the
same neighbourhoods (it equals MiniSom's `distance_map(scaling="mean")` before its division by the
maximum). MiniSom lays hexagons out transposed (its offsets run along the first axis).

Example:
    >>> som = SOM(10, 10, seed=0).fit(X)                 # X (n, d)
    >>> som.predict(X)                                   # (n,) BMU index in [0, 100)
    >>> som.quantization_error(X), som.topographic_error(X)
    >>> som.u_matrix().shape, som.hit_map(X, y).shape    # (10, 10), (n_classes, 10, 10)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..estimator import Estimator, as_float_tensor
from ..registry import estimators

NEIGHBORHOODS = ("gaussian", "bubble")
TOPOLOGIES = ("rectangular", "hexagonal")
INITS = ("random", "pca")
MODES = ("batch", "online")
RECT_NEIGHBOR_RADIUS = 1.42  # MiniSom's threshold: 8-neighbourhood (diagonal = sqrt 2 = 1.414)
HEX_NEIGHBOR_RADIUS = 1.0 + 1e-4  # hex neighbours sit at exactly 1; the next ring at sqrt 3


def _span(k: int) -> torch.Tensor:
    """(k,) float64 grid positions in [-1, 1]; a single unit sits at the centre."""
    return torch.linspace(-1, 1, k, dtype=torch.float64) if k > 1 else torch.zeros(1, dtype=torch.float64)


@estimators.register("som", "self-organizing map (Kohonen), batch or online, torch-vectorized")
class SOM(Estimator):
    """Self-organizing map. See the module docstring for the algorithm and conventions.

    Args:
        rows, cols: grid shape.
        sigma: initial neighbourhood radius in grid units; None -> max(rows, cols) / 2.
        sigma_end: final neighbourhood radius; 0.5 = the final radius of MiniSom(sigma=1.5) and, with 20 batch
            epochs, beats its quantization AND topographic error on standardized digits (benchmarks/RESULTS.md).
        learning_rate, learning_rate_end: online mode only (the batch map needs none).
        neighborhood: "gaussian" exp(-d^2 / 2 sigma^2), or "bubble" 1 where grid distance d <= sigma.
        topology: "rectangular" or "hexagonal".
        init: "pca" (grid spans the first two principal components, +-1 standard deviation along
            each; deterministic) or "random" (codebook = distinct random samples of X).
        mode: "batch" or "online".
        n_iter: batch: epochs (None -> 20); online: single-sample steps (None -> 10 * n_samples).
        batch_size: batch mode only: rows per chunk when finding BMUs (bounds memory at
            batch_size x rows*cols floats; the result does not depend on it beyond float rounding).
        seed: seeds the random init and the online sample order.
    """

    def __init__(self, rows: int, cols: int, *, sigma: float | None = None, sigma_end: float = 0.5,
                 learning_rate: float = 0.5, learning_rate_end: float = 0.01, neighborhood: str = "gaussian",
                 topology: str = "rectangular", init: str = "pca", mode: str = "batch", n_iter: int | None = None,
                 batch_size: int = 4096, seed: int = 0):
        self.rows, self.cols = rows, cols
        self.sigma, self.sigma_end = sigma, sigma_end
        self.learning_rate, self.learning_rate_end = learning_rate, learning_rate_end
        self.neighborhood, self.topology, self.init, self.mode = neighborhood, topology, init, mode
        self.n_iter, self.batch_size, self.seed = n_iter, batch_size, seed
        self._check_params()

    # ------------------------------------------------------------------ parameters

    def _check_params(self) -> None:
        for name in ("rows", "cols", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_iter is not None and (isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int)
                                        or self.n_iter < 1):
            raise ValueError(f"n_iter must be a positive integer or None, got {self.n_iter!r}")
        for name in ("sigma", "sigma_end", "learning_rate", "learning_rate_end"):
            v = getattr(self, name)
            if name == "sigma" and v is None:
                continue
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        for name, choices in (("neighborhood", NEIGHBORHOODS), ("topology", TOPOLOGIES), ("init", INITS),
                              ("mode", MODES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    @property
    def n_units(self) -> int:
        return self.rows * self.cols

    def _sigma_start(self) -> float:
        return float(self.sigma) if self.sigma is not None else max(self.rows, self.cols) / 2

    # ------------------------------------------------------------------ grid

    def _grid(self) -> torch.Tensor:
        """(rows*cols, 2) float32 unit coordinates (row, col), row-major unit order."""
        r, c = torch.meshgrid(torch.arange(self.rows, dtype=torch.float32),
                              torch.arange(self.cols, dtype=torch.float32), indexing="ij")
        if self.topology == "hexagonal":
            c = c + 0.5 * (r % 2)  # offset rows ...
            r = r * (math.sqrt(3) / 2)  # ... packed so that all six neighbours are at distance 1
        return torch.stack([r.reshape(-1), c.reshape(-1)], dim=1)

    def _grid_dist2(self) -> torch.Tensor:
        """(units, units) squared grid distances, the table every neighbourhood is read from."""
        g = torch.as_tensor(self.grid_, dtype=torch.float64)  # float64: exact hex distances (1 vs 1 +- eps)
        return ((g[:, None, :] - g[None, :, :]) ** 2).sum(-1)

    def _adjacency(self) -> torch.Tensor:
        """(units, units) bool, True for grid neighbours (not self)."""
        radius = RECT_NEIGHBOR_RADIUS if self.topology == "rectangular" else HEX_NEIGHBOR_RADIUS
        d2 = self._grid_dist2()
        return (d2 <= radius**2) & (d2 > 0)

    def _kernel(self, dist2: torch.Tensor, sigma: float) -> torch.Tensor:
        if self.neighborhood == "gaussian":
            return torch.exp(dist2 / (-2.0 * sigma * sigma))
        return (dist2 <= sigma * sigma + 1e-9).to(dist2.dtype)

    def _schedule(self, start: float, end: float, steps: int) -> torch.Tensor:
        """(steps,) float64 exponential interpolation start -> end (exactly end at the last step)."""
        if steps == 1:
            return torch.tensor([end], dtype=torch.float64)
        t = torch.arange(steps, dtype=torch.float64) / (steps - 1)
        return start * (end / start) ** t

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any = None) -> SOM:
        """Train on X (n, d); y is ignored (accepted for pipeline compatibility). Returns self."""
        self._check_params()
        x = as_float_tensor(X)
        n, d = x.shape
        gen = torch.Generator().manual_seed(self.seed)
        grid = self._grid()
        self.grid_ = grid.numpy()
        w = self._init_codebook(x, gen)
        dist2 = self._grid_dist2().to(torch.float32)
        if self.mode == "batch":
            w = self._fit_batch(x, w, dist2)
        else:
            w = self._fit_online(x, w, dist2, gen)
        self.codebook_ = w.numpy()
        self.n_features_in_ = int(d)
        return self

    def _init_codebook(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, d = x.shape
        if self.init == "random":
            # distinct samples when there are enough (duplicates would start as tied units)
            idx = (torch.randperm(n, generator=gen)[: self.n_units] if n >= self.n_units
                   else torch.randint(n, (self.n_units,), generator=gen))
            return x[idx].clone()
        mean = x.mean(0)
        xc = (x - mean).double()
        # principal axes from the SVD of the centred data; std along axis k = s_k / sqrt(n - 1)
        _, s, vt = torch.linalg.svd(xc, full_matrices=False)
        k = min(2, vt.shape[0])
        comps = torch.zeros(2, d, dtype=torch.float64)
        # fix each axis's sign (largest |entry| positive) so the layout does not depend on the LAPACK build
        signs = torch.sign(vt[torch.arange(k), vt[:k].abs().argmax(1)])
        comps[:k] = vt[:k] * signs[:, None] * (s[:k, None] / math.sqrt(max(n - 1, 1)))
        # the larger principal axis runs along the longer side of the grid
        long_first = self.rows >= self.cols
        pc_r, pc_c = (comps[0], comps[1]) if long_first else (comps[1], comps[0])
        a, b = _span(self.rows), _span(self.cols)
        w = mean.double() + a[:, None, None] * pc_r + b[None, :, None] * pc_c  # (rows, cols, d)
        return w.reshape(self.n_units, d).float()

    def _fit_batch(self, x: torch.Tensor, w: torch.Tensor, dist2: torch.Tensor) -> torch.Tensor:
        n, d = x.shape
        epochs = self.n_iter or 20
        for sigma in self._schedule(self._sigma_start(), self.sigma_end, epochs).tolist():
            sums = torch.zeros(self.n_units, d)  # per-unit sum of the samples it wins
            counts = torch.zeros(self.n_units)
            for start in range(0, n, self.batch_size):
                xb = x[start: start + self.batch_size]
                bmu = self._bmu(xb, w)
                sums.index_add_(0, bmu, xb)
                counts += torch.bincount(bmu, minlength=self.n_units).to(counts.dtype)
            h = self._kernel(dist2, sigma)  # (units, units), symmetric
            num, den = h @ sums, h @ counts
            # bubble kernels can leave a unit with no sample in reach: it keeps its vector
            w = torch.where(den[:, None] > 0, num / den.clamp_min(1e-30)[:, None], w)
        return w

    def _fit_online(self, x: torch.Tensor, w: torch.Tensor, dist2: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        steps = self.n_iter or 10 * n
        order = torch.randint(n, (steps,), generator=gen).tolist()
        sig = self._schedule(self._sigma_start(), self.sigma_end, steps)
        lr = self._schedule(self.learning_rate, self.learning_rate_end, steps)
        gaussian = self.neighborhood == "gaussian"
        # per-step scalars precomputed; gaussian: lr * h = exp(d^2 * (-1 / 2 sigma^2) + log lr), one fused step
        coef = (-0.5 / sig**2).tolist() if gaussian else (sig**2 + 1e-9).tolist()
        bias = lr.log().tolist() if gaussian else lr.tolist()
        w = w.clone()
        # a Python loop of small torch ops: dispatch dominates, so reuse buffers and pre-split rows
        xs, rows = x.unbind(0), dist2.unbind(0)
        diff, h = torch.empty_like(w), torch.empty(self.n_units)
        for t, i in enumerate(order):
            torch.sub(xs[i], w, out=diff)  # (units, d)
            b = int(torch.linalg.vector_norm(diff, dim=1).argmin())
            if gaussian:
                torch.mul(rows[b], coef[t], out=h).add_(bias[t]).exp_()
            else:
                torch.le(rows[b], coef[t], out=h).mul_(bias[t])
            w.addcmul_(h.unsqueeze(1), diff)
        return w

    # ------------------------------------------------------------------ inference

    def _check_X(self, X: Any) -> torch.Tensor:
        self.check_fitted()
        x = as_float_tensor(X)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {x.shape[1]} features, but this SOM was fitted with {self.n_features_in_}")
        return x

    def _codebook(self) -> torch.Tensor:
        return torch.as_tensor(self.codebook_, dtype=torch.float32)

    @staticmethod
    def _sq_dists(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(n, units) squared distances, ||x||^2 - 2 x.w + ||w||^2 in one matmul, clamped at 0."""
        return torch.addmm((w * w).sum(1)[None, :], x, w.T, alpha=-2).add_((x * x).sum(1, keepdim=True)).clamp_min_(0)

    @staticmethod
    def _bmu(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # ||x||^2 is the same for every unit, so the argmin needs only ||w||^2 - 2 x.w
        return torch.addmm((w * w).sum(1)[None, :], x, w.T, alpha=-2).argmin(1)

    def predict(self, X: Any) -> np.ndarray:
        """X (n, d) -> (n,) int64 index of the best-matching unit (row-major: row = k // cols)."""
        x = self._check_X(X)
        return self._bmu(x, self._codebook()).numpy()

    def transform(self, X: Any) -> np.ndarray:
        """X (n, d) -> (n, rows*cols) float32 Euclidean distance to every unit."""
        x = self._check_X(X)
        return self._sq_dists(x, self._codebook()).sqrt_().numpy()

    def quantization_error(self, X: Any) -> float:
        """Mean Euclidean distance from each sample to its best-matching unit's codebook vector."""
        x = self._check_X(X)
        w = self._codebook()
        # the distance is recomputed directly: the matmul form loses digits when ||x|| >> ||x - w||
        return float((x - w[self._bmu(x, w)]).double().norm(dim=1).mean())

    def topographic_error(self, X: Any) -> float:
        """Fraction of samples whose best and second-best units are not grid neighbours (MiniSom's definition)."""
        x = self._check_X(X)
        if self.n_units < 2:
            raise ValueError("topographic error is undefined for a map with a single unit")
        top2 = self._sq_dists(x, self._codebook()).topk(2, dim=1, largest=False).indices  # (n, 2)
        return float((~self._adjacency()[top2[:, 0], top2[:, 1]]).double().mean())

    def u_matrix(self) -> np.ndarray:
        """(rows, cols) float32: mean codebook distance from each unit to its grid neighbours."""
        self.check_fitted()
        w = self._codebook().double()
        adj = self._adjacency()
        d = torch.cdist(w, w)
        um = (d * adj).sum(1) / adj.sum(1).clamp_min(1)
        return um.float().reshape(self.rows, self.cols).numpy()

    def hit_map(self, X: Any, y: Any = None) -> np.ndarray:
        """How many samples each unit wins: (rows, cols) int64, or with labels y (n,) one map per
        class, (n_classes, rows, cols), classes in the order of np.unique(y)."""
        bmu = self.predict(X)
        if y is None:
            return np.bincount(bmu, minlength=self.n_units).reshape(self.rows, self.cols)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(bmu):
            raise ValueError(f"y must be 1-dimensional with {len(bmu)} labels, got shape {y.shape}")
        _, cls = np.unique(y, return_inverse=True)
        counts = np.zeros((cls.max() + 1, self.n_units), dtype=np.int64)
        np.add.at(counts, (cls, bmu), 1)
        return counts.reshape(-1, self.rows, self.cols)

    # ------------------------------------------------------------------ contract tests

    @classmethod
    def contract_example(cls, seed: int) -> tuple[SOM, np.ndarray, None]:
        """A small unfitted SOM and data for the registry-wide contract tests."""
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(60, 3)).astype(np.float32)
        return cls(3, 4, init="random", n_iter=5, seed=seed), X, None
