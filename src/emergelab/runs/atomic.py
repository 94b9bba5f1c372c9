"""Atomic file writes: write a temp file in the same folder, fsync, then rename over the target.

A crash (even kill -9) leaves either the old file or the new one, never half of one. Every file written here
gets the mode a plain `open(path, "w")` would give it: 0o666 less the process umask (0644 under umask 022,
0600 under 077), whatever the writer did to the temp file (mkstemp makes it 0600; safetensors' writer
replaces the file it is given).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_IMPORT_UMASK = os.umask(0)  # once, at import (single-threaded then); current_umask reads /proc where it can
os.umask(_IMPORT_UMASK)


def current_umask() -> int:
    """The process umask now, read without changing it (Linux >= 4.7: /proc/self/status); elsewhere the one
    at import (setting and restoring it would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def file_mode() -> int:
    """The mode of a new plain file under the current umask."""
    return 0o666 & ~current_umask()


def write_atomic(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` to produce the content, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # after write: a writer may have replaced the temp file with a 0600 one
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")
