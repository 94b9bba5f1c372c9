"""What commands print: lines, tables and JSON documents.

- Tables never split an id or a number across lines. On a terminal wide enough they are rich tables whose
  prose columns wrap; otherwise (a pipe, a file, a narrow terminal) plain space-aligned text, one line per row.
- `--json`: one JSON document on stdout and nothing else. While such a command works, whatever would reach
  stdout (our messages, a library's prints, child processes) goes to stderr instead (`json_stdout`).
- Lines are never wrapped by rich (paths and ids stay whole when piped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import PurePath
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = ["checks", "escape", "json_stdout", "jsonable", "print_json", "say", "table"]

out = Console(highlight=False, soft_wrap=True)


def say(text: str) -> None:
    """One line of rich markup on stdout, never wrapped (escape values with `escape`)."""
    out.print(text, highlight=False, soft_wrap=True)


def checks(summary: dict[str, Any] | None) -> None:
    """A run's checks, one line each: PASS/FAIL, name, detail."""
    for c in (summary or {}).get("checks", []):
        mark = "[green]PASS[/green]" if c["passed"] else "[red]FAIL[/red]"
        say(f"  {mark} {escape(str(c['name']))}: {escape(str(c['detail']))}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], prose: Sequence[str] = ()) -> None:
    """Print a table. Columns named in `prose` (free text) may wrap on a terminal; all others (ids, numbers,
    statuses, times) never do: a table that does not fit the terminal is printed plain instead."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    prose_min = {i: min(widths[i], max([12, *(len(w) for r in cells for w in r[i].split()[:1])]))
                 for i, h in enumerate(headers) if h in prose}
    needed = sum(prose_min.get(i, w) for i, w in enumerate(widths)) + 2 * len(headers)
    if not out.is_terminal or needed > out.width:
        _plain(list(headers), cells, widths)
        return
    t = Table(show_header=True, header_style="bold", box=None)
    for i, h in enumerate(headers):
        if h in prose:
            t.add_column(h, overflow="fold", min_width=prose_min[i])
        else:
            t.add_column(h, no_wrap=True, min_width=widths[i])
    for r in cells:
        t.add_row(*(Text(c) for c in r))  # Text: a value like 'k=[1, 2]' is not read as markup
    out.print(t)


def _plain(headers: list[str], cells: list[list[str]], widths: list[int]) -> None:
    for row in [headers, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# --- JSON -------------------------------------------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """`obj` as plain JSON values: dataclasses as dicts, paths as absolute paths, NaN and infinities as null."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, PurePath):
        return os.path.abspath(obj)  # a script may run from another folder
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if hasattr(obj, "item"):  # a numpy or torch scalar
        return jsonable(obj.item())
    return str(obj)


def print_json(obj: Any) -> None:
    """One JSON document on stdout (strict JSON: NaN becomes null)."""
    print(json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False), flush=True)


@contextlib.contextmanager
def json_stdout(enabled: bool = True) -> Iterator[None]:
    """While the block runs, stdout (file descriptor 1 too, so child processes and C code follow) writes to
    stderr; after it, stdout is back for the one JSON document."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # stdout is not a file (e.g. captured in-process)
        fd = saved = err_fd = None
    if saved is not None:
        os.dup2(err_fd, fd)
    python_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout = python_stdout
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, fd)
            os.close(saved)
