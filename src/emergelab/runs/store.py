"""The run store: SQLite (WAL) for runs, metrics, artifacts and analysis results.

Default location `runs/emergelab.db` (override with `--store PATH` or `EMERGELAB_STORE`);
each run also has a directory next to the database: `<store dir>/<run_id>/`.

Every write is one transaction, so a crash never leaves half a row. Reading commands open the store with
`readonly=True` (it then also works on a read-only filesystem, and never changes the file). A run records the
process that owns it (pid, host, start token); a `running` run whose owner on this host is gone (kill -9, a
crash, a reboot) reads as `interrupted`, and each resume is recorded in `Run.resumes`.

Example:
    >>> store = RunStore("runs/emergelab.db")
    >>> run = store.create_run("induction", cfg_dict, seed=0)
    >>> store.log_metrics(run.id, step=100, values={"2L/probe/loss": 3.2})
    >>> store.metric_series(run.id, "2L/probe/loss")
    ([100], [3.2])
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..registry import did_you_mean
from .atomic import current_umask
from .db import connect_readonly, connect_writable, select_runs
from .location import DEFAULT_STORE, STORE_ENV, resolve_store_path, using_store  # noqa: F401  (re-exported)
from .owner import current_owner, owner_state

STATUSES = ("running", "completed", "failed", "interrupted")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The commit of the emergelab source tree (an editable or source install), when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None




@dataclass(frozen=True)
class Run:
    id: str
    experiment: str
    config: dict[str, Any]
    config_hash: str
    seed: int | None
    version: str | None
    git_commit: str | None
    status: str
    started_at: str
    ended_at: str | None
    message: str | None
    dir: Path
    owner_pid: int | None = None  # the process that started or last resumed the run
    owner_host: str | None = None
    resumes: tuple[dict[str, Any], ...] = ()  # one {"at": UTC time, "from_step": int | None, "label": str} each

    @property
    def owner_since(self) -> str:
        """When the owning process took the run: its latest resume, else the run's start (UTC, ISO 8601)."""
        return (self.resumes[-1].get("at") if self.resumes else None) or self.started_at

    def owner(self) -> dict[str, Any] | None:
        """{"pid", "host", "started"} of the process that started or last resumed the run; None if not recorded."""
        if self.owner_pid is None:
            return None
        return {"pid": self.owner_pid, "host": self.owner_host, "started": self.owner_since}

    def info(self) -> dict[str, Any]:
        """Provenance for reports: id, experiment, status, times, config hash, seed, version, git commit, and for
        a run that was resumed, `resumes` (so a report's run data keep one shape for every run never resumed)."""
        info = {"id": self.id, "experiment": self.experiment, "status": self.status, "started_at": self.started_at,
                "ended_at": self.ended_at, "config_hash": self.config_hash, "seed": self.seed,
                "version": self.version, "git_commit": self.git_commit}
        if self.resumes:
            info["resumes"] = [dict(r) for r in self.resumes]
        return info


class RunStore:
    """The SQLite store at `path`. `create=False`: the file must exist. `readonly=True` (implies create=False):
    open it read-only, for commands that only read; a store on a read-only filesystem opens too."""

    def __init__(self, path: str | Path | None = None, create: bool = True, readonly: bool = False):
        self.path = resolve_store_path(path)
        self.readonly = readonly
        if not self.path.exists() and (not create or readonly):
            raise StoreError(f"No run store at '{self.path}' (set --store or {STORE_ENV})")
        if self.path.is_dir():
            raise StoreError(f"Run store '{self.path}' is a folder; give the path of a database file, "
                             f"e.g. {self.path / 'emergelab.db'}")
        self.conn = connect_readonly(self.path) if readonly else connect_writable(self.path)
        self._run_select = select_runs(self.conn)

    @property
    def root(self) -> Path:
        """Folder holding the run directories (next to the database)."""
        return self.path.parent

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # --- runs -------------------------------------------------------------------------------
    def new_run_id(self, experiment: str) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{experiment}-{secrets.token_hex(2)}"

    def create_run(
        self,
        experiment: str,
        config: dict[str, Any],
        config_hash: str,
        seed: int | None,
        version: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        run_id = run_id or self.new_run_id(experiment)
        pid, host, token = current_owner()
        with self.transaction() as c:
            c.execute(
                "INSERT INTO runs (id, experiment, config, config_hash, seed, version, git_commit, status,"
                " started_at, owner_pid, owner_host, owner_start, resumes) VALUES (?, ?, ?, ?, ?, ?, ?, 'running',"
                " ?, ?, ?, ?, '[]')",
                (run_id, experiment, json.dumps(config), config_hash, seed, version, git_commit(), now(),
                 pid, host, token),
            )
        return self.get_run(run_id)

    def _row_to_run(self, row: tuple) -> Run:
        (id_, exp, config, chash, seed, version, commit, status, start, end, msg, pid, host, token, resumes) = row
        if status == "running" and owner_state(pid, host, token) == "gone":
            status, msg = "interrupted", f"process {pid} on {host} ended without finishing (killed?)"
            self._mark_interrupted(id_, pid, token, msg)
        return Run(id_, exp, json.loads(config), chash, seed, version, commit, status, start, end, msg,
                   self.root / id_, owner_pid=pid, owner_host=host,
                   resumes=tuple(json.loads(resumes)) if resumes else ())

    def _mark_interrupted(self, run_id: str, pid: int, token: str | None, message: str) -> None:
        """Write down that a run's owner is gone, when this store can be written; only if the row still names
        that owner (a resume that just took the run over is left alone). Readers see it either way."""
        if self.readonly or self.conn.in_transaction:
            return
        try:
            with self.transaction() as c:
                c.execute("UPDATE runs SET status = 'interrupted', message = ? WHERE id = ? AND status = 'running'"
                          " AND owner_pid = ? AND owner_start IS ?", (message, run_id, pid, token))
        except sqlite3.OperationalError:  # read-only file, or busy: the computed status still holds
            pass

    def get_run(self, run_id: str) -> Run:
        row = self.conn.execute(f"{self._run_select} WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM runs")]
            prefix = [i for i in ids if i.startswith(run_id) or i.endswith(run_id)]
            if len(prefix) == 1:
                return self.get_run(prefix[0])
            hint = f" It matches several: {', '.join(prefix[:5])}." if prefix else did_you_mean(run_id, ids)
            raise StoreError(f"Unknown run '{run_id}' in store '{self.path}'.{hint if ids else ''}")
        return self._row_to_run(row)

    def has_run(self, run_id: str) -> bool:
        """Whether a run with exactly this id is in the store."""
        return self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def list_runs(self, experiment: str | None = None) -> list[Run]:
        q, args = self._run_select, ()
        if experiment:
            q, args = q + " WHERE experiment = ?", (experiment,)
        rows = self.conn.execute(q + " ORDER BY started_at, id", args).fetchall()
        return [self._row_to_run(r) for r in rows]

    def find_runs(self, experiment: str, config_hash: str) -> list[Run]:
        """Runs of `experiment` with exactly this config (oldest first)."""
        rows = self.conn.execute(f"{self._run_select} WHERE experiment = ? AND config_hash = ? ORDER BY started_at,"
                                 " id", (experiment, config_hash)).fetchall()
        return [self._row_to_run(r) for r in rows]

    def claim_run(self, run_id: str) -> Run:
        """Make this process the owner of a stopped run that is resuming: status `running`, the resume recorded
        (time now; `note_resume_step` adds the step). A run still running in a live process on this host is
        refused; one whose owner is on another host cannot be checked and is taken over."""
        run = self.get_run(run_id)
        pid, host, token = current_owner()
        with self.transaction() as c:
            row = c.execute("SELECT status, owner_pid, owner_host, owner_start, resumes FROM runs WHERE id = ?",
                            (run.id,)).fetchone()
            status, opid, ohost, otoken, resumes = row
            if (status == "running" and (opid, ohost, otoken) != (pid, host, token)
                    and owner_state(opid, ohost, otoken) == "alive"):
                raise StoreError(f"Run {run.id} is still running in process {opid} on {ohost}; stop that process "
                                 f"first (or wait for it to finish)")
            history = [*(json.loads(resumes) if resumes else []), {"at": now(), "from_step": None, "label": ""}]
            c.execute("UPDATE runs SET status = 'running', ended_at = NULL, message = NULL, owner_pid = ?,"
                      " owner_host = ?, owner_start = ?, resumes = ? WHERE id = ?",
                      (pid, host, token, json.dumps(history), run.id))
        return self.get_run(run.id)

    def note_resume_step(self, run_id: str, step: int, label: str = "") -> None:
        """Record the step the latest resume continued from (the first training it went back into; `label`
        names the model of a run that trains several). Later calls for the same resume change nothing."""
        with self.transaction() as c:
            row = c.execute("SELECT resumes FROM runs WHERE id = ?", (run_id,)).fetchone()
            history = json.loads(row[0]) if row and row[0] else []
            if not history or history[-1].get("from_step") is not None:
                return
            history[-1].update(from_step=int(step), label=label)
            c.execute("UPDATE runs SET resumes = ? WHERE id = ?", (json.dumps(history), run_id))

    def set_status(self, run_id: str, status: str, message: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        ended = None if status == "running" else now()
        with self.transaction() as c:
            c.execute("UPDATE runs SET status = ?, ended_at = ?, message = ? WHERE id = ?",
                      (status, ended, message, run_id))

    # --- metrics ----------------------------------------------------------------------------
    def log_metrics(self, run_id: str, step: int, values: dict[str, float]) -> None:
        with self.transaction() as c:
            c.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)",
                [(run_id, int(step), k, float(v)) for k, v in values.items()],
            )

    def delete_metrics_after(self, run_id: str, step: int, prefix: str = "") -> int:
        """Drop metrics logged after `step` (used on resume: they will be logged again, identically)."""
        with self.transaction() as c:
            cur = c.execute(
                "DELETE FROM metrics WHERE run_id = ? AND step > ? AND name LIKE ? ESCAPE '\\'",
                (run_id, step, prefix.replace("%", "\\%").replace("_", "\\_") + "%"),
            )
            return cur.rowcount

    def metric_names(self, run_id: str, prefix: str = "") -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT name FROM metrics WHERE run_id = ? AND substr(name, 1, ?) = ? ORDER BY name",
            (run_id, len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def metric_series(self, run_id: str, name: str) -> tuple[list[int], list[float]]:
        rows = self.conn.execute(
            "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step", (run_id, name)
        ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def metrics(self, run_id: str, prefix: str = "") -> dict[str, tuple[list[int], list[float]]]:
        """All series whose name starts with `prefix`: name -> (steps, values)."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        rows = self.conn.execute(
            "SELECT name, step, value FROM metrics WHERE run_id = ? AND substr(name, 1, ?) = ?"
            " ORDER BY name, step",
            (run_id, len(prefix), prefix),
        )
        for name, step, value in rows:
            steps, values = out.setdefault(name, ([], []))
            steps.append(step)
            values.append(value)
        return out

    # --- artifacts and results -------------------------------------------------------------
    def add_artifact(self, run_id: str, path: str | Path, kind: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO artifacts (run_id, path, kind) VALUES (?, ?, ?)",
                      (run_id, str(path), kind))

    def artifacts(self, run_id: str) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.conn.execute(
            "SELECT path, kind FROM artifacts WHERE run_id = ? ORDER BY path", (run_id,))]

    def put_result(self, run_id: str, name: str, value: Any) -> None:
        """Store an analysis result (JSON-serializable) under `name`."""
        blob = json.dumps(value, allow_nan=False)
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO results (run_id, name, value) VALUES (?, ?, ?)",
                      (run_id, name, blob))

    def get_result(self, run_id: str, name: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM results WHERE run_id = ? AND name = ?",
                                (run_id, name)).fetchone()
        return json.loads(row[0]) if row else default

    def delete_results(self, run_id: str, prefix: str = "") -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM results WHERE run_id = ? AND substr(name, 1, ?) = ?",
                      (run_id, len(prefix), prefix))

    # --- sweeps ------------------------------------------------------------------------------
    def put_sweep(self, sweep_id: str, experiment: str, spec: dict[str, Any]) -> None:
        """Record a sweep; re-issuing it keeps its creation time and takes the new spec (e.g. other metrics)."""
        with self.transaction() as c:
            c.execute("INSERT INTO sweeps (id, experiment, spec, created_at) VALUES (?, ?, ?, ?)"
                      " ON CONFLICT(id) DO UPDATE SET spec = excluded.spec",
                      (sweep_id, experiment, json.dumps(spec), now()))

    def add_sweep_run(self, sweep_id: str, point: int, run_id: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO sweep_runs (sweep_id, point, run_id) VALUES (?, ?, ?)",
                      (sweep_id, point, run_id))

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT id, experiment, spec, created_at FROM sweeps WHERE id = ?",
                                (sweep_id,)).fetchone()
        if row is None:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM sweeps")]
            raise StoreError(f"Unknown sweep '{sweep_id}' in store '{self.path}'.{did_you_mean(sweep_id, ids)}")
        return {"id": row[0], "experiment": row[1], "spec": json.loads(row[2]), "created_at": row[3]}

    def list_sweeps(self) -> list[dict[str, Any]]:
        """Every sweep (oldest first) with the statuses of its runs: {id, experiment, spec, created_at, statuses}."""
        out = []
        for id_, exp, spec, created in self.conn.execute(
                "SELECT id, experiment, spec, created_at FROM sweeps ORDER BY created_at, id"):
            statuses = [r[0] for r in self.conn.execute(
                "SELECT runs.status FROM sweep_runs JOIN runs ON runs.id = sweep_runs.run_id"
                " WHERE sweep_runs.sweep_id = ?", (id_,))]
            out.append({"id": id_, "experiment": exp, "spec": json.loads(spec), "created_at": created,
                        "statuses": statuses})
        return out

    def sweep_runs(self, sweep_id: str) -> dict[int, str]:
        """point index -> run id, for the points that have run."""
        return dict(self.conn.execute("SELECT point, run_id FROM sweep_runs WHERE sweep_id = ?", (sweep_id,)))

    # --- moving a run between stores -----------------------------------------------------------
    def export_run(self, run_id: str) -> dict[str, Any]:
        """Everything of one run as plain data: its row, metrics, artifacts, results and the files of its
        directory (config.yaml, summary.json, report.html, checkpoints/...) as bytes. `import_run` of this
        payload into another store recreates the run there; a sweep's Ray tasks use it so that only the
        driver writes the store.

        Shape: {"format": 1, "run": {column: value}, "metrics": [[step, name, value]], "artifacts":
        [[path, kind]], "results": [[name, JSON text]], "files": {relative posix path: bytes}}.
        """
        run = self.get_run(run_id)
        cur = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run.id,))
        row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
        files = {}
        if run.dir.is_dir():
            for path in sorted(run.dir.rglob("*")):
                if path.is_file() and not path.is_symlink() and not path.name.endswith(".tmp"):
                    files[path.relative_to(run.dir).as_posix()] = path.read_bytes()
        q = "WHERE run_id = ? ORDER BY 1, 2"
        return {"format": 1, "run": row,
                "metrics": [list(r) for r in self.conn.execute(f"SELECT step, name, value FROM metrics {q}",
                                                               (run.id,))],
                "artifacts": [list(r) for r in self.conn.execute(f"SELECT path, kind FROM artifacts {q}", (run.id,))],
                "results": [list(r) for r in self.conn.execute(f"SELECT name, value FROM results {q}", (run.id,))],
                "files": files}

    def import_run(self, payload: dict[str, Any]) -> Run:
        """Write an `export_run` payload into this store; a run with the same id (and config) is replaced
        as a whole (a resumed run coming back). Files first, then the rows in one transaction: a crash in
        between leaves the run as it was in the store, plus at worst a stray directory."""
        if payload.get("format") != 1:
            raise StoreError(f"Cannot import a run payload of format {payload.get('format')!r}")
        row = payload["run"]
        old = self.conn.execute("SELECT experiment, config_hash FROM runs WHERE id = ?", (row["id"],)).fetchone()
        if old is not None and tuple(old) != (row["experiment"], row["config_hash"]):
            raise StoreError(f"Run id {row['id']} is already in store '{self.path}' with another config")
        self._import_files(row["id"], payload["files"])
        cols = list(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
        with self.transaction() as c:
            # an upsert, not DELETE + INSERT: deleting the row would cascade to the sweeps that list it
            c.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                      f" ON CONFLICT(id) DO UPDATE SET {updates}", [row[k] for k in cols])
            for table in ("metrics", "artifacts", "results"):
                c.execute(f"DELETE FROM {table} WHERE run_id = ?", (row["id"],))
            c.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)",
                          [(row["id"], *m) for m in payload["metrics"]])
            c.executemany("INSERT INTO artifacts (run_id, path, kind) VALUES (?, ?, ?)",
                          [(row["id"], *a) for a in payload["artifacts"]])
            c.executemany("INSERT INTO results (run_id, name, value) VALUES (?, ?, ?)",
                          [(row["id"], *r) for r in payload["results"]])
        return self.get_run(row["id"])

    def _import_files(self, run_id: str, files: dict[str, bytes]) -> None:
        """Write the files into a staging folder, then swap it in for the run directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.import-", dir=self.root))
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700; the run folder gets the usual mode
        try:
            for rel, data in files.items():
                path = staging / rel
                if Path(rel).is_absolute() or ".." in Path(rel).parts:
                    raise StoreError(f"Run payload holds a file outside its run directory: '{rel}'")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            target = self.root / run_id
            if target.exists():
                stale = Path(tempfile.mkdtemp(prefix=f".{run_id}.old-", dir=self.root))
                os.replace(target, stale / run_id)
                os.replace(staging, target)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
