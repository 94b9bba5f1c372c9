"""A model-agnostic training loop: AdamW, warmup + cosine/constant schedule, gradient clipping,
explicit seeding, callbacks, safetensors checkpoints, exact resume, any device.

The loop knows nothing about any model or task. It gets:
    batch_fn(step, generator) -> batch       fresh data; the generator is seeded from (seed, step),
                                             so data never depends on how the run got to `step`
    loss_fn(model, batch) -> scalar loss

Resume is exact: a run restarted from its latest checkpoint replays the same batches on the
same weights and optimizer state, so it ends with bitwise-identical metrics on CPU. A corrupt newest
checkpoint (its checksum or format fails) is moved aside with a warning and the newest intact one is used;
with none left, training starts again from step 0, which is just as exact (data depend on seed and step only).

Devices: `device=` ('auto', 'cuda', a torch.device ...; default: where the model is, the CPU for a
model just built) moves the model there and every batch after `batch_fn` made it. `batch_fn`'s
generator stays a CPU generator, so the data (and hence a run's numbers, up to the device's float
arithmetic) depend on the seed, not on the device. Checkpoints hold CPU tensors plus the device's RNG
state, and resume on any device.

Example:
    >>> cfg = TrainConfig(steps=200, lr=1e-3)
    >>> state = train(model, lambda m, b: m.loss(b), lambda s, g: task.sample(64, g), cfg, seed=0)
    >>> state = train(model, loss_fn, batch_fn, cfg, seed=0, device=resolve_device("auto"))  # on a GPU
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device, to_device
from ..errors import TrainingDiverged
from .checkpoint import (
    Skipped,
    checkpoint_path,
    device_rng_state,
    latest_intact_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    set_device_rng_state,
)
from .config import TrainConfig
from .schedule import lr_at


@dataclass
class TrainState:
    """What callbacks see. `step` counts completed optimizer updates."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    cfg: TrainConfig
    step: int = 0
    lr: float = 0.0
    loss: float = float("nan")  # loss of the latest update
    window_loss: float = float("nan")  # mean train loss over the latest log window
    resumed_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_log_step(self) -> bool:
        return self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps


class Callback:
    """Hooks into the loop. All methods are optional."""

    def on_train_start(self, state: TrainState) -> None: ...

    def on_log(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


def _warn_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def corrupt_checkpoint_warning(bad: Skipped, resume_step: int | None, label: str = "") -> str:
    """The line a resume prints for a corrupt checkpoint it skipped."""
    of = f" of {label}" if label else ""
    moved = f"; moved aside to {bad.moved_to.name}" if bad.moved_to else ""
    then = (f"resuming from step {resume_step}" if resume_step is not None else
            "no intact checkpoint is left, so training starts again from step 0 (with the same data: batches "
            "depend only on the seed and the step)")
    return f"Warning: checkpoint {bad.path.name}{of} is corrupt ({bad.reason}){moved}; {then}."


def step_generator(seed: int, step: int) -> torch.Generator:
    """The data generator for update `step`: a pure function of (seed, step)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + 17) % (2**63 - 1))


def _device_of(model: torch.nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases, norms and embeddings-as-gains (1-D params), as in nanoGPT.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas))


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    batch_fn: Callable[[int, torch.Generator], Any],
    cfg: TrainConfig,
    *,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[TrainState], None] | None = None,
    label: str = "",
    device: torch.device | str | None = None,
    warn: Callable[[str], None] | None = None,
) -> TrainState:
    """Train `model` in place for `cfg.steps` updates on `device`; returns the final state.

    `device`: a torch.device or a config value ('auto', 'cpu', 'cuda', 'cuda:N', 'mps'; an unavailable one is
    a ConfigError); None = the device of the model's parameters (the CPU unless the caller moved it). The
    model is moved there (and stays there); batches are moved with `to_device`.
    With `resume=True` and a checkpoint in `checkpoint_dir`, continues from the newest intact one; each corrupt
    newer one is moved aside and named in a line given to `warn` (default: printed on stderr).
    Raises `TrainingDiverged` on a NaN/inf loss (checkpoints written before stay).
    """
    device = resolve_device(device) if device is not None else _device_of(model)
    model.to(device)  # before the optimizer exists: it holds the parameters that live on the device
    optimizer = make_optimizer(model, cfg)
    state = TrainState(model=model, optimizer=optimizer, cfg=cfg)
    if resume and checkpoint_dir is not None:
        ckpt, skipped = latest_intact_checkpoint(checkpoint_dir)
        for bad in skipped:
            (warn or _warn_stderr)(corrupt_checkpoint_warning(bad, ckpt.step if ckpt else None, label))
        if ckpt is not None:
            model.load_state_dict(ckpt.model)
            if ckpt.optimizer is not None:
                optimizer.load_state_dict(ckpt.optimizer)
            if ckpt.rng is not None:
                torch.set_rng_state(ckpt.rng)
            set_device_rng_state(device, ckpt.device_rng)
            state.step = state.resumed_from = ckpt.step
    for cb in callbacks:
        cb.on_train_start(state)
    if state.step == 0:
        model.eval()
        for cb in callbacks:
            cb.on_log(state)

    window: list[float] = []
    model.train()
    while state.step < cfg.steps:
        step = state.step
        state.lr = lr_at(step, lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                         schedule=cfg.schedule, min_lr_ratio=cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = state.lr
        batch = to_device(batch_fn(step, step_generator(seed, step)), device)
        loss = loss_fn(model, batch)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            where = f" ({label})" if label else ""
            raise TrainingDiverged(
                f"Loss became {loss_value} at step {step + 1}{where}; try a lower train.lr or "
                f"train.grad_clip (now lr={cfg.lr}, grad_clip={cfg.grad_clip})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        state.step = step + 1
        state.loss = loss_value
        window.append(loss_value)
        if state.is_log_step:
            state.window_loss = sum(window) / len(window)
            window.clear()
            model.eval()
            for cb in callbacks:
                cb.on_log(state)
            model.train()
        if checkpoint_dir is not None and (state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps):
            save_checkpoint(checkpoint_path(checkpoint_dir, state.step), model, optimizer, state.step,
                            device_rng=device_rng_state(device))
            prune_checkpoints(checkpoint_dir, cfg.keep_checkpoints)
        if progress is not None:
            progress(state)
    model.eval()
    for cb in callbacks:
        cb.on_train_end(state)
    return state
