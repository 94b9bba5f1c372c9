"""Sweeps: one experiment over a grid of config values, run in this process, in local worker processes, or
on Ray (a local Ray instance, or a cluster when given its address).

Every point of a sweep is an ordinary run in the store (same training, analysis and report as
`emergelab run`), so nothing about a run depends on how it was launched. A point whose exact config already
completed in the store is reused, not rerun, and one that was interrupted is resumed from its checkpoints:
re-issuing a sweep command after Ctrl-C (or a lost worker) finishes it. The sweep's table (chosen summary
values per point), `sweep.json`, `sweep.csv` and `report.html` are written to `<store dir>/sweeps/<id>/`.

Example:
    >>> res = run_sweep("icl-regression", {"task.pool_size": [1, 16, 256]}, overrides=["train.steps=3000"],
    ...                 metrics=["task_diversity.distance_to_dmmse", "task_diversity.distance_to_ridge"])
    >>> [row["values"]["task_diversity.distance_to_ridge"] for row in res.rows]
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError, config_hash, from_dict, load_config, parse_override, to_dict
from ..errors import EmergelabError
from ..registry import experiments
from ..runs.atomic import write_json_atomic, write_text_atomic
from ..runs.store import RunStore
from .metrics import breakthroughness

EXECUTORS = ("local", "ray")
RESUMABLE = ("running", "interrupted")  # a point left in these states by a killed sweep is resumed


# --- the grid -----------------------------------------------------------------------------------------------
def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """['task.pool_size=1,4,16', 'seed=[0, 1]'] -> {'task.pool_size': [1, 4, 16], 'seed': [0, 1]}.

    Values are YAML: a YAML list is taken whole (use it for values with commas), anything else is split on
    commas and each piece parsed (`1e-3` -> 0.001, `true` -> True).
    """
    grid: dict[str, list[Any]] = {}
    for text in items:
        if "=" not in text:
            raise ConfigError(f"Grid '{text}' must look like key=v1,v2,..., e.g. seed=0,1,2")
        key, raw = parse_override(text)  # raw is already YAML-parsed
        if key in grid:
            raise ConfigError(f"Grid key '{key}' is given twice")
        if isinstance(raw, list):
            values = raw
        else:
            values = [_scalar(v) for v in str(text.split("=", 1)[1]).split(",")]
        if not values or any(v is None for v in values):
            raise ConfigError(f"Grid '{text}' needs one or more comma-separated values, e.g. {key}=1,2,4")
        grid[key] = values
    return grid


def _scalar(text: str) -> Any:
    """YAML, plus the floats YAML 1.1 leaves as strings ('1e-3')."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def expand(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product, first key slowest: {'a': [1, 2], 'b': [3]} -> [{'a': 1, 'b': 3}, {'a': 2, 'b': 3}]."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def _override(key: str, value: Any) -> str:
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def lookup(tree: Any, dotted: str, default: Any = None) -> Any:
    """A value in a nested summary by dotted path; integer parts index lists ('error_by_k.transformer.-1').
    `default` when the path does not exist."""
    obj = tree
    for part in dotted.split("."):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.lstrip("-").isdigit() and -len(obj) <= int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return default
    return obj


def summary_paths(tree: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the scalar values in a summary, lists entered at their first item: what `--metric`
    can name (any list index works, e.g. `-1` for the last)."""
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in summary_paths(v, f"{prefix}{k}.")]
    if isinstance(tree, list):
        return summary_paths(tree[0], f"{prefix}0.") if tree else []
    return [prefix[:-1]] if prefix else []


def _hint(name: str, paths: list[str]) -> str:
    close = difflib.get_close_matches(name, paths, n=3, cutoff=0.6)
    if close:
        return f" Did you mean: {', '.join(close)}?"
    return f" The summaries have {len(paths)} values, e.g. {', '.join(paths[:8])}."


# --- the sweep ----------------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    sweep_id: str
    experiment: str
    grid: dict[str, list[Any]]
    metrics: list[str]
    rows: list[dict[str, Any]]  # per point: {"point": {key: value}, "run_id", "status", "reused", "values"}
    dir: Path
    report_path: Path
    failed: list[str] = field(default_factory=list)  # run ids of points that failed
    unknown_metrics: dict[str, str] = field(default_factory=dict)  # metric -> hint, for paths in no summary
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


def sweep_id(experiment: str, base_hash: str, grid: dict[str, list[Any]]) -> str:
    """Same experiment, base config and grid -> same id: re-issuing a sweep continues it."""
    blob = json.dumps([experiment, base_hash, grid], sort_keys=True, default=str)
    return f"{experiment}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def run_sweep(
    experiment: str,
    grid: dict[str, list[Any]],
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

    Every point's config is validated before anything runs: a bad key or value anywhere creates nothing.
    executor 'local' with workers=1 runs the points one after another in this process; workers > 1 uses
    that many processes with cores/workers torch threads each; 'ray' submits each point as a Ray task
    (`address`: a running cluster; None starts Ray on this machine). `metrics` are dotted paths into each
    run's summary (default: the experiment's `sweep_metrics`). A point whose run is still 'running' in the
    store is taken for a killed one and resumed: do not run the same sweep twice at the same time.
    """
    exp = experiments.get(experiment)
    if executor not in EXECUTORS:
        raise ConfigError(f"Unknown executor '{executor}'. Choose one of: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"workers={workers} is invalid: must be >= 1")
    if not grid:
        raise ConfigError("A sweep needs at least one --grid KEY=V1,V2,...")
    for key, values in grid.items():
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen) or not values:
            raise ConfigError(f"Grid '{key}' must list distinct values, got {values}")
    base = load_config(exp.config_cls, config, overrides)
    points = expand(grid)
    configs = [load_config(exp.config_cls, config, [*(overrides or []), *(_override(k, v) for k, v in p.items())])
               for p in points]  # validates every point up front
    if exp.check is not None:
        for cfg in configs:
            exp.check(cfg)
    if executor == "ray":
        ray_preflight(address)
    metrics = list(metrics or exp.sweep_metrics)
    sid = sweep_id(experiment, config_hash(base), grid)

    with RunStore(store) as st:
        plan = []  # points still to run: (index, config dict, id of a run to resume or None)
        done: dict[int, str] = {}
        for i, cfg in enumerate(configs):
            found = st.find_runs(experiment, config_hash(cfg))
            completed = [r for r in found if r.status == "completed"]
            if completed:
                done[i] = completed[-1].id
                continue
            stale = [r for r in found if r.status in RESUMABLE]
            plan.append((i, to_dict(cfg), stale[-1].id if stale else None))
        store_path = st.path
        st.put_sweep(sid, experiment, {"grid": grid, "overrides": list(overrides or []),
                                       "config": str(config) if config else None, "metrics": metrics})
        for i, run_id in done.items():
            st.add_sweep_run(sid, i, run_id)

    reused = set(done)
    failed: list[str] = []

    def finished(i: int, run_id: str | None, error: str | None) -> None:
        if run_id is not None:
            done[i] = run_id
            with RunStore(store_path) as st:
                st.add_sweep_run(sid, i, run_id)
        if error is not None:
            failed.append(run_id or f"point {i}")
        if on_point is not None:
            on_point({"index": i, "point": points[i], "run_id": run_id, "error": error})

    if plan:
        run_points(experiment, plan, store_path, executor=executor, workers=workers, address=address,
                   progress=progress, finished=finished)
    return collect(sid, store=store_path, reused=reused, failed=failed)


def collect(sid: str, *, store: str | Path | None = None, reused: set[int] | None = None,
            failed: list[str] | None = None) -> SweepResult:
    """The sweep's table from the store (each point's run status and chosen summary values); writes
    sweep.json, sweep.csv and report.html under `<store dir>/sweeps/<id>/`."""
    with RunStore(store, create=False) as st:
        info = st.get_sweep(sid)
        grid, metrics = info["spec"]["grid"], info["spec"]["metrics"]
        points = expand(grid)
        run_ids = st.sweep_runs(sid)
        rows, summaries = [], []
        for i, point in enumerate(points):
            run_id = run_ids.get(i)
            run = st.get_run(run_id) if run_id else None
            summary = st.get_result(run_id, "summary") if run_id else None
            if summary is not None:
                summaries.append(summary)
            rows.append({"point": point, "run_id": run_id, "status": run.status if run else "not run",
                         "reused": i in (reused or set()),
                         "values": {m: lookup(summary, m) for m in metrics} if summary else {}})
        out_dir = st.root / "sweeps" / sid
        unknown = {m: _hint(m, sorted({p for s in summaries for p in summary_paths(s)}))
                   for m in metrics
                   if summaries and all(lookup(s, m, KeyError) is KeyError for s in summaries)}
        result = SweepResult(sid, info["experiment"], grid, metrics, rows, out_dir, out_dir / "report.html",
                             list(failed or []), unknown)
    result.breakthroughness = sudden_changes(result)
    write_json_atomic(out_dir / "sweep.json", {"id": sid, "experiment": result.experiment, "grid": grid,
                                               "metrics": metrics, "rows": rows,
                                               "breakthroughness": result.breakthroughness})
    write_text_atomic(out_dir / "sweep.csv", to_csv(result))
    from ..report.sweep import render_sweep_report

    write_text_atomic(result.report_path, render_sweep_report(result))
    return result


def sudden_changes(result: SweepResult) -> dict[str, dict[str, float | str]]:
    """BIG-bench breakthroughness of every numeric metric along x_key (seeds averaged), per group, where the
    grid gives x_key at least 3 values; 'inf' / '-inf' as strings (JSON has no infinity)."""
    out: dict[str, dict[str, float | str]] = {}
    if len(result.grid[result.x_key]) < 3:
        return out
    for metric in result.metrics:
        for group, by_x in result.series(metric).items():
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


def to_csv(result: SweepResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*result.grid, "run_id", "status", *result.metrics])
    for row in result.rows:
        w.writerow([*(row["point"][k] for k in result.grid), row["run_id"] or "", row["status"],
                    *(_cell(row["values"].get(m)) for m in result.metrics)])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)


# --- executors ----------------------------------------------------------------------------------------------
def run_point(experiment: str, cfg: dict[str, Any], store: str, resume_id: str | None,
              threads: int = 0, progress: bool = False) -> tuple[str | None, str | None]:
    """One point, in whatever process runs it: (run id, error message or None). Never raises for a run
    that fails (the run is marked failed in the store); KeyboardInterrupt propagates."""
    import torch

    from .. import api

    if threads:
        torch.set_num_threads(threads)  # an experiment's own nonzero `threads` setting still wins
    exp = experiments.get(experiment)
    try:
        if resume_id is not None:
            res = api.resume_run(resume_id, store=store, progress=progress)
        else:
            res = api.run_config(experiment, from_dict(exp.config_cls, cfg), store=store, progress=progress)
        return res.run_id, None
    except EmergelabError as e:
        return _last_run_id(store, experiment, cfg), str(e)
    except Exception as e:  # a bug in one point must not lose the others
        return _last_run_id(store, experiment, cfg), f"{type(e).__name__}: {e}"


def _last_run_id(store: str, experiment: str, cfg: dict[str, Any]) -> str | None:
    with RunStore(store, create=False) as st:
        found = st.find_runs(experiment, config_hash(from_dict(experiments.get(experiment).config_cls, cfg)))
    return found[-1].id if found else None


def run_points(experiment: str, plan: list[tuple[int, dict[str, Any], str | None]], store: Path, *,
               executor: str, workers: int, address: str | None, progress: bool,
               finished: Callable[[int, str | None, str | None], None]) -> None:
    if executor == "ray":
        _run_ray(experiment, plan, store, workers=workers, address=address, finished=finished)
    elif workers == 1:  # in this process, one point after another
        for i, cfg, resume_id in plan:
            finished(i, *run_point(experiment, cfg, str(store), resume_id, progress=progress))
    else:
        _run_processes(experiment, plan, store, workers=workers, finished=finished)


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _run_processes(experiment: str, plan: list, store: Path, *, workers: int,
                   finished: Callable[[int, str | None, str | None], None]) -> None:
    """`workers` spawned processes take points from a queue. Ctrl-C: no point starts any more, and each
    running one gets exactly one interrupt (workers ignore the terminal's SIGINT; the parent sends SIGTERM,
    which they turn into KeyboardInterrupt), so its run is marked interrupted and stays resumable."""
    import multiprocessing as mp
    import queue

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # inherited by the workers: no spinning threads
    ctx = mp.get_context("spawn")
    tasks, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    n = min(workers, len(plan))
    for item in [*plan, *([None] * n)]:
        tasks.put(item)
    args = (tasks, results, stop, experiment, str(store), threads_per_worker(workers), os.getpid())
    procs = [ctx.Process(target=_worker_loop, args=args, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    remaining = {i: cfg for i, cfg, _ in plan}
    try:
        while remaining:
            try:
                i, run_id, error = results.get(timeout=0.5)
            except queue.Empty:
                if any(proc.is_alive() for proc in procs):
                    continue
                for i in sorted(remaining):  # every worker is gone and these never reported: killed, OOM
                    codes = ", ".join(str(proc.exitcode) for proc in procs)
                    finished(i, _last_run_id(str(store), experiment, remaining[i]),
                             f"worker process died (exit codes {codes})")
                break
            remaining.pop(i, None)
            finished(i, run_id, error)
    except KeyboardInterrupt:
        stop.set()
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=120)
        raise
    for proc in procs:
        proc.join(timeout=60)


def _worker_loop(tasks: Any, results: Any, stop: Any, experiment: str, store: str, threads: int,
                 parent: int) -> None:
    """A worker process: run points from `tasks` until a None or a stop, or until the sweep's process is gone
    (killed with -9: the worker then interrupts its own run, which stays resumable, instead of living on)."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the whole group: the parent
    signal.signal(signal.SIGTERM, interrupt)  # decides, and interrupts each worker once

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        stop.set()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        while not stop.is_set():
            item = tasks.get()
            if item is None or stop.is_set():
                return
            i, cfg, resume_id = item
            results.put((i, *run_point(experiment, cfg, store, resume_id, threads)))
    except KeyboardInterrupt:  # the run in progress is already marked interrupted
        return


def ray_preflight(address: str | None, timeout: float = 5.0) -> None:
    """Before anything is written: Ray is installed, and a given address answers (Ray itself would retry for
    minutes)."""
    import importlib.util
    import socket

    if importlib.util.find_spec("ray") is None:
        raise EmergelabError("The Ray executor needs Ray: pip install 'emergelab[ray]'")
    if address in (None, "auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EmergelabError(f"Ray address '{address}' must look like HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise EmergelabError(f"Nothing answers at Ray address '{address}' ({e.strerror or e}); "
                             "start the cluster or check --address") from None


def _run_ray(experiment: str, plan: list, store: Path, *, workers: int, address: str | None,
             finished: Callable[[int, str | None, str | None], None]) -> None:
    import logging

    import ray

    started = not ray.is_initialized()
    if started:
        local = {"num_cpus": os.cpu_count() or 1, "include_dashboard": False} if address is None else {}
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}, **local)
        except Exception as e:  # unreachable address, no cluster at 'auto', ...
            where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
            raise EmergelabError(f"Could not start or reach {where}: {type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}") from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, cpus // min(workers, len(plan)))  # Ray then runs `workers` points at once
        remote = ray.remote(num_cpus=threads)(run_point)
        refs = {remote.remote(experiment, cfg, str(store.resolve()), resume_id, threads): i
                for i, cfg, resume_id in plan}
        plan_cfg = {i: cfg for i, cfg, _ in plan}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                i = refs[ready[0]]
                try:
                    result = ray.get(ready[0])
                except Exception as e:  # a lost worker or node: the point's run stays resumable
                    result = (_last_run_id(str(store), experiment, plan_cfg[i]),
                              f"Ray task failed: {type(e).__name__}")
                finished(i, *result)
        except KeyboardInterrupt:  # a KeyboardInterrupt in each running task: its run is marked interrupted
            for ref in pending:
                ray.cancel(ref)
            ray.wait(pending, num_returns=len(pending), timeout=60)
            raise
    finally:
        if started:
            ray.shutdown()
