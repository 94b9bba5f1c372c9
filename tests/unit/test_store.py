import os
import sqlite3

import pytest

from emergelab.errors import StoreError
from emergelab.runs.atomic import write_atomic, write_json_atomic, write_text_atomic
from emergelab.runs.store import RunStore


def test_run_metrics_artifacts_results_round_trip(tmp_path):
    with RunStore(tmp_path / "e.db") as store:
        run = store.create_run("induction", {"seed": 3, "a": {"b": 1}}, "abc123", seed=3, version="0.1.0")
        assert run.status == "running" and run.dir == tmp_path / run.id
        store.log_metrics(run.id, 0, {"2L/loss": 4.8, "2L/acc": 0.1})
        store.log_metrics(run.id, 50, {"2L/loss": 3.0})
        store.log_metrics(run.id, 50, {"2L/loss": 2.5})  # re-logging a step replaces it
        store.add_artifact(run.id, "report.html", "report")
        store.put_result(run.id, "summary", {"x": [1, 2]})
        store.set_status(run.id, "completed")
    with RunStore(tmp_path / "e.db", create=False) as store:
        again = store.get_run(run.id)
        assert again.config == {"seed": 3, "a": {"b": 1}} and again.status == "completed" and again.ended_at
        assert store.metric_series(run.id, "2L/loss") == ([0, 50], [4.8, 2.5])
        assert set(store.metrics(run.id, "2L/")) == {"2L/loss", "2L/acc"}
        assert store.artifacts(run.id) == [("report.html", "report")]
        assert store.get_result(run.id, "summary") == {"x": [1, 2]}
        assert store.get_run(run.id[-4:]).id == run.id  # a unique suffix is enough
        assert store.delete_metrics_after(run.id, 0, prefix="2L/") == 1
        assert store.metric_series(run.id, "2L/loss") == ([0], [4.8])
        mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_prefix_delete_does_not_touch_similar_names(tmp_path):
    with RunStore(tmp_path / "e.db") as store:
        run = store.create_run("x", {}, "h", seed=0)
        store.log_metrics(run.id, 10, {"2L/a": 1.0, "2L_/a": 1.0, "12L/a": 1.0})
        store.delete_metrics_after(run.id, 0, prefix="2L/")
        assert store.metric_names(run.id) == ["12L/a", "2L_/a"]


def test_unknown_run_and_missing_or_corrupt_store(tmp_path):
    with RunStore(tmp_path / "e.db") as store:
        store.create_run("induction", {}, "h", seed=0, run_id="20260101-000000-induction-aaaa")
        with pytest.raises(StoreError, match="Unknown run 'nope'"):
            store.get_run("nope")
    with pytest.raises(StoreError, match="No run store"):
        RunStore(tmp_path / "missing.db", create=False)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a valid SQLite database"):
        RunStore(bad)


def test_a_failed_transaction_leaves_no_row(tmp_path):
    with RunStore(tmp_path / "e.db") as store:
        run = store.create_run("x", {}, "h", seed=0)
        with pytest.raises(sqlite3.IntegrityError):
            store.log_metrics(run.id, 1, {"ok": 1.0, None: 2.0})  # second row violates NOT NULL
        assert store.metric_names(run.id) == []


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"v": 1})

    def crash(tmp):
        with open(tmp, "w") as f:
            f.write('{"v": 2, "half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, crash)
    assert target.read_text().strip().startswith('{\n  "v": 1')
    assert os.listdir(tmp_path) == ["summary.json"]  # no temp file left behind
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"x": float("nan")})  # never write invalid JSON
    assert not (tmp_path / "nan.json").exists()


def test_find_runs_by_config_and_sweep_records(tmp_path):
    with RunStore(tmp_path / "e.db") as st:
        a = st.create_run("x", {"n": 1}, "h1", seed=0)
        st.create_run("x", {"n": 2}, "h2", seed=0)
        st.create_run("y", {"n": 1}, "h1", seed=0)
        assert [r.id for r in st.find_runs("x", "h1")] == [a.id]
        assert st.find_runs("x", "h3") == []
        st.put_sweep("s1", "x", {"grid": {"n": [1, 2]}, "metrics": ["a"]})
        created = st.get_sweep("s1")["created_at"]
        st.put_sweep("s1", "x", {"grid": {"n": [1, 2]}, "metrics": ["b"]})  # re-issued with other metrics
        st.add_sweep_run("s1", 0, a.id)
        sweep = st.get_sweep("s1")
        assert sweep["spec"]["metrics"] == ["b"] and sweep["created_at"] == created
        assert st.sweep_runs("s1") == {0: a.id}
        with pytest.raises(StoreError, match="Unknown sweep 's2'"):
            st.get_sweep("s2")
