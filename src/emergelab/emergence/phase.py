"""Phase-change detection on a training curve.

A phase change is a large, abrupt drop: we smooth the curve, find the steepest fall, and
around it the window where 10% -> 90% of the drop happens (the drop measured from the
highest point before the steepest fall to the lowest point after it). It counts as
*detected* when the drop is at least `min_drop_fraction` of the starting level (the loss at
least roughly halves, as when induction makes repeated tokens predictable) and the window
spans at most `max_window_fraction` of training.

Example:
    >>> detect_phase_change(steps, repeated_loss)
    {'detected': True, 'start_step': 900, 'end_step': 1350, 'steepest_step': 1100, ...}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Centered moving average (edges use the available points)."""
    y = np.asarray(values, dtype=float)
    if window <= 1 or len(y) < 3:
        return y
    k = np.ones(window)
    num = np.convolve(y, k, mode="same")
    den = np.convolve(np.ones_like(y), k, mode="same")
    return num / den


def detect_phase_change(
    steps: Sequence[int],
    values: Sequence[float],
    *,
    min_drop_fraction: float = 0.5,
    max_window_fraction: float = 0.5,
    smooth_window: int = 3,
) -> dict:
    steps_a = np.asarray(steps, dtype=float)
    if len(steps_a) < 4:
        return {"detected": False, "start_step": None, "end_step": None, "steepest_step": None,
                "drop": 0.0, "drop_fraction": 0.0, "reason": "too few points"}
    y = smooth(values, smooth_window)
    slope = np.gradient(y, steps_a)
    i_steep = int(np.argmin(slope))
    hi = float(np.max(y[: i_steep + 1]))
    lo = float(np.min(y[i_steep:]))
    drop = hi - lo
    upper, lower = hi - 0.1 * drop, hi - 0.9 * drop
    # last point before the steepest fall still above the 10% level, first after it below 90%
    before = np.nonzero(y[: i_steep + 1] >= upper)[0]
    after = np.nonzero(y[i_steep:] <= lower)[0]
    i_start = int(before[-1]) if len(before) else 0
    i_end = int(i_steep + after[0]) if len(after) else len(y) - 1
    span = float(steps_a[-1] - steps_a[0]) or 1.0
    width = float(steps_a[i_end] - steps_a[i_start])
    drop_fraction = drop / hi if hi > 0 else 0.0
    detected = bool(drop_fraction >= min_drop_fraction and width <= max_window_fraction * span)
    reason = "" if detected else (
        f"drop {drop_fraction:.0%} of the starting level < {min_drop_fraction:.0%}"
        if drop_fraction < min_drop_fraction else f"window {width:.0f} steps wider than {max_window_fraction:.0%}"
        " of training")
    return {
        "detected": detected,
        "start_step": int(steps_a[i_start]) if detected else None,
        "end_step": int(steps_a[i_end]) if detected else None,
        "steepest_step": int(steps_a[i_steep]) if detected else None,
        "drop": round(drop, 6),
        "drop_fraction": round(drop_fraction, 6),
        "reason": reason,
    }
