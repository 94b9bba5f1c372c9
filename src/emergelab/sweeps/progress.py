"""A sweep's progress on stderr: one line when it starts, and one per point started or finished, each with the
counts of points done / running / failed.

Plain lines rather than a live bar: an in-process point draws its own training bar, and two live displays
cannot share a terminal; lines also read well in a cluster job's log.

Example output:
    Sweep rbf-approx-62a3265393: 4 points, 1 reused, 3 to run
      started  n_train=50, centers=grid  (20261202-035034-rbf-approx-dfb5)  [1/4 done, 1 running, 0 failed]
      done     n_train=50, centers=grid  (20261202-035034-rbf-approx-dfb5)  [2/4 done, 0 running, 0 failed]
"""

from __future__ import annotations

import sys
from typing import TextIO

from .plan import SweepPlan, Task

__all__ = ["SweepProgress"]


class SweepProgress:
    def __init__(self, plan: SweepPlan, *, enabled: bool = True, stream: TextIO | None = None):
        self.plan, self.enabled, self.stream = plan, enabled, stream
        self.total = len(plan.points)
        self.done, self.running, self.failed = len(plan.done), set(), 0

    def begin(self, executor: str) -> None:
        todo = len(self.plan.todo)
        self._line(f"Sweep {self.plan.sweep_id}: {self.total} points, {len(self.plan.done)} reused, {todo} to run"
                   + (f" ({executor})" if todo else ""))

    def started(self, task: Task) -> None:
        self.running.add(task.index)
        self._event("resumed " if task.resume else "started ", task)

    def finished(self, task: Task, error: str | None) -> None:
        self.running.discard(task.index)
        self.done += error is None  # reused and completed points; failed ones are counted apart
        self.failed += error is not None
        self._event("failed  " if error else "done    ", task, f": {error}" if error else "")

    def _event(self, what: str, task: Task, tail: str = "") -> None:
        counts = f"[{self.done}/{self.total} done, {len(self.running)} running, {self.failed} failed]"
        self._line(f"  {what} {task.label}  ({task.run_id})  {counts}{tail}")

    def _line(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream or sys.stderr, flush=True)
