"""The config of the `rbf-approx` experiment: every key `emergelab config rbf-approx` prints and
`--set` takes. Torch-free, so `emergelab config` and `emergelab list` start fast; `experiments/rbf_approx.py`
runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import at_least, invalid, positive
from ..base import RunSettings
from ..budget import Budget, Term
from .schema import CHECKS, under

# the functions a run can fit, on [-1, 1] (experiments/rbf_approx.py `FUNCTIONS` computes them); |x| has a kink:
# Gaussians are smooth, so it converges slowly (a contrast, not a target)
FUNCTION_NAMES = ("x^2", "sin(3x)", "|x|")
CURVE_POINTS = 300  # grid on which the report draws each fit and its Gaussians
MAX_FIT_BYTES = 4 * 2**30  # refuse fits that cannot fit in a laptop's memory, before any run exists


@dataclass
class RBFApproxConfig(RunSettings):  # seed draws the held-out points (and k-means / random centers)
    functions: list[str] = field(default_factory=lambda: ["x^2", "sin(3x)"])  # fit on [-1, 1]; any of x^2, sin(3x), |x|
    k_values: list[int] = field(default_factory=lambda: [5, 10, 20])  # numbers of centers, one fit each
    n_train: int = 200  # evenly spaced training points on [-1, 1], endpoints included
    n_test: int = 1000  # held-out points, uniform on [-1, 1]; the errors are measured here
    # the acceptance checks (x^2 within 1e-4 with K=10, 1e-6 with K=20) hold for grid centers; kmeans: k-means of the
    # training points; random: K training points drawn with `seed`
    centers: Literal["grid", "kmeans", "random"] = "grid"  # grid (evenly spaced: the checks' setting), kmeans or random
    width: Literal["max_dist", "nearest"] | float = "max_dist"  # max_dist = d_max / sqrt(2K) (Haykin)
    n_neighbors: int = 2  # p for width='nearest'
    solver: Literal["lstsq", "gd"] = "lstsq"  # lstsq: float64 closed form; gd: Adam, float32 (far from 1e-6)
    alpha: float = 0.0  # ridge on output weights; any alpha > 1e-12 already fails the 1e-6 check at K=20
    n_epochs: int = 2000  # gd only
    lr: float = 0.01  # gd only

    def validate(self) -> None:
        super().validate()
        if not self.functions:
            invalid("functions", "must list at least one function")
        for name in self.functions:
            if name not in FUNCTION_NAMES:
                invalid("functions", f"unknown function {name!r}; choices: {', '.join(FUNCTION_NAMES)}")
        if len(set(self.functions)) != len(self.functions):
            invalid("functions", "functions must be distinct")
        if not self.k_values or any(k < 1 for k in self.k_values):
            invalid("k_values", "must list at least one K, each >= 1")
        if len(set(self.k_values)) != len(self.k_values):
            invalid("k_values", "values must be distinct")
        if self.width == "max_dist" and min(self.k_values) < 2:
            invalid("k_values", "width='max_dist' needs K >= 2 (d_max is 0 for one center)")
        at_least(self, 2, "n_train")
        if self.centers != "grid" and max(self.k_values) > self.n_train:
            invalid("k_values", f"centers={self.centers!r} needs every K <= n_train ({self.n_train})")
        if not isinstance(self.width, str) and not self.width > 0:
            invalid("width", "must be 'max_dist', 'nearest' or a positive number")
        at_least(self, 1, "n_test", "n_neighbors", "n_epochs")
        at_least(self, 0, "alpha")
        positive(self, "lr")
        need = fit_bytes(max(self.k_values), max(self.n_train, self.n_test, CURVE_POINTS))
        if need > MAX_FIT_BYTES:
            invalid("k_values", f"K={max(self.k_values)} needs about {need / 2**30:.0f} GiB for one fit (pairwise "
                    f"center distances and activations, float64); the limit is {MAX_FIT_BYTES / 2**30:.0f} GiB")

    def budget(self) -> Budget:
        """Memory and compute of the run, checked before it starts (experiments/budget.py): one fit per function
        and K, held one at a time."""
        n = max(self.n_train, self.n_test, CURVE_POINTS)
        sizes = ("k_values", "n_train", "n_test")
        memory = [Term("one fit (center distances and activations, float64)", fit_bytes(max(self.k_values), n), sizes)]
        fits = len(self.functions)
        if self.solver == "gd":  # full-batch Adam over the training points, one epoch = one step
            flops = fits * sum(6 * self.n_epochs * self.n_train * k * 4 for k in self.k_values)
            compute = [Term("gradient-descent fits", flops, ("n_epochs", "k_values", "n_train"),
                            steps=fits * len(self.k_values) * self.n_epochs)]
        else:
            flops = fits * sum(2 * k * k * self.n_train + k**3 + 8 * k * n for k in self.k_values)
            compute = [Term("least-squares fits", flops, sizes)]
        return Budget(memory, compute)

    def summary_paths(self) -> list[str]:
        """The dotted paths of a run's summary (configs/schema.py): one result per function and K."""
        return [*under("results.*", ("function", "k", "max_abs_error", "rmse")), *CHECKS]


def fit_bytes(k: int, n_points: int) -> int:
    """Rough peak memory of one fit: K x K center distances plus two (points x K) float64 activation matrices."""
    return 8 * (k * k + 2 * k * n_points)
