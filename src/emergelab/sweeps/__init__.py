"""Sweeps: one experiment over a grid of config values, every point an ordinary run in the store.

    grid.py           --grid text -> grid -> points; dotted paths into summaries (lookup, did-you-mean)
    plan.py           which points are reused, resumed or new (run ids chosen here); the table from the store
    output.py         sweep.json, sweep.csv, report.html under <store dir>/sweeps/<id>/
    progress.py       points done / running / failed on stderr
    executors.py      in this process, or in local worker processes (both write the store directly)
    scratch.py        one point in a temporary folder with its own store, returned as an export
    ray_executor.py   Ray tasks in node-local scratch space; only the driver writes the store
    run.py            run_sweep, list_sweeps

Layers: sweeps use the runner (emergelab.runner); the runner and everything below know nothing of sweeps.

Example:
    >>> from emergelab.sweeps import run_sweep
    >>> res = run_sweep("rbf-approx", ["n_train=20,50,200"], executor="ray", workers=4)
    >>> [(r["point"], r["status"]) for r in res.rows]
"""

from .grid import expand, lookup, parse_grid
from .plan import SweepResult, collect, sweep_id
from .run import EXECUTORS, list_sweeps, run_sweep

__all__ = ["EXECUTORS", "SweepResult", "collect", "expand", "list_sweeps", "lookup", "parse_grid", "run_sweep",
           "sweep_id"]
