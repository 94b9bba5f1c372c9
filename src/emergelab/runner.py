"""The one way a run happens: validate a config, train, analyze, report; resume, reanalyze, re-render.

Every run, whether started by `emergelab run`, by a sweep executor or from Python, goes through
`run_config` / `resume_run`, so nothing about a run depends on how it was launched. Analysis and report
read the store only, so `reanalyze_run` and `render_report` redo them later from what was stored.

The runner drives an `Experiment` (experiments/base.py): `check(cfg)` before anything is created,
`train(cfg, ctx, resume)`, `analyze(store, run)` -> summary, `report(store, run)` -> HTML.

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

from . import experiments as _builtin  # noqa: F401  (declares the built-in experiments; their code loads on use)
from .config import from_dict, load_config
from .errors import EmergelabError, StoreError, TrainingDiverged
from .experiments.base import Experiment
from .registry import experiments
from .runs.atomic import write_json_atomic, write_text_atomic
from .runs.context import RunContext
from .runs.store import Run, RunStore, using_store

__all__ = ["RunResult", "analyze", "experiment_config", "get_experiment", "list_experiments", "list_runs",
           "reanalyze_run", "render_report", "resume_run", "run_config", "run_experiment", "show_run",
           "write_report"]


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    summary: dict[str, Any]
    report_path: Path


# --- what is registered -----------------------------------------------------------------------------
def list_experiments() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered experiment."""
    return [(e.name, e.description) for e in experiments]


def get_experiment(name: str) -> Experiment:
    return experiments.get(name)


def experiment_config(name: str, *, config: str | Path | None = None, overrides: list[str] | None = None) -> Any:
    """The validated config an experiment would run with (defaults <- YAML <- overrides); runs nothing."""
    return load_config(experiments.entry(name).info["config_cls"], config, overrides)


# --- running ----------------------------------------------------------------------------------------
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


def run_config(name: str, cfg: Any, *, store: str | Path | None = None, progress: bool = True,
               run_id: str | None = None) -> RunResult:
    """Train, analyze and report `name` with an already built config object (what sweeps use).

    `run_id`: the id the new run gets (a sweep's driver picks ids up front, so that runs made elsewhere can
    be imported into its store without clashes); default: a fresh one.
    """
    exp = experiments.get(name)
    if not isinstance(cfg, exp.config_cls):
        raise TypeError(f"{name} needs a {exp.config_cls.__name__}, got {type(cfg).__name__}")
    if exp.check is not None:
        with using_store(store):  # a run id in the config is looked up in this run's store
            exp.check(cfg)
    with RunStore(store) as st:
        ctx = RunContext.start(st, name, cfg, progress=progress, run_id=run_id)
        return _execute(st, ctx, exp, cfg, resume=False)


def resume_run(run_id: str, *, store: str | Path | None = None, progress: bool = True,
               experiment: str | None = None) -> RunResult:
    """Continue an interrupted or killed run from its latest checkpoints; ends exactly as an
    uninterrupted run would. A completed run resumes only when a final checkpoint of it is corrupt: that model
    is trained again from its newest intact checkpoint. `experiment`, if given, must be the run's own (a
    mismatch is refused)."""
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        if experiment is not None and experiment != run.experiment:
            raise EmergelabError(f"Run {run.id} is a {run.experiment} run, not {experiment}; "
                                 f"resume it with: emergelab run --resume {run.id}")
        if run.status == "completed" and not _corrupt_final_checkpoints(run):
            raise EmergelabError(f"Run {run.id} already completed; nothing to resume")
        exp = experiments.get(run.experiment)
        cfg = from_dict(exp.config_cls, run.config)
        ctx = RunContext.reopen(st, run.id, progress=progress)
        return _execute(st, ctx, exp, cfg, resume=True)


def _corrupt_final_checkpoints(run: Run) -> bool:
    """Whether a completed run has a final checkpoint that no longer loads: resuming it trains that model again
    from its newest intact checkpoint (experiments/kit.py `train_timed`), then redoes the analysis."""
    from .train.checkpoint import corrupt_newest_checkpoints  # torch: only for a resume, which trains anyway

    return bool(corrupt_newest_checkpoints(run.dir / "checkpoints"))


def _execute(store: RunStore, ctx: RunContext, exp: Experiment, cfg: Any, resume: bool) -> RunResult:
    """Train, then analyze and report; whatever stops it leaves the run marked (and resumable when it was
    interrupted)."""
    try:
        _use_threads(getattr(cfg, "threads", 0))
        exp.train(cfg, ctx, resume)
        run = store.get_run(ctx.id)
        summary = analyze(store, run, exp)
        ctx.finish("completed")
        return RunResult(run.id, run.dir, "completed", summary, write_report(store, ctx.run))
    except KeyboardInterrupt:
        ctx.finish("interrupted", "interrupted by the user")
        raise
    except TrainingDiverged as e:
        ctx.finish("failed", str(e))
        raise TrainingDiverged(f"{e}. Run {ctx.id} is marked failed; its data is kept.") from None
    except BaseException as e:
        ctx.finish("failed", f"{type(e).__name__}: {e}")
        raise


def _use_threads(threads: int | None) -> None:
    """An experiment config's `threads` (0 or absent = torch's default) holds for its training and analysis."""
    if threads:
        import torch

        torch.set_num_threads(threads)


# --- analysis and reports ---------------------------------------------------------------------------
def analyze(store: RunStore, run: Run, exp: Experiment | None = None) -> dict[str, Any]:
    """Run the experiment's analysis on a stored run; store the summary as result and summary.json."""
    exp = exp or experiments.get(run.experiment)
    _use_threads(run.config.get("threads"))
    summary = exp.analyze(store, run)
    store.put_result(run.id, "summary", summary)
    write_json_atomic(run.dir / "summary.json", summary)
    store.add_artifact(run.id, "summary.json", "summary")
    return summary


def write_report(store: RunStore, run: Run) -> Path:
    """Render the run's report.html from the store and record it as an artifact."""
    exp = experiments.get(run.experiment)
    path = write_text_atomic(run.dir / "report.html", exp.report(store, run))
    store.add_artifact(run.id, "report.html", "report")
    return path


def render_report(run_id: str, *, store: str | Path | None = None) -> Path:
    """Re-render `report.html` of a finished run from the store alone; a missing `summary.json` is rewritten
    from the stored summary too."""
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        summary = st.get_result(run.id, "summary")
        if summary is None:
            raise StoreError(f"Run {run.id} has no analysis (status: {run.status}); resume it first")
        if not (run.dir / "summary.json").is_file():
            write_json_atomic(run.dir / "summary.json", summary)
        return write_report(st, run)


def reanalyze_run(run_id: str, *, store: str | Path | None = None) -> RunResult:
    """Redo a completed run's analysis with the installed code (from the store and its checkpoints), then
    rewrite summary.json and report.html. Training is not repeated."""
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
        if run.status != "completed":
            raise StoreError(f"Run {run.id} is {run.status}, not completed; resume it first")
        summary = analyze(st, run)
        return RunResult(run.id, run.dir, run.status, summary, write_report(st, run))


# --- looking at stored runs -------------------------------------------------------------------------
def show_run(run_id: str, *, store: str | Path | None = None) -> dict[str, Any]:
    """{"run": Run, "summary": dict | None, "artifacts": [(path, kind)], "n_metrics": int}. Opens the store
    read-only: it works on a read-only filesystem and never changes the file."""
    with RunStore(store, readonly=True) as st:
        run = st.get_run(run_id)
        return {
            "run": run,
            "summary": st.get_result(run.id, "summary"),
            "artifacts": st.artifacts(run.id),
            "n_metrics": len(st.metric_names(run.id)),
        }


def list_runs(*, store: str | Path | None = None, experiment: str | None = None) -> list[Run]:
    """Stored runs, newest last; `experiment` must be a registered name (a typo gets a did-you-mean)."""
    if experiment is not None:
        experiments.entry(experiment)
    with RunStore(store, readonly=True) as st:  # a reading command never changes the store
        return st.list_runs(experiment)
