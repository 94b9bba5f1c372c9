"""safetensors files: read with one clear error, write atomically, always with CPU tensors.

A leaf module: it imports only `errors` and the atomic-write helper `runs.atomic`, never the trainer,
models or the store, so the trainer's checkpoints, the estimators' `save`/`load` and the caches in a run
directory share it without pulling each other in. Never unpickles anything.

Example:
    >>> write_safetensors("w.safetensors", {"w": torch.ones(2, 3)}, {"note": "hi"})
    >>> tensors, meta = read_safetensors("w.safetensors", what="Model file", device="cpu")
    >>> tensors["w"].shape, meta["note"]
    (torch.Size([2, 3]), 'hi')
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from .errors import StoreError
from .runs.atomic import write_atomic


def read_safetensors(
    path: str | Path, what: str = "Checkpoint", device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, tensors placed on `device` (map_location semantics: a file
    written on a GPU machine loads on a CPU-only one). A missing or corrupt file raises one clear StoreError
    whose message starts with `what`."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{what} '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(torch.device(device))) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise StoreError(f"{what} '{path}' is corrupt or not a safetensors file ({e})") from None


def read_safetensors_metadata(path: str | Path, what: str = "File") -> dict[str, str]:
    """Only the metadata (cheap: tensors are not read), e.g. to check a cache key before loading a cache."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{what} '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise StoreError(f"{what} '{path}' is corrupt or not a safetensors file ({e})") from None


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
                      ) -> Path:
    """Write `tensors` (moved to the CPU, made contiguous) and string `metadata` atomically: a crash leaves the
    old file or the new one, never half of one. Tensors must not share memory (clone tied weights first)."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return write_atomic(path, lambda tmp: save_file(cpu, tmp, metadata=metadata))
