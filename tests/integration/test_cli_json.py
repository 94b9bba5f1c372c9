"""`--json` on list, list-runs, list-sweeps, show, run and sweep: stdout is ONE JSON document (json.loads reads
it whole), everything else (progress, messages) goes to stderr. Real tiny rbf-approx runs, through the real
entry point (the module's two training commands run side by side, ~30 s on a busy 2-core machine: slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--set", "functions=[x^2]", "--set", "k_values=[10, 20]", "--set", "n_test=200", "--set", "threads=1"]


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80"})


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return finish(start(*args, cwd=cwd))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One run (with progress on, from a config file printed by `emergelab config`) and a one-point sweep, both
    with --json."""
    root = tmp_path_factory.mktemp("json")
    printed = cli("config", "rbf-approx", *TINY, cwd=root)
    assert printed.returncode == 0, printed.stderr
    (root / "printed.yaml").write_text(printed.stdout)
    run = start("run", "rbf-approx", "--config", "printed.yaml", "--store", "e.db", "--json", cwd=root)
    sweep = start("sweep", "rbf-approx", "--grid", "n_train=50", *TINY, "--store", "e.db", "--json", cwd=root)
    return root, printed, finish(run), finish(sweep)


@pytest.mark.slow
def test_run_json_is_one_document_and_its_config_is_the_printed_one(made):
    root, printed, run, _ = made
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["status"] == "completed" and doc["run_id"] in doc["run_dir"]
    assert Path(doc["report_path"]).is_file() and Path(doc["summary_path"]).is_file()
    assert json.loads(Path(doc["summary_path"]).read_text()) == doc["summary"]
    assert all(c["passed"] for c in doc["summary"]["checks"])
    assert doc["run_id"][-4:] in run.stderr and "2/2" in run.stderr  # the progress bar went to stderr
    # `run --config printed.yaml` ran exactly the config `emergelab config` printed (comments and all)
    from emergelab import api
    from emergelab.config import config_hash

    show = json.loads(cli("show", doc["run_id"], "--store", "e.db", "--json", cwd=root).stdout)
    assert "# numbers of centers" in printed.stdout
    assert show["run"]["config_hash"] == config_hash(api.experiment_config("rbf-approx", overrides=TINY[1::2]))
    assert show["run"]["config"]["k_values"] == [10, 20] and show["run"]["config"]["functions"] == ["x^2"]
    again = cli("config", "rbf-approx", "--config", "printed.yaml", cwd=root)
    assert again.returncode == 0 and again.stdout == printed.stdout


@pytest.mark.slow
def test_show_json_has_provenance_summary_artifacts_and_metric_count(made):
    root, _, run, _ = made
    run_id = json.loads(run.stdout)["run_id"]
    r = cli("show", run_id[-4:], "--store", "e.db", "--json", cwd=root)  # a unique suffix is enough
    assert r.returncode == 0 and r.stderr == "", r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"run", "summary", "artifacts", "n_metrics"}
    prov = doc["run"]
    assert prov["id"] == run_id and prov["experiment"] == "rbf-approx" and prov["status"] == "completed"
    assert {"seed", "config_hash", "version", "git_commit", "started_at", "ended_at", "dir", "config"} <= set(prov)
    assert doc["summary"] == json.loads(run.stdout)["summary"]
    assert {"path": "report.html", "kind": "report"} in doc["artifacts"]
    assert isinstance(doc["n_metrics"], int)


@pytest.mark.slow
def test_list_runs_and_list_json(made):
    root, _, run, sweep = made
    runs = json.loads(cli("list-runs", "--store", "e.db", "--json", cwd=root).stdout)
    ids = [r["id"] for r in runs]
    assert json.loads(run.stdout)["run_id"] in ids and json.loads(sweep.stdout)["rows"][0]["run_id"] in ids
    assert all(r["status"] == "completed" and "config" not in r for r in runs)
    only = json.loads(cli("list-runs", "--store", "e.db", "--experiment", "induction", "--json", cwd=root).stdout)
    assert only == []
    experiments = json.loads(cli("list", "--json", cwd=root).stdout)
    assert "rbf-approx" in [e["name"] for e in experiments]
    assert all(set(e) == {"name", "description"} and e["description"] for e in experiments)


@pytest.mark.slow
def test_sweep_and_list_sweeps_json(made):
    root, _, _, sweep = made
    assert sweep.returncode == 0, sweep.stderr
    doc = json.loads(sweep.stdout)
    assert doc["grid"] == {"n_train": [50]} and doc["failed"] == [] and doc["errors"] == {}
    (row,) = doc["rows"]
    assert row["point"] == {"n_train": 50} and row["status"] == "completed" and row["values"]
    assert Path(doc["csv_path"]).is_file() and Path(doc["report_path"]).is_file()
    assert doc["sweep_id"] in sweep.stderr and row["run_id"] in sweep.stderr  # progress lines on stderr
    assert all(len(line) <= 80 for line in sweep.stderr.splitlines()), sweep.stderr  # COLUMNS=80
    sweeps = json.loads(cli("list-sweeps", "--store", "e.db", "--json", cwd=root).stdout)
    assert [(s["id"], s["points"], s["completed"]) for s in sweeps] == [(doc["sweep_id"], 1, 1)]


def test_json_user_errors_leave_stdout_empty(tmp_path):
    for args in (["run", "inductoin", "--json"], ["list-runs", "--json"], ["show", "x", "--json"],
                 ["sweep", "rbf-approx", "--grid", "n_trian=1", "--json"], ["list-sweeps", "--json"]):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stdout == "", (args, r.stdout)
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("Error: "), r.stderr
    assert list(tmp_path.iterdir()) == []
