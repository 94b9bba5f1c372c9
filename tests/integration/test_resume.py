"""A run killed at any moment (kill -9 or Ctrl-C) resumes and ends with exactly the metrics of an
uninterrupted run; after kill -9 it reads as interrupted; a corrupt newest checkpoint resumes from the one
before it, again with exactly the metrics of an uninterrupted run, also when it is the final checkpoint of a model
already trained (trained again from the one before). The step each resume went on from is recorded and shown
(`show`, the report's header)."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emergelab.runs.store import RunStore
from emergelab.train.checkpoint import list_checkpoints
from tests.fixtures.live_runs import wait_for_metric_step

TINY = [
    "threads=1", "seed=4", "model.d_model=16", "model.n_heads=2", "task.vocab_size=16", "task.seq_len=24",
    "task.segment_min=3", "task.segment_max=6", "train.steps=240", "train.batch_size=16",
    "train.log_every=20", "train.checkpoint_every=40", "analysis.icl_late=20", "analysis.eval_size=64",
    "analysis.probe_size=32",
]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def emergelab(*args: str, store: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "emergelab.cli", "run", "--no-progress", "--store", str(store), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emergelab.cli", *args], capture_output=True, text=True, env=ENV,
                          timeout=120)


def all_metrics(store: Path, run_id: str) -> dict:
    with RunStore(store, create=False) as st:
        return st.metrics(run_id)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    store = tmp_path_factory.mktemp("clean") / "e.db"
    proc = emergelab(*sum((["--set", s] for s in TINY), []), store=store)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    with RunStore(store, create=False) as st:
        run = st.list_runs()[0]
    return store, run.id


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill-9", "ctrl-c"])
def test_killed_run_resumes_to_identical_metrics(uninterrupted, tmp_path, how):
    clean_store, clean_id = uninterrupted
    store = tmp_path / "e.db"
    proc = emergelab(*sum((["--set", s] for s in TINY), []), store=store)
    # stop in the middle of the second model (1L), after a checkpoint and some telemetry beyond it
    run_id = wait_for_metric_step(store, "1L/probe/loss", 100, proc)
    proc.send_signal(signal.SIGKILL if how == "kill-9" else signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if how == "kill-9":  # the first look at the store after the kill already says so
        listed = cli("list-runs", "--store", str(store))
        assert listed.returncode == 0, listed.stderr
        (row,) = [line for line in listed.stdout.splitlines() if run_id in line]
        assert "interrupted" in row and "running" not in row, listed.stdout
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
    if how == "kill-9":
        assert proc.returncode == -9 and run.status == "interrupted"
        assert run.message == f"process {proc.pid} on {socket.gethostname()} ended without finishing (killed?)"
    else:
        assert proc.returncode == 130 and run.status == "interrupted"
        assert f"emergelab run --resume {run_id}" in err
        assert "Traceback" not in err
    run_dir = store.parent / run_id
    assert not (run_dir / "summary.json").exists()
    assert not list(run_dir.rglob("*.tmp"))
    from_step = list_checkpoints(run_dir / "checkpoints" / "1L")[-1][0]  # 2L finished: the resume goes into 1L

    resumed = emergelab("--resume", run_id, store=store)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert_same_as_uninterrupted(store, run_id, clean_store, clean_id, from_step)


def assert_same_as_uninterrupted(store: Path, run_id: str, clean_store: Path, clean_id: str, from_step: int,
                                 label: str = "1L") -> None:
    run_dir = store.parent / run_id
    got, want = all_metrics(store, run_id), all_metrics(clean_store, clean_id)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == want[name], name  # bitwise: same steps, same floats
    with RunStore(store, create=False) as st:
        run = st.get_run(run_id)
    assert run.status == "completed" and len(run.resumes) == 1
    assert (run.resumes[0]["from_step"], run.resumes[0]["label"]) == (from_step, label)  # the step it went on from
    assert (run_dir / "summary.json").exists() and (run_dir / "report.html").exists()
    assert "<dt>resumed</dt><dd>1x (last " in (run_dir / "report.html").read_text()
    assert f" from {label} step {from_step})</dd>" in (run_dir / "report.html").read_text()
    shown = cli("show", run_id, "--store", str(store))
    assert f"resumed at {run.resumes[0]['at']} from {label} step {from_step}" in shown.stdout, shown.stdout
    # the analysis of the resumed run is that of the uninterrupted one (training times aside)
    want_summary = json.loads((clean_store.parent / clean_id / "summary.json").read_text())
    assert without_times(json.loads((run_dir / "summary.json").read_text())) == without_times(want_summary)


@pytest.mark.slow
def test_a_corrupt_newest_checkpoint_resumes_from_the_one_before_with_identical_metrics(uninterrupted, tmp_path):
    clean_store, clean_id = uninterrupted
    store = tmp_path / "e.db"
    proc = emergelab(*sum((["--set", s] for s in TINY), []), store=store)
    run_id = wait_for_metric_step(store, "1L/probe/loss", 100, proc)  # 1L has checkpoints at 40 and 80 by now
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    folder = store.parent / run_id / "checkpoints" / "1L"
    (older, _), (newest, path) = list_checkpoints(folder)[-2:]
    # and the final checkpoint of 2L, trained already: the resume trains it again from the one before
    (older_2l, _), (final_2l, path_2l) = list_checkpoints(folder.parent / "2L")[-2:]
    assert final_2l == 240
    for bad in (path, path_2l):
        data = bytearray(bad.read_bytes())
        data[len(data) // 2:len(data) // 2 + 256] = random.Random(0).randbytes(256)  # the header still parses
        bad.write_bytes(bytes(data))

    resumed = emergelab("--resume", run_id, store=store)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert (f"Warning: checkpoint {path.name} of 1L is corrupt (its tensor data do not match the checksum saved "
            f"with them); moved aside to {path.name}.corrupt; resuming from step {older}.") in err, err
    assert f"Warning: checkpoint {path_2l.name} of 2L is corrupt" in err, err
    assert f"resuming from step {older_2l}." in err, err
    assert_same_as_uninterrupted(store, run_id, clean_store, clean_id, older_2l, label="2L")  # the first it went into


def without_times(tree):
    if isinstance(tree, dict):
        return {k: without_times(v) for k, v in tree.items() if not k.startswith("wall_seconds")}
    if isinstance(tree, list):
        return [without_times(v) for v in tree]
    return tree
