"""Where tensors live: the `device` config key ('auto', 'cpu', 'cuda', 'cuda:1', 'mps').

'auto' picks CUDA if available, else Apple's MPS, else the CPU. Data generators stay seeded on the CPU
(a run's numbers depend on its seed, not its device); models and batches move to the device.

Example:
    >>> resolve_device("auto")          # device(type='cpu') on a machine without a GPU
    >>> to_device(batch, torch.device("cpu"))   # tensors inside dataclasses, tuples, dicts are moved
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .errors import ConfigError

DEVICE_HELP = "'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'"


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a config's `device` value; a device this machine lacks is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device: '{name}' is not a device; use {DEVICE_HELP}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: '{name}' asked for, but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device: '{name}' asked for, but only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device: '{name}' asked for, but MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device: '{name}' is not supported; use {DEVICE_HELP}")
    return dev


def check_device_name(name: str) -> None:
    """Config-time check of a `device` value (syntax and availability), so a bad value creates no run."""
    resolve_device(name)


def to_device(obj: Any, device: torch.device) -> Any:
    """`obj` with every tensor moved to `device`: tensors, and tensors inside dataclasses, tuples, lists and
    dicts (recursively). Anything else is returned as is. On the CPU this returns the same tensors."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: to_device(getattr(obj, f.name), device) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        moved = [to_device(v, device) for v in obj]
        return type(obj)(*moved) if hasattr(obj, "_fields") else tuple(moved)
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj
