"""What analyses and reports read from a finished run: its checks (`Checks`) and a typed view of it
(`FinishedRun`). Part of the experiment kit (`experiments/kit.py` re-exports both).

Example:
    >>> view = FinishedRun(store, run, InductionConfig)
    >>> checks = Checks(); checks.add("loss <= 1.0 nat", view.summary["loss"] <= 1.0)
"""

from __future__ import annotations

from typing import Any

from ..config import from_dict
from ..errors import StoreError
from ..runs.store import Run, RunStore


class Checks:
    """A run's target checks, in the shape every report renders: [{"name", "passed", "detail"}].

    Example:
        >>> checks = Checks()
        >>> checks.add("loss <= 1.0 nat", loss <= 1.0, f"{loss:.3f} nats")
        >>> summary["checks"] = checks.rows
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, name: str, passed: bool, detail: str = "") -> None:
        self.rows.append({"name": name, "passed": bool(passed), "detail": detail})

    @property
    def all_passed(self) -> bool:
        return all(r["passed"] for r in self.rows)


class FinishedRun:
    """A typed view of a stored run: its config object, summary, results and metrics.

    Example:
        >>> view = FinishedRun(store, run, InductionConfig)
        >>> view.cfg.model.depths, view.summary["checks"], view.curves("2L/")["probe/loss"]["steps"]
    """

    def __init__(self, store: RunStore, run: Run, config_cls: type):
        self.store, self.run = store, run
        self.cfg = from_dict(config_cls, run.config)

    @property
    def summary(self) -> dict[str, Any]:
        """The stored analysis; a run without one is a StoreError (resume or reanalyze it)."""
        summary = self.store.get_result(self.run.id, "summary")
        if summary is None:
            raise StoreError(f"Run {self.run.id} has no analysis yet (status: {self.run.status}); "
                             f"resume it first (emergelab run --resume {self.run.id})")
        return summary

    def result(self, name: str, default: Any = None) -> Any:
        return self.store.get_result(self.run.id, name, default)

    def require(self, name: str) -> Any:
        """A result the analysis must have stored; missing -> StoreError."""
        value = self.store.get_result(self.run.id, name)
        if value is None:
            raise StoreError(f"Run {self.run.id} has no '{name}' result; reanalyze it "
                             f"(emergelab report {self.run.id} --reanalyze)")
        return value

    def metrics(self, prefix: str = "") -> dict[str, tuple[list[int], list[float]]]:
        """{full name: (steps, values)} of the metrics whose names start with `prefix`."""
        return self.store.metrics(self.run.id, prefix=prefix)

    def curves(self, prefix: str = "") -> dict[str, dict[str, list]]:
        """{name without `prefix`: {"steps": [...], "values": [...]}}, the shape reports plot."""
        return {name[len(prefix):]: {"steps": s, "values": v} for name, (s, v) in self.metrics(prefix).items()}

    def report_data(self, **extra: Any) -> dict[str, Any]:
        """What every report shows (run header, config, summary, checks) plus the experiment's own keys."""
        summary = self.summary
        return {"run": self.run.info(), "config": self.run.config, "summary": summary,
                "checks": summary.get("checks", []), **extra}


CHECK_PATHS = ("checks.*.name", "checks.*.passed", "checks.*.detail")  # the summary paths of `Checks.rows`
