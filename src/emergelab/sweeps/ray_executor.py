"""The Ray executor: each point is a Ray task that runs in node-local scratch space (scratch.py) and returns
its run; only this process, the driver, writes the sweep's store.

At most `workers` points are in flight at once, each with cluster CPUs / workers torch threads (never more
than the largest node has) and OMP_WAIT_POLICY=PASSIVE. A stopped run to resume travels to its task as an
export, and comes back whole. Ctrl-C cancels the tasks in flight: Ray raises KeyboardInterrupt in each,
their runs come back marked interrupted (resumable) and no queued point starts. A killed driver loses only
the points in flight; re-issuing the sweep runs just the points missing from the store.

Example:
    >>> run_ray("rbf-approx", plan.todo, Path("runs/emergelab.db"), workers=4, address="10.0.0.1:6379",
    ...         started=print, finished=lambda task, error, where: print(task.label, error, where))
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
from pathlib import Path
from typing import Any

from ..errors import EmergelabError, StoreError
from ..runs.store import RunStore
from .executors import Finished, Started
from .plan import Task
from .scratch import run_in_scratch

__all__ = ["ray_preflight", "run_ray"]

RAY_ENV = {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}  # set before the task's process imports torch


def ray_preflight(address: str | None, timeout: float = 5.0) -> None:
    """Before anything is written: Ray is installed, and a given address answers (Ray itself would retry for
    minutes)."""
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


def ray_point(experiment: str, task: Task, resume_payload: dict[str, Any] | None, threads: int) -> dict[str, Any]:
    """The body of one Ray task: `run_in_scratch`, plus the id of the node it ran on."""
    import ray  # optional dependency: only a Ray worker runs this

    out = run_in_scratch(experiment, task, resume_payload, threads)
    out["node"] = ray.get_runtime_context().get_node_id()
    return out


def run_ray(experiment: str, tasks: list[Task], store: Path, *, workers: int, address: str | None,
            started: Started, finished: Finished) -> None:
    """Run `tasks` as Ray tasks (on the Ray this process is connected to, else the cluster at `address`, else
    a Ray started on this machine) and write each returned run into `store`. `finished` also gets where the
    point ran: {"node": Ray node id, "scratch": its (deleted) scratch folder, "pid": the task's process}."""
    import ray  # optional dependency, checked by ray_preflight

    started_here = _connect(ray, address)
    try:
        threads, window = _share_cpus(ray, workers, len(tasks))
        remote = ray.remote(ray_point).options(num_cpus=threads, runtime_env=RAY_ENV)
        queued, inflight = list(tasks), {}
        try:
            while queued or inflight:
                while queued and len(inflight) < window:
                    task = queued.pop(0)
                    inflight[remote.remote(experiment, task, _export(store, task), threads)] = task
                    started(task)
                ready, _ = ray.wait(list(inflight), num_returns=1)
                task = inflight.pop(ready[0])
                finished(task, *_land(ray, store, task, ready[0]))
        except KeyboardInterrupt:
            for ref in inflight:
                ray.cancel(ref)
            ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=60)
            for ref in ready:  # the interrupted runs: into the store, resumable
                _land(ray, store, inflight[ref], ref)
            raise
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to Ray unless this process already is; True if we did (and so shut it down afterwards)."""
    if ray.is_initialized():
        return False
    local = {"num_cpus": os.cpu_count() or 1, "include_dashboard": False} if address is None else {}
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, **local)
    except Exception as e:  # unreachable address, no cluster at 'auto', ...
        where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
        raise EmergelabError(f"Could not start or reach {where}: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from None
    return True


def _share_cpus(ray: Any, workers: int, n_tasks: int) -> tuple[int, int]:
    """(torch threads = CPUs each task asks for, points in flight at once). A task never asks for more CPUs
    than the largest node has (it would wait forever), and no more points are in flight than fit."""
    per_node = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]]
    total, biggest = int(sum(per_node)), int(max(per_node, default=1))
    at_once = max(1, min(workers, n_tasks))
    threads = max(1, min(biggest, total // at_once))
    return threads, max(1, min(at_once, total // threads))


def _export(store: Path, task: Task) -> dict[str, Any] | None:
    """The stopped run a resumed point continues, as a payload for its task."""
    if not task.resume:
        return None
    with RunStore(store, create=False) as st:
        return st.export_run(task.run_id)


def _land(ray: Any, store: Path, task: Task, ref: Any) -> tuple[str | None, dict[str, Any] | None]:
    """Write a finished task's run into the store: (the point's error or None, where it ran or None)."""
    try:
        out = ray.get(ref)
    except Exception as e:  # a lost worker or node, a cancelled task: nothing came back
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"Ray task failed: {type(e).__name__}" + (f": {first}" if first else ""), None
    where = {k: out[k] for k in ("node", "scratch", "pid")}
    if out["run"] is not None:
        try:
            with RunStore(store) as st:
                st.import_run(out["run"])
        except StoreError as e:
            return f"{e} (the run came back from Ray but could not be stored)", where
    return out["error"], where
