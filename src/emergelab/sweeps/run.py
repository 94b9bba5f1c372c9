"""`run_sweep`: one experiment over a grid of config values, in this process, in local worker processes, or
on Ray (a local Ray instance, or a cluster when given its address); `list_sweeps`: the stored ones.

Every point of a sweep is an ordinary run in the store (same training, analysis and report as
`emergelab run`), so nothing about a run depends on how it was launched. A point whose exact config already
completed in the store is reused, not rerun, and one that was stopped is resumed from its checkpoints:
re-issuing a sweep command after Ctrl-C (or a lost worker, or a killed driver) finishes it. The sweep's
table (chosen summary values per point), `sweep.json`, `sweep.csv` and `report.html` are written to
`<store dir>/sweeps/<id>/`.

Example:
    >>> res = run_sweep("icl-regression", {"task.pool_size": [1, 16, 256]}, overrides=["train.steps=3000"],
    ...                 metrics=["task_diversity.distance_to_dmmse", "task_diversity.distance_to_ridge"])
    >>> [row["values"]["task_diversity.distance_to_ridge"] for row in res.rows]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..registry import experiments
from ..runs.store import RunStore
from .executors import run_in_process, run_processes
from .grid import check_grid, check_metrics, expand, parse_grid
from .output import write_outputs
from .plan import SweepResult, Task, collect, plan_sweep, point_configs, record_outcome
from .progress import SweepProgress
from .ray_executor import ray_preflight, run_ray

__all__ = ["EXECUTORS", "declared_summary_paths", "list_sweeps", "run_sweep"]

EXECUTORS = ("local", "ray")


def run_sweep(
    experiment: str,
    grid: dict[str, list[Any]] | Sequence[str],
    *,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    metrics: list[str] | None = None,
    store: str | Path | None = None,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run `experiment` at every point of `grid` (config defaults <- `config` <- `overrides` <- the point).

    `grid`: {'task.pool_size': [1, 4, 16]} or its `--grid` text ['task.pool_size=1,4,16'].
    Every point's config is validated, and every metric checked against the summary its experiment declares,
    before anything runs: a bad key, value or metric anywhere creates nothing.
    executor 'local' with workers=1 runs the points one after another in this process; workers > 1 uses
    that many processes with cores/workers torch threads each; 'ray' runs each point as a Ray task in
    node-local scratch space, `workers` at a time (`address`: a running cluster; None starts Ray on this
    machine). `metrics` are dotted paths into each run's summary (default: the experiment's `sweep_metrics`).
    `progress`: training bars (in-process) and a line per point on stderr; `on_point({"index", "point",
    "run_id", "error", "where"})` is called as each point finishes. A point whose run is still 'running' in
    the store is taken for a killed one and resumed: do not run the same sweep twice at the same time.
    """
    exp = experiments.get(experiment)
    if executor not in EXECUTORS:
        raise ConfigError(f"Unknown executor '{executor}'. Choose one of: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"workers={workers} is invalid: must be >= 1")
    grid = dict(grid) if isinstance(grid, dict) else parse_grid(list(grid))
    check_grid(grid)
    base, configs = point_configs(exp.config_cls, grid, config, overrides)
    metrics = list(metrics or exp.sweep_metrics)
    declared = [declared_summary_paths(exp, cfg) for cfg in configs]
    if all(paths is not None for paths in declared):
        check_metrics(experiment, metrics, declared)
    if exp.check is not None:
        for cfg in configs:
            exp.check(cfg)
    if executor == "ray":
        ray_preflight(address)
    spec = {"grid": grid, "overrides": list(overrides or []), "config": str(config) if config else None,
            "metrics": metrics}
    with RunStore(store) as st:
        plan = plan_sweep(st, experiment, grid, base, configs, spec)
        store_path = st.path

    bar = SweepProgress(plan, enabled=progress)
    failed: list[str] = []
    errors: dict[str, str] = {}

    def finished(task: Task, error: str | None, where: dict[str, Any] | None) -> None:
        with RunStore(store_path) as st:
            record_outcome(st, plan, task, error)
        if error is not None:
            failed.append(task.run_id)
            errors[task.run_id] = error
        bar.finished(task, error)
        if on_point is not None:
            on_point({"index": task.index, "point": task.point, "run_id": task.run_id, "error": error,
                      "where": where})

    bar.begin(f"Ray, {workers} at a time" if executor == "ray" else
              f"{workers} worker processes" if workers > 1 else "in this process")
    if executor == "ray" and plan.todo:
        run_ray(experiment, plan.todo, store_path, workers=workers, address=address, started=bar.started,
                finished=finished)
    elif workers > 1 and plan.todo:
        run_processes(experiment, plan.todo, store_path, workers=workers, started=bar.started, finished=finished)
    else:
        run_in_process(experiment, plan.todo, store_path, progress=progress, started=bar.started,
                       finished=finished)
    result = collect(plan.sweep_id, store=store_path, reused=set(plan.done), failed=failed, errors=errors)
    write_outputs(result)
    return result


def declared_summary_paths(exp: Any, cfg: Any) -> list[str] | None:
    """The summary path patterns a run of `cfg` produces, as its experiment declares them: `summary_paths(cfg)`
    given to `kit.register`, else the config's own `summary_paths()` (experiments/configs/schema.py); None for
    an experiment that declares none (its unknown metrics are reported after the sweep, from the summaries)."""
    declared = getattr(exp, "summary_paths", None)
    if callable(declared):
        return list(declared(cfg))
    own = getattr(cfg, "summary_paths", None)
    return list(own()) if callable(own) else None


def list_sweeps(*, store: str | Path | None = None) -> list[dict[str, Any]]:
    """Stored sweeps: id, experiment, grid, created_at, number of points and how many completed (read-only)."""
    with RunStore(store, readonly=True) as st:
        return [{"id": s["id"], "experiment": s["experiment"], "grid": s["spec"]["grid"],
                 "created_at": s["created_at"], "points": len(expand(s["spec"]["grid"])),
                 "completed": s["statuses"].count("completed")} for s in st.list_sweeps()]
