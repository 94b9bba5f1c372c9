"""Will a run fit? Its peak memory and its compute, estimated from config numbers before the run exists, so that
`task.vocab_size=100000000` or `train.steps=1e12` is one line naming the key, with the estimate, instead of a
run that dies of memory or never ends.

    Term                one part of a run's peak memory (bytes) or compute (floating-point operations, steps)
    Budget              a run's memory and compute terms
    transformer_budget  a Transformer trained with AdamW: parameters + gradients + AdamW state, one batch's
                        activations, the attention patterns of a probe batch; ~6 x parameters x tokens per step
    enforce             refuse a budget beyond this device's memory or MAX_DAYS of compute

Every estimate is a lower bound (float32 tensors, no allocator or Python overhead, the fastest rate measured), so
a refused config surely does not fit; one just below a limit may still fail. Torch-free: the caller (kit's
preflight) says which device the run uses and, for a GPU, how much memory it has.

Example:
    >>> need = Budget(memory=[Term("the embeddings", 4e11, ("task.vocab_size",))])
    >>> enforce(cfg, need, device="cpu")   # ConfigError: task.vocab_size=100000000 is invalid: ... needs about ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

GiB = 2**30
MEMORY_FRACTION = 0.8  # of the device's memory; the rest is the OS, Python, torch and what the estimate leaves out
FALLBACK_MEMORY = 16 * GiB  # when this machine's memory cannot be read
MAX_DAYS = 30  # compute limit of one run
# Training a Transformer of 4 layers, d_model 256, d_mlp 1024, 128 tokens x 32 sequences (8.6e10 FLOPs per AdamW
# step) took 2.82 s per step on one thread of this project's 2-core Intel Xeon: 3.06e10 FLOP/s, the best of the
# small Transformers measured (the default induction model: 9.0e9; smaller models are dominated by per-step
# overhead: 3.9 ms for a 1-layer d_model 16 model). The estimate multiplies it by the threads a run uses.
CPU_FLOPS_PER_THREAD = 3e10
CPU_STEP_SECONDS = 1e-3  # the fewest seconds one optimizer step takes on a CPU (measured: 3.9 ms for a tiny model)
GPU_FLOPS = 1e14  # assumed, not measured here (no GPU on this machine): above what an H100 sustains in float32
GPU_STEP_SECONDS = 1e-4  # assumed: a step is a few kernel launches at the least
INT_LIMIT = 2**53  # integers beyond this are no size a run can use (and YAML floats like 1e20 lose digits there)
SEED_LIMIT = 2**31  # seeds get offsets added and go to NumPy / scikit-learn generators that take < 2^32


@dataclass(frozen=True)
class Term:
    """One part of a run's memory (`amount` in bytes) or compute (`amount` in floating-point operations plus
    `steps` optimizer steps, each costing at least the device's per-step time). `keys`: the config keys it grows
    with, named in a refusal. A transient term (one phase's activations) is not held while another phase runs."""

    what: str
    amount: float
    keys: tuple[str, ...]
    steps: float = 0
    transient: bool = False


@dataclass
class Budget:
    memory: list[Term] = field(default_factory=list)
    compute: list[Term] = field(default_factory=list)

    def __add__(self, other: Budget) -> Budget:
        """Two parts held and run at the same time (memory adds up)."""
        return Budget(self.memory + other.memory, self.compute + other.compute)

    @property
    def peak_bytes(self) -> float:
        """Persistent terms plus the largest transient one."""
        held = sum(t.amount for t in self.memory if not t.transient)
        return held + max((t.amount for t in self.memory if t.transient), default=0.0)


def one_after_another(budgets: Iterable[Budget]) -> Budget:
    """Parts run one after another (models trained in turn): memory of the largest, compute of all."""
    budgets = list(budgets)
    largest = max(budgets, key=lambda b: b.peak_bytes, default=Budget())
    return Budget(largest.memory, [t for b in budgets for t in b.compute])


# --- the Transformer (models/transformer.py, models/sequence.py) ----------------------------------------------
def transformer_budget(*, what: str, n_layers: int, d_model: int, n_heads: int, d_mlp: int, seq_len: int,
                       d_vocab: int, batch_size: int, steps: int, keys: Mapping[str, str], tied: bool = False,
                       d_in: int = 0, d_out: int = 0, probe_size: int = 0, probes: float = 0,
                       patterns: bool = True) -> Budget:
    """A Transformer trained for `steps` AdamW steps of `batch_size` sequences of `seq_len` positions, measured
    `probes` times on `probe_size` sequences (with attention patterns if `patterns`).

    `keys` maps roles to the experiment's config keys: layers, d_model, d_mlp, heads, seq, vocab, batch, steps,
    probe (missing roles are left out of the refusal). d_in / d_out: read-in / read-out of vector inputs.
    """
    L, C, H, M, T, V, B = n_layers, d_model, n_heads, d_mlp, seq_len, d_vocab, batch_size
    P = probe_size

    def k(*roles: str) -> tuple[str, ...]:
        return tuple(keys[r] for r in roles if r in keys)

    per_layer = 4 * C * C + 4 * C + (2 * C * M + M + C if M else 0)
    read = (d_in * C + C if d_in else 0) + (C * d_out + d_out if d_out else 0)
    params = V * C + T * C + L * per_layer + (0 if tied else C * V) + read
    matmul = L * per_layer + C * V + read  # weights a token passes through (the unembedding even when tied)
    per_token = 6 * matmul + 12 * L * T * C  # forward + backward, attention scores and values included
    width = L * (16 * C + 3 * M) + 3 * V + 2 * (d_in + d_out)  # float32 values kept per position for backward
    memory = [
        Term(f"{what}'s parameters, gradients and AdamW state", 16 * params, k("vocab", "d_model", "layers", "d_mlp")),
        Term(f"{what}'s causal masks", 4 * L * T * T, k("seq", "layers")),
        Term(f"{what}'s activations of one training batch", 4 * B * T * width,
             k("batch", "seq", "d_model", "vocab", "layers", "d_mlp"), transient=True),
    ]
    compute = [Term(f"{what}'s training", steps * B * T * per_token, k("steps", "batch", "seq", "d_model", "layers",
                                                                         "d_mlp", "vocab"), steps=steps)]
    if P:
        probe_width = L * (8 * C + 2 * M + (2 * H * T if patterns else 0)) + 2 * V
        memory.append(Term(f"{what}'s evaluation batch (outputs" + (" and attention patterns)" if patterns else ")"),
                           4 * P * T * probe_width, k("probe", "seq", "vocab", "d_model", "heads", "layers"),
                           transient=True))
        compute.append(Term(f"{what}'s evaluations", probes * P * T * per_token / 3,
                            k("probe", "steps", "seq", "d_model")))
    return Budget(memory, compute)


# --- limits of this machine --------------------------------------------------------------------------------
def machine_memory() -> tuple[float, str]:
    """(bytes, words) of this machine's memory: MemTotal, or a container's smaller cgroup limit; else 16 GiB."""
    total: float | None = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text.isdigit() and (total is None or int(text) < total):
            return float(text), f"this container's {fmt_bytes(int(text))} memory limit"
    except OSError:
        pass
    if total:
        return float(total), f"this machine's {fmt_bytes(total)} of memory"
    return float(FALLBACK_MEMORY), f"an assumed {fmt_bytes(FALLBACK_MEMORY)} (this machine's memory is unknown)"


def cpu_threads(threads: int) -> int:
    """Threads a run computes on: its `threads` setting, 0 = every core it may use."""
    if threads > 0:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- the check -----------------------------------------------------------------------------------------------
def enforce(cfg: Any, need: Budget, *, device: str = "cpu", device_memory: float | None = None) -> None:
    """ConfigError `key=value is invalid: ...` when `need` exceeds MEMORY_FRACTION of the device's memory or
    MAX_DAYS of compute; `key` is the config key that grew the largest term most beyond its default.
    `device`: 'cpu', 'cuda' or 'mps' (its memory is the machine's); `device_memory`: a GPU's, in bytes."""
    if device == "cuda" and device_memory:
        total, where = float(device_memory), f"this GPU's {fmt_bytes(device_memory)} of memory"
    else:
        total, where = machine_memory()
    limit = MEMORY_FRACTION * total
    peak = need.peak_bytes
    if peak > limit:
        held = [t for t in need.memory if not t.transient]
        held += sorted((t for t in need.memory if t.transient), key=lambda t: -t.amount)[:1]
        top = sorted(held, key=lambda t: -t.amount)
        parts = "; ".join(f"{t.what}: {fmt_bytes(t.amount)}" for t in top[:2] if t.amount >= 0.01 * peak)
        _refuse(cfg, top[0].keys, f"the run needs about {fmt_bytes(peak)} of memory ({parts}); the limit is "
                f"{fmt_bytes(limit)} ({MEMORY_FRACTION:.0%} of {where})")
    if device == "cuda":
        rate, floor, on, how = GPU_FLOPS, GPU_STEP_SECONDS, "a GPU", "an assumed GPU rate, not measured"
    else:
        n = cpu_threads(getattr(cfg, "threads", 0))
        rate, floor, on = CPU_FLOPS_PER_THREAD * n, CPU_STEP_SECONDS, "this machine's CPU"
        how = f"{n} thread{'s' if n > 1 else ''} x {CPU_FLOPS_PER_THREAD:.1e}, the rate measured for a small " \
              "Transformer"
    seconds = [(t.amount / rate + t.steps * floor, t) for t in need.compute]
    total_s = sum(s for s, _ in seconds)
    if total_s > MAX_DAYS * 86400:
        flops = sum(t.amount for t in need.compute)
        worst = max(seconds, key=lambda st: st[0])[1]
        steps = sum(t.steps for t in need.compute)
        if steps * floor > flops / rate:  # small models: the per-step overhead, not the arithmetic, sets the time
            why = f"{steps:.1e} optimizer steps of at least {floor * 1e3:g} ms each, most of them {worst.what}"
        else:
            why = (f"{flops:.1e} floating-point operations, most of them {worst.what}, at {rate:.1e} per second: "
                   f"{how}")
        _refuse(cfg, worst.keys, f"the run would take about {fmt_duration(total_s)} on {on} ({why}); "
                f"the limit is {MAX_DAYS} days")


def check_integers(cfg: Any) -> None:
    """Integers no run can use: any beyond 2^53 (e.g. `--set train.steps=1e30`), seeds from 2^31 on."""
    for key, value in _ints(cfg, ""):
        name = key.rsplit(".", 1)[-1].split("[")[0]
        if "seed" in name and value >= SEED_LIMIT:
            raise ConfigError(f"{key}={value!r} is invalid: seeds must be < 2^31 = {SEED_LIMIT}")
        if abs(value) >= INT_LIMIT:
            raise ConfigError(f"{key}={value!r} is invalid: must be < 2^53 = {INT_LIMIT} (no size or count a run "
                              "can use is larger)")


def _ints(obj: Any, prefix: str) -> Iterable[tuple[str, int]]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _ints(getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _ints(v, f"{prefix}[{i}]")
    elif isinstance(obj, int) and not isinstance(obj, bool):
        yield prefix, obj


def _refuse(cfg: Any, keys: Sequence[str], message: str) -> None:
    key = culprit(cfg, keys)
    raise ConfigError(f"{key}={_value(cfg, key)!r} is invalid: {message}")


def culprit(cfg: Any, keys: Sequence[str]) -> str:
    """Of `keys`, the one set furthest above its default (a list counts by its largest item); else the first."""
    try:
        default = type(cfg)()
    except (TypeError, ConfigError):
        return keys[0]

    def ratio(key: str) -> float:
        value, base = _size(_value(cfg, key)), _size(_value(default, key))
        return value / base if base > 0 else value

    return max(keys, key=lambda k: (ratio(k), -keys.index(k))) if keys else "config"


def _value(cfg: Any, dotted: str) -> Any:
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def _size(value: Any) -> float:
    if isinstance(value, (list, tuple)):
        return max((_size(v) for v in value), default=0.0)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


# --- words ---------------------------------------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    """1.5e9 -> '1.4 GiB'; 4.5e14 -> '410,000 GiB' (GiB from 1 GiB on, two significant digits)."""
    if n < GiB:
        return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"
    g = n / GiB
    return f"{g:.1f} GiB" if g < 10 else f"{_round2(g):,.0f} GiB"


def fmt_duration(seconds: float) -> str:
    """Two significant digits in the largest fitting unit: '45 minutes', '3.2 days', '9,000 years'."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            v = seconds / size
            return f"{v:.1f} {unit}" if v < 10 else f"{_round2(v):,.0f} {unit}"
    return f"{seconds:.0f} seconds"


def _round2(v: float) -> float:
    """v rounded to two significant digits (9,037 -> 9,000)."""
    if v <= 0 or not math.isfinite(v):
        return v
    return round(v, 1 - int(math.floor(math.log10(v))))
