"""What an experiment provides to the runner (`emergelab.api.run_experiment`).

An experiment registers one `Experiment` in `emergelab.registry.experiments`:

    train(cfg, ctx, resume)  trains, streaming telemetry to the store (resumable)
    analyze(store, run)      -> summary dict, computed from the store and checkpoints only
    report(store, run)       -> one self-contained HTML page, from the store only
    check(cfg)               optional: validate inputs beyond the config (e.g. read the data files)
                             BEFORE a run is created, so bad input leaves nothing behind
    sweep_metrics            dotted paths into the summary that `emergelab sweep` tabulates by default
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runs.context import RunContext
from ..runs.store import Run, RunStore


@dataclass(frozen=True)
class Experiment:
    name: str
    config_cls: type
    train: Callable[[Any, RunContext, bool], None]
    analyze: Callable[[RunStore, Run], dict[str, Any]]
    report: Callable[[RunStore, Run], str]
    check: Callable[[Any], None] | None = None
    sweep_metrics: tuple[str, ...] = ()
