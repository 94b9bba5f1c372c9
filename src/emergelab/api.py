"""The library functions behind the CLI. Each CLI command calls exactly one of these.

Example:
    >>> result = run_experiment("induction", overrides=["train.steps=1500"], store="runs/emergelab.db")
    >>> result.summary["2L"]["phase_change"]["detected"]
    True
    >>> html_path = render_report(result.run_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import experiments as _builtin  # noqa: F401  (registers the built-in experiments)
from .config import from_dict, load_config
from .errors import EmergelabError, StoreError, TrainingDiverged
from .experiments.base import Experiment
from .registry import experiments
from .runs.atomic import write_json_atomic, write_text_atomic
from .runs.context import RunContext
from .runs.store import Run, RunStore


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    summary: dict[str, Any]
    report_path: Path


def run_sweep(experiment: str, grid: list[str] | dict[str, list[Any]], **kwargs: Any) -> Any:
    """Run `experiment` over a grid (['task.pool_size=1,4,16'] or {'task.pool_size': [1, 4, 16]}); see
    `emergelab.emergence.sweep.run_sweep` for the options (executor 'local' or 'ray', workers, metrics)."""
    from .emergence.sweep import parse_grid
    from .emergence.sweep import run_sweep as _run_sweep

    return _run_sweep(experiment, parse_grid(grid) if isinstance(grid, list) else grid, **kwargs)


def list_sweeps(*, store: str | Path | None = None) -> list[dict[str, Any]]:
    """Stored sweeps: id, experiment, grid, created_at, number of points and how many completed."""
    from .emergence.sweep import expand

    with RunStore(store, create=False) as st:
        return [{"id": s["id"], "experiment": s["experiment"], "grid": s["spec"]["grid"],
                 "created_at": s["created_at"], "points": len(expand(s["spec"]["grid"])),
                 "completed": s["statuses"].count("completed")} for s in st.list_sweeps()]


def list_experiments() -> list[tuple[str, str]]:
    return [(e.name, e.description) for e in experiments]


def experiment_config(name: str, *, config: str | Path | None = None, overrides: list[str] | None = None) -> Any:
    """The validated config an experiment would run with (defaults <- YAML <- overrides); runs nothing."""
    return load_config(experiments.get(name).config_cls, config, overrides)


def get_experiment(name: str) -> Experiment:
    return experiments.get(name)


def _finish(store: RunStore, ctx: RunContext, exp: Experiment) -> RunResult:
    """Analysis and report: from the store only, so they can be redone later."""
    run = store.get_run(ctx.id)
    summary = _analyze(store, run, exp)
    ctx.finish("completed")
    report_path = write_report(store, ctx.run)
    return RunResult(run.id, run.dir, "completed", summary, report_path)


def _use_threads(threads: int | None) -> None:
    """An experiment config's `threads` (0 or absent = torch's default) holds for its training and analysis."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _analyze(store: RunStore, run: Run, exp: Experiment) -> dict[str, Any]:
    _use_threads(run.config.get("threads"))
    summary = exp.analyze(store, run)
    store.put_result(run.id, "summary", summary)
    write_json_atomic(run.dir / "summary.json", summary)
    store.add_artifact(run.id, "summary.json", "summary")
    return summary


def write_report(store: RunStore, run: Run) -> Path:
    exp = experiments.get(run.experiment)
    path = write_text_atomic(run.dir / "report.html", exp.report(store, run))
    store.add_artifact(run.id, "report.html", "report")
    return path


def _execute(store: RunStore, ctx: RunContext, exp: Experiment, cfg: Any, resume: bool) -> RunResult:
    try:
        _use_threads(getattr(cfg, "threads", 0))
        exp.train(cfg, ctx, resume)
        return _finish(store, ctx, exp)
    except KeyboardInterrupt:
        ctx.finish("interrupted", "interrupted by the user")
        raise
    except TrainingDiverged as e:
        ctx.finish("failed", str(e))
        raise TrainingDiverged(f"{e}. Run {ctx.id} is marked failed; its data is kept.") from None
    except BaseException as e:
        ctx.finish("failed", f"{type(e).__name__}: {e}")
        raise


def run_experiment(
    name: str = "induction",
    *,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    store: str | Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Validate the config, then train, analyze and report. Nothing is created if the config is bad."""
    return run_config(name, experiment_config(name, config=config, overrides=overrides), store=store,
                      progress=progress)


def run_config(name: str, cfg: Any, *, store: str | Path | None = None, progress: bool = True) -> RunResult:
    """Train, analyze and report `name` with an already built config object (what sweeps use)."""
    exp = experiments.get(name)
    if not isinstance(cfg, exp.config_cls):
        raise TypeError(f"{name} needs a {exp.config_cls.__name__}, got {type(cfg).__name__}")
    if exp.check is not None:
        exp.check(cfg)
    with RunStore(store) as st:
        ctx = RunContext.start(st, name, cfg, progress=progress)
        return _execute(st, ctx, exp, cfg, resume=False)


def resume_run(run_id: str, *, store: str | Path | None = None, progress: bool = True) -> RunResult:
    """Continue an interrupted or killed run from its latest checkpoints; ends exactly as an
    uninterrupted run would."""
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        if run.status == "completed":
            raise EmergelabError(f"Run {run.id} already completed; nothing to resume")
        exp = experiments.get(run.experiment)
        cfg = from_dict(exp.config_cls, run.config)
        ctx = RunContext.reopen(st, run.id, progress=progress)
        return _execute(st, ctx, exp, cfg, resume=True)


def render_report(run_id: str, *, store: str | Path | None = None) -> Path:
    """Re-render `report.html` of a finished run from the store alone."""
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        if st.get_result(run.id, "summary") is None:
            raise StoreError(f"Run {run.id} has no analysis (status: {run.status}); resume it first")
        return write_report(st, run)


def reanalyze_run(run_id: str, *, store: str | Path | None = None) -> RunResult:
    """Redo a completed run's analysis with the installed code (from the store and its checkpoints), then
    rewrite summary.json and report.html. Training is not repeated."""
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        if run.status != "completed":
            raise StoreError(f"Run {run.id} is {run.status}, not completed; resume it first")
        summary = _analyze(st, run, experiments.get(run.experiment))
        return RunResult(run.id, run.dir, run.status, summary, write_report(st, run))


def show_run(run_id: str, *, store: str | Path | None = None) -> dict[str, Any]:
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        return {
            "run": run,
            "summary": st.get_result(run.id, "summary"),
            "artifacts": st.artifacts(run.id),
            "n_metrics": len(st.metric_names(run.id)),
        }


def list_runs(*, store: str | Path | None = None, experiment: str | None = None) -> list[Run]:
    with RunStore(store, create=False) as st:
        return st.list_runs(experiment)
