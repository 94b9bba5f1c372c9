"""The kit every experiment is built from, so an experiment module holds only its config, how it builds
task and model, its train call, its analysis and its checks.

    probe_seed/eval_seed   one seed-offset convention: probe and eval data never coincide with training
    ProbeCallback      streams named metrics measured on a fixed probe batch to the store, every log step
    train_timed        one model's training with a progress bar, its wall time, a 'trained' marker and, on
                       resume, the step it continued from (in the run's provenance)
    final_checkpoint   the model of a finished training, loaded from its last checkpoint (a corrupt one is one
                       line naming the file and the resume that trains it again)
    Checks             the builder of a run's target checks (rows the reports render)  } in experiments/finished.py,
    FinishedRun        a typed view of a finished run for analysis and reports } re-exported here
    fits               refuses a config whose run cannot fit in memory or time on its device (experiments/budget.py)
    register           registers an `Experiment`: its report is `render(report_data(store, run))`; before a run
                       exists the device a config asks for is checked, and the run's size (`fits`)

Example (the skeleton of an experiment module):
    >>> @dataclass
    ... class MyConfig(RunSettings):  # in experiments/configs/my_exp.py, declared in experiments/__init__.py
    ...     train: TrainConfig = field(default_factory=TrainConfig)
    >>> def train_model(cfg, ctx, resume):
    ...     probe = task.sample(256, generator(probe_seed(cfg.seed)))
    ...     train_timed(ctx, model, loss_fn, batch_fn, cfg.train, seed=cfg.seed, resume=resume,
    ...                 device=cfg.device, callbacks=[ProbeCallback(ctx, lambda s: measure(s.model, probe))])
    >>> def analyze(store, run):
    ...     view = FinishedRun(store, run, MyConfig)
    ...     model = final_checkpoint(run, make_model(view.cfg), view.cfg.train.steps)
    ...     checks = Checks(); checks.add("loss < 1", loss < 1, f"{loss:.3f}")
    ...     return {"loss": loss, "checks": checks.rows}
    >>> def report_data(store, run):
    ...     return FinishedRun(store, run, MyConfig).report_data()  # + what the report shows beyond the summary
    >>> register("my-exp", MyConfig, train_model, analyze, report_data=report_data,
    ...          render=render_my_report, sweep_metrics=("loss",), tiny=("train.steps=20",))
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..devices import resolve_device
from ..errors import StoreError
from ..registry import experiments
from ..runs.context import RunContext
from ..runs.names import metric
from ..runs.store import Run, RunStore
from ..tensorfile import CorruptFileError
from ..train.checkpoint import checkpoint_path, checkpoint_problem, list_checkpoints, load_model
from ..train.loop import Callback, TrainConfig, TrainState, train
from . import budget
from .base import Experiment
from .finished import Checks, FinishedRun  # noqa: F401  (the kit's analysis half)

PROBE_SEED_OFFSET = 1_000_003  # probe data (telemetry over training) never coincide with a training batch
EVAL_SEED_OFFSET = 2_000_003  # nor do the fresh batches of the final evaluation


def probe_seed(seed: int, k: int = 0) -> int:
    """Seed of the k-th fixed probe batch of a run with seed `seed`."""
    return seed + PROBE_SEED_OFFSET + k


def eval_seed(seed: int, k: int = 0) -> int:
    """Seed of the k-th fresh evaluation batch of a run with seed `seed`."""
    return seed + EVAL_SEED_OFFSET + k


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`: data are drawn on the CPU, so numbers never depend on the device."""
    return torch.Generator().manual_seed(seed)


def device_of(cfg: Any) -> torch.device:
    """The torch device a config asks for (`device` key; CPU for configs without one)."""
    return resolve_device(getattr(cfg, "device", "cpu"))


def fits(cfg: Any, need: budget.Budget) -> None:
    """ConfigError naming the key, with the estimate, when a run of `cfg` needing `need` cannot fit in its device's
    memory or in budget.MAX_DAYS of compute (see experiments/budget.py)."""
    dev = device_of(cfg)
    memory = torch.cuda.get_device_properties(dev).total_memory if dev.type == "cuda" else None
    budget.enforce(cfg, need, device=dev.type, device_memory=memory)


# --- training ---------------------------------------------------------------------------------------
class ProbeCallback(Callback):
    """Streams `measure(state) -> {name: value}` to the store at every log step (and step 0), under `prefix`,
    plus `train/loss` (mean over the log window) and `train/lr` after step 0.

    On (re)start, metrics logged after the checkpoint being resumed from are deleted: they are logged
    again, identically. `step_of` maps optimizer steps to the logged step (e.g. epochs).
    """

    def __init__(self, ctx: RunContext, measure: Callable[[TrainState], dict[str, float]], prefix: str = "",
                 step_of: Callable[[int], int] | None = None, train_metrics: bool = True):
        self.ctx, self.measure, self.prefix = ctx, measure, metric(prefix) + "/" if metric(prefix) else ""
        self.step_of = step_of or (lambda step: step)
        self.train_metrics = train_metrics

    def on_train_start(self, state: TrainState) -> None:
        self.ctx.store.delete_metrics_after(self.ctx.id, self.step_of(state.step), prefix=self.prefix)

    def on_log(self, state: TrainState) -> None:
        values = dict(self.measure(state))
        if self.train_metrics and state.step > 0:
            values["train/loss"] = state.window_loss
            values["train/lr"] = state.lr
        self.ctx.log(self.step_of(state.step), values, prefix=self.prefix)


class _NoteResume(Callback):
    """Records in the run's provenance the step a resumed training continued from (`RunContext.note_resumed_from`:
    the first training of a resume that does not start at step 0 counts)."""

    def __init__(self, ctx: RunContext, label: str = ""):
        self.ctx, self.label = ctx, label

    def on_train_start(self, state: TrainState) -> None:
        self.ctx.note_resumed_from(state.resumed_from, self.label)


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train_timed(ctx: RunContext, model: torch.nn.Module, loss_fn: Callable[[Any, Any], torch.Tensor],
                batch_fn: Callable[[int, torch.Generator], Any], cfg: TrainConfig, *, seed: int, resume: bool,
                label: str = "", description: str | None = None, callbacks: Sequence[Callback] = (),
                device: str | torch.device = "cpu") -> bool:
    """Train one model of a run through `train()`, unless results say it was trained already.

    Checkpoints go to `<run dir>/checkpoints[/label]`; the wall time accumulates (over resumes) in results
    `wall_seconds[/label]`; results `trained[/label]` marks it done. Shows a progress bar with the loss.
    A resume records the step it continued from in the run (`Run.resumes`). A model marked trained whose final
    checkpoint is corrupt or gone is trained again from its newest intact checkpoint (exact: the same weights
    as before), with a warning on stderr. Returns True if it trained, False if it was already trained.
    """
    store, done_key, wall_key = ctx.store, metric("trained", label), metric("wall_seconds", label)
    folder = ctx.dir / "checkpoints" / label
    if store.get_result(ctx.id, done_key):
        final = checkpoint_path(folder, cfg.steps)
        problem = checkpoint_problem(final)
        if problem is None:
            return False
        if problem == "missing":  # a corrupt one is named by the loop's own warning when it moves it aside
            of = f" of {label}" if label else ""
            _warn(f"Warning: the final checkpoint{of} ({final.name}) is missing; training it again from its newest "
                  f"intact checkpoint.")
        resume = True
    dev = resolve_device(device)  # a config value or a torch.device
    t0 = time.perf_counter()
    before = store.get_result(ctx.id, wall_key, 0.0)
    with ctx.progress:
        bar = ctx.progress.add_task(description or " ".join(p for p in (ctx.id, label) if p), total=cfg.steps,
                                    loss="-")

        def show(state: TrainState) -> None:
            ctx.progress.update(bar, completed=state.step, loss=f"{state.loss:.3f}")

        try:
            train(model, loss_fn, batch_fn, cfg, seed=seed, checkpoint_dir=folder, resume=resume,
                  callbacks=[_NoteResume(ctx, label), *callbacks], progress=show,
                  label=label or ctx.run.experiment, device=dev)
        finally:
            store.put_result(ctx.id, wall_key, before + time.perf_counter() - t0)
    store.put_result(ctx.id, done_key, True)
    return True


def final_checkpoint(run: Run, model: torch.nn.Module, steps: int, label: str = "",
                     device: str | torch.device = "cpu") -> torch.nn.Module:
    """`model` (freshly built, any init) with the weights of the final checkpoint of `<run dir>/checkpoints
    [/label]`, in eval mode on `device`. A missing or unfinished training is a StoreError saying what to do; a
    corrupt final checkpoint a CorruptFileError naming the file and the resume that trains that model again from
    its newest intact checkpoint (see `train_timed`)."""
    found = list_checkpoints(run.dir / "checkpoints" / label)
    if not found or found[-1][0] != steps:
        what = f" for {label}" if label else ""
        if run.status == "completed":
            raise StoreError(f"Run {run.id} has no final checkpoint{what} (its checkpoints were deleted); "
                             f"run the experiment again to recompute its analysis")
        raise StoreError(f"Run {run.id} has no final checkpoint{what}; resume it first "
                         f"(emergelab run --resume {run.id})")
    dev = resolve_device(device)  # a config value or a torch.device
    path = found[-1][1]
    try:
        return load_model(path, model, device=dev).eval()
    except CorruptFileError as e:
        raise CorruptFileError(
            f"Final checkpoint '{path}' of run {run.id} is corrupt ({e.reason}); train that model again from its "
            f"newest intact checkpoint with: emergelab run --resume {run.id}", reason=e.reason) from None


# --- analysis and reports: Checks and FinishedRun live in experiments/finished.py (re-exported here)


@dataclass(frozen=True)
class DeclaredExperiment(Experiment):
    """An `Experiment` that also declares what its summary holds: `summary_paths(cfg)` are dotted path patterns
    ('*' is any one key or list index), so `emergelab sweep --metric` is checked before anything runs (the
    experiment contract tests compare them with a real tiny run's summary)."""

    summary_paths: Callable[[Any], Sequence[str]] | None = None


def register(name: str, config_cls: type, train: Callable, analyze: Callable, *,
             report_data: Callable[[RunStore, Run], dict[str, Any]], render: Callable[[dict[str, Any]], str],
             check: Callable[[Any], None] | None = None, sweep_metrics: Sequence[str] = (),
             tiny: Sequence[str] = (), summary_paths: Callable[[Any], Sequence[str]] | None = None) -> Experiment:
    """Register the implementation of experiment `name`, declared (with its description and config class) in
    `emergelab.experiments`. Its report is `render(report_data(store, run))`: `report_data` reads what
    the report shows from the store (usually `FinishedRun.report_data(...)`), `render` is the report module's
    page function, which only formats. Before a run exists the runner calls the preflight: the device the
    config asks for is checked first (a 'cuda' run on a machine without CUDA creates nothing), then integers no
    run can use (budget.check_integers), then, if the config class has a `budget()` method, the run's memory and
    time (`fits`), then `check(cfg)` (which may add budgets that need the data, through `fits`).
    `tiny` are overrides that make the experiment run in seconds (the experiment contract tests use them).
    `summary_paths(cfg)`: the dotted path patterns of the summary of a run of `cfg` (see `DeclaredExperiment`)."""

    def preflight(cfg: Any) -> None:
        device_of(cfg)
        budget.check_integers(cfg)
        if callable(getattr(cfg, "budget", None)):
            fits(cfg, cfg.budget())
        if check is not None:
            check(cfg)

    def report(store: RunStore, run: Run) -> str:
        return render(report_data(store, run))

    declared = experiments.entry(name).info.get("config_cls")
    if declared is not config_cls:
        raise RuntimeError(f"experiment '{name}' is declared with config {declared}, registered with {config_cls}")
    exp = DeclaredExperiment(name, config_cls, train, analyze, report, check=preflight,
                             sweep_metrics=tuple(sweep_metrics), tiny=tuple(tiny), summary_paths=summary_paths)
    return experiments.register(name)(exp)
