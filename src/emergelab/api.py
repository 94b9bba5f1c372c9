"""The library functions behind the CLI, in one place. Each CLI command calls exactly one of these; they live
in the runner (one run), the sweeps package (grids of runs) and icl/ (k-shot evaluation). Names load on first
use (`emergelab.lazy`), so a command imports only what it computes with.

Example:
    >>> result = run_experiment("induction", overrides=["train.steps=1500"], store="runs/emergelab.db")
    >>> result.summary["2L"]["phase_change"]["detected"]
    True
    >>> html_path = render_report(result.run_id)
    >>> res = run_sweep("rbf-approx", ["n_train=20,50,200"])
"""

from __future__ import annotations

from .lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["RunResult", "experiment_config", "get_experiment", "list_experiments", "list_runs",
                     "reanalyze_run", "render_report", "resume_run", "run_config", "run_experiment", "show_run",
                     "write_report"], ".runner"),
    **dict.fromkeys(["SweepResult", "list_sweeps", "run_sweep"], ".sweeps"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
