"""The commands that look: `list`, `config`, `list-runs`, `list-sweeps`, `show` and `report`. They import no
torch (except `report`, which renders figures), so they answer fast."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from .. import api
from ..config import dump_yaml
from .app import ConfigOpt, JsonOpt, SetOpt, StoreOpt, command
from .output import checks, escape, print_json, say, table

RunIdArg = Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id (a unique prefix or suffix is enough).")]


@command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the experiments with a one-line description each.

    With --json: a list of {name, description}.

    [bold]Examples:[/bold]
      emergelab list
      emergelab list --json
    """
    experiments = api.list_experiments()
    if as_json:
        print_json([{"name": name, "description": desc} for name, desc in experiments])
        return
    table(["experiment", "what it shows"], experiments, prose=["what it shows"])


@command("config")
def config_(
    experiment: Annotated[str, typer.Argument(
        metavar="EXPERIMENT", help="Experiment name (see `emergelab list`; default: induction).")] = "induction",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Print an experiment's full config as YAML (defaults, then --config, then --set); runs nothing.

    Each key's meaning and unit is a comment beside it; the output is a valid --config file.

    [bold]Examples:[/bold]
      emergelab config digits
      emergelab config induction --set train.steps=500 > my.yaml
      emergelab run induction --config my.yaml
    """
    cfg = api.experiment_config(experiment, config=config, overrides=set_ or [])
    print(dump_yaml(cfg, comments=True), end="")


@command("list-runs")
def list_runs(
    store: StoreOpt = None,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", "-e", metavar="EXPERIMENT", help="Only the runs of this experiment.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored runs, oldest first.

    With --json: a list of runs with their provenance (id, experiment, status, seed, times, config hash,
    version, git commit, folder, message).

    [bold]Examples:[/bold]
      emergelab list-runs --experiment induction
      emergelab list-runs --json --store elsewhere/e.db
    """
    runs = api.list_runs(store=store, experiment=experiment)
    if as_json:
        print_json([{k: v for k, v in _provenance(r).items() if k != "config"} for r in runs])
        return
    if not runs:
        say(f"No {experiment} runs yet. Start one with: emergelab run {experiment}" if experiment
            else "No runs yet. Start one with: emergelab run")
        return

    def short(ts: str | None) -> str:
        return (ts or "")[:16].replace("T", " ")

    table(["run id", "experiment", "status", "seed", "started (UTC)"],
          [(r.id, r.experiment, r.status, r.seed, short(r.started_at)) for r in runs])


@command("list-sweeps")
def list_sweeps(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List stored sweeps (re-issue a sweep's command to finish it or to redo its table and report).

    With --json: a list of {id, experiment, grid, created_at, points, completed}.

    [bold]Examples:[/bold]
      emergelab list-sweeps
      emergelab list-sweeps --json
    """
    sweeps = api.list_sweeps(store=store)
    if as_json:
        print_json(sweeps)
        return
    if not sweeps:
        say("No sweeps yet. Start one with: emergelab sweep EXPERIMENT --grid KEY=V1,V2")
        return
    rows = []
    for s in sweeps:
        grid = "; ".join(f"{k}={','.join(map(str, v))}" for k, v in s["grid"].items())
        rows.append((s["id"], s["experiment"], grid, f"{s['completed']}/{s['points']}",
                     s["created_at"][:16].replace("T", " ")))
    table(["sweep id", "experiment", "grid", "completed", "created (UTC)"], rows)


@command()
def show(run_id: RunIdArg, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Show one run: provenance, status, owning process, resumes, checks and artifacts.

    A running or interrupted run names the process that owns it (pid@host, since when); a resumed run lists
    each resume (when, and the step it continued from).
    With --json: one document {run: provenance and config (with owner: {pid, host, started} and resumes:
    [{at, from_step, label}]), summary, artifacts: [{path, kind}], n_metrics}; the summary alone is
    `emergelab show RUN_ID --json | jq .summary`.

    [bold]Examples:[/bold]
      emergelab show 20261202-035034-induction-dfb5
      emergelab show dfb5 --json
    """
    info = api.show_run(run_id, store=store)
    run = info["run"]
    if as_json:
        print_json({"run": {**_provenance(run), "owner": run.owner()}, "summary": info["summary"],
                    "artifacts": [{"path": path, "kind": kind} for path, kind in info["artifacts"]],
                    "n_metrics": info["n_metrics"]})
        return
    say(f"[bold]{run.id}[/bold]  {run.experiment}  status={run.status}")
    say(f"  seed={run.seed} config_hash={run.config_hash} version={run.version} git={run.git_commit or '-'}")
    say(f"  started {run.started_at}  ended {run.ended_at or '-'}")
    owner = run.owner()
    if owner and run.status in ("running", "interrupted"):
        say(f"  process {owner['pid']}@{escape(str(owner['host']))} (started {owner['started']})")
    for r in run.resumes:
        step, label = r.get("from_step"), r.get("label")
        where = "" if step is None else f" from {label} step {step}" if label else f" from step {step}"
        say(f"  resumed at {r.get('at')}{escape(where)}")
    if run.message:
        say(f"  message: {escape(run.message)}")
    say(f"  {info['n_metrics']} metric series; dir {escape(str(run.dir))}")
    for path, kind in info["artifacts"]:
        say(f"  {kind:8s} {escape(str(run.dir / path))}")
    checks(info["summary"])


def _provenance(run: Any) -> dict[str, Any]:
    """Every stored field of a run (id first): what `show --json` and `list-runs --json` print."""
    return dataclasses.asdict(run) if dataclasses.is_dataclass(run) else dict(vars(run))


@command()
def report(
    run_id: RunIdArg,
    store: StoreOpt = None,
    reanalyze: Annotated[bool, typer.Option(
        "--reanalyze", metavar="", help="Redo the analysis (summary.json) from the stored run and its checkpoints "
        "first.")] = False,
) -> None:
    """Re-render a run's report.html from the store alone (with --reanalyze: redo its analysis first).

    Training is never repeated; --reanalyze uses the stored metrics and checkpoints with the installed code.

    [bold]Examples:[/bold]
      emergelab report 20261202-035034-induction-dfb5
      emergelab report dfb5 --reanalyze
    """
    path = api.reanalyze_run(run_id, store=store).report_path if reanalyze else api.render_report(run_id, store=store)
    say(f"Report: {escape(str(path))}")
