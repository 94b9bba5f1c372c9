"""Which process owns a running run, and whether that process is still alive.

A run records its owner when it starts or resumes: pid, host name and, on Linux, a start token (the boot id
and the process start time, field 22 of /proc/<pid>/stat), so a pid that the system has since given to
another process, or a reboot, is not mistaken for the owner. Elsewhere only pid and host are compared.

Example:
    >>> pid, host, token = current_owner()
    >>> owner_state(pid, host, token)
    'alive'
    >>> owner_state(pid, "some-other-machine", token)   # cannot be checked from here
    'unknown'
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

OwnerState = Literal["alive", "gone", "unknown"]
_PROC = Path("/proc")


def hostname() -> str:
    return socket.gethostname()


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of `pid` from /proc, None if there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]  # fields 3 and 22 of stat(5)


def _has_proc() -> bool:
    return (_PROC / "self/stat").is_file()


def process_token(pid: int) -> str | None:
    """'<boot id>:<start ticks>' of a live process on Linux; None where /proc is not there."""
    stat = _proc_stat(pid)
    if stat is None:
        return None
    return f"{_boot_id() or ''}:{stat[1]}"


def current_owner() -> tuple[int, str, str | None]:
    """(pid, host, start token) of this process."""
    pid = os.getpid()
    return pid, hostname(), process_token(pid)


def owner_state(pid: int | None, host: str | None, token: str | None) -> OwnerState:
    """'alive' / 'gone' for an owner on this host, 'unknown' for one on another host (or none recorded)."""
    if pid is None or host is None or host != hostname():
        return "unknown"
    if _has_proc():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):  # no such process, or one that exited and awaits its parent
            return "gone"
        if token:
            boot, _, start = token.rpartition(":")
            if boot != (_boot_id() or "") or start != stat[1]:
                return "gone"  # a reboot since, or the pid now belongs to another process
        return "alive"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "alive"  # it exists, under another user
    except OSError:
        return "unknown"
    return "alive"
