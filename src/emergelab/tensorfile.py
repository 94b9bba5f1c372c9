"""safetensors files: read with one clear error, write atomically, always with CPU tensors.

A leaf module: it imports only `errors` and the atomic-write helper `runs.atomic`, never the trainer,
models or the store, so the trainer's checkpoints, the estimators' `save`/`load` and the caches in a run
directory share it without pulling each other in. Never unpickles anything.

Corruption is caught, not loaded: a file that is not safetensors, is truncated or has bytes past its data
fails to parse; and every file written here carries a SHA-256 of its tensors (names, dtypes, shapes and
bytes) in its metadata (`emergelab.sha256`), checked on every read, so random bytes inside the tensor data
are a `CorruptFileError` too instead of silently wrong weights. Files without it (written elsewhere, or
before it existed) are read unchecked.

Example:
    >>> write_safetensors("w.safetensors", {"w": torch.ones(2, 3)}, {"note": "hi"})
    >>> tensors, meta = read_safetensors("w.safetensors", what="Model file", device="cpu")
    >>> tensors["w"].shape, meta["note"]
    (torch.Size([2, 3]), 'hi')
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from .errors import StoreError
from .runs.atomic import write_atomic

CHECKSUM_KEY = "emergelab.sha256"


class CorruptFileError(StoreError):
    """The file exists but cannot be trusted: not safetensors, truncated, or its tensors fail their checksum.
    `reason`: what is wrong, without the file name (for messages that name the file their own way)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over each tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{str(t.dtype).removeprefix('torch.')}\0{list(t.shape)}\0".encode())
        flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))  # stride 1 even for size-1 dims
        h.update(flat.view(torch.uint8).numpy().data)
    return h.hexdigest()


def _corrupt(what: str, path: Path, e: Exception) -> CorruptFileError:
    return CorruptFileError(f"{what} '{path}' is corrupt or not a safetensors file ({e})", reason=str(e))


def read_safetensors(
    path: str | Path, what: str = "Checkpoint", device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, tensors placed on `device` (map_location semantics: a file
    written on a GPU machine loads on a CPU-only one). A missing file raises a StoreError, a corrupt one (bad
    header, truncated, checksum mismatch) a CorruptFileError; both one line starting with `what`."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{what} '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _corrupt(what, path, e) from None
    want = meta.pop(CHECKSUM_KEY, None)
    if want is not None and tensors_digest(tensors) != want:
        reason = "its tensor data do not match the checksum saved with them"
        raise CorruptFileError(f"{what} '{path}' is corrupt: {reason}", reason=reason)
    device = torch.device(device)
    if device.type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def read_safetensors_metadata(path: str | Path, what: str = "File") -> dict[str, str]:
    """Only the metadata (cheap: tensors are neither read nor checked), e.g. to check a cache key before
    loading a cache."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{what} '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _corrupt(what, path, e) from None
    meta.pop(CHECKSUM_KEY, None)
    return meta


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
                      ) -> Path:
    """Write `tensors` (moved to the CPU, made contiguous) and string `metadata`, plus the tensors' checksum,
    atomically: a crash leaves the old file or the new one, never half of one. Tensors must not share memory
    (clone tied weights first)."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {**(metadata or {}), CHECKSUM_KEY: tensors_digest(cpu)}
    return write_atomic(path, lambda tmp: save_file(cpu, tmp, metadata=meta))
