"""`emergelab inspect`: one text through one model, explained in a self-contained report (an `inspect` run)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import api
from .app import JsonOpt, NoProgressOpt, StoreOpt, command
from .compute import _print_result, _run_document
from .output import escape, json_stdout, print_json, say


@command("inspect")
def inspect_text(
    model: Annotated[str, typer.Option(
        "--model", metavar="MODEL",
        help="An alias (smollm2-135m, minilm), a local Hugging Face folder, or an emergelab run id.")],
    text: Annotated[str, typer.Option("--text", metavar="TEXT", help="The text to inspect (at most the model's "
                                                                     "context length in tokens).")],
    target: Annotated[str | None, typer.Option(
        "--target", metavar="TOKEN", help="The token whose logit is explained, e.g. ' Paris' (default: the model's "
        "prediction).")] = None,
    corrupt: Annotated[str | None, typer.Option(
        "--corrupt", metavar="TEXT", help="A corrupted text of as many tokens: adds activation patching.")] = None,
    device: Annotated[str, typer.Option(
        "--device", metavar="DEVICE", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps.")] = "auto",
    store: StoreOpt = None,
    no_progress: NoProgressOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Explain one text through one model: attention viewer, rollout, logit lens, token attributions, head detectors,
    and activation patching with --corrupt, in one self-contained HTML report.

    Recorded as an `inspect` run (the same as `emergelab run inspect --set model=... --set text=...`). Everything is
    checked before the run exists: a bad model, tokenizer, text length or target creates nothing.

    [bold]Examples:[/bold]
      emergelab inspect --model smollm2-135m --text "The capital of France is"
      emergelab inspect --model ./gpt2 --text "Paris is in" --corrupt "Rome is in"
      emergelab inspect --model minilm --text "A cat sat on the mat."
    """
    with json_stdout(as_json):
        values = {"model": model, "text": text, "target": target or "", "corrupt": corrupt or "", "device": device}
        from ..config import from_dict  # the values go in as they are: no YAML parsing of the text
        from ..experiments.configs.inspect import InspectConfig

        cfg = from_dict(InspectConfig, values)
        result = api.run_config("inspect", cfg, store=store, progress=not no_progress)
    if as_json:
        print_json(_run_document(result))
        return
    _print_result(result)
    s = result.summary
    if s.get("prediction") is not None:
        say(escape(f"Next token: {s['prediction']!r} (p = {s['prediction_prob']:.3f}); target {s['target']!r}"))
