"""Emergence metrics: how sudden is a change along a sweep?

BIG-bench's breakthroughness (Srivastava et al. 2022), for values y ordered by scale (or any swept knob):

    I(y) = sign(argmax y - argmin y) * (max y - min y)
    B(y) = I(y) / sqrt(median_i (y_{i+1} - y_i)^2)

A straight line through n points has |B| = n - 1; a jump concentrated in a few steps has a small median step
and a large |B| (infinite when more than half of the steps are flat). The sign is + when y peaks after its
minimum (rises along the sweep). Schaeffer et al. 2023: judge a claimed emergence under a continuous metric
too (per-token accuracy, log-probability), since exact match on L tokens ~ p^L looks sudden even when p
improves smoothly.

Example:
    >>> breakthroughness([0.0, 0.25, 0.5, 0.75, 1.0])   # a straight line of 5 points
    4.0
    >>> breakthroughness([0.0, 0.0, 0.0, 0.01, 0.9, 0.9])  # one jump
    inf
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["breakthroughness"]


def breakthroughness(y: Sequence[float]) -> float:
    """B(y) of values ordered along a sweep (at least 3); inf (with I's sign) when the median step is 0."""
    v = np.asarray(y, dtype=np.float64)
    if v.ndim != 1 or len(v) < 3:
        raise ValueError(f"breakthroughness needs at least 3 values in sweep order, got {len(v)}")
    if not np.isfinite(v).all():
        raise ValueError("breakthroughness needs finite values")
    spread = float(v.max() - v.min())
    if spread == 0:
        return 0.0
    i_y = math.copysign(spread, int(v.argmax()) - int(v.argmin()))
    denom = math.sqrt(float(np.median(np.diff(v) ** 2)))
    return i_y / denom if denom > 0 else math.copysign(math.inf, i_y)
