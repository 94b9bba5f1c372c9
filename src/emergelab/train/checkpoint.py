"""Checkpoints in safetensors: model + optimizer state + RNG state + step, written atomically.

Layout of one file: tensors `model.<param>`, `optim.<param index>.<state key>`, `rng.torch` (the CPU
generator) and, for a run on a GPU, `rng.cuda` or `rng.mps` (that device's generator, which dropout on the
GPU draws from); metadata `step`, `param_groups` (JSON, without the params lists) and `extra` (JSON).
Tensors are always written from the CPU, so a checkpoint saved on one device loads on any other
(map_location semantics: `load_checkpoint(path, device=...)`, `load_model(path, model, device=...)`).
Never unpickles anything. Each file carries a checksum of its tensors (tensorfile), so a corrupt checkpoint
is a `CorruptFileError` on load, never silently wrong weights; `latest_intact_checkpoint` is what a resume
loads: the newest checkpoint that reads back whole, with the corrupt newer ones moved aside;
`checkpoint_problem` / `corrupt_newest_checkpoints` tell, without moving anything, whether a finished
training's final checkpoint still loads (a resume trains it again from the newest intact one if not).

Example:
    >>> save_checkpoint(checkpoint_path("ckpt", 100), model, optimizer, step=100)
    >>> ckpt = load_checkpoint("ckpt/step_00000100.safetensors")           # CPU tensors
    >>> load_model("model.safetensors", Transformer(cfg), device="auto")    # weights on CUDA / MPS / CPU
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device
from ..errors import StoreError
from ..tensorfile import CorruptFileError, read_safetensors, write_safetensors

CKPT_RE = re.compile(r"^step_(\d{8})\.safetensors$")


@dataclass
class Checkpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    rng: torch.Tensor | None = None  # CPU generator state
    device_rng: dict[str, torch.Tensor] = field(default_factory=dict)  # "cuda" / "mps" -> generator state
    extra: dict[str, Any] = field(default_factory=dict)


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    # A copy, never a view: tied weights share memory, which safetensors refuses to write.
    return t.detach().to("cpu", copy=True).contiguous()


def device_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """{"cuda": state} or {"mps": state} for a run on that device; {} on the CPU."""
    if device.type == "cuda":
        return {"cuda": torch.cuda.get_rng_state(device)}
    if device.type == "mps":
        return {"mps": torch.mps.get_rng_state()}
    return {}


def set_device_rng_state(device: torch.device, states: dict[str, torch.Tensor]) -> None:
    """Restore `device`'s generator when the checkpoint holds one of its type (a run resumed on another kind
    of device restores only the CPU generator)."""
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)
    elif device.type == "mps" and "mps" in states:
        torch.mps.set_rng_state(states["mps"])


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    extra: dict[str, Any] | None = None,
    device_rng: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint with CPU tensors, whatever device the model is on. `device_rng`: the
    `device_rng_state(device)` of a run on a GPU, saved beside the CPU generator's state."""
    tensors = {f"model.{k}": _cpu_copy(v) for k, v in model.state_dict().items()}
    meta = {"step": str(step), "extra": json.dumps(extra or {})}
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx, state in sd["state"].items():
            for key, val in state.items():
                t = val if torch.is_tensor(val) else torch.tensor(val)
                tensors[f"optim.{idx}.{key}"] = _cpu_copy(t)
        meta["param_groups"] = json.dumps(sd["param_groups"])
    tensors["rng.torch"] = torch.get_rng_state()
    for kind, state in (device_rng or {}).items():
        tensors[f"rng.{kind}"] = _cpu_copy(state)
    return write_safetensors(path, tensors, meta)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """The checkpoint at `path`, model and optimizer tensors on `device` (a torch.device or a config value such
    as 'auto'); RNG states stay on the CPU, where torch's set_rng_state wants them."""
    tensors, meta = read_safetensors(path, device=resolve_device(device))
    try:
        rng = {k[4:]: v.cpu() for k, v in tensors.items() if k.startswith("rng.")}
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
            rng=rng.pop("torch", None),
            device_rng=rng,
            extra=json.loads(meta.get("extra", "{}")),
        )
    except ValueError as e:  # a parseable file whose metadata or tensor names are not a checkpoint's
        raise CorruptFileError(f"Checkpoint '{path}' is corrupt: {e}", reason=str(e)) from None


def save_model(path: str | Path, model: torch.nn.Module, extra: dict[str, Any] | None = None) -> Path:
    """Weights only (safetensors, CPU tensors)."""
    return save_checkpoint(path, model, None, step=0, extra=extra)


def load_model(path: str | Path, model: torch.nn.Module, device: torch.device | str | None = None
               ) -> torch.nn.Module:
    """Load weights saved on any device into `model` (in place) and return it. With `device` (a torch.device
    or a config value such as 'auto' / 'cuda:1') the model is moved there first; without it, the weights go
    wherever the model's parameters already are."""
    if device is not None:
        model.to(resolve_device(device))
    ckpt = load_checkpoint(path)  # load_state_dict copies the CPU tensors onto the parameters' device
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


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the checkpoint at `path` cannot be used ('missing', or what is corrupt), None if it loads whole: e.g.
    to check a finished training's final checkpoint before skipping that training on resume."""
    try:
        load_checkpoint(path)
    except CorruptFileError as e:
        return e.reason
    except StoreError:
        return "missing"
    return None


def corrupt_newest_checkpoints(root: str | Path) -> list[tuple[Path, str]]:
    """(path, reason) of the newest checkpoint of each checkpoint folder under `root` (`root` included) that
    does not load whole. For a completed run these are final checkpoints: its analysis cannot read them, and a
    resume trains those models again from their newest intact checkpoint (`latest_intact_checkpoint`).

    Example:
        >>> corrupt_newest_checkpoints(run.dir / "checkpoints")
        [(PosixPath('.../checkpoints/1L/step_00000240.safetensors'), 'its tensor data do not match ...')]
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        ckpts = list_checkpoints(folder)
        if ckpts and (problem := checkpoint_problem(ckpts[-1][1])) is not None:
            found.append((ckpts[-1][1], problem))
    return found


@dataclass
class Skipped:
    """A checkpoint a resume could not use: where it was, why, and where it was moved (None: left in place)."""

    path: Path
    reason: str
    moved_to: Path | None


def latest_intact_checkpoint(folder: str | Path, device: torch.device | str = "cpu", quarantine: bool = True
                             ) -> tuple[Checkpoint | None, list[Skipped]]:
    """The newest checkpoint in `folder` that loads whole (None if there is none), and the newer ones that were
    corrupt, newest first. With `quarantine`, each corrupt file is renamed to `<name>.corrupt`, so that neither
    this resume nor a later one, nor checkpoint pruning, takes it for a good checkpoint."""
    skipped: list[Skipped] = []
    for _, path in reversed(list_checkpoints(folder)):
        try:
            return load_checkpoint(path, device=device), skipped
        except CorruptFileError as e:
            moved = None
            if quarantine:
                moved = path.with_name(path.name + ".corrupt")
                try:
                    os.replace(path, moved)
                except OSError:
                    moved = None
            skipped.append(Skipped(path, e.reason, moved))
    return None, skipped


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    for _, path in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)
