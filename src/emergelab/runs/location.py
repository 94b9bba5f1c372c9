"""Where the run store is: an explicit path, else the store of the command in progress, else $EMERGELAB_STORE,
else `runs/emergelab.db` (re-exported by runs/store.py).

Example:
    >>> with using_store("other.db"):
    ...     resolve_store_path()        # PosixPath('other.db'): what a check before the run exists looks in
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path

DEFAULT_STORE = Path("runs") / "emergelab.db"
STORE_ENV = "EMERGELAB_STORE"

# the store the current command works on (`using_store`): what a check before the run exists resolves a run id in
_store_in_use: contextvars.ContextVar[str | Path | None] = contextvars.ContextVar("emergelab_store", default=None)


def resolve_store_path(path: str | Path | None = None) -> Path:
    """`path`, else the store of the command in progress (`using_store`), else $EMERGELAB_STORE, else the default."""
    return Path(path or _store_in_use.get() or os.environ.get(STORE_ENV) or DEFAULT_STORE)


@contextlib.contextmanager
def using_store(path: str | Path | None) -> Iterator[None]:
    """Within the block, `resolve_store_path()` without a path gives `path` (when set): e.g. an experiment's
    check of `--model RUN_ID` before its run exists looks in the store the command was given."""
    token = _store_in_use.set(path)
    try:
        yield
    finally:
        _store_in_use.reset(token)
