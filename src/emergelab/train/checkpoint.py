"""Checkpoints in safetensors: model + optimizer state + RNG state + step, written atomically.

Layout of one file: tensors `model.<param>`, `optim.<param index>.<state key>`, `rng.torch`;
metadata `step`, `param_groups` (JSON, without the params lists) and `extra` (JSON).
Never unpickles anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..errors import StoreError
from ..runs.atomic import write_atomic

CKPT_RE = re.compile(r"^step_(\d{8})\.safetensors$")


@dataclass
class Checkpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    rng: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"step": str(step), "extra": json.dumps(extra or {})}
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx, state in sd["state"].items():
            for key, val in state.items():
                t = val if torch.is_tensor(val) else torch.tensor(val)
                tensors[f"optim.{idx}.{key}"] = t.detach().contiguous().clone()
        meta["param_groups"] = json.dumps(sd["param_groups"])
    tensors["rng.torch"] = torch.get_rng_state()
    return write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_safetensors(path: str | Path, what: str = "Checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; a missing or corrupt file raises one clear StoreError."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{what} '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise StoreError(f"{what} '{path}' is corrupt or not a safetensors file ({e})") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    tensors, meta = read_safetensors(path)
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer = None
    if "param_groups" in meta:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                state.setdefault(int(idx), {})[key] = v
        optimizer = {"state": state, "param_groups": json.loads(meta["param_groups"])}
    return Checkpoint(
        step=int(meta.get("step", 0)),
        model=model,
        optimizer=optimizer,
        rng=tensors.get("rng.torch"),
        extra=json.loads(meta.get("extra", "{}")),
    )


def save_model(path: str | Path, model: torch.nn.Module, extra: dict[str, Any] | None = None) -> Path:
    """Weights only (safetensors)."""
    return save_checkpoint(path, model, None, step=0, extra=extra)


def load_model(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    ckpt = load_checkpoint(path)
    try:
        model.load_state_dict(ckpt.model)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise StoreError(f"Checkpoint '{path}' does not fit this model: {first}") from None
    return model


def checkpoint_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.safetensors"


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CKPT_RE.match(p.name))]
    return sorted(found)


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    for _, path in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)
