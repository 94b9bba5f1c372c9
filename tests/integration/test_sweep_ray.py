"""The Ray executor: a sweep run as Ray tasks on a local Ray instance gives the same runs and numbers as
the in-process executor."""

import pytest

from emergelab.sweeps import run_sweep
from emergelab.runs.store import RunStore

GRID = {"n_train": [20, 50]}
FIXED = ["functions=[x^2]", "k_values=[5, 10]"]


def test_ray_executor_matches_in_process(tmp_path):
    seq = run_sweep("rbf-approx", GRID, overrides=FIXED, store=tmp_path / "a" / "e.db", progress=False)
    ray = run_sweep("rbf-approx", GRID, overrides=FIXED, store=tmp_path / "b" / "e.db", executor="ray",
                    workers=2, progress=False)
    assert not ray.failed and [r["status"] for r in ray.rows] == ["completed", "completed"]
    assert [r["values"] for r in ray.rows] == [pytest.approx(r["values"], rel=1e-6) for r in seq.rows]
    with RunStore(tmp_path / "b" / "e.db", create=False) as st:
        assert {r.id for r in st.list_runs()} == {r["run_id"] for r in ray.rows}
        assert all((r.dir / "report.html").exists() for r in st.list_runs())
