"""What an experiment provides to the runner (`emergelab.api.run_experiment`).

An experiment registers one `Experiment` in `emergelab.registry.experiments`:

    train(cfg, ctx, resume)  trains, streaming telemetry to the store (resumable)
    analyze(store, run)      -> summary dict, computed from the store and checkpoints only
    report(store, run)       -> one self-contained HTML page, from the store only
    check(cfg)               optional: validate inputs beyond the config (e.g. read the data files)
                             BEFORE a run is created, so bad input leaves nothing behind
    sweep_metrics            dotted paths into the summary that `emergelab sweep` tabulates by default
    tiny                     overrides that make it run in seconds (the experiment contract tests use them)

Experiments are built from the kit in `experiments/kit.py` and registered with `kit.register`.

The runner applies the config's `threads` (torch threads; 0 = torch's default) before train and analyze.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import at_least, invalid

if TYPE_CHECKING:  # configs (which derive from RunSettings) stay free of the store and of rich
    from ..runs.context import RunContext
    from ..runs.store import Run, RunStore


@dataclass(frozen=True)
class Experiment:
    name: str
    config_cls: type
    train: Callable[[Any, RunContext, bool], None]
    analyze: Callable[[RunStore, Run], dict[str, Any]]
    report: Callable[[RunStore, Run], str]
    check: Callable[[Any], None] | None = None
    sweep_metrics: tuple[str, ...] = ()
    tiny: tuple[str, ...] = ()


DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class RunSettings:
    """Base of every experiment config: the keys that say how a run runs, not what it computes."""

    seed: int = 0  # model init, training data, probes and evaluation all derive from it
    threads: int = 0  # torch threads; 0 = torch's default (all cores)
    device: str = "auto"  # 'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda', 'cuda:N', 'mps'

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_run_settings(self)


def check_run_settings(cfg: Any) -> None:
    """`seed` >= 0, `threads` >= 0 and a well-formed `device` (availability is checked before a run starts)."""
    at_least(cfg, 0, "seed", "threads")
    device = getattr(cfg, "device", "auto")
    kind, _, index = device.partition(":")
    if kind not in DEVICES or (index and not (kind == "cuda" and index.isdigit())):
        invalid("device", f"must be one of {', '.join(DEVICES)} or cuda:N, got '{device}'")


@dataclass
class TransformerShape:
    """The `model` section of experiments that train one `Transformer`; each experiment sets its own defaults
    through `field(default_factory=lambda: TransformerShape(...))`."""

    n_layers: int = 2  # transformer blocks
    d_model: int = 64  # width of the residual stream (embedding size)
    n_heads: int = 4  # must divide d_model
    d_mlp: int = 0  # 0 = attention-only
    layernorm: bool = False  # pre-LN: LayerNorm before each block's attention and MLP, and before the read-out

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "n_layers", "d_model", "n_heads")
        if self.d_model % self.n_heads:
            invalid("n_heads", f"must divide d_model ({self.d_model})")
        at_least(self, 0, "d_mlp")
