"""`icl-eval`: k-shot accuracy of a local causal language model on a classification task, by number of
demonstrations and by what the demonstrations' labels say (gold, random, flipped, unrelated words).

The model is a local Hugging Face folder, loaded offline (`models.hf`), or `random`: an untrained GPT-2
with a byte-level BPE tokenizer trained on the task's texts, built in the run folder (the chance-level
control; the tiny overrides use it). Every prompt is scored on exactly the ids of its text (`icl.prompts`),
with the demonstrations' shared prefix cached (`icl.scoring`). Everything is checked (task file, model
folder, tokenizer, verbalizers, context length, device) before a run exists.

Store layout:
    results  "task" ({name, labels, n_examples}), "scores/{condition}/k{shots}/seed{seed}" ({logprobs:
             (n_queries + 1, n_labels), the last row the content-free query; gold}), "consistency" (max |cached -
             full-prompt| label log-prob on a spot check), "wall_seconds", "summary"
    metrics  "{condition}/accuracy", "{condition}/calibrated_accuracy" (mean over seeds) at step = shots
    files    results.json, results.csv: the results table (analysis), report.html

Example:
    >>> result = run_experiment("icl-eval", overrides=["model=models/SmolLM2-135M", "shots=[0,4,16]",
    ...                                                 "conditions=[gold,flipped]"])
    >>> result.summary["at_max_shots"]["accuracy"]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..icl import kshot
from ..models.hf import check_model_folder, context_length, load_hf_model, load_tokenizer
from ..models.hf_random import random_causal_lm
from ..report.icl_eval import render_icl_eval_report
from ..runs.atomic import write_json_atomic, write_text_atomic
from ..runs.context import RunContext
from ..runs.names import metric
from ..runs.store import Run, RunStore
from .configs.icl_eval import ICLEvalConfig, budget
from .kit import Checks, FinishedRun, device_of, fits, register

RANDOM = "random"  # the `model` value of the untrained control model
CONSISTENCY_QUERIES = 8  # the spot check scores this many queries both ways
CONSISTENCY_TOL = 1e-4  # cached vs full prompts on one device: float rounding only (1e-6 on a CPU)


def score_key(cond: str, k: int, seed: int) -> str:
    return metric("scores", cond, f"k{k}", f"seed{seed}")


# --- checks before a run exists -----------------------------------------------------------------------
def check(cfg: ICLEvalConfig) -> None:
    """Task file, bootstrap size, shots, model folder, tokenizer, verbalizers and context length: bad input creates
    nothing."""
    if not cfg.model:
        raise ConfigError("model: set a local Hugging Face causal LM folder (--set model=PATH) or model=random")
    task = kshot.load_task(cfg.task)
    fits(cfg, budget(cfg, n_examples=len(task.examples)))
    if max(cfg.shots) >= len(task.examples):
        raise kshot.TaskError(f"Task '{task.name}' has {len(task.examples)} examples: {max(cfg.shots)} shots leave "
                              "no query")
    if cfg.model != RANDOM:  # the random model's tokenizer is trained on the task's texts: it encodes them
        folder = check_model_folder(named_folder(cfg.model))
        tok = load_tokenizer(folder)
        kshot.encode_task(task, tok, cfg.shots, cfg.conditions, cfg.seeds, context_length(folder), bos=cfg.bos)


def named_folder(model: str) -> Path:
    """The folder `model` names: a causal LM alias's (models.catalog; SmolLM2 converted once into the cache, a
    missing package is one line naming its install command) or the path itself."""
    from ..models.catalog import ALIASES, ensure_converted

    if model not in ALIASES:
        return Path(model)
    if ALIASES[model].kind != "causal":
        causal = ", ".join(a for a, m in ALIASES.items() if m.kind == "causal")
        raise ConfigError(f"model={model} is an encoder ({ALIASES[model].family}), not a causal language model; "
                          f"icl-eval scores continuations: use {causal} or a local causal LM folder")
    return ensure_converted(model)


# --- evaluation (the "training" of this experiment) ---------------------------------------------------
def model_folder(cfg: ICLEvalConfig, task: kshot.ICLTask, run_dir: Path) -> Path:
    """The folder to load: the configured one, or the random control model built once in the run folder."""
    if cfg.model != RANDOM:
        return named_folder(cfg.model)
    folder = run_dir / "model"
    if not (folder / "config.json").is_file():
        random_causal_lm(folder, kshot.task_texts(task), seed=cfg.seed)
    return folder


def evaluate(cfg: ICLEvalConfig, ctx: RunContext, resume: bool = False) -> None:
    """Score every (condition, shots, seed) and store its label log-probs; on resume, stored ones are kept."""
    store, t0 = ctx.store, time.perf_counter()
    task = kshot.load_task(cfg.task)
    lm = load_hf_model(model_folder(cfg, task, ctx.dir), device=device_of(cfg))
    encoded = kshot.encode_task(task, lm.tokenizer, cfg.shots, cfg.conditions, cfg.seeds, lm.n_ctx, bos=cfg.bos)
    store.put_result(ctx.id, "task", {"name": task.name, "labels": task.labels, "n_examples": len(task.examples)})
    before = store.get_result(ctx.id, "wall_seconds", 0.0)
    todo = [(cond, k, seed) for cond in cfg.conditions for k in cfg.shots for seed in cfg.seeds]
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} prompts", total=len(todo), loss="-")
        for i, (cond, k, seed) in enumerate(todo):
            if store.get_result(ctx.id, score_key(cond, k, seed)) is None:
                prompts, gold = encoded[(seed, k, cond)]
                lp = kshot.score_prompts(lm.model, prompts, cached=cfg.cached, batch_size=cfg.batch_size)
                store.put_result(ctx.id, score_key(cond, k, seed), {"logprobs": lp.tolist(), "gold": gold})
            ctx.progress.update(bar, completed=i + 1)
    if store.get_result(ctx.id, "consistency") is None:
        store.put_result(ctx.id, "consistency", consistency(lm.model, encoded, cfg))
    store.put_result(ctx.id, "wall_seconds", before + time.perf_counter() - t0)


def consistency(model: torch.nn.Module, encoded: kshot.Encoded, cfg: ICLEvalConfig) -> dict[str, Any]:
    """Cached vs full-prompt scoring of the first queries of the longest prompts: must agree to rounding."""
    seed, k, cond = cfg.seeds[0], max(cfg.shots), cfg.conditions[0]
    prompts, _ = encoded[(seed, k, cond)]
    few = kshot.EncodedPrompts(prompts.prefix, prompts.queries[:CONSISTENCY_QUERIES], prompts.verbalizers)
    a = kshot.score_prompts(model, few, cached=True, batch_size=cfg.batch_size)
    b = kshot.score_prompts(model, few, cached=False, batch_size=cfg.batch_size)
    return {"seed": seed, "shots": k, "condition": cond, "n_queries": len(few.queries),
            "prefix_tokens": len(prompts.prefix), "max_abs_diff": float((a - b).abs().max())}


# --- analysis (store only) ----------------------------------------------------------------------------
def stored_scores(view: FinishedRun) -> kshot.Scores:
    cfg = view.cfg
    out = {}
    for cond in cfg.conditions:
        for k in cfg.shots:
            for seed in cfg.seeds:
                r = view.require(score_key(cond, k, seed))
                out[(seed, k, cond)] = (torch.tensor(r["logprobs"], dtype=torch.float32), r["gold"])
    return out


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = FinishedRun(store, run, ICLEvalConfig)
    cfg, task = view.cfg, view.require("task")
    shots = sorted(cfg.shots)
    res = kshot.summarize(task["name"], task["labels"], stored_scores(view), shots, cfg.conditions, cfg.seeds,
                          n_boot=cfg.n_boot)
    res = {"model": cfg.model, **res}
    write_json_atomic(run.dir / "results.json", res)
    write_text_atomic(run.dir / "results.csv", kshot.results_csv(res))
    store.add_artifact(run.id, "results.json", "table")
    store.add_artifact(run.id, "results.csv", "table")
    by = {(r["condition"], r["shots"]): r for r in res["rows"]}
    for r in res["rows"]:  # the curves, in the store like any experiment's metrics (step = shots)
        store.log_metrics(run.id, r["shots"], {metric(r["condition"], "accuracy"): r["accuracy"],
                                              metric(r["condition"], "calibrated_accuracy"): r["calibrated_accuracy"]})
    first, k_max, k_min = cfg.conditions[0], shots[-1], shots[0]
    top = by[(first, k_max)]
    head = {key: top[key] for key in ("accuracy", "accuracy_ci90", "calibrated_accuracy", "calibrated_accuracy_ci90")}
    summary = {**res, "at_max_shots": {"condition": first, "shots": k_max, **head},
               "gain": top["accuracy"] - by[(first, k_min)]["accuracy"]}
    summary["checks"] = checks(summary, view.require("consistency"))
    return summary


def checks(summary: dict[str, Any], cons: dict[str, Any]) -> list[dict[str, Any]]:
    c = Checks()
    d = cons["max_abs_diff"]
    c.add(f"cached prefix = full prompts (max |Δ log-prob| <= {CONSISTENCY_TOL:.0e})", d <= CONSISTENCY_TOL,
          f"{d:.1e} on {cons['n_queries']} {cons['shots']}-shot prompts ({cons['prefix_tokens']}-token prefix)")
    top, chance = summary["at_max_shots"], summary["chance"]
    lo = top["accuracy_ci90"][0]
    c.add(f"{top['condition']} accuracy at {top['shots']} shots above chance (90% CI low > {chance:.3f})",
          lo > chance, f"{top['accuracy']:.3f} (90% CI {lo:.3f}-{top['accuracy_ci90'][1]:.3f})")
    return c.rows


def export_tables(summary: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """The results table as {out_dir}/{task}.json and .csv (what `emergelab icl-eval --out` writes)."""
    keys = ("model", "task", "labels", "chance", "shots", "conditions", "seeds", "rows")
    res = {k: summary[k] for k in keys}
    out = Path(out_dir)
    json_path, csv_path = out / f"{res['task']}.json", out / f"{res['task']}.csv"
    write_json_atomic(json_path, res)
    write_text_atomic(csv_path, kshot.results_csv(res))
    return json_path, csv_path


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """What the report shows: run, config, summary, checks, the cached-vs-full spot check and the wall time."""
    view = FinishedRun(store, run, ICLEvalConfig)
    return view.report_data(consistency=view.require("consistency"), wall_seconds=view.result("wall_seconds"))


EXPERIMENT = register(
    "icl-eval",
    ICLEvalConfig, evaluate, analyze, report_data=report_data, render=render_icl_eval_report, check=check,
    sweep_metrics=("at_max_shots.accuracy", "at_max_shots.calibrated_accuracy", "gain"),
    tiny=("model=random", "shots=[0,2]", "conditions=[gold,flipped]", "seeds=[0]", "n_boot=100"))
