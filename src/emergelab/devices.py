"""Where tensors live: the `device` config key ('auto', 'cpu', 'cuda', 'cuda:1', 'mps').

'auto' picks CUDA if available, else Apple's MPS, else the CPU. Data generators stay seeded on the CPU
(a run's numbers depend on its seed, not its device); models and batches move to the device.

Example:
    >>> resolve_device("auto")                   # device(type='cpu') on a machine without a GPU
    device(type='cpu')
    >>> resolve_device("gpu0")                   # ConfigError: device: 'gpu0' is not a device; use ...
    >>> to_device({"x": torch.ones(2)}, torch.device("cpu"))   # tensors in dataclasses/tuples/dicts move
    {'x': tensor([1., 1.])}
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .errors import ConfigError

DEVICE_HELP = "'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'"
KINDS = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for a config's `device` value (case and surrounding spaces ignored), or a torch.device
    checked as is. A malformed name, or a device this machine lacks, is a one-line ConfigError."""
    if isinstance(name, torch.device):
        dev = name
    elif isinstance(name, str):
        key = name.strip().lower()
        if key == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            return torch.device("mps") if _mps_available() else torch.device("cpu")
        try:
            dev = torch.device(key)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device: '{name}' is not a device; use {DEVICE_HELP}") from None
    else:
        raise ConfigError(f"device: {name!r} is not a device name; use {DEVICE_HELP}")
    if dev.type not in KINDS:
        raise ConfigError(f"device: '{name}' is not supported; use {DEVICE_HELP}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: '{name}' asked for, but CUDA is not available on this machine "
                              f"(torch {torch.__version__}); use 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device: '{name}' asked for, but this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError(f"device: '{name}' asked for, but MPS is not available on this machine; "
                          f"use 'auto' or 'cpu'")
    return dev


def check_device_name(name: str) -> None:
    """Config-time check of a `device` value (syntax and availability), so a bad value creates no run."""
    resolve_device(name)


def device_label(device: torch.device) -> str:
    """A short human label for provenance and reports: 'cpu', 'cuda:0 (NVIDIA H200)', 'mps'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def to_device(obj: Any, device: torch.device) -> Any:
    """`obj` with every tensor moved to `device`: tensors, and tensors inside dataclasses, tuples (named ones
    too), lists and dicts (recursively). Anything else is returned as is. A tensor already on `device` is
    returned itself (no copy), so on the CPU a CPU batch comes back unchanged."""
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
