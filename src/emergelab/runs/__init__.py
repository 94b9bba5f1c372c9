"""Run store (SQLite), run directories, atomic writes and the run context."""

from .context import RunContext
from .store import Run, RunStore

__all__ = ["Run", "RunContext", "RunStore"]
