"""A sweep's progress on stderr: one line when it starts, and one per point started or finished.

Plain lines rather than a live bar: an in-process point draws its own training bar, and two live displays
cannot share a terminal; lines also read well in a cluster job's log.

Every line fits the terminal (`$COLUMNS`, else the width of stderr's terminal, else 80 columns) and never
cuts a run id (what `emergelab show` takes) or a count (points done / total, running, failed): an event that
does not fit on one line puts its run id and counts on a second line, and only a label too long for a line
of its own is shortened with '…' (the sweep's table shows it whole); an error is wrapped below its point.

Example output (80 columns):
    Sweep rbf-approx-62a3265393: 4 points, 1 reused, 3 to run (in this process)
      started n_train=50  20261202-035034-rbf-approx-dfb5  [1/4, 1 running]
      done    n_train=50  20261202-035034-rbf-approx-dfb5  [2/4, 0 running]
      started n_train=200, centers=kmeans, width=nearest, n_neighbors=3
        20261202-035036-rbf-approx-0c1e  [2/4, 1 running]
      failed  n_train=200, centers=kmeans, width=nearest, n_neighbors=3
        20261202-035036-rbf-approx-0c1e  [2/4, 0 running, 1 failed]
        ValueError: k-means found fewer centers than K
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TextIO

from .plan import SweepPlan, Task

__all__ = ["SweepProgress", "line_width"]

MIN_LABEL = 12  # a label shortened below this many characters no longer says which point it is


def line_width(stream: TextIO | None = None) -> int:
    """Columns a line may use: $COLUMNS if set, else the terminal's width, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size((stream or sys.stderr).fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size((80, 24)).columns


class SweepProgress:
    def __init__(self, plan: SweepPlan, *, enabled: bool = True, stream: TextIO | None = None):
        self.plan, self.enabled, self.stream = plan, enabled, stream
        self.total = len(plan.points)
        self.done, self.running, self.failed = len(plan.done), set(), 0

    def begin(self, executor: str) -> None:
        todo = len(self.plan.todo)
        head = f"Sweep {self.plan.sweep_id}: {self.total} points, {len(self.plan.done)} reused, {todo} to run"
        where = f" ({executor})" if todo else ""
        if len(head + where) <= self._width():
            self._line(head + where)
        else:
            self._line(head)
            if where:
                self._line(f"  {where.strip()}")

    def started(self, task: Task) -> None:
        self.running.add(task.index)
        self._event("resumed" if task.resume else "started", task)

    def finished(self, task: Task, error: str | None) -> None:
        self.running.discard(task.index)
        self.done += error is None  # reused and completed points; failed ones are counted apart
        self.failed += error is not None
        self._event("failed" if error else "done", task, error)

    def _event(self, what: str, task: Task, error: str | None = None) -> None:
        counts = f"[{self.done}/{self.total}, {len(self.running)} running" + (
            f", {self.failed} failed]" if self.failed else "]")
        for line in event_lines(what, task.label, task.run_id, counts, self._width()):
            self._line(line)
        if error:
            for line in _wrap(" ".join(error.split()), self._width() - 4):
                self._line(f"    {line}")

    def _width(self) -> int:
        return line_width(self.stream)

    def _line(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream or sys.stderr, flush=True)


def event_lines(what: str, label: str, run_id: str, counts: str, width: int) -> list[str]:
    """`  what label  run_id  counts` in `width` columns; where that is too long, the run id and the counts go
    to a second line (and the label is shortened only if it alone is too long). Never cuts the run id."""
    head = f"  {what:<7} "
    line = f"{head}{label}  {run_id}  {counts}"
    if len(line) <= width:
        return [line]
    first = f"{head}{_shorten(label, max(width - len(head), MIN_LABEL))}"
    second = f"    {run_id}  {counts}"
    return [first, second] if len(second) <= width else [first, f"    {run_id}", f"    {counts}"]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _wrap(text: str, width: int) -> list[str]:
    """Words of `text` in lines of at most `width` columns (a longer word gets a line of its own)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines
