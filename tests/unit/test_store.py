import os
import sqlite3
import stat
import subprocess
import time

import pytest
import torch

from emergelab.errors import StoreError
from emergelab.runs.atomic import current_umask, write_atomic, write_json_atomic, write_text_atomic
from emergelab.runs.owner import hostname, owner_state, process_token
from emergelab.runs.store import RunStore
from emergelab.tensorfile import write_safetensors


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


# --- owners: a run whose process is gone reads as interrupted --------------------------------------------------
def _dead_process(reap: bool = True) -> tuple[int, str | None]:
    """(pid, start token) of a real process that has ended (reaped, or a zombie its parent has not waited for)."""
    proc = subprocess.Popen(["sleep", "30"])
    token = process_token(proc.pid)
    proc.kill()
    if reap:
        proc.wait()
    else:
        deadline = time.time() + 10
        while owner_state(proc.pid, hostname(), token) != "gone" and time.time() < deadline:
            time.sleep(0.01)
        _zombies.append(proc)  # reaped at the end of the test session
    return proc.pid, token


_zombies: list[subprocess.Popen] = []


def _set_owner(db, run_id, pid, host, token):
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET owner_pid = ?, owner_host = ?, owner_start = ? WHERE id = ?",
                (pid, host, token, run_id))
    con.commit()
    con.close()


def test_a_run_records_its_owner_and_reads_as_interrupted_once_that_process_is_gone(tmp_path):
    db = tmp_path / "e.db"
    with RunStore(db) as st:
        run = st.create_run("induction", {}, "h", seed=0)
        assert (run.owner_pid, run.owner_host, run.status) == (os.getpid(), hostname(), "running")  # this process
        killed = st.create_run("induction", {}, "h", seed=0)
        zombie = st.create_run("induction", {}, "h", seed=0)
        reused = st.create_run("induction", {}, "h", seed=0)
        remote = st.create_run("induction", {}, "h", seed=0)
        legacy = st.create_run("induction", {}, "h", seed=0)
    pid, token = _dead_process()
    _set_owner(db, killed.id, pid, hostname(), token)
    zpid, ztoken = _dead_process(reap=False)
    _set_owner(db, zombie.id, zpid, hostname(), ztoken)
    _set_owner(db, reused.id, os.getpid(), hostname(), "another-boot:1")  # a live pid, but not the owner's process
    _set_owner(db, remote.id, 1, "some-other-machine", "x:1")
    _set_owner(db, legacy.id, None, None, None)  # made before owners were recorded

    with RunStore(db, readonly=True) as st:  # computed on read, nothing written
        got = {r.id: r for r in st.list_runs()}
        assert got[killed.id].status == "interrupted"
        assert got[killed.id].message == f"process {pid} on {hostname()} ended without finishing (killed?)"
        assert got[zombie.id].status == got[reused.id].status == "interrupted"
        assert got[run.id].status == got[remote.id].status == got[legacy.id].status == "running"
        assert got[remote.id].owner_host == "some-other-machine"
    raw = sqlite3.connect(db)
    assert raw.execute("SELECT status FROM runs WHERE id = ?", (killed.id,)).fetchone() == ("running",)

    with RunStore(db, create=False) as st:  # a writable store writes it down
        assert st.get_run(killed.id).status == "interrupted"
    assert raw.execute("SELECT status, message FROM runs WHERE id = ?", (killed.id,)).fetchone() == (
        "interrupted", f"process {pid} on {hostname()} ended without finishing (killed?)")
    raw.close()


def test_resuming_takes_the_run_over_and_records_each_resume(tmp_path):
    db = tmp_path / "e.db"
    with RunStore(db) as st:
        run = st.create_run("induction", {}, "h", seed=0)
        assert run.resumes == () and "resumes" not in run.info()
        live = subprocess.Popen(["sleep", "30"])
        try:
            _set_owner(db, run.id, live.pid, hostname(), process_token(live.pid))
            with pytest.raises(StoreError, match=f"still running in process {live.pid} on "):
                st.claim_run(run.id)
        finally:
            live.kill()
            live.wait()
        assert st.get_run(run.id).status == "interrupted"
        first = st.claim_run(run.id)
        assert (first.status, first.owner_pid, first.message, first.ended_at) == ("running", os.getpid(), None, None)
        st.note_resume_step(run.id, 400, "1L")
        st.note_resume_step(run.id, 40, "2L")  # only the first training a resume went back into counts
        st.set_status(run.id, "interrupted", "interrupted by the user")
        st.claim_run(run.id)
        st.note_resume_step(run.id, 200)
        st.set_status(run.id, "completed")
        done = st.get_run(run.id)
    assert [(r["from_step"], r["label"]) for r in done.resumes] == [(400, "1L"), (200, "")]
    assert all(r["at"].endswith("+00:00") for r in done.resumes)
    assert done.info()["resumes"] == [dict(r) for r in done.resumes]
    with RunStore(db) as st:  # the history travels with the run to another store
        payload = st.export_run(run.id)
    with RunStore(tmp_path / "other" / "e.db") as other:
        assert other.import_run(payload).resumes == done.resumes


# --- read-only stores -----------------------------------------------------------------------------------------
OLD_RUNS_TABLE = """CREATE TABLE runs (id TEXT PRIMARY KEY, experiment TEXT NOT NULL, config TEXT NOT NULL,
    config_hash TEXT NOT NULL, seed INTEGER, version TEXT, git_commit TEXT, status TEXT NOT NULL,
    started_at TEXT NOT NULL, ended_at TEXT, message TEXT)"""


def test_a_store_made_before_owners_were_recorded_is_read_as_it_is_and_migrated_when_opened_for_writing(tmp_path):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute(OLD_RUNS_TABLE)
    con.execute("INSERT INTO runs VALUES ('r1', 'induction', '{}', 'h', 0, '0.1', NULL, 'running', "
                "'2026-01-01T00:00:00+00:00', NULL, NULL)")
    con.commit()
    con.close()
    before = db.read_bytes()
    with RunStore(db, readonly=True) as st:
        (run,) = st.list_runs()
        assert (run.id, run.status, run.owner_pid, run.resumes) == ("r1", "running", None, ())
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            st.set_status("r1", "failed")
    assert db.read_bytes() == before  # a read-only open changes nothing, not even the schema
    with RunStore(db) as st:
        cols = {r[1] for r in st.conn.execute("PRAGMA table_info(runs)")}
        assert {"owner_pid", "owner_host", "owner_start", "resumes"} <= cols
        assert st.get_run("r1").status == "running"  # no owner recorded: cannot know, stays as it was
        assert st.claim_run("r1").owner_pid == os.getpid()


def test_readonly_needs_an_existing_run_store(tmp_path):
    with pytest.raises(StoreError, match="No run store"):
        RunStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a valid SQLite database"):
        RunStore(bad, readonly=True)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(other, readonly=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A real tmpfs mount (root only) and a function that remounts it read-only; skipped where mounting is not
    allowed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root with mount rights)")
    try:
        yield mnt, lambda: subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_store_on_a_read_only_filesystem_can_be_listed_but_not_written(tmpfs):
    mnt, make_readonly = tmpfs
    db = mnt / "e.db"
    with RunStore(db) as st:
        run = st.create_run("induction", {"a": 1}, "h", seed=3)
        st.log_metrics(run.id, 10, {"loss": 2.5})
        killed = st.create_run("induction", {}, "h", seed=0)
    pid, token = _dead_process()
    _set_owner(db, killed.id, pid, hostname(), token)
    make_readonly()
    with pytest.raises(OSError):
        (mnt / "probe").write_text("x")  # it really is read-only, even for root
    with pytest.raises(StoreError, match="cannot be written"):
        RunStore(db)
    with RunStore(db, readonly=True) as st:
        assert {r.id for r in st.list_runs()} == {run.id, killed.id}
        assert st.get_run(run.id).config == {"a": 1}
        assert st.metric_series(run.id, "loss") == ([10], [2.5])
        assert st.get_run(killed.id).status == "interrupted"  # computed; the store cannot record it
        with pytest.raises(sqlite3.OperationalError):
            st.put_result(run.id, "x", 1)
    assert sorted(p.name for p in mnt.iterdir()) == ["e.db"]  # no -wal / -shm left or made


# --- file modes --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_written_file_gets_the_mode_of_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        files = [write_text_atomic(tmp_path / "a.txt", "x"), write_json_atomic(tmp_path / "b.json", {}),
                 write_safetensors(tmp_path / "c.safetensors", {"w": torch.ones(2)})]  # safetensors replaces the file
        with RunStore(tmp_path / "e.db") as st:
            run = st.create_run("x", {}, "h", seed=0)
            (run.dir / "sub").mkdir(parents=True)
            (run.dir / "sub" / "f.txt").write_text("y")
            payload = st.export_run(run.id)
        with RunStore(tmp_path / "other" / "e.db") as other:
            imported = other.import_run(payload).dir
        files.append(imported / "sub" / "f.txt")
        assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(mode) for f in files}
        for folder in (imported, imported / "sub"):  # the imported run folder too (a temp folder is made 0700)
            assert oct(stat.S_IMODE(folder.stat().st_mode)) == oct(0o777 & ~umask)
    finally:
        os.umask(old)
