"""Executors that run a sweep's points on this machine, writing the one store directly: in this process
(one point after another) or in worker processes (SQLite's WAL mode serves several local writers). The
Ray executor (ray_executor.py) runs points in node-local scratch stores instead.

Every executor reports through two callbacks: `started(task)` and `finished(task, error or None, where)`
(`where`: None here; the Ray executor says which node and scratch folder ran the point).

Example:
    >>> run_in_process("rbf-approx", plan.todo, store_path, progress=False, started=print,
    ...                finished=lambda task, error, where: print(task.label, error))
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import runner
from ..config import from_dict
from ..errors import EmergelabError
from ..registry import experiments
from .plan import Task

__all__ = ["Finished", "Started", "run_in_process", "run_point", "run_processes", "threads_per_worker"]

Started = Callable[[Task], None]
Finished = Callable[[Task, str | None, dict[str, Any] | None], None]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of `workers` points run at once: the cores shared out, at least 1."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


def run_point(experiment: str, task: Task, store: str | Path, threads: int = 0, progress: bool = False) -> str | None:
    """Run or resume one point into `store`, in whatever process runs it: the error message, or None when
    its run completed. Never raises for a run that fails (the run is marked failed in the store);
    KeyboardInterrupt propagates (the run is marked interrupted, and stays resumable)."""
    if threads:
        import torch  # the process computes from here on (the `emergelab` command itself never imports torch)

        torch.set_num_threads(threads)  # an experiment's own nonzero `threads` setting still wins
    try:
        if task.resume:
            runner.resume_run(task.run_id, store=store, progress=progress)
        else:
            cfg = from_dict(experiments.get(experiment).config_cls, task.config)
            runner.run_config(experiment, cfg, store=store, progress=progress, run_id=task.run_id)
        return None
    except EmergelabError as e:
        return str(e)
    except Exception as e:  # a bug in one point must not lose the others
        return f"{type(e).__name__}: {e}"


def run_in_process(experiment: str, tasks: list[Task], store: Path, *, progress: bool, started: Started,
                   finished: Finished) -> None:
    """One point after another in this process, with all of torch's threads."""
    for task in tasks:
        started(task)
        finished(task, run_point(experiment, task, store, progress=progress), None)


def run_processes(experiment: str, tasks: list[Task], store: Path, *, workers: int, started: Started,
                  finished: Finished) -> None:
    """`workers` spawned processes take points from a queue, with cores/workers torch threads each and
    OMP_WAIT_POLICY=PASSIVE (no threads spinning on the shared cores). Ctrl-C: no point starts any more, and
    each running one gets exactly one interrupt (workers ignore the terminal's SIGINT; the parent sends
    SIGTERM, which they turn into KeyboardInterrupt), so its run is marked interrupted and stays resumable."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # inherited by the workers (spawn starts them fresh)
    ctx = mp.get_context("spawn")
    todo, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    n = min(workers, len(tasks))
    for item in [*tasks, *([None] * n)]:
        todo.put(item)
    args = (todo, results, stop, experiment, str(store), threads_per_worker(workers), os.getpid())
    procs = [ctx.Process(target=_worker_loop, args=args, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    remaining = {t.index: t for t in tasks}
    try:
        while remaining:
            try:
                kind, i, error = results.get(timeout=0.5)
            except queue.Empty:
                if any(proc.is_alive() for proc in procs):
                    continue
                codes = ", ".join(str(proc.exitcode) for proc in procs)
                for i in sorted(remaining):  # every worker is gone and these never reported: killed, OOM
                    finished(remaining[i], f"worker process died (exit codes {codes})", None)
                break
            if kind == "started":
                started(remaining[i])
            else:
                finished(remaining.pop(i), error, None)
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


def _worker_loop(todo: Any, results: Any, stop: Any, experiment: str, store: str, threads: int,
                 parent: int) -> None:
    """A worker process: run points from `todo` until a None or a stop, or until the sweep's process is gone
    (killed with -9: the worker then interrupts its own run, which stays resumable, instead of living on)."""

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
            task = todo.get()
            if task is None or stop.is_set():
                return
            results.put(("started", task.index, None))
            results.put(("finished", task.index, run_point(experiment, task, store, threads)))
    except KeyboardInterrupt:  # the run in progress is already marked interrupted
        return
