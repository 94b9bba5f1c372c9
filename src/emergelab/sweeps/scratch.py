"""One point run in scratch space: a temporary folder with its own SQLite store, on whatever machine runs it.

The sweep's driver sends the point (and, to resume a stopped run, that run's export) and gets back the
finished run's export: its rows and the files of its run directory. Only the driver writes the sweep's
store, so a cluster needs no shared filesystem (SQLite over a network filesystem is a known source of
corruption) and a node that dies takes nothing of the store with it.

Example:
    >>> out = run_in_scratch("rbf-approx", task)
    >>> out["error"], out["run"]["run"]["status"], sorted(out["run"]["files"])
    (None, 'completed', ['config.yaml', 'report.html', 'summary.json'])
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..runs.store import RunStore
from .executors import run_point
from .plan import Task

__all__ = ["run_in_scratch"]


def run_in_scratch(experiment: str, task: Task, resume_payload: dict[str, Any] | None = None,
                   threads: int = 0, scratch_dir: str | None = None) -> dict[str, Any]:
    """Run `task` in a fresh temporary folder (under `scratch_dir`, default the machine's temp folder) and
    return {"run": export of its run or None, "error": str or None, "interrupted": bool, "scratch": the
    folder (deleted on return), "pid": process id}.

    An interrupt (Ray's cancel raises KeyboardInterrupt in the task) is not raised: the run, marked
    interrupted, comes back like any other, so the driver keeps it resumable.
    """
    with tempfile.TemporaryDirectory(prefix="emergelab-point-", dir=scratch_dir) as tmp:
        store = Path(tmp) / "point.db"
        out: dict[str, Any] = {"run": None, "error": None, "interrupted": False, "scratch": tmp, "pid": os.getpid()}
        if resume_payload is not None:
            with RunStore(store) as st:
                st.import_run(resume_payload)
        try:
            out["error"] = run_point(experiment, task, store, threads)
        except KeyboardInterrupt:
            out["error"], out["interrupted"] = "interrupted", True
        if store.exists():
            with RunStore(store, create=False) as st:
                if st.has_run(task.run_id):
                    out["run"] = st.export_run(task.run_id)
        return out
