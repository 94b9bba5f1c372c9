"""A sweep's table as plain data, and how sudden each change along it is (BIG-bench breakthroughness).

`SweepTable` is what analysis and the sweep report read: the grid, the chosen summary values of every
point, grouped into series along the first grid key. It knows nothing about how the points were run
(that is `emergelab.sweeps`, which builds it from the store).

Example:
    >>> rows = [{"point": {"n_train": n}, "values": {"err": e}} for n, e in [(20, .5), (50, .4), (200, .01)]]
    >>> table = SweepTable("s", "rbf-approx", {"n_train": [20, 50, 200]}, ["err"], rows)
    >>> table.series("err")
    {(): {0: [0.5], 1: [0.4], 2: [0.01]}}
    >>> sudden_changes(table)
    {'err': {'all': ...}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .metrics import breakthroughness

__all__ = ["SweepTable", "sudden_changes"]


@dataclass
class SweepTable:
    sweep_id: str
    experiment: str
    grid: dict[str, list[Any]]  # key -> values, in grid order
    metrics: list[str]  # dotted paths into each point's summary
    rows: list[dict[str, Any]]  # per point: {"point": {key: value}, "values": {metric: value}, ...}
    breakthroughness: dict[str, dict[str, float | str]] = field(default_factory=dict)  # metric -> group -> B

    @property
    def x_key(self) -> str:
        """The key values are plotted against: the first grid key other than a swept `seed`."""
        return next(k for k in self.grid if not (self.averages_seeds and k == "seed"))

    @property
    def averages_seeds(self) -> bool:
        return "seed" in self.grid and len(self.grid) > 1

    def series(self, metric: str) -> dict[tuple, dict[int, list[float]]]:
        """Numeric values of `metric` by group (values of the keys other than x_key and an averaged seed) and
        by position of x_key in the grid: {group: {x index: [one value per seed]}}."""
        others = [k for k in self.grid if k != self.x_key and not (self.averages_seeds and k == "seed")]
        xs = self.grid[self.x_key]
        out: dict[tuple, dict[int, list[float]]] = {}
        for r in self.rows:
            y = _number(r["values"].get(metric))
            if y is not None:
                group = tuple((k, r["point"][k]) for k in others)
                out.setdefault(group, {}).setdefault(xs.index(r["point"][self.x_key]), []).append(y)
        return out


def sudden_changes(table: SweepTable) -> dict[str, dict[str, float | str]]:
    """BIG-bench breakthroughness of every numeric metric along x_key (seeds averaged), per group, where the
    grid gives x_key at least 3 values; 'inf' / '-inf' as strings (JSON has no infinity)."""
    out: dict[str, dict[str, float | str]] = {}
    if len(table.grid[table.x_key]) < 3:
        return out
    for metric in table.metrics:
        for group, by_x in table.series(metric).items():
            if len(by_x) < 3:
                continue
            b = breakthroughness([sum(by_x[x]) / len(by_x[x]) for x in sorted(by_x)])
            label = ", ".join(f"{k}={v}" for k, v in group) or "all"
            out.setdefault(metric, {})[label] = round(b, 4) if math.isfinite(b) else ("inf" if b > 0 else "-inf")
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    return None
