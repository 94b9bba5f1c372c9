"""Stored metric series as reports receive them, {name: {"steps": [...], "values": [...]}}, read into arrays:
one series, every head score (names parsed by `runs.names`, never by a regex of a report's own), the value
at a logged step, and the before / during / after moments of a phase change.

Example:
    >>> m = {"heads/induction/L1H0": {"steps": [0, 100], "values": [0.1, 0.8]}}
    >>> steps, values = head_series(m)["induction"][(1, 0)]
    >>> value_at(steps, values, 90)
    0.8
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emergelab.runs.names import split_head_metric

__all__ = ["HeadSeries", "head_dims", "head_series", "logged_steps", "moments", "series", "value_at"]


HeadSeries = dict[str, dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]]  # {kind: {(layer, head): series}}


def series(metrics: Mapping[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of metric `name` as float arrays (None -> NaN); a missing metric is two empty arrays.

    Example:
        >>> series({"loss": {"steps": [0, 10], "values": [2.0, None]}}, "loss")[1]
        array([ 2., nan])
    """
    m = metrics.get(name) or {}
    steps = np.asarray(m.get("steps") or [], dtype=float)
    values = np.asarray([np.nan if v is None else v for v in (m.get("values") or [])], dtype=float)
    n = min(len(steps), len(values))
    return steps[:n], values[:n]


def head_series(metrics: Mapping[str, Any], prefix: str = "") -> HeadSeries:
    """Every head score among `metrics`, by kind and head, read with `runs.names.split_head_metric`.

    Example:
        >>> m = {"heads/induction/L1H0": {"steps": [0], "values": [0.5]}, "probe/loss": {}}
        >>> list(head_series(m)["induction"])
        [(1, 0)]
    """
    out: HeadSeries = {}
    for name in metrics:
        parsed = split_head_metric(name, prefix)
        if parsed:
            kind, layer, head = parsed
            out.setdefault(kind, {})[(layer, head)] = series(metrics, name)
    return out


def value_at(steps: np.ndarray, values: np.ndarray, step: float) -> float:
    """The value logged at the step nearest `step` (metrics are logged on a grid; ties take the earlier)."""
    if len(steps) == 0:
        return float("nan")
    return float(values[int(np.argmin(np.abs(np.asarray(steps) - step)))])


def moments(steps: np.ndarray, phase: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """Three snapshot steps: before / during / after a detected phase change (`phase`: detected,
    start_step, end_step, steepest_step), else start / middle / end of training. `steps`: logged steps.

    Example:
        >>> moments(np.arange(0, 1001, 100), {"detected": True, "start_step": 250, "end_step": 600,
        ...                                   "steepest_step": 400})
        [('before', 200.0), ('during', 400.0), ('after', 1000.0)]
    """
    steps = np.unique(np.asarray(steps, dtype=float))
    if len(steps) == 0:
        return []
    first, last = float(steps[0]), float(steps[-1])
    pc = phase or {}
    if pc.get("detected") and pc.get("start_step") is not None and pc.get("end_step") is not None:
        start, end = float(pc["start_step"]), float(pc["end_step"])
        during = float(pc["steepest_step"]) if pc.get("steepest_step") is not None else (start + end) / 2
        # "before" = the last logged step at or before the window opens, so it is truly pre-transition
        before = steps[steps <= start]
        return [("before", float(before[-1]) if len(before) else first), ("during", during), ("after", last)]
    middle = float(steps[np.argmin(np.abs(steps - (first + last) / 2))])
    return [("start", first), ("middle", middle), ("end", last)]


def logged_steps(metrics: Mapping[str, Any]) -> np.ndarray:
    """Every step at which any of `metrics` was logged, sorted, unique (float)."""
    steps = [np.asarray((m or {}).get("steps") or [], dtype=float) for m in metrics.values()]
    steps = [s for s in steps if len(s)]
    return np.unique(np.concatenate(steps)) if steps else np.zeros(0)


def head_dims(heads: HeadSeries, n_layers: int | None = None, n_heads: int | None = None) -> tuple[int, int]:
    """(n_layers, n_heads): as given, else as far as the logged head scores reach; at least (1, 1)."""
    keys = [k for per_kind in heads.values() for k in per_kind]
    layers = n_layers or max((k[0] + 1 for k in keys), default=1)
    n = n_heads or max((k[1] + 1 for k in keys), default=1)
    return max(int(layers), 1), max(int(n), 1)
