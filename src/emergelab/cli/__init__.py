"""`emergelab` command line. Commands are thin: parse, call one library function, print.

Every command runs behind one error boundary (boundary.py): a user error is one line on stderr and exit
code 2, never a traceback; a bug of ours prints its traceback and asks to be reported (exit code 1).

    app.py      the typer app, shared options, `command` (registers a command behind the boundary)
    compute.py  run, sweep, icl-eval
    inspect.py  inspect
    browse.py   list, config, list-runs, list-sweeps, show, report
    output.py   tables that never split an id or a number, --json documents
"""

from __future__ import annotations

# isort: off
from . import compute, browse, inspect  # noqa: F401  (registers the commands, in the order --help lists them)
from . import models  # noqa: F401  (`emergelab models`)
from .app import app

# isort: on

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `emergelab list-runs | head`: the reader is gone; say nothing
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
