"""The library functions behind the CLI, in one place. Each CLI command calls exactly one of these; they live
in the runner (one run), the sweeps package (grids of runs) and icl/ (k-shot evaluation).

Example:
    >>> result = run_experiment("induction", overrides=["train.steps=1500"], store="runs/emergelab.db")
    >>> result.summary["2L"]["phase_change"]["detected"]
    True
    >>> html_path = render_report(result.run_id)
    >>> res = run_sweep("rbf-approx", ["n_train=20,50,200"])
"""

from __future__ import annotations

from .runner import (
    RunResult,
    experiment_config,
    get_experiment,
    list_experiments,
    list_runs,
    reanalyze_run,
    render_report,
    resume_run,
    run_config,
    run_experiment,
    show_run,
    write_report,
)
from .sweeps import SweepResult, list_sweeps, run_sweep

__all__ = ["RunResult", "SweepResult", "experiment_config", "get_experiment", "list_experiments", "list_runs",
           "list_sweeps", "reanalyze_run", "render_report", "resume_run", "run_config", "run_experiment",
           "run_sweep", "show_run", "write_report"]
