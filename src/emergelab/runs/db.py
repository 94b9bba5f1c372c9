"""Opening the run store's SQLite file: its schema (and the migration of older stores), a writable connection
(WAL), a read-only one (that also works on a read-only filesystem), and one clear error for each way it fails.

Example:
    >>> conn = connect_writable(Path("runs/emergelab.db"))   # creates the tables, adds missing columns
    >>> conn = connect_readonly(Path("runs/emergelab.db"))   # never writes, not even the -shm file if it cannot
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from ..errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    seed INTEGER,
    version TEXT,
    git_commit TEXT,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    message TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    owner_start TEXT,
    resumes TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_config ON runs (experiment, config_hash);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, name, step)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    point INTEGER NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    PRIMARY KEY (sweep_id, point)
);
"""

RUN_COLUMNS = ("id", "experiment", "config", "config_hash", "seed", "version", "git_commit", "status", "started_at",
               "ended_at", "message", "owner_pid", "owner_host", "owner_start", "resumes")
# columns added after the first stores were made: an older store gets them on its first writable open
ADDED_RUN_COLUMNS = {"owner_pid": "INTEGER", "owner_host": "TEXT", "owner_start": "TEXT", "resumes": "TEXT"}


def sqlite_error(path: Path, e: sqlite3.Error) -> StoreError:
    """One line saying why the store at `path` cannot be used."""
    name = getattr(e, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY"):
        return StoreError(f"Run store '{path}' cannot be written (a read-only file, folder or filesystem): {e}")
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(f"Run store '{path}' cannot be opened ({e})")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return StoreError(f"Run store '{path}' is locked by another process ({e}); try again")
    return StoreError(f"Run store '{path}' is not a valid SQLite database ({e})")


def connect_writable(path: Path) -> sqlite3.Connection:
    """A connection for reading and writing (WAL); creates the file, its folder and the tables as needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next(p for p in path.parents if p.exists())
        raise StoreError(f"Cannot create run store '{path}': '{blocker}' is a file, not a folder") from None
    except OSError as e:
        raise StoreError(f"Cannot create the folder of run store '{path}': "
                         f"{e.strerror or e} ({e.filename or path.parent})") from None
    if not path.exists() and not os.access(path.parent, os.W_OK):
        raise StoreError(f"Cannot create run store '{path}': folder '{path.parent}' is not writable")
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)  # idempotent: CREATE ... IF NOT EXISTS
        migrate(conn)
    except sqlite3.Error as e:
        if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            # SQLite says "unable to open database file" when it cannot make the -wal / -shm files
            raise StoreError(f"Run store '{path}' cannot be written: the file or its folder is read-only "
                             f"(a read-only filesystem?). Commands that only read it still work.") from None
        raise sqlite_error(path, e) from None
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that never writes, to an existing run store."""
    # Where the file can be written, a read-write connection with query_only: it changes no data and, unlike
    # mode=ro, removes the WAL's -wal/-shm files when it closes, so reading leaves the folder as it was.
    # mode=ro reads a WAL store while others write it; on a read-only filesystem without the store's -shm
    # file it cannot open, and then nobody is writing it: immutable=1 reads the file as it is.
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    last: sqlite3.Error | None = None
    for query in ("mode=rw", "mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=30, isolation_level=None)
            if query == "mode=rw":
                conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as e:
            last = e
            continue
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.OperationalError as e:  # cannot open or read (e.g. no -shm on a read-only mount)
            conn.close()
            last = e
            continue
        except sqlite3.Error as e:
            conn.close()
            raise sqlite_error(path, e) from None
        if "runs" not in tables:
            conn.close()
            raise StoreError(f"'{path}' is an SQLite database but not a run store (it has no runs table)")
        return conn
    assert last is not None
    raise sqlite_error(path, last) from None


def migrate(conn: sqlite3.Connection) -> None:
    """Add the run columns an older store lacks (in one transaction, so two processes opening the same old
    store do not both add them)."""
    def missing() -> list[str]:
        have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        return [c for c in ADDED_RUN_COLUMNS if c not in have]

    if not missing():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for col in missing():
            conn.execute(f"ALTER TABLE runs ADD COLUMN {col} {ADDED_RUN_COLUMNS[col]}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def select_runs(conn: sqlite3.Connection) -> str:
    """SELECT of RUN_COLUMNS, with NULL for a column a (read-only, not migrated) older store lacks."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    return "SELECT " + ", ".join(c if c in have else f"NULL AS {c}" for c in RUN_COLUMNS) + " FROM runs"
