"""`emergelab models`: the models available offline (built-in aliases and their state), and `emergelab models
convert NAME`, which converts an installed alias's weights once into the user's cache. Listing imports no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .app import JsonOpt, command
from .output import escape, print_json, say, table

ACTIONS = ("list", "convert")
CacheOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", metavar="DIR",
    help="Where converted models live (default $XDG_CACHE_HOME/emergelab/models, else ~/.cache/emergelab/models).")]


@command("models")
def models(
    action: Annotated[str, typer.Argument(metavar="[ACTION]", help="list (default) or convert.")] = "list",
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="The alias to convert.")] = None,
    cache_dir: CacheOpt = None,
    force: Annotated[bool, typer.Option("--force", metavar="", help="Convert again even if converted.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the models available offline, or convert one into the cache.

    Every --model option takes an alias from this list, a local Hugging Face folder or a run id. A model's state
    is installed, converted (SmolLM2: its GGUF converted once into an ordinary Hugging Face folder, about 10-30 s;
    it is also converted on first use) or missing, with the one command that installs it.

    With --json: a list of {name, state, path, family, kind, n_layers, d_model, n_heads, n_kv_heads, command,
    description, problem}; `convert --json` prints {name, path}.

    [bold]Examples:[/bold]
      emergelab models
      emergelab models convert smollm2-135m
      emergelab models --json
    """
    from ..models import catalog

    if action not in ACTIONS:
        raise ConfigError(f"Unknown action '{action}' (choose from: {', '.join(ACTIONS)}); e.g. emergelab models "
                          f"convert smollm2-135m")
    if action == "convert":
        if name is None:
            raise ConfigError(f"Name the model to convert, e.g. emergelab models convert smollm2-135m "
                              f"(aliases: {', '.join(catalog.ALIASES)})")
        folder = catalog.ensure_converted(name, cache_dir, force=force)
        if as_json:
            print_json({"name": name, "path": str(folder)})
        else:
            say(f"{escape(name)}: {escape(str(folder))}")
        return
    if name is not None:
        raise ConfigError(f"'emergelab models list' takes no name (got '{name}'); to convert one: "
                          f"emergelab models convert {name}")
    statuses = catalog.model_statuses(cache_dir)
    if as_json:
        print_json([s.to_dict() for s in statuses])
        return
    rows = [[s.name, s.state, s.family, s.n_layers, s.d_model, f"{s.n_heads}/{s.n_kv_heads}", s.path or "-",
             s.command or "-"] for s in statuses]
    table(["alias", "state", "family", "layers", "d_model", "heads/kv", "path", "next"], rows,
          prose=["path", "next"])
    for s in statuses:
        if s.problem:
            say(f"[yellow]{escape(s.name)}[/yellow]: {escape(s.problem)}")
