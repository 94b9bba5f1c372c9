"""Sweeps as a user runs them: `emergelab sweep` over a grid, every point an ordinary run in the store,
points reused when the same config already completed, the same numbers from the in-process and the
multi-process executors, and the sweep report in Chromium (stopped sweeps: test_sweep_resume.py)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emergelab.config import ConfigError
from emergelab.emergence.metrics import breakthroughness
from emergelab.runs.store import RunStore
from emergelab.sweeps import expand, lookup, parse_grid, run_sweep, sweep_id

GRID = {"n_train": [20, 50], "centers": ["grid", "kmeans"]}
FIXED = ["functions=[x^2]", "k_values=[5, 10]"]


def cli(*args: str, cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)


def test_grid_parsing_expansion_and_paths():
    assert parse_grid(["task.pool_size=1,4,16", "train.lr=1e-3,3e-3", "functions=[[x^2], [sin(3x)]]"]) == {
        "task.pool_size": [1, 4, 16], "train.lr": [0.001, 0.003], "functions": [["x^2"], ["sin(3x)"]]}
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["seed=1", "seed=2"])
    with pytest.raises(ConfigError, match="must look like key=v1,v2"):
        parse_grid(["seed"])
    assert expand({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    summary = {"error_by_k": {"transformer": [1.0, 0.5, 0.1]}, "tracks": {"closest": "ridge"}}
    assert lookup(summary, "error_by_k.transformer.-1") == 0.1
    assert lookup(summary, "tracks.closest") == "ridge"
    assert lookup(summary, "tracks.nope") is None and lookup(summary, "error_by_k.transformer.7") is None
    assert sweep_id("x", "h", {"a": [1]}) == sweep_id("x", "h", {"a": [1]}) != sweep_id("x", "h", {"a": [2]})


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "n_trian=20,50"], "Unknown config key 'n_trian'. Did you mean: n_train?"),
    (["--grid", "n_train=20,-5"], "n_train=-5 is invalid"),
    (["--grid", "n_train=20", "--executor", "slurm"], "Unknown executor 'slurm'"),
    (["--grid", "n_train=20", "--workers", "0"], "workers=0 is invalid"),
    (["--grid", "n_train=20,50,20"], "Grid 'n_train' must list distinct values"),
    (["--grid", "n_train=20,50", "--set", "n_train=100"], "'n_train' is both swept (--grid) and fixed"),
    (["--grid", "n_train=20", "--executor", "ray", "--address", "127.0.0.1:1"], "Nothing answers at Ray address"),
])
def test_bad_sweeps_are_one_line_exit_2_and_create_nothing(tmp_path, args, message):
    proc = cli("sweep", "rbf-approx", *args, "--store", str(tmp_path / "s" / "e.db"), cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], err
    assert list(tmp_path.iterdir()) == []  # every point is validated before anything runs


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    store = tmp_path_factory.mktemp("sweep") / "e.db"
    return store, run_sweep("rbf-approx", GRID, overrides=FIXED, store=store, progress=False)


def test_every_point_is_a_completed_run_and_the_table_is_written(sequential):
    store, res = sequential
    assert [r["point"] for r in res.rows] == expand(GRID)
    assert all(r["status"] == "completed" and not r["reused"] for r in res.rows) and not res.failed
    with RunStore(store, create=False) as st:
        runs = {r.id: r for r in st.list_runs("rbf-approx")}
        assert set(runs) == {r["run_id"] for r in res.rows}
        for row in res.rows:
            cfg = runs[row["run_id"]].config
            assert cfg["n_train"] == row["point"]["n_train"] and cfg["centers"] == row["point"]["centers"]
            assert cfg["k_values"] == [5, 10]  # the fixed overrides hold at every point
            assert row["values"]["results.0.max_abs_error"] == st.get_result(row["run_id"], "summary")[
                "results"][0]["max_abs_error"]
    rows = list(csv.DictReader((res.dir / "sweep.csv").open()))
    assert [(r["n_train"], r["centers"]) for r in rows] == [("20", "grid"), ("20", "kmeans"), ("50", "grid"),
                                                           ("50", "kmeans")]
    assert float(rows[3]["results.0.max_abs_error"]) > 0


def test_reissued_sweep_reuses_completed_points(sequential):
    store, first = sequential
    again = run_sweep("rbf-approx", GRID, overrides=FIXED, store=store, progress=False)
    assert again.sweep_id == first.sweep_id and all(r["reused"] for r in again.rows)
    assert [r["run_id"] for r in again.rows] == [r["run_id"] for r in first.rows]
    with RunStore(store, create=False) as st:
        assert len(st.list_runs()) == 4


def test_list_sweeps_shows_progress(sequential, tmp_path):
    from emergelab.api import list_sweeps

    store, res = sequential
    [info] = list_sweeps(store=store)
    assert (info["id"], info["points"], info["completed"]) == (res.sweep_id, 4, 4)
    proc = cli("list-sweeps", "--store", str(store), cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and res.sweep_id in out and "4/4" in out, err


def test_a_metric_in_no_summary_is_refused_before_the_sweep_with_a_did_you_mean(sequential):
    store, _ = sequential
    with RunStore(store) as st:
        sweeps = st.list_sweeps()
    with pytest.raises(ConfigError, match=r"'results\.0\.max_abs_eror'.*Did you mean: results\.0\.max_abs_error"):
        run_sweep("rbf-approx", GRID, overrides=FIXED, store=store, progress=False,
                  metrics=["results.0.max_abs_eror", "checks.0.passed"])
    with RunStore(store) as st:
        assert st.list_sweeps() == sweeps  # checked against the declared summary (configs' summary_paths())
    res = run_sweep("rbf-approx", GRID, overrides=FIXED, store=store, progress=False,
                    metrics=["checks.0.passed", "results.-1.max_abs_error"])  # list items by index, from the end
    assert not res.unknown_metrics and all(r["reused"] for r in res.rows)
    assert all(r["values"]["results.-1.max_abs_error"] > 0 for r in res.rows)


def test_worker_processes_give_the_same_numbers(sequential, tmp_path):
    _, seq = sequential
    par = run_sweep("rbf-approx", GRID, overrides=FIXED, store=tmp_path / "e.db", workers=2, progress=False)
    assert [r["values"] for r in par.rows] == [pytest.approx(r["values"], rel=1e-6) for r in seq.rows]  # threads
    assert len({r["run_id"] for r in par.rows}) == 4


def test_sweep_report_in_chromium(sequential, chromium_page):
    _, res = sequential
    errors = []
    chromium_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    chromium_page.on("pageerror", lambda e: errors.append(str(e)))
    chromium_page.goto(res.report_path.as_uri(), wait_until="load")
    assert chromium_page.locator("tbody tr").count() == 4
    links = chromium_page.locator("tbody a")
    assert links.count() == 4
    href = links.first.get_attribute("href")
    assert (res.report_path.parent / href).resolve() == (res.dir.parent.parent / res.rows[0]["run_id"]
                                                         / "report.html").resolve()
    assert chromium_page.locator("figure img").evaluate("img => img.naturalWidth") > 100
    assert errors == []


def test_swept_seeds_are_averaged_in_the_report_and_changes_scored(tmp_path):
    res = run_sweep("rbf-approx", {"seed": [0, 1], "n_train": [20, 50, 200]}, overrides=[*FIXED, "centers=random"],
                    store=tmp_path / "e.db", progress=False)
    metric = "results.0.max_abs_error"
    values = [r["values"][metric] for r in res.rows]
    assert len(set(values)) == 6  # random centers: every seed fits differently
    html = res.report_path.read_text()
    assert "against n_train" in html and "mean over the 2 seeds" in html
    means = [(values[i] + values[i + 3]) / 2 for i in range(3)]  # rows: seed 0 then seed 1, n_train inner
    assert res.breakthroughness[metric]["all"] == pytest.approx(breakthroughness(means), abs=1e-4)
    assert "How sudden is each change?" in html
    assert json.loads((res.dir / "sweep.json").read_text())["breakthroughness"] == res.breakthroughness
