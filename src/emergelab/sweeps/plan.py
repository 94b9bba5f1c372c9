"""A sweep's plan (which points still run, under which run ids) and its table collected from the store.

Every point is an ordinary run. Planning looks each point's exact config up in the store: a completed
run is reused, a stopped one ('running' after a kill, or 'interrupted') is resumed, anything else gets a
new run id, chosen here by the driver so that runs made elsewhere (Ray tasks in node-local scratch
stores) can be imported into the one store without clashes.

Example:
    >>> with RunStore("runs/emergelab.db") as st:
    ...     plan = plan_sweep(st, "rbf-approx", {"n_train": [20, 50]}, base, configs, spec)
    >>> [(t.label, t.resume) for t in plan.todo]
    [('n_train=20', False), ('n_train=50', False)]
    >>> result = collect(plan.sweep_id, store="runs/emergelab.db")
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, config_hash, load_config, parse_override, to_dict
from ..emergence.table import SweepTable, sudden_changes
from ..runs.store import RunStore
from .grid import expand, lookup, path_hint, point_overrides, summary_paths

__all__ = ["RESUMABLE", "SweepPlan", "SweepResult", "Task", "collect", "plan_sweep", "point_configs",
           "record_outcome", "sweep_id"]

RESUMABLE = ("running", "interrupted")  # a point left in these states by a killed sweep is resumed


@dataclass(frozen=True)
class Task:
    """One point still to run: its index in the grid, its values, its full config (as a dict, and its hash)
    and the id of the run it creates (resume=False) or continues (resume=True)."""

    index: int
    point: dict[str, Any]
    config: dict[str, Any]
    config_hash: str
    run_id: str
    resume: bool = False

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.point.items())


@dataclass
class SweepPlan:
    sweep_id: str
    experiment: str
    points: list[dict[str, Any]]
    done: dict[int, str]  # point index -> id of the completed run that is reused
    todo: list[Task]


@dataclass(kw_only=True)
class SweepResult(SweepTable):
    """The table of a sweep plus where its files are and what went wrong in this invocation."""

    dir: Path
    report_path: Path
    failed: list[str] = field(default_factory=list)  # run ids of points that failed
    errors: dict[str, str] = field(default_factory=dict)  # run id -> error, for the failed points
    unknown_metrics: dict[str, str] = field(default_factory=dict)  # metric -> hint, for paths in no summary


def sweep_id(experiment: str, base_hash: str, grid: dict[str, list[Any]]) -> str:
    """Same experiment, base config and grid -> same id: re-issuing a sweep continues it."""
    blob = json.dumps([experiment, base_hash, grid], sort_keys=True, default=str)
    return f"{experiment}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def point_configs(config_cls: type, grid: dict[str, list[Any]], config: str | Path | None,
                  overrides: list[str] | None) -> tuple[Any, list[Any]]:
    """(base config, one validated config per point): defaults <- `config` <- `overrides` <- the point.
    Raises ConfigError on the first bad key or value, before anything is created."""
    swept = set(grid)
    for text in overrides or []:
        key = parse_override(text)[0]
        if key in swept:
            raise ConfigError(f"'{key}' is both swept (--grid) and fixed (--set {text}); give it once")
    base = load_config(config_cls, config, overrides)
    configs = [load_config(config_cls, config, [*(overrides or []), *point_overrides(p)]) for p in expand(grid)]
    return base, configs


def plan_sweep(st: RunStore, experiment: str, grid: dict[str, list[Any]], base: Any, configs: list[Any],
               spec: dict[str, Any]) -> SweepPlan:
    """Decide each point (reuse, resume or new run id) and record the sweep (`spec`: grid, overrides, config,
    metrics) with its reused points in the store."""
    sid = sweep_id(experiment, config_hash(base), grid)
    points = expand(grid)
    done: dict[int, str] = {}
    todo: list[Task] = []
    taken: set[str] = set()
    for i, (point, cfg) in enumerate(zip(points, configs, strict=True)):
        chash = config_hash(cfg)
        found = st.find_runs(experiment, chash)
        completed = [r for r in found if r.status == "completed"]
        stale = [r for r in found if r.status in RESUMABLE]
        if completed:
            done[i] = completed[-1].id
        elif stale:
            todo.append(Task(i, point, to_dict(cfg), chash, stale[-1].id, resume=True))
        else:
            todo.append(Task(i, point, to_dict(cfg), chash, _fresh_id(st, experiment, taken)))
    st.put_sweep(sid, experiment, spec)
    for i, run_id in done.items():
        st.add_sweep_run(sid, i, run_id)
    return SweepPlan(sid, experiment, points, done, todo)


def _fresh_id(st: RunStore, experiment: str, taken: set[str]) -> str:
    """A run id not in the store and not given to another point of this plan."""
    while True:
        run_id = st.new_run_id(experiment)
        if run_id not in taken and not st.has_run(run_id):
            taken.add(run_id)
            return run_id


def record_outcome(st: RunStore, plan: SweepPlan, task: Task, error: str | None) -> None:
    """Link a finished point to the sweep. A point whose run never got into the store (its process or node
    died, its payload could not be imported) is recorded as a failed run carrying the error."""
    if not st.has_run(task.run_id):
        st.create_run(plan.experiment, task.config, task.config_hash, task.config.get("seed"), run_id=task.run_id)
        st.set_status(task.run_id, "failed", error or "the run never reached the store")
    st.add_sweep_run(plan.sweep_id, task.index, task.run_id)


def collect(sid: str, *, store: str | Path | None = None, reused: set[int] | None = None,
            failed: list[str] | None = None, errors: dict[str, str] | None = None) -> SweepResult:
    """The sweep's table from the store: each point's run, status and chosen summary values; metrics found in
    no summary get a did-you-mean. Writes nothing (see sweeps.output)."""
    with RunStore(store, create=False) as st:
        info = st.get_sweep(sid)
        grid, metrics = info["spec"]["grid"], info["spec"]["metrics"]
        run_ids = st.sweep_runs(sid)
        rows, summaries = [], []
        for i, point in enumerate(expand(grid)):
            run_id = run_ids.get(i)
            run = st.get_run(run_id) if run_id else None
            summary = st.get_result(run_id, "summary") if run_id else None
            if summary is not None:
                summaries.append(summary)
            rows.append({"point": point, "run_id": run_id, "status": run.status if run else "not run",
                         "reused": i in (reused or set()),
                         "values": {m: lookup(summary, m) for m in metrics} if summary else {}})
        out_dir = st.root / "sweeps" / sid
    paths = sorted({p for s in summaries for p in summary_paths(s)})
    unknown = {m: path_hint(m, paths) for m in metrics
               if summaries and all(lookup(s, m, KeyError) is KeyError for s in summaries)}
    result = SweepResult(sid, info["experiment"], grid, metrics, rows, dir=out_dir,
                         report_path=out_dir / "report.html", failed=list(failed or []),
                         errors=dict(errors or {}), unknown_metrics=unknown)
    result.breakthroughness = sudden_changes(result)
    return result
