"""A run in progress: its store row, its directory and its progress display.

The progress display goes to stderr (stdout stays for a command's own output, e.g. JSON) and fits an
80-column terminal: a long description keeps its end (the run id's unique suffix and the model label).

Example:
    >>> ctx = RunContext.start(store, "induction", cfg)       # row + runs/<id>/config.yaml
    >>> ctx.log(100, {"probe/loss": 3.1}, prefix="2L/")
    >>> ctx.finish("completed")
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from ..config import config_hash, dump_yaml, to_dict
from ..version import __version__
from .atomic import write_text_atomic
from .store import Run, RunStore

DESCRIPTION_WIDTH = 24  # with the bar's minimum and the counters, a line fits 80 columns


class TailColumn(ProgressColumn):
    """The task description, at most `width` characters: a longer one keeps its end behind an ellipsis (run ids
    differ in their suffix, and the label of the model comes last)."""

    def __init__(self, width: int = DESCRIPTION_WIDTH):
        self.width = width
        super().__init__(table_column=Column(no_wrap=True, max_width=width))

    def render(self, task: Task) -> Text:
        text = task.description
        if len(text) > self.width:
            text = "…" + text[-(self.width - 1):]
        return Text(text, style="bold")


def make_progress(enabled: bool = True, console: Console | None = None) -> Progress:
    """The per-run progress display, on stderr (or `console`)."""
    fixed = {"table_column": Column(no_wrap=True)}  # never folded: the bar is what gives way on a narrow terminal
    return Progress(
        TailColumn(),
        BarColumn(bar_width=None, table_column=Column(ratio=1, max_width=50)),  # takes what the others leave
        MofNCompleteColumn(**fixed),
        TextColumn("loss {task.fields[loss]}", table_column=Column(min_width=10, no_wrap=True)),
        TimeElapsedColumn(**fixed),
        TextColumn("ETA", **fixed),
        TimeRemainingColumn(**fixed),
        console=console or Console(file=sys.stderr),
        disable=not enabled,
        transient=False,
    )


@dataclass
class RunContext:
    store: RunStore
    run: Run
    progress: Progress

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def dir(self) -> Path:
        return self.run.dir

    @classmethod
    def start(cls, store: RunStore, experiment: str, cfg: Any, progress: bool = True,
              run_id: str | None = None) -> RunContext:
        """A new run row (id `run_id`, default a fresh one) and its directory with config.yaml."""
        seed = getattr(cfg, "seed", None)
        run = store.create_run(experiment, to_dict(cfg), config_hash(cfg), seed, __version__, run_id=run_id)
        run.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.dir / "config.yaml", dump_yaml(cfg))
        store.add_artifact(run.id, "config.yaml", "config")
        return cls(store, run, make_progress(progress))

    @classmethod
    def reopen(cls, store: RunStore, run_id: str, progress: bool = True) -> RunContext:
        """Take a stopped run over for a resume: this process becomes its owner and the resume is recorded (a run
        still running in a live process on this machine is refused)."""
        run = store.claim_run(run_id)
        run.dir.mkdir(parents=True, exist_ok=True)
        return cls(store, run, make_progress(progress))

    def note_resumed_from(self, step: int | None, label: str = "") -> None:
        """Record the step this resume continued from (`label`: which model); the first call of a resume counts.
        Nothing for a run that is not resuming or a training that starts at step 0."""
        if step and self.run.resumes:
            self.store.note_resume_step(self.id, step, label)

    def log(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        self.store.log_metrics(self.id, step, {prefix + k: v for k, v in values.items()})

    def finish(self, status: str, message: str | None = None) -> None:
        self.store.set_status(self.id, status, message)
        self.run = self.store.get_run(self.id)
