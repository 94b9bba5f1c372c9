"""Stopped sweeps: Ctrl-C (in-process, or from a terminal to worker processes) and kill -9 leave the running
points' runs interrupted and resumable and start no other point; re-issuing the sweep finishes it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emergelab.runs.store import RunStore

ICL_TINY = [
    "threads=1", "task.d=2", "model.n_layers=1", "model.d_model=16", "model.n_heads=2", "model.d_mlp=32",
    "train.steps=300", "train.batch_size=16", "train.warmup_steps=10", "train.log_every=20",
    "train.checkpoint_every=20", "analysis.eval_size=64", "analysis.probe_size=16", "analysis.n_boot=20",
]


def cli(*args: str, cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)


def test_interrupted_sweep_is_finished_by_reissuing_it(tmp_path):
    """Ctrl-C in the second point: the first stays completed, the second is resumed from its checkpoints."""
    store = tmp_path / "e.db"
    args = ["sweep", "icl-regression", "--grid", "seed=0,1", "--no-progress", "--store", str(store),
            *sum((["--set", s] for s in ICL_TINY), [])]
    proc = cli(*args, cwd=tmp_path)
    deadline = time.time() + 240
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        with RunStore(store) as st:
            runs = st.list_runs()
            if len(runs) == 2 and st.metric_series(runs[1].id, "probe/err_k0")[0][-1:] >= [100]:
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again" in err and "Traceback" not in err
    with RunStore(store, create=False) as st:
        first, second = st.list_runs()
        assert (first.status, second.status) == ("completed", "interrupted")
    proc = cli(*args, cwd=tmp_path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    with RunStore(store, create=False) as st:
        runs = st.list_runs()
        assert [r.id for r in runs] == [first.id, second.id]  # resumed, not restarted
        assert all(r.status == "completed" for r in runs)
        steps, _ = st.metric_series(second.id, "probe/err_k0")
        assert steps == list(range(0, 301, 20))


@pytest.mark.parametrize("how", ["ctrl-c", "kill-9"])
def test_stopped_worker_processes_leave_resumable_runs_and_start_no_more(tmp_path, how):
    """Ctrl-C from a terminal reaches the whole process group: each running point is interrupted once (its
    run resumable), the queued point never starts. kill -9 of the sweep: its workers notice, interrupt their
    runs and exit instead of living on. Either way, re-issuing the sweep finishes all three points."""
    store = tmp_path / "e.db"
    args = ["sweep", "icl-regression", "--grid", "seed=0,1,2", "--workers", "2", "--no-progress", "--store",
            str(store), *sum((["--set", s] for s in ICL_TINY), [])]
    proc = cli(*args, cwd=tmp_path, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        with RunStore(store) as st:
            runs = st.list_runs()
            if len(runs) == 2 and all(st.metric_series(r.id, "probe/err_k0")[0][-1:] >= [100] for r in runs):
                break
        time.sleep(0.1)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "Traceback" not in err, err
    else:
        proc.kill()
        proc.communicate(timeout=60)
    deadline = time.time() + 60  # orphaned workers check on their parent once a second
    while time.time() < deadline:
        with RunStore(store, create=False) as st:
            interrupted = st.list_runs()
        if all(r.status == "interrupted" for r in interrupted):
            break
        time.sleep(0.2)
    assert [r.status for r in interrupted] == ["interrupted", "interrupted"]  # seed 2 never started
    proc = cli(*args, cwd=tmp_path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    with RunStore(store, create=False) as st:
        runs = st.list_runs()
        assert [r.id for r in runs[:2]] == [r.id for r in interrupted] and len(runs) == 3
        assert all(r.status == "completed" for r in runs)
