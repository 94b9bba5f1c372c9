"""Radial basis function (RBF) networks: Gaussian hidden units, one linear output layer.

    phi_k(x) = exp(-||x - c_k||^2 / (2 s_k^2)),    y(x) = sum_k W_k phi_k(x) + b

Two ways to learn (Haykin, *Neural Networks*, ch. 5):

- the classic two-stage recipe, ``solver='lstsq'``: centers unsupervised (k-means, a uniform grid, a random
  sample of training points, or given ones such as a SOM codebook), widths from a heuristic, then the output
  weights by regularized least squares in closed form, in float64;
- ``solver='gd'``: Adam on centers, widths and output weights jointly (float32), starting from the same
  centers and widths.

`RBFLayer` is the same Gaussian layer as an `nn.Module`, to sit inside a larger network.

Example:
    >>> x = np.linspace(-1, 1, 200)[:, None]
    >>> net = RBFNetwork(20, centers="grid").fit(x, x[:, 0] ** 2)
    >>> bool(np.abs(net.predict(x) - x[:, 0] ** 2).max() < 1e-6)
    True
    >>> RBFNetwork(centers=som.codebook_).fit(X, y)            # SOM prototypes as centers
    >>> clf = RBFClassifier(16, seed=0).fit(X, labels)          # clf.predict_proba(X) rows sum to 1
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits
from torch import nn

from ..estimator import Estimator, as_float_tensor
from ..hooks import HookedModule, HookPoint
from ..registry import estimators

CENTER_METHODS = ("kmeans", "grid", "random")
WIDTH_METHODS = ("max_dist", "nearest")
DEFAULT_N_CENTERS = 10
_CHUNK_ELEMENTS = 1 << 22  # (rows x K x d) per chunk of the distance computation: bounded memory


# --- the Gaussian layer, as functions ---------------------------------------------------------------------
def squared_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """x (B, d), centers (K, d) -> ||x_i - c_k||^2 (B, K).

    Differences, not the ||x||^2 - 2 x.c + ||c||^2 expansion: the expansion cancels catastrophically when
    points sit close to a center far from the origin, and the 1e-6 fits need every digit. Rows are processed
    in chunks so memory stays bounded for large B * K * d.
    """
    K, d = centers.shape
    rows = max(1, _CHUNK_ELEMENTS // max(1, K * d))
    parts = [(xb[:, None, :] - centers[None]).pow(2).sum(-1) for xb in x.split(rows)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def gaussian_activations(x: torch.Tensor, centers: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """x (B, d), centers (K, d), widths (K,) -> phi (B, K) = exp(-||x - c_k||^2 / (2 s_k^2))."""
    return torch.exp(-squared_distances(x, centers) / (2 * widths.pow(2)))


def max_dist_width(centers: torch.Tensor) -> float:
    """Haykin's heuristic s = d_max / sqrt(2K), d_max the largest distance between two centers.

    Wide enough that neighbouring Gaussians overlap strongly, so their weighted sum is smooth.

    Example:
        >>> max_dist_width(torch.tensor([[0.0], [1.0], [3.0], [4.0]]))  # d_max = 4, K = 4
        1.414213562373095
    """
    K = centers.shape[0]
    d_max = torch.cdist(centers.double(), centers.double()).max().item() if K > 1 else 0.0
    if d_max <= 0:
        raise ValueError("width='max_dist' needs at least 2 distinct centers; pass a float width instead")
    return d_max / math.sqrt(2 * K)


def nearest_widths(centers: torch.Tensor, n_neighbors: int = 2) -> torch.Tensor:
    """Per-center width s_k = mean distance from c_k to its `n_neighbors` nearest other centers. (K,)

    Example:
        >>> nearest_widths(torch.tensor([[0.0], [1.0], [3.0]]), n_neighbors=1)
        tensor([1., 1., 2.])
    """
    K = centers.shape[0]
    if K < 2:
        raise ValueError("width='nearest' needs at least 2 centers; pass a float width instead")
    p = min(n_neighbors, K - 1)
    dist = torch.cdist(centers, centers)
    dist.fill_diagonal_(math.inf)
    widths = dist.topk(p, dim=1, largest=False).values.mean(dim=1)
    if not (widths > 0).all():
        raise ValueError("width='nearest' found duplicate centers (zero width); use fewer centers or a float width")
    return widths


def grid_centers(X: torch.Tensor, n_centers: int) -> torch.Tensor:
    """A uniform grid over the bounding box of X (n, d): m points per feature, m^d = n_centers. (K, d)

    Meant for low-dimensional inputs (the grid grows as m^d).

    Example:
        >>> grid_centers(torch.tensor([[-1.0], [1.0]]), 3).squeeze(1)
        tensor([-1.,  0.,  1.])
    """
    d = X.shape[1]
    m = max(1, round(n_centers ** (1 / d)))
    if m**d != n_centers:
        hint = ", ".join(str(v) for v in sorted({max(1, m - 1) ** d, m**d, (m + 1) ** d}))
        raise ValueError(f"centers='grid' with {d} input features needs n_centers = m^{d} (e.g. {hint}), "
                         f"got {n_centers}")
    axes = [torch.linspace(lo, hi, m, dtype=X.dtype) for lo, hi in zip(X.min(0).values.tolist(),
                                                                           X.max(0).values.tolist(), strict=True)]
    return torch.cartesian_prod(*axes).reshape(-1, d)


def lstsq_weights(phi: torch.Tensor, Y: torch.Tensor, alpha: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge least squares with an unpenalized bias: min ||phi W + b - Y||^2 + alpha ||W||^2.

    phi (n, K), Y (n, m), float64 -> W (K, m), b (m,). The ridge term enters as extra rows
    [sqrt(alpha) I, 0] of the design matrix instead of through the normal equations, whose condition number is
    the square of the design matrix's: with wide Gaussians that squaring costs the last digits (x^2 with 20
    centers: 1e-6 through the normal equations against 2e-8 this way). gelsd is SVD-based, so rank-deficient
    designs (duplicate centers, alpha = 0) still get the minimum-norm solution.
    """
    n, K = phi.shape
    A = torch.cat([phi, torch.ones(n, 1, dtype=phi.dtype)], dim=1)  # (n, K + 1): last column is the bias
    B = Y
    if alpha > 0:
        A = torch.cat([A, math.sqrt(alpha) * torch.eye(K, K + 1, dtype=phi.dtype)])
        B = torch.cat([Y, torch.zeros(K, Y.shape[1], dtype=Y.dtype)])
    sol = torch.linalg.lstsq(A, B, driver="gelsd").solution  # (K + 1, m)
    return sol[:K], sol[K]


# --- the layer, as a module -------------------------------------------------------------------------------
class RBFLayer(HookedModule):
    """Gaussian RBF layer: x (..., d) -> activations (..., K), through HookPoint `hook_activations`.

    Args:
        centers: (K, d) initial centers, e.g. a SOM codebook (array-like; float32 unless given a float tensor).
        widths: None (Haykin's d_max / sqrt(2K)), a positive float, or (K,) positive widths.
        learnable: centers and widths are trained (nn.Parameter) or fixed (buffers). Widths are stored as
            log-widths so gradient steps cannot make them negative.

    Example:
        >>> layer = RBFLayer(torch.randn(16, 64))                  # 16 units on 64-d inputs
        >>> layer(torch.randn(8, 64)).shape
        torch.Size([8, 16])
    """

    def __init__(self, centers: Any, widths: Any = None, learnable: bool = True):
        super().__init__()
        c = torch.as_tensor(np.asarray(centers) if not isinstance(centers, torch.Tensor) else centers)
        if not c.is_floating_point():
            c = c.float()
        if c.ndim != 2 or c.shape[0] == 0:
            raise ValueError(f"centers must have shape (K, d) with K >= 1, got {tuple(c.shape)}")
        if not torch.isfinite(c).all():
            raise ValueError("centers contain NaN or infinite values")
        c = c.detach().clone()
        K = c.shape[0]
        if widths is None:
            w = torch.full((K,), max_dist_width(c), dtype=c.dtype)
        else:
            w = torch.as_tensor(widths, dtype=c.dtype).detach().clone()
            w = w.expand(K).clone() if w.ndim == 0 else w
        if w.shape != (K,):
            raise ValueError(f"widths must be a float or have shape ({K},), got {tuple(w.shape)}")
        if not (torch.isfinite(w) & (w > 0)).all():
            raise ValueError("widths must be positive and finite")
        if learnable:
            self.centers = nn.Parameter(c)
            self.log_widths = nn.Parameter(w.log())
        else:
            self.register_buffer("centers", c)
            self.register_buffer("log_widths", w.log())
        self.hook_activations = HookPoint()
        self.setup_hooks()

    @property
    def widths(self) -> torch.Tensor:
        return self.log_widths.exp()  # (K,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, d = self.centers.shape
        if x.shape[-1] != d:
            raise ValueError(f"RBFLayer expects inputs with {d} features, got shape {tuple(x.shape)}")
        lead = x.shape[:-1]
        phi = gaussian_activations(x.reshape(-1, d), self.centers, self.widths)  # (B, K)
        return self.hook_activations(phi.reshape(*lead, K))

    def extra_repr(self) -> str:
        K, d = self.centers.shape
        return f"n_centers={K}, in_features={d}, learnable={isinstance(self.centers, nn.Parameter)}"


# --- the estimator ----------------------------------------------------------------------------------------
def _as_centers_array(centers: Any) -> np.ndarray:
    arr = centers.detach().cpu().numpy() if isinstance(centers, torch.Tensor) else np.asarray(centers)
    t = as_float_tensor(arr, name="centers", ndim=2, dtype=torch.float64)
    return t.numpy()


@estimators.register("rbf", "radial basis function network: Gaussian units, k-means/SOM/grid centers")
class RBFNetwork(Estimator):
    """RBF network for regression (or classification with ``task='classification'``), scikit-learn shaped.

    Args:
        n_centers: K, the number of Gaussian units (default 10); with explicit centers, K is their count.
        centers: 'kmeans' (seeded k-means on X), 'grid' (uniform grid over X's bounding box, low-dimensional
            inputs), 'random' (K distinct training points), or an explicit (K, d) array such as a SOM codebook.
        width: 'max_dist' (one width d_max / sqrt(2K)), 'nearest' (per center, mean distance to its
            `n_neighbors` nearest centers) or a positive float. With solver='gd' this is the initial width.
        n_neighbors: p for width='nearest'.
        solver: 'lstsq' (closed-form ridge least squares, float64) or 'gd' (Adam on centers, widths and
            weights jointly, float32; softmax cross-entropy for classification).
        alpha: ridge penalty on the output weights (not the bias); 0 = plain least squares.
        task: 'regression' (y (n,) or (n, m) floats) or 'classification' (y (n,) labels; one-hot least
            squares or softmax gradient descent).
        n_epochs, lr, batch_size: gradient descent only; batch_size None = full batch.
        seed: k-means, random centers and mini-batch order; same seed, same fit.

    Learned attributes: centers_ (K, d), widths_ (K,), weights_ (K, m), bias_ (m,) tensors (float64 for
    lstsq, float32 for gd), n_features_in_, n_outputs_; output_1d_ (regression), classes_ (classification),
    loss_curve_ (gd: loss per epoch).

    Example:
        >>> net = RBFNetwork(10, centers="grid").fit(x[:, None], np.sin(3 * x))
        >>> net.predict(x[:, None]).shape, net.transform(x[:, None]).shape      # (n,), (n, 10)
    """

    def __init__(
        self,
        n_centers: int | None = None,
        *,
        centers: str | Any = "kmeans",
        width: str | float = "max_dist",
        n_neighbors: int = 2,
        solver: str = "lstsq",
        alpha: float = 0.0,
        task: str = "regression",
        n_epochs: int = 500,
        lr: float = 0.02,
        batch_size: int | None = None,
        seed: int = 0,
    ):
        self.n_centers = n_centers
        self.centers = centers
        self.width = width
        self.n_neighbors = n_neighbors
        self.solver = solver
        self.alpha = alpha
        self.task = task
        self.n_epochs = n_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self._validate_params()

    def _validate_params(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {msg}")

        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if isinstance(self.centers, str):
            need(self.centers in CENTER_METHODS,
                 f"centers must be one of {', '.join(CENTER_METHODS)} or a (K, d) array, got {self.centers!r}")
            need(self.n_centers is None or (is_int(self.n_centers) and self.n_centers >= 1),
                 f"n_centers must be an int >= 1, got {self.n_centers!r}")
        else:
            K = _as_centers_array(self.centers).shape[0]
            need(self.n_centers is None or self.n_centers == K,
                 f"n_centers={self.n_centers!r} does not match the {K} explicit centers")
        if isinstance(self.width, str):
            need(self.width in WIDTH_METHODS,
                 f"width must be one of {', '.join(WIDTH_METHODS)} or a positive float, got {self.width!r}")
        else:
            need(isinstance(self.width, (int, float, np.floating)) and not isinstance(self.width, bool)
                 and math.isfinite(self.width) and self.width > 0,
                 f"width must be positive and finite, got {self.width!r}")
        need(is_int(self.n_neighbors) and self.n_neighbors >= 1, f"n_neighbors must be >= 1, got {self.n_neighbors!r}")
        need(self.solver in ("lstsq", "gd"), f"solver must be 'lstsq' or 'gd', got {self.solver!r}")
        need(isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha >= 0,
             f"alpha must be >= 0, got {self.alpha!r}")
        need(self.task in ("regression", "classification"),
             f"task must be 'regression' or 'classification', got {self.task!r}")
        need(is_int(self.n_epochs) and self.n_epochs >= 1, f"n_epochs must be >= 1, got {self.n_epochs!r}")
        need(isinstance(self.lr, (int, float)) and self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        need(self.batch_size is None or (is_int(self.batch_size) and self.batch_size >= 1),
             f"batch_size must be None or >= 1, got {self.batch_size!r}")
        need(is_int(self.seed), f"seed must be an int, got {self.seed!r}")

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if not isinstance(params["centers"], str):  # JSON-able, so save() can store it (floats round-trip exactly)
            params["centers"] = _as_centers_array(params["centers"]).tolist()
        if isinstance(params["width"], (int, float, np.floating)):
            params["width"] = float(params["width"])
        return params

    @property
    def _dtype(self) -> torch.dtype:
        # least squares needs float64 for 1e-6 fits; gradient descent gains nothing from it
        return torch.float64 if self.solver == "lstsq" else torch.float32

    # -- fitting ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Self:
        """X (n, d), y (n,) or (n, m) targets, or (n,) labels for classification -> self."""
        Xt = as_float_tensor(X, "X", ndim=2, dtype=torch.float64)
        n, d = Xt.shape
        Y, extra = self._targets(y, n)
        centers = self._init_centers(Xt)
        if centers.shape[1] != d:
            raise ValueError(f"centers have {centers.shape[1]} features but X has {d}")
        widths = self._init_widths(centers)
        if self.solver == "lstsq":
            W, b = lstsq_weights(gaussian_activations(Xt, centers, widths), Y, float(self.alpha))
            fitted = {"centers_": centers, "widths_": widths, "weights_": W, "bias_": b}
        else:
            fitted = self._fit_gd(Xt.float(), Y, centers.float(), widths.float())
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)  # a refit replaces the whole learned state
        for k, v in {**fitted, **extra}.items():
            setattr(self, k, v)
        self.n_features_in_ = d
        self.n_outputs_ = int(Y.shape[1])
        return self

    def _targets(self, y: Any, n: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """-> (Y (n, m) float64 targets: values, or one-hot labels for lstsq / class indices for gd, extras)."""
        if self.task == "regression":
            arr = np.asarray(y)
            if arr.ndim not in (1, 2):
                raise ValueError(f"y must be 1- or 2-dimensional, got shape {arr.shape}")
            Y = as_float_tensor(arr, "y", ndim=arr.ndim, dtype=torch.float64)
            if Y.shape[0] != n:
                raise ValueError(f"X has {n} rows but y has {Y.shape[0]}")
            return (Y[:, None] if Y.ndim == 1 else Y), {"output_1d_": arr.ndim == 1}
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise ValueError(f"y must be a 1-dimensional array of class labels, got shape {labels.shape}")
        if labels.shape[0] != n:
            raise ValueError(f"X has {n} rows but y has {labels.shape[0]}")
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise ValueError("y contains NaN or infinite values")
        if labels.dtype.kind not in "biufU":
            if not all(isinstance(v, str) for v in labels):
                raise ValueError("class labels must be numbers or strings")
            labels = labels.astype(str)
        classes, index = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has a single class ({classes[0]!r}); classification needs at least 2")
        # numbers stay an array (saved as a tensor); strings become a list (saved as JSON)
        classes_ = classes.astype(np.int64) if classes.dtype.kind in "biu" else (
            classes if classes.dtype.kind == "f" else classes.tolist())
        Y = torch.nn.functional.one_hot(torch.as_tensor(index, dtype=torch.long), len(classes)).double()
        return Y, {"classes_": classes_}

    def _init_centers(self, X: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.centers, str):
            return torch.from_numpy(_as_centers_array(self.centers))
        K = self.n_centers or DEFAULT_N_CENTERS
        n = X.shape[0]
        if self.centers == "grid":
            return grid_centers(X, K)
        if n < K:
            raise ValueError(f"centers={self.centers!r} needs n_centers <= number of samples ({n}), got {K}")
        if self.centers == "random":
            idx = np.random.default_rng(self.seed).choice(n, size=K, replace=False)
            return X[torch.as_tensor(np.sort(idx))].clone()
        with threadpool_limits(1):  # scikit-learn's k-means result depends on the OpenMP thread count
            km = KMeans(n_clusters=K, n_init=4, random_state=self.seed).fit(X.double().numpy())
        return torch.from_numpy(km.cluster_centers_.astype(np.float64))

    def _init_widths(self, centers: torch.Tensor) -> torch.Tensor:
        K = centers.shape[0]
        if self.width == "max_dist":
            return torch.full((K,), max_dist_width(centers), dtype=torch.float64)
        if self.width == "nearest":
            return nearest_widths(centers, self.n_neighbors)
        return torch.full((K,), float(self.width), dtype=torch.float64)

    def _fit_gd(self, X: torch.Tensor, Y: torch.Tensor, centers: torch.Tensor,
                widths: torch.Tensor) -> dict[str, Any]:
        """Adam on centers, log-widths and output weights jointly, float32. Output weights start at 0 (the
        closed-form start is ill-conditioned with wide Gaussians: huge weights that the first center step
        would throw off)."""
        n = X.shape[0]
        m = Y.shape[1]
        layer = RBFLayer(centers, widths, learnable=True)
        W = nn.Parameter(torch.zeros(centers.shape[0], m))
        b = nn.Parameter(torch.zeros(m))
        classification = self.task == "classification"
        target = Y.argmax(1) if classification else Y.float()
        opt = torch.optim.Adam([layer.centers, layer.log_widths, W, b], lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        bs = n if self.batch_size is None else min(self.batch_size, n)
        curve = []
        for _ in range(self.n_epochs):
            order = torch.randperm(n, generator=gen) if bs < n else torch.arange(n)
            total = 0.0
            for idx in order.split(bs):
                out = layer(X[idx]) @ W + b  # (B, m)
                if classification:
                    loss = nn.functional.cross_entropy(out, target[idx])
                else:
                    loss = (out - target[idx]).pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            if not math.isfinite(total):
                raise ValueError("gradient descent diverged (loss is not finite); lower lr")
            curve.append(total / n)
        return {"centers_": layer.centers.detach().clone(), "widths_": layer.widths.detach().clone(),
                "weights_": W.detach().clone(), "bias_": b.detach().clone(), "loss_curve_": curve}

    # -- using a fitted network -------------------------------------------------------------------------
    def _check_X(self, X: Any) -> torch.Tensor:
        self.check_fitted()
        Xt = as_float_tensor(X, "X", ndim=2, dtype=self.centers_.dtype)
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xt.shape[1]} features, but this {type(self).__name__} was fitted with "
                             f"{self.n_features_in_}")
        return Xt

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """X (n, d) -> hidden activations phi (n, K)."""
        return gaussian_activations(self._check_X(X), self.centers_, self.widths_).numpy()

    @torch.no_grad()
    def decision_function(self, X: Any) -> np.ndarray:
        """X (n, d) -> raw outputs phi W + b (n, m): regression values, or per-class scores/logits."""
        Xt = self._check_X(X)
        return (gaussian_activations(Xt, self.centers_, self.widths_) @ self.weights_ + self.bias_).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """X (n, d) -> regression outputs (n,) or (n, m) as y was shaped; or class labels (n,)."""
        out = self.decision_function(X)
        if self.task == "classification":
            return np.asarray(self.classes_)[out.argmax(1)]
        return out[:, 0] if self.output_1d_ else out

    def predict_proba(self, X: Any) -> np.ndarray:
        """X (n, d) -> class probabilities (n, n_classes), rows sum to 1, columns ordered as classes_.

        gd: softmax of the logits. lstsq: the one-hot least-squares outputs estimate the class posteriors
        (Bishop 1995, 6.1) but can leave [0, 1]; they are clipped at 0 and renormalized (a row with no positive
        output puts all mass on its largest one, so argmax agrees with predict).
        """
        if self.task != "classification":
            raise AttributeError("predict_proba is only available with task='classification'")
        out = torch.from_numpy(self.decision_function(X))
        if self.solver == "gd":
            return out.softmax(dim=1).numpy()
        p = out.clamp(min=0)
        empty = p.sum(1) == 0
        if empty.any():
            p[empty] = nn.functional.one_hot(out[empty].argmax(1), out.shape[1]).to(p.dtype)
        return (p / p.sum(1, keepdim=True)).numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (classification) or R^2 (regression), as scikit-learn."""
        from sklearn.metrics import accuracy_score, r2_score

        pred = self.predict(X)
        return float(accuracy_score(np.asarray(y), pred) if self.task == "classification"
                     else r2_score(np.asarray(y), pred))

    # -- contract tests ---------------------------------------------------------------------------------
    @classmethod
    def contract_example(cls, seed: int = 0) -> tuple[RBFNetwork, np.ndarray, np.ndarray]:
        """(unfitted estimator, X, y) for the generic estimator contract tests: a small 2-D regression."""
        rng = np.random.default_rng(seed)
        X = rng.uniform(-1, 1, size=(60, 2))
        y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2
        return cls(8, centers="kmeans", alpha=1e-8, seed=seed), X, y


@estimators.register("rbf-classifier", "RBF network classifier: one-hot least squares or softmax gradient descent")
class RBFClassifier(RBFNetwork):
    """`RBFNetwork` with task='classification': predict -> labels, predict_proba -> (n, n_classes).

    Example:
        >>> clf = RBFClassifier(16, solver="gd", n_epochs=200, seed=0).fit(X, labels)
        >>> clf.classes_, clf.predict_proba(X).sum(1)        # rows sum to 1
    """

    def __init__(
        self,
        n_centers: int | None = None,
        *,
        centers: str | Any = "kmeans",
        width: str | float = "max_dist",
        n_neighbors: int = 2,
        solver: str = "lstsq",
        alpha: float = 0.0,
        n_epochs: int = 500,
        lr: float = 0.02,
        batch_size: int | None = None,
        seed: int = 0,
    ):
        super().__init__(n_centers, centers=centers, width=width, n_neighbors=n_neighbors, solver=solver,
                         alpha=alpha, task="classification", n_epochs=n_epochs, lr=lr, batch_size=batch_size,
                         seed=seed)

    @classmethod
    def contract_example(cls, seed: int = 0) -> tuple[RBFClassifier, np.ndarray, np.ndarray]:
        """(unfitted estimator, X, y): three Gaussian blobs in 2-D, softmax gradient descent (short)."""
        rng = np.random.default_rng(seed)
        means = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
        y = np.repeat(np.arange(3), 20)
        X = means[y] + 0.3 * rng.standard_normal((60, 2))
        return cls(6, solver="gd", n_epochs=30, lr=0.05, seed=seed), X, y
