"""A run in progress: its store row, its directory and its progress display.

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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import config_hash, dump_yaml, to_dict
from ..version import __version__
from .atomic import write_text_atomic
from .store import Run, RunStore


def make_progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
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
        run = store.get_run(run_id)
        store.set_status(run.id, "running")
        run.dir.mkdir(parents=True, exist_ok=True)
        return cls(store, store.get_run(run.id), make_progress(progress))

    def log(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        self.store.log_metrics(self.id, step, {prefix + k: v for k, v in values.items()})

    def finish(self, status: str, message: str | None = None) -> None:
        self.store.set_status(self.id, status, message)
        self.run = self.store.get_run(self.id)
