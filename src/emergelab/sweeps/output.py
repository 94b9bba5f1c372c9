"""A sweep's files under `<store dir>/sweeps/<id>/`: sweep.json (grid, metrics, rows, breakthroughness),
sweep.csv (one row per point) and report.html.

Example:
    >>> write_outputs(collect("icl-regression-1a2b3c4d5e", store="runs/emergelab.db"))
    PosixPath('runs/sweeps/icl-regression-1a2b3c4d5e/report.html')
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..report.sweep import render_sweep_report
from ..runs.atomic import write_json_atomic, write_text_atomic
from .plan import SweepResult

__all__ = ["to_csv", "write_outputs"]


def write_outputs(result: SweepResult) -> Path:
    """Write sweep.json, sweep.csv and report.html (each atomically); returns the report's path."""
    write_json_atomic(result.dir / "sweep.json", {
        "id": result.sweep_id, "experiment": result.experiment, "grid": result.grid, "metrics": result.metrics,
        "rows": result.rows, "breakthroughness": result.breakthroughness})
    write_text_atomic(result.dir / "sweep.csv", to_csv(result))
    return write_text_atomic(result.report_path, render_sweep_report(result))


def to_csv(result: SweepResult) -> str:
    """Header: the grid keys, run_id, status, the metrics; one line per point (dicts and lists as JSON)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*result.grid, "run_id", "status", *result.metrics])
    for row in result.rows:
        w.writerow([*(row["point"][k] for k in result.grid), row["run_id"] or "", row["status"],
                    *(_cell(row["values"].get(m)) for m in result.metrics)])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
