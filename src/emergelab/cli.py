"""`emergelab` command line. Commands are thin: parse, call one library function, print.

User errors print ONE line on stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from . import api
from .config import dump_yaml
from .errors import EmergelabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    help="Grow, measure and explain emergent abilities, in-context learning and interpretability.",
)
out = Console()
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from .version import __version__

        print(f"emergelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Grow, measure and explain emergent abilities, in-context learning and interpretability."""

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="SQLite run store (default runs/emergelab.db, or $EMERGELAB_STORE)."),
]


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn EmergelabError into one line on stderr + exit code 2; Ctrl-C into exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EmergelabError as e:
            err.print(f"[red]Error:[/red] {e}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("Interrupted.", highlight=False)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@user_errors
def run(
    experiment: Annotated[str | None, typer.Argument(
        help="Experiment name (see `emergelab list`; default: induction).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: key.sub=value (repeatable).")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue an interrupted run by id.")] = None,
    store: StoreOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Run an experiment (default: induction), or resume one with --resume RUN_ID."""
    if resume:
        if config is not None or set_:
            raise EmergelabError("--resume continues a run with its stored config; drop --config/--set "
                                 "(or start a new run without --resume)")
        try:
            result = api.resume_run(resume, store=store, progress=not no_progress, experiment=experiment)
        except KeyboardInterrupt:
            err.print(f"Interrupted. Resume with: emergelab run --resume {resume}", highlight=False)
            raise typer.Exit(130) from None
    else:
        try:
            result = api.run_experiment(experiment or "induction", config=config, overrides=set_ or [], store=store,
                                        progress=not no_progress)
        except KeyboardInterrupt:
            last = api.list_runs(store=store)
            hint = f" Resume with: emergelab run --resume {last[-1].id}" if last else ""
            err.print(f"Interrupted.{hint}", highlight=False)
            raise typer.Exit(130) from None
    _print_result(result)


def _print_result(result: api.RunResult) -> None:
    out.print(f"Run [bold]{result.run_id}[/bold] {result.status}.", highlight=False)
    checks = result.summary.get("checks", [])
    for c in checks:
        mark = "[green]PASS[/green]" if c["passed"] else "[red]FAIL[/red]"
        out.print(f"  {mark} {c['name']}: {c['detail']}", highlight=False)
    out.print(f"Summary: {result.run_dir / 'summary.json'}", highlight=False)
    out.print(f"Report:  {result.report_path}", highlight=False)


@app.command()
@user_errors
def sweep(
    experiment: Annotated[str, typer.Argument(help="Experiment name (see `emergelab list`).")],
    grid: Annotated[list[str], typer.Option(
        "--grid", "-g", help="Swept key and its values: task.pool_size=1,4,16 (repeatable; product of all).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Fixed override: key.sub=value.")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="Summary value to tabulate, as a dotted path (repeatable).")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local or ray.")] = "local",
    workers: Annotated[int, typer.Option("--workers", "-w", help="Points run at once.")] = 1,
    address: Annotated[str | None, typer.Option(
        "--address", help="Ray cluster address (with --executor ray); default: Ray on this machine.")] = None,
    store: StoreOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Run an experiment over a grid of config values; rerun the same command to finish an interrupted sweep.
    Progress (a line per point: done / running / failed) goes to stderr."""
    try:
        res = api.run_sweep(experiment, grid, config=config, overrides=set_ or [], metrics=metric or None,
                            store=store, executor=executor, workers=workers, address=address,
                            progress=not no_progress)
    except KeyboardInterrupt:
        err.print("Interrupted. Finished points are kept; run the same command again to finish the sweep.",
                  highlight=False)
        raise typer.Exit(130) from None
    table = Table(show_header=True, header_style="bold", box=None)
    for col in [*res.grid, "run", "status", *res.metrics]:
        table.add_column(col, overflow="fold", no_wrap=col == "run")  # ids are what users copy
    for row in res.rows:
        status = row["status"] + (" (reused)" if row["reused"] else "")
        values = ["-" if row["values"].get(m) is None else _short(row["values"][m]) for m in res.metrics]
        table.add_row(*(str(row["point"][k]) for k in res.grid), row["run_id"] or "-", status, *values)
    out.print(table)
    for m, hint in res.unknown_metrics.items():
        err.print(f"Warning: --metric '{m}' is in no summary of this sweep.{hint}", highlight=False, soft_wrap=True)
    out.print(f"Sweep [bold]{res.sweep_id}[/bold]: {res.dir / 'sweep.csv'}", highlight=False)
    out.print(f"Report: {res.report_path}", highlight=False)
    if res.failed:
        err.print(f"{len(res.failed)} point(s) failed:", highlight=False)
        for run_id in res.failed:
            err.print(f"  {run_id}: {res.errors.get(run_id, '')}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command("list")
def list_() -> None:
    """List the experiments with a one-line description each."""
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("experiment")
    table.add_column("what it shows")
    for name, desc in api.list_experiments():
        table.add_row(name, desc)
    out.print(table)


@app.command("config")
@user_errors
def config_(
    experiment: Annotated[str, typer.Argument(help="Experiment name (see `emergelab list`).")] = "induction",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: key.sub=value (repeatable).")] = None,
) -> None:
    """Print an experiment's full config as YAML (defaults, then --config, then --set); runs nothing."""
    print(dump_yaml(api.experiment_config(experiment, config=config, overrides=set_ or [])), end="")


@app.command("list-runs")
@user_errors
def list_runs(
    store: StoreOpt = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
) -> None:
    """List stored runs."""
    runs = api.list_runs(store=store, experiment=experiment)
    if not runs:
        out.print(f"No {experiment} runs yet. Start one with: emergelab run {experiment}" if experiment
                  else "No runs yet. Start one with: emergelab run")
        return
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("run id", no_wrap=True)  # ids are what users copy: never truncate them
    for col in ("experiment", "status", "seed", "started (UTC)"):
        table.add_column(col)

    def short(ts: str | None) -> str:
        return (ts or "")[:16].replace("T", " ")

    for r in runs:
        table.add_row(r.id, r.experiment, r.status, str(r.seed), short(r.started_at))
    out.print(table)


@app.command("list-sweeps")
@user_errors
def list_sweeps(store: StoreOpt = None) -> None:
    """List stored sweeps (re-issue a sweep's command to finish it or to redo its table and report)."""
    sweeps = api.list_sweeps(store=store)
    if not sweeps:
        out.print("No sweeps yet. Start one with: emergelab sweep EXPERIMENT --grid KEY=V1,V2")
        return
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("sweep id", no_wrap=True)
    for col in ("experiment", "grid", "completed", "created (UTC)"):
        table.add_column(col)
    for s in sweeps:
        grid = "; ".join(f"{k}={','.join(map(str, v))}" for k, v in s["grid"].items())
        table.add_row(s["id"], s["experiment"], grid, f"{s['completed']}/{s['points']}",
                      s["created_at"][:16].replace("T", " "))
    out.print(table)


@app.command()
@user_errors
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix or suffix is enough).")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Show one run: provenance, status, summary and artifacts."""
    info = api.show_run(run_id, store=store)
    run = info["run"]
    if as_json:
        print(json.dumps(info["summary"], indent=2))
        return
    out.print(f"[bold]{run.id}[/bold]  {run.experiment}  status={run.status}", highlight=False)
    out.print(f"  seed={run.seed} config_hash={run.config_hash} version={run.version} "
              f"git={run.git_commit or '-'}", highlight=False)
    out.print(f"  started {run.started_at}  ended {run.ended_at or '-'}", highlight=False)
    if run.message:
        out.print(f"  message: {run.message}", highlight=False)
    out.print(f"  {info['n_metrics']} metric series; dir {run.dir}", highlight=False)
    for path, kind in info["artifacts"]:
        out.print(f"  {kind:8s} {run.dir / path}", highlight=False)
    summary = info["summary"] or {}
    for c in summary.get("checks", []):
        mark = "[green]PASS[/green]" if c["passed"] else "[red]FAIL[/red]"
        out.print(f"  {mark} {c['name']}: {c['detail']}", highlight=False)


@app.command()
@user_errors
def report(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    store: StoreOpt = None,
    reanalyze: Annotated[bool, typer.Option(
        "--reanalyze", help="Redo the analysis (summary.json) from the stored run and its checkpoints first.")] = False,
) -> None:
    """Re-render a run's report.html from the store alone (with --reanalyze: redo its analysis first)."""
    path = api.reanalyze_run(run_id, store=store).report_path if reanalyze else api.render_report(run_id, store=store)
    out.print(f"Report: {path}", highlight=False)


@app.command("icl-eval")
@user_errors
def icl_eval(
    model: Annotated[str, typer.Option(
        "--model", help="Local Hugging Face causal LM folder (loaded offline), or 'random' (untrained control).")],
    task: Annotated[str, typer.Option(
        "--task", help="Task YAML file, or a built-in task: sentiment, continent, category.")],
    shots: Annotated[str, typer.Option("--shots", help="Comma-separated shot counts.")] = "0,1,2,4,8,16",
    conditions: Annotated[str, typer.Option(
        "--conditions", help="Comma-separated: gold,random,flipped,unrelated.")] = "gold",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated demonstration seeds.")] = "0,1,2",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for TASK.json and TASK.csv.")] = Path("runs/icl-eval"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Score full prompts (slow; for checking).")] = False,
    bos: Annotated[str, typer.Option(
        "--bos", help="auto: BOS only where the tokenizer adds one itself; always; never.")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto (CUDA, else MPS, else CPU), cpu, cuda, mps.")] = "auto",
    store: StoreOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """k-shot accuracy of a local causal LM on a classification task, by shots and demonstration labels;
    recorded as an `icl-eval` run (same as `emergelab run icl-eval --set model=...`)."""
    from .experiments.icl_eval import export_tables
    from .icl.kshot import as_list

    values = {"model": model, "task": task, "shots": as_list(shots, "shots", int),
              "conditions": as_list(conditions, "conditions", str), "seeds": as_list(seeds, "seeds", int),
              "cached": not no_cache, "bos": bos, "device": device}
    overrides = [f"{k}={json.dumps(v)}" for k, v in values.items()]  # JSON is YAML: paths stay strings
    result = api.run_experiment("icl-eval", overrides=overrides, store=store, progress=not no_progress)
    json_path, csv_path = export_tables(result.summary, out_dir)
    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("condition", "shots", "accuracy (90% CI)", "calibrated"):
        table.add_column(col)
    for r in result.summary["rows"]:
        lo, hi = r["accuracy_ci90"]
        table.add_row(r["condition"], str(r["shots"]), f"{r['accuracy']:.3f} ({lo:.3f}-{hi:.3f})",
                      f"{r['calibrated_accuracy']:.3f}")
    out.print(table)
    _print_result(result)
    out.print(f"Results: {json_path}, {csv_path} (chance {result.summary['chance']:.3f})", highlight=False)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `emergelab list | head`
        sys.stderr.close()


if __name__ == "__main__":
    main()
