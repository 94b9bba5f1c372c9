"""The one error boundary every command runs behind.

A failure the user can fix is ONE line on stderr and exit code 2: an `EmergelabError`, an operating-system
error on a path (permission, a folder where a file is needed or the reverse, a missing file, a read-only
filesystem, a full disk), a file that is not UTF-8 text, a corrupt file of a format we read, or running out of
memory for a requested size. Ctrl-C is exit code 130 with a hint to resume. Anything else is a bug of ours:
the traceback, then a line asking to report it, exit code 1. A closed stdout (`emergelab list-runs | head`)
stays silent.

Example:
    >>> @guarded
    ... def list_runs(store: Path | None = None) -> None: ...
"""

from __future__ import annotations

import errno
import functools
import io
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import typer
from typer.exceptions import TyperException

from ..errors import EmergelabError
from ..version import __version__

__all__ = ["BUG_LINE", "guarded", "print_error", "user_message"]

BUG_LINE = (f"This is a bug in emergelab {__version__}; please report it with the command you ran and the "
            "traceback above.")

# errno values of OSErrors a user causes with a path they gave (or a machine they run on), not a bug of ours
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EROFS,
                errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP, errno.EFBIG, errno.ETXTBSY,
                errno.ENOTEMPTY}
_OSERROR_HINTS = {errno.ENOSPC: "free some disk space or write elsewhere", errno.EDQUOT: "the disk quota is used up",
                  errno.EROFS: "choose a writable location"}

Interrupted = Callable[[dict[str, Any]], str]


def guarded(fn: Callable[..., Any] | None = None, *, on_interrupt: Interrupted | None = None) -> Any:
    """Run a command behind the boundary. `on_interrupt(kwargs)` -> the hint printed after 'Interrupted.'
    on Ctrl-C (e.g. how to resume), given the command's arguments."""
    if fn is None:
        return functools.partial(guarded, on_interrupt=on_interrupt)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except KeyboardInterrupt:
            hint = _safe_hint(on_interrupt, kwargs)
            print_line(f"Interrupted.{' ' + hint if hint else ''}")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise  # stdout was closed by the reader (`| head`): typer exits quietly
        except Exception as e:  # noqa: BLE001  (the boundary: everything is sorted here)
            message = user_message(e)
            if message is None:
                traceback.print_exc()
                print_line(BUG_LINE)
                raise typer.Exit(1) from None
            print_error(message)
            raise typer.Exit(2) from None

    wrapper.__emergelab_guarded__ = True  # type: ignore[attr-defined]  (tests check every command has it)
    return wrapper


def _safe_hint(on_interrupt: Interrupted | None, kwargs: dict[str, Any]) -> str:
    if on_interrupt is None:
        return ""
    try:
        return on_interrupt(kwargs)
    except Exception:  # noqa: BLE001  (a hint must never turn Ctrl-C into a traceback)
        return ""


def print_line(text: str) -> None:
    print(" ".join(text.split("\n")), file=sys.stderr, flush=True)


def print_error(message: str) -> None:
    """'Error: message' as one line on stderr (red on a terminal)."""
    message = " ".join(str(message).split("\n"))
    if sys.stderr.isatty():
        print(f"\x1b[31mError:\x1b[0m {message}", file=sys.stderr, flush=True)
    else:
        print(f"Error: {message}", file=sys.stderr, flush=True)


def user_message(e: BaseException) -> str | None:
    """The one line a user-caused failure gets, or None for a bug of ours."""
    if isinstance(e, EmergelabError):
        return str(e)
    if isinstance(e, UnicodeDecodeError):
        where = _file_of(e)
        what = f"'{where}' is not UTF-8 text" if where else "An input is not UTF-8 text"
        return f"{what} (byte {e.start}: {e.reason}); save it as UTF-8"
    memory = _out_of_memory(e)
    if memory is not None:
        return memory
    if isinstance(e, OSError) and e.errno in _PATH_ERRNOS:
        return _os_message(e)
    return _corrupt_file(e)


def _os_message(e: OSError) -> str:
    reason = e.strerror or errno.errorcode.get(e.errno or 0, "error")
    hint = _OSERROR_HINTS.get(e.errno or 0)
    path = e.filename2 if e.filename2 is not None else e.filename
    if path is None:
        return f"{reason}{'; ' + hint if hint else ''}"
    path = os.fsdecode(path)
    if e.errno in (errno.ENOTDIR, errno.EEXIST):  # name the part of the path that is a file
        blocker = next((p for p in [Path(path), *Path(path).parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            where = "" if str(blocker) == path else f" (in '{path}')"
            return f"'{blocker}' is a file, not a folder{where}"
    return f"'{path}': {reason}{'; ' + hint if hint else ''}"


def _out_of_memory(e: BaseException) -> str | None:
    advice = "use a smaller model, batch or data size (see `emergelab config EXPERIMENT`)"
    name = type(e).__name__
    text = str(e).strip().split("\n")[0]
    if name == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA, MPS), checked by name: no torch import here
        detail = text.split(". GPU")[0] if text else "the device ran out of memory"
        return f"out of memory: {detail}; {advice}, or --set device=cpu"
    if isinstance(e, MemoryError):
        return f"out of memory{': ' + text if text else ''}; {advice}"
    if isinstance(e, RuntimeError) and "can't allocate memory" in text:  # torch's CPU allocator
        m = re.search(r"allocate (\d+) bytes", text)
        size = f"{int(m.group(1)) / 2**30:.1f} GiB" if m else "more than this machine has"
        return f"out of memory: one tensor needed {size}; {advice}"
    return None


def _corrupt_file(e: BaseException) -> str | None:
    """A file of a format we read that is damaged: safetensors, YAML, JSON, SQLite."""
    name, module = type(e).__name__, type(e).__module__ or ""
    where = _file_of(e)
    file = f"'{where}'" if where else "A file"
    if name == "SafetensorError":
        return f"{file} is not a readable safetensors file (corrupt or truncated: {str(e).strip()})"
    if module.startswith("yaml"):
        return f"{file} is not valid YAML"
    if name == "JSONDecodeError":
        return f"{file} is not valid JSON (line {getattr(e, 'lineno', '?')})"
    if module == "sqlite3":
        text = str(e)
        if name == "DatabaseError" and "not a database" in text:
            return f"{file if where else 'The run store'} is not a valid SQLite database"
        if name == "OperationalError" and any(s in text for s in ("readonly", "disk is full", "unable to open",
                                                                    "locked", "disk I/O")):
            return f"The run store cannot be used: {text}"
    return None


def _file_of(e: BaseException) -> str | None:
    """The file being read when `e` was raised, where the traceback shows it: the innermost frame holding an
    open file object or a path that exists as a file (Path.read_text's `self`, a loader's `path` argument)."""
    explicit = getattr(e, "filename", None)
    if isinstance(explicit, (str, PurePath)):
        return str(explicit)
    tb, frames = e.__traceback__, []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        if frame.f_globals.get("__name__", "").startswith(("emergelab.cli", "typer")):
            continue  # a command's own arguments (e.g. --config) are not what was being read
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
            if isinstance(value, PurePath):
                try:
                    if value.is_file():  # type: ignore[attr-defined]
                        return str(value)
                except (OSError, AttributeError):
                    continue
    return None
