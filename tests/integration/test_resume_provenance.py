"""What a resume leaves on record, and a corrupt final checkpoint, with real tiny icl-regression runs through the
real entry point:

- a run killed (kill -9) in the middle names its owning process in `show` (pid@host, since when; also --json);
  resumed, it records the step it continued from, which `show`, `show --json` and the report's header show;
- a completed run whose final checkpoint holds random bytes: `report --reanalyze` is one line naming the file
  and the resume that fixes it (exit 2, nothing changed); `run --resume` trains that model again from its newest
  intact checkpoint and ends with exactly the metrics and analysis it had.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emergelab import api
from emergelab.errors import EmergelabError
from emergelab.runs.store import RunStore
from emergelab.train.checkpoint import list_checkpoints
from tests.fixtures.live_runs import wait_for_metric_step

TINY = ["threads=1", "task.d=2", "model.n_layers=1", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32",
        "train.steps=20", "train.log_every=10", "train.checkpoint_every=10", "train.warmup_steps=5",
        "analysis.eval_size=64", "analysis.probe_size=16", "analysis.n_boot=20"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def sets(overrides: list[str]) -> list[str]:
    return sum((["--set", s] for s in overrides), [])


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = start(*args, cwd=cwd)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def show_json(run_id: str, cwd: Path) -> dict:
    r = cli("show", run_id, "--store", "e.db", "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["run"]


def without_times(tree):
    if isinstance(tree, dict):
        return {k: without_times(v) for k, v in tree.items() if not k.startswith("wall_seconds")}
    if isinstance(tree, list):
        return [without_times(v) for v in tree]
    return tree


@pytest.mark.slow
def test_a_killed_run_names_its_process_and_its_resume_records_the_step(tmp_path):
    steps = ["train.steps=240", "train.checkpoint_every=20"]  # long enough to be caught in the middle
    proc = start("run", "icl-regression", "--no-progress", "--store", "e.db", *sets(TINY + steps), cwd=tmp_path)
    run_id = wait_for_metric_step(tmp_path / "e.db", "probe/err_k0", 50, proc)
    proc.send_signal(signal.SIGSTOP)  # alive but still: `show` sees it running, whatever the machine's speed
    try:
        running = show_json(run_id, tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    host = socket.gethostname()
    assert running["status"] == "running" and running["resumes"] == []
    assert running["owner"]["pid"] == proc.pid and running["owner"]["host"] == host
    assert running["owner"]["started"] == running["started_at"]

    shown = cli("show", run_id, "--store", "e.db", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "status=interrupted" in shown.stdout
    assert f"process {proc.pid}@{host} (started {running['started_at']})" in shown.stdout, shown.stdout
    assert "resumed at" not in shown.stdout
    from_step = list_checkpoints(tmp_path / run_id / "checkpoints")[-1][0]
    assert 40 <= from_step < 240

    assert api.resume_run(run_id, store=tmp_path / "e.db", progress=False).status == "completed"
    with RunStore(tmp_path / "e.db", create=False) as st:
        run = st.get_run(run_id)
    assert run.status == "completed" and len(run.resumes) == 1
    assert run.resumes[0]["from_step"] == from_step and run.resumes[0]["label"] == ""
    doc = show_json(run_id, tmp_path)
    assert doc["resumes"] == [dict(r) for r in run.resumes]
    assert doc["owner"]["pid"] != proc.pid and doc["owner"]["started"] == run.resumes[0]["at"]
    shown = cli("show", run_id, "--store", "e.db", cwd=tmp_path)
    assert f"resumed at {run.resumes[0]['at']} from step {from_step}" in shown.stdout, shown.stdout
    assert f"{proc.pid}@" not in shown.stdout  # a finished run names no process
    assert f" from step {from_step})</dd>" in (tmp_path / run_id / "report.html").read_text()


@pytest.fixture(scope="module")
def corrupt_final(tmp_path_factory):
    """A completed run (made in-process, to spare a start-up), its metrics and files as they were, then random
    bytes in its final checkpoint."""
    root = tmp_path_factory.mktemp("corrupt")
    api.run_experiment("icl-regression", overrides=TINY, store=root / "e.db", progress=False)
    with RunStore(root / "e.db", create=False) as st:
        (run,) = st.list_runs()
        metrics = st.metrics(run.id)
    (_, final) = list_checkpoints(run.dir / "checkpoints")[-1]
    data = bytearray(final.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = random.Random(0).randbytes(64)  # the header still parses
    final.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in (run.dir / "summary.json", run.dir / "report.html", final)}
    return root, run.id, final, metrics, before


@pytest.mark.slow
def test_reanalyze_with_a_corrupt_final_checkpoint_names_the_file_and_the_fix(corrupt_final):
    root, run_id, final, _, before = corrupt_final
    r = cli("report", run_id, "--reanalyze", "--store", "e.db", cwd=root)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line == (f"Error: Final checkpoint '{final.relative_to(root)}' of run {run_id} is corrupt (its tensor data "
                    f"do not match the checksum saved with them); train that model again from its newest intact "
                    f"checkpoint with: emergelab run --resume {run_id}")
    run_dir = root / run_id
    assert {p.name: p.read_bytes() for p in (run_dir / "summary.json", run_dir / "report.html", final)} == before
    with RunStore(root / "e.db", create=False) as st:
        assert st.get_run(run_id).status == "completed"


@pytest.mark.slow
def test_resume_trains_a_corrupt_final_checkpoint_again_to_the_same_results(corrupt_final):
    root, run_id, final, metrics, before = corrupt_final
    r = cli("run", "--resume", run_id, "--no-progress", "--store", "e.db", cwd=root)
    assert r.returncode == 0, r.stderr
    assert (f"Warning: checkpoint {final.name} of icl-regression is corrupt (its tensor data do not match the "
            f"checksum saved with them); moved aside to {final.name}.corrupt; resuming from step 10.") in r.stderr
    with RunStore(root / "e.db", create=False) as st:
        run = st.get_run(run_id)
        assert st.metrics(run_id) == metrics  # bitwise: same steps, same floats
    assert run.status == "completed" and [r["from_step"] for r in run.resumes] == [10]
    assert final.read_bytes() != before[final.name] and (final.parent / f"{final.name}.corrupt").is_file()
    summary = json.loads((root / run_id / "summary.json").read_text())
    assert without_times(summary) == without_times(json.loads(before["summary.json"]))
    with pytest.raises(EmergelabError, match="already completed"):  # intact again: nothing left to resume
        api.resume_run(run_id, store=root / "e.db", progress=False)
