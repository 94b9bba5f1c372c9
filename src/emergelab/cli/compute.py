"""The commands that compute: `run`, `sweep` and `icl-eval`. Each calls one library function, then prints."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import api
from ..errors import EmergelabError
from .app import ConfigOpt, JsonOpt, NoProgressOpt, SetOpt, StoreOpt, command
from .output import checks, escape, json_stdout, print_json, say, table

ExperimentArg = Annotated[str, typer.Argument(metavar="EXPERIMENT", help="Experiment name (see `emergelab list`).")]


def _run_interrupted(kwargs: dict[str, Any]) -> str:
    if kwargs.get("resume"):
        return f"Resume with: emergelab run --resume {kwargs['resume']}"
    last = api.list_runs(store=kwargs.get("store"))
    return f"Resume with: emergelab run --resume {last[-1].id}" if last else ""


@command(on_interrupt=_run_interrupted)
def run(
    experiment: Annotated[str | None, typer.Argument(
        metavar="EXPERIMENT", help="Experiment name (see `emergelab list`; default: induction).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", metavar="RUN_ID", help="Continue an interrupted run (with its stored config).")] = None,
    store: StoreOpt = None,
    no_progress: NoProgressOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run an experiment (default: induction), or resume one with --resume RUN_ID.

    Prints the run id, its checks and where its summary and report are. With --json: one document with
    run_id, status, run_dir, summary_path, report_path and the summary (its checks included).

    [bold]Examples:[/bold]
      emergelab run induction --set seed=3 --set train.steps=500
      emergelab run digits --config my.yaml --json > result.json
      emergelab run --resume 20261202-035034-induction-dfb5
    """
    with json_stdout(as_json):
        if resume:
            if config is not None or set_:
                raise EmergelabError("--resume continues a run with its stored config; drop --config/--set "
                                     "(or start a new run without --resume)")
            result = api.resume_run(resume, store=store, progress=not no_progress, experiment=experiment)
        else:
            result = api.run_experiment(experiment or "induction", config=config, overrides=set_ or [], store=store,
                                        progress=not no_progress)
    if as_json:
        print_json(_run_document(result))
    else:
        _print_result(result)


def _run_document(result: api.RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "status": result.status, "run_dir": result.run_dir,
            "summary_path": result.run_dir / "summary.json", "report_path": result.report_path,
            "summary": result.summary}


def _print_result(result: api.RunResult) -> None:
    say(f"Run [bold]{result.run_id}[/bold] {result.status}.")
    checks(result.summary)
    say(f"Summary: {escape(str(result.run_dir / 'summary.json'))}")
    say(f"Report:  {escape(str(result.report_path))}")


@command(on_interrupt=lambda _: "Finished points are kept; run the same command again to finish the sweep.")
def sweep(
    experiment: ExperimentArg,
    grid: Annotated[list[str], typer.Option(
        "--grid", "-g", metavar="KEY=V1,V2",
        help="Swept key and its values, e.g. task.pool_size=1,4,16 (repeatable; the product of all is run).")],
    config: ConfigOpt = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", metavar="KEY=VALUE", help="Fixed override for every point (repeatable).")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", metavar="DOTTED.PATH", help="Summary value to tabulate, e.g. 2L.final.repeated_loss "
        "(repeatable; default: the experiment's own).")] = None,
    executor: Annotated[str, typer.Option("--executor", metavar="local|ray", help="Where points run.")] = "local",
    workers: Annotated[int, typer.Option("--workers", "-w", metavar="N", help="Points run at once.")] = 1,
    address: Annotated[str | None, typer.Option(
        "--address", metavar="HOST:PORT", help="Ray cluster (with --executor ray); default: Ray on this machine.")
    ] = None,
    store: StoreOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", metavar="", help="Hide progress lines.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run an experiment over a grid of config values; rerun the same command to finish an interrupted sweep.

    Progress (a line per point: done / running / failed) goes to stderr; the table of points, the sweep id
    and its report to stdout. With --json: one document with sweep_id, grid, metrics, rows (point, run_id,
    status, values), paths, failed points and their errors. Exit code 1 if a point failed.

    [bold]Examples:[/bold]
      emergelab sweep rbf-approx -g n_train=20,50,200 -g centers=grid,kmeans
      emergelab sweep induction --grid seed=0,1,2 --workers 2 --json > s.json
    """
    with json_stdout(as_json):
        res = api.run_sweep(experiment, grid, config=config, overrides=set_ or [], metrics=metric or None,
                            store=store, executor=executor, workers=workers, address=address,
                            progress=not no_progress)
        for m, hint in res.unknown_metrics.items():
            typer.echo(f"Warning: --metric '{m}' is in no summary of this sweep.{hint}", err=True)
    if as_json:
        print_json({"sweep_id": res.sweep_id, "experiment": res.experiment, "grid": res.grid,
                    "metrics": res.metrics, "rows": res.rows, "breakthroughness": res.breakthroughness,
                    "dir": res.dir, "csv_path": res.dir / "sweep.csv", "json_path": res.dir / "sweep.json",
                    "report_path": res.report_path, "failed": res.failed, "errors": res.errors,
                    "unknown_metrics": res.unknown_metrics})
    else:
        rows = []
        for row in res.rows:
            status = row["status"] + (" (reused)" if row["reused"] else "")
            values = ["-" if row["values"].get(m) is None else _short(row["values"][m]) for m in res.metrics]
            rows.append([*(row["point"][k] for k in res.grid), row["run_id"] or "-", status, *values])
        table([*res.grid, "run", "status", *res.metrics], rows)
        say(f"Sweep [bold]{res.sweep_id}[/bold]: {escape(str(res.dir / 'sweep.csv'))}")
        say(f"Report: {escape(str(res.report_path))}")
    if res.failed:
        typer.echo(f"{len(res.failed)} point(s) failed:", err=True)
        for run_id in res.failed:
            typer.echo(f"  {run_id}: {res.errors.get(run_id, '')}", err=True)
        raise typer.Exit(1)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@command("icl-eval")
def icl_eval(
    model: Annotated[str, typer.Option(
        "--model", metavar="MODEL|FOLDER|random",
        help="An alias (smollm2-135m: `emergelab models`), a local Hugging Face causal LM folder (loaded offline), "
             "or 'random' (untrained control).")],
    task: Annotated[str, typer.Option(
        "--task", metavar="FILE|NAME", help="Task YAML file, or a built-in task: sentiment, continent, category.")],
    shots: Annotated[str, typer.Option("--shots", metavar="N,N,...", help="Shot counts.")] = "0,1,2,4,8,16",
    conditions: Annotated[str, typer.Option(
        "--conditions", metavar="NAME,...", help="Demonstration labels: gold, random, flipped, unrelated.")] = "gold",
    seeds: Annotated[str, typer.Option("--seeds", metavar="N,N,...", help="Demonstration seeds.")] = "0,1,2",
    out_dir: Annotated[Path, typer.Option(
        "--out", metavar="FOLDER", help="Folder for TASK.json and TASK.csv (checked before anything runs).")
    ] = Path("runs/icl-eval"),
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", metavar="", help="Score full prompts (slow; for checking).")] = False,
    bos: Annotated[str, typer.Option(
        "--bos", metavar="auto|always|never", help="Start prompts with a BOS token (auto: where the tokenizer "
        "adds one itself)."
    )] = "auto",
    device: Annotated[str, typer.Option(
        "--device", metavar="DEVICE", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps.")] = "auto",
    store: StoreOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """k-shot accuracy of a local causal LM on a classification task, by shots and demonstration labels.

    Recorded as an `icl-eval` run (the same as `emergelab run icl-eval --set model=...`); the table also goes
    to --out as TASK.json and TASK.csv.

    [bold]Examples:[/bold]
      emergelab icl-eval --model ./my-gpt2 --task sentiment --shots 0,1,4,8
      emergelab icl-eval --model random --task continent --out results/
    """
    check_out_dir(out_dir)  # before the imports: a wrong folder is refused at once
    from ..experiments.icl_eval import export_tables
    from ..icl.kshot import as_list

    values = {"model": model, "task": task, "shots": as_list(shots, "shots", int),
              "conditions": as_list(conditions, "conditions", str), "seeds": as_list(seeds, "seeds", int),
              "cached": not no_cache, "bos": bos, "device": device}
    overrides = [f"{k}={json.dumps(v)}" for k, v in values.items()]  # JSON is YAML: paths stay strings
    result = api.run_experiment("icl-eval", overrides=overrides, store=store, progress=not no_progress)
    json_path, csv_path = export_tables(result.summary, out_dir)
    rows = []
    for r in result.summary["rows"]:
        lo, hi = r["accuracy_ci90"]
        rows.append([r["condition"], r["shots"], f"{r['accuracy']:.3f} ({lo:.3f}-{hi:.3f})",
                     f"{r['calibrated_accuracy']:.3f}"])
    table(["condition", "shots", "accuracy (90% CI)", "calibrated"], rows)
    _print_result(result)
    say(f"Results: {escape(str(json_path))}, {escape(str(csv_path))} (chance {result.summary['chance']:.3f})")


def check_out_dir(path: Path) -> None:
    """`path` is a folder we can write in, or one we can create: refused with one line otherwise, before any work.
    Creates nothing (a probe folder is made in the nearest existing ancestor and removed at once)."""
    ancestor = path
    try:
        if path.exists() and not path.is_dir():
            raise EmergelabError(f"--out '{path}' is a file, not a folder")
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise EmergelabError(f"--out '{path}' cannot be created: '{ancestor}' is a file, not a folder")
        with tempfile.TemporaryDirectory(prefix=".emergelab-probe-", dir=ancestor):
            pass
    except OSError as e:
        where = "written to" if ancestor == path else f"created in '{ancestor}'"
        raise EmergelabError(f"--out '{path}' cannot be {where}: {e.strerror}") from None
