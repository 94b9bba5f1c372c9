"""The typer app, the options several commands share, and `command`: how every command is registered (behind
the error boundary of boundary.py)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from .boundary import Interrupted, guarded, print_error


class _OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a missing value, an extra argument) are one line too, exit code 2:
    typer's own handler would print the usage, a hint and a framed box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except TyperException as e:  # click's UsageError, BadParameter, NoSuchOption, ...
            ctx = getattr(e, "ctx", None)
            hint = f"; see: {ctx.command_path} --help" if ctx is not None else ""
            print_error(f"{e.format_message().rstrip('.')}{hint}")  # type: ignore[attr-defined]
            sys.exit(getattr(e, "exit_code", 2))
        except typer.Abort:
            print_error("Aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def command(name: str | None = None, *, on_interrupt: Interrupted | None = None) -> Callable[[Any], Any]:
    """Register a command behind the one error boundary (`on_interrupt`: the hint printed on Ctrl-C)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        app.command(name, help=help_text(fn.__doc__ or ""))(guarded(fn, on_interrupt=on_interrupt))
        return fn

    return deco


def help_text(doc: str) -> str:
    """A docstring as --help shows it: prose paragraphs reflowed to the terminal, indented lines (examples)
    kept line by line. Typer dedents all paragraphs after the first together with the first of them, so an
    examples paragraph keeps its indentation only after a prose paragraph."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    kept = []
    for p in paragraphs:
        lines = p.split("\n")
        if any(line.startswith(" ") for line in lines):
            kept.append("\n".join(lines))
        else:
            kept.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(kept)


def _print_version(value: bool) -> None:
    if value:
        from ..version import __version__

        print(f"emergelab {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, metavar="",
                                          help="Print the version and exit.")] = False,
) -> None:
    """Grow, measure and explain emergent abilities, in-context learning and interpretability.

    Every command has its own --help with examples; user errors are one line and exit code 2.

    [bold]Examples:[/bold]
      emergelab list
      emergelab run induction --set seed=3
      emergelab run --help
    """


# --- options shared by several commands --------------------------------------------------------------------
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", metavar="FILE", help="SQLite run store (default runs/emergelab.db, or $EMERGELAB_STORE).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE", help="YAML config file.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE", help="Override a config key, e.g. train.steps=500 (repeatable).")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", metavar="", help="Print one JSON document on stdout; messages and progress go to stderr.")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", metavar="", help="Hide the progress bar.")]


app.callback(help=help_text(_root.__doc__ or ""))(_root)
