"""Learning-rate schedules, as pure functions of the update number.

    constant    linear warmup over `warmup_steps`, then `lr`
    cosine      linear warmup, then cosine decay to `min_lr_ratio` x lr at `total_steps`
    one_cycle   torch's `OneCycleLR` (anneal_strategy="cos"): cosine rise from `min_lr_ratio` x lr (torch's
                max_lr / div_factor; 0.04 = its default div_factor 25) to `lr` over `warmup_steps` (torch's
                pct_start x total_steps), then cosine fall to that start / 1e4 (its final_div_factor) at the
                last update. Momentum is not cycled.

Example:
    >>> lr_at(0, lr=1.0, warmup_steps=10, total_steps=100, schedule="one_cycle", min_lr_ratio=0.04)
    0.04
    >>> lr_at(9, lr=1.0, warmup_steps=10, total_steps=100, schedule="one_cycle", min_lr_ratio=0.04)
    1.0
"""

from __future__ import annotations

import math

ONE_CYCLE_FINAL_DIV = 1e4  # torch's OneCycleLR final_div_factor: the last update runs at start lr / 1e4


def _cosine(start: float, end: float, progress: float) -> float:
    """From `start` at progress 0 to `end` at progress 1 along half a cosine."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def one_cycle_lr(step: int, *, lr: float, warmup_steps: int, total_steps: int, start_ratio: float) -> float:
    """OneCycleLR's learning rate for update `step` (0-based): the peak `lr` is reached at update
    `warmup_steps - 1` (as torch's phase boundary pct_start * total_steps - 1), the floor at `total_steps - 1`."""
    start = lr * start_ratio
    peak_at = max(warmup_steps - 1, 0)
    if step < peak_at:
        return _cosine(start, lr, step / peak_at)
    return _cosine(lr, start / ONE_CYCLE_FINAL_DIV, (step - peak_at) / max(1, total_steps - 1 - peak_at))


def lr_at(step: int, *, lr: float, warmup_steps: int, total_steps: int, schedule: str,
          min_lr_ratio: float = 0.1) -> float:
    """Learning rate for update number `step` (0-based)."""
    if schedule == "one_cycle":
        return one_cycle_lr(step, lr=lr, warmup_steps=warmup_steps, total_steps=total_steps, start_ratio=min_lr_ratio)
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * cosine)  # kept as written: runs' numbers depend on its bits
