"""A point run in scratch space (what each Ray task does), without Ray: its run comes back as an export and
lands whole in another store; a stopped run travels to scratch, is resumed there and comes back completed;
a point whose run never reached the store is recorded as failed with its error."""

import _thread
import threading
import time
from pathlib import Path

import pytest

from emergelab.config import config_hash, to_dict
from emergelab.errors import StoreError
from emergelab.runner import experiment_config, get_experiment, run_config
from emergelab.runs.store import RunStore
from emergelab.sweeps.plan import Task, plan_sweep, point_configs, record_outcome
from emergelab.sweeps.scratch import run_in_scratch

EXP = "icl-regression"
TINY = [*get_experiment(EXP).tiny, "threads=1"]


def task_for(overrides: list[str], run_id: str = "20260101-000000-icl-regression-0001", resume: bool = False) -> Task:
    cfg = experiment_config(EXP, overrides=overrides)
    return Task(0, {}, to_dict(cfg), config_hash(cfg), run_id, resume)


def test_a_scratch_run_comes_back_whole_and_lands_in_the_store(tmp_path):
    task = task_for(TINY)
    out = run_in_scratch(EXP, task, threads=1)
    assert out["error"] is None and not out["interrupted"] and not Path(out["scratch"]).exists()
    payload = out["run"]
    assert payload["run"]["id"] == task.run_id and payload["run"]["status"] == "completed"
    assert {"config.yaml", "summary.json", "report.html"} <= set(payload["files"])
    assert any(f.startswith("checkpoints/") for f in payload["files"])

    with RunStore(tmp_path / "e.db") as st:
        run = st.import_run(payload)
        assert (run.id, run.status) == (task.run_id, "completed")
        assert st.export_run(run.id) == payload  # rows and files, exactly
        for rel, data in payload["files"].items():
            assert (run.dir / rel).read_bytes() == data
        direct = run_config(EXP, experiment_config(EXP, overrides=TINY), store=tmp_path / "e.db", progress=False)
        summaries = [st.get_result(i, "summary") for i in (run.id, direct.run_id)]
        for s in summaries:
            s.pop("wall_seconds", None)
        assert summaries[0] == summaries[1]  # the same numbers as a run made in the store itself

        st.import_run(payload)  # again: replaced, not doubled
        assert st.export_run(run.id) == payload and len(st.list_runs()) == 2
        clash = {**payload, "run": {**payload["run"], "config_hash": "somethingelse"}}
        with pytest.raises(StoreError, match="already in store .* with another config"):
            st.import_run(clash)


def test_a_stopped_run_is_resumed_in_scratch_and_comes_back_completed(tmp_path):
    """Ctrl-C (KeyboardInterrupt in the main thread) part-way through training leaves an interrupted run with
    checkpoints; its export is resumed in scratch; the completed run replaces it under the same id."""
    overrides = [*TINY, "train.steps=400", "train.log_every=10", "train.checkpoint_every=10"]
    store = tmp_path / "e.db"
    cfg = experiment_config(EXP, overrides=overrides)

    def interrupt_at_step_100() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if store.exists():
                with RunStore(store) as st:
                    runs = st.list_runs()
                    if runs and st.metric_series(runs[0].id, "probe/err_k0")[0][-1:] >= [100]:
                        _thread.interrupt_main()
                        return
            time.sleep(0.02)

    threading.Thread(target=interrupt_at_step_100, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_config(EXP, cfg, store=store, progress=False)
    with RunStore(store, create=False) as st:
        [run] = st.list_runs()
        assert run.status == "interrupted"
        stopped = st.export_run(run.id)
    assert any(f.startswith("checkpoints/") for f in stopped["files"])

    task = Task(0, {}, to_dict(cfg), run.config_hash, run.id, resume=True)
    out = run_in_scratch(EXP, task, resume_payload=stopped, threads=1)
    assert out["error"] is None and out["run"]["run"]["status"] == "completed"
    with RunStore(store, create=False) as st:
        st.import_run(out["run"])
        [back] = st.list_runs()
        assert (back.id, back.status) == (run.id, "completed")
        assert st.metric_series(run.id, "probe/err_k0")[0] == list(range(0, 401, 10))
        assert (back.dir / "report.html").exists() and st.get_result(run.id, "summary") is not None


def test_a_point_that_never_reached_the_store_is_recorded_failed_and_rerun(tmp_path):
    grid = {"seed": [0, 1]}
    base, configs = point_configs(get_experiment(EXP).config_cls, grid, None, TINY)
    spec = {"grid": grid, "overrides": TINY, "config": None, "metrics": []}
    with RunStore(tmp_path / "e.db") as st:
        plan = plan_sweep(st, EXP, grid, base, configs, spec)
        assert [t.resume for t in plan.todo] == [False, False] and len({t.run_id for t in plan.todo}) == 2
        lost = plan.todo[0]
        record_outcome(st, plan, lost, "Ray task failed: NodeDiedError")
        run = st.get_run(lost.run_id)
        assert (run.status, run.message, run.config_hash) == ("failed", "Ray task failed: NodeDiedError",
                                                             lost.config_hash)
        assert st.sweep_runs(plan.sweep_id) == {0: lost.run_id}
        again = plan_sweep(st, EXP, grid, base, configs, spec)
        assert [t.index for t in again.todo] == [0, 1] and again.todo[0].run_id != lost.run_id  # a new run
