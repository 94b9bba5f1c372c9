"""k-shot evaluation of a local causal language model on small classification tasks.

Tasks and conditions live in `icl.task`, prompts as token ids in `icl.prompts`, scoring in
`icl.scoring`; this module evaluates (accuracy and calibrated accuracy per shots x condition, over seeds)
and writes the results table. Each label is scored by the summed log-probability of its verbalizer tokens
given the prompt (exactly the ids of the prompt text); the prediction is the argmax. Calibrated accuracy
follows contextual calibration (Zhao et al. 2021): subtract the label log-probs of the content-free query
"N/A" under the same demonstrations.

Example:
    >>> res = run_icl_eval("models/gpt2", "sentiment", shots=[0, 4], conditions=["gold", "flipped"],
    ...                    seeds=[0, 1, 2], out_dir="runs/icl-eval")
    >>> res["rows"][0]["accuracy"]
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import ConfigError
from ..models.hf import ModelLoadError, load_hf_model
from ..runs.atomic import write_json_atomic, write_text_atomic
from .prompts import BOS_MODES, Encoded, EncodedPrompts, demo_text, encode_task, lead_ids, prompt_texts
from .scoring import score_prompts
from .task import (
    CONDITIONS,
    CONTENT_FREE,
    ICLTask,
    TaskError,
    builtin_tasks,
    condition_labels,
    load_task,
    split_examples,
    task_texts,
)

__all__ = ["BOS_MODES", "CONDITIONS", "CONTENT_FREE", "CSV_COLUMNS", "EncodedPrompts", "ICLTask", "ModelLoadError",
           "Scores", "TaskError", "as_list", "builtin_tasks", "condition_labels", "demo_text", "encode_task",
           "evaluate", "lead_ids", "load_task", "prompt_texts", "results_csv", "run_icl_eval", "score_all",
           "score_prompts", "split_examples", "summarize", "task_texts"]


# ----------------------------------------------------------------------------- evaluation


def _interval(correct: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """90% percentile bootstrap of the mean accuracy over seeds; correct (S, Q) resampled per seed over queries."""
    S, Q = correct.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, Q, size=(n_boot, S, Q))
    means = np.take_along_axis(np.broadcast_to(correct, (n_boot, S, Q)), idx, axis=2).mean(axis=(1, 2))
    lo, hi = np.quantile(means, [0.05, 0.95])
    return float(lo), float(hi)


Scores = dict[tuple[int, int, str], tuple[torch.Tensor, list[int]]]  # (seed, k, cond) -> (label log-probs, gold)


def score_all(model: torch.nn.Module, encoded: Encoded, *, cached: bool = True, batch_size: int = 32,
              on_scored: Callable[[tuple[int, int, str], torch.Tensor], None] | None = None) -> Scores:
    """Label log-probs (n_queries + 1, n_labels) of every encoded (seed, k, condition); the last row is the
    content-free query. `on_scored(key, logprobs)` is called after each (e.g. to store it, or show progress)."""
    out = {}
    for key, (prompts, gold) in encoded.items():
        lp = score_prompts(model, prompts, cached=cached, batch_size=batch_size)
        out[key] = (lp, gold)
        if on_scored is not None:
            on_scored(key, lp)
    return out


def summarize(task_name: str, labels: Sequence[str], scores: Scores, shots: Sequence[int],
              conditions: Sequence[str], seeds: Sequence[int], *, n_boot: int = 1000) -> dict[str, Any]:
    """Accuracy and calibrated accuracy per (condition, shots), over seeds, with 90% bootstrap intervals.

    Calibrated (contextual calibration, Zhao et al. 2021): argmax of log p(label | x) - log p(label | "N/A").
    """
    rows = []
    for cond in conditions:
        for k in shots:
            acc, cal, correct, correct_cal = [], [], [], []
            for seed in seeds:
                lp, gold = scores[(seed, k, cond)]
                lp_q, lp_cf = lp[:-1], lp[-1]
                y = torch.tensor(gold)
                c = (lp_q.argmax(1) == y).numpy()
                cc = ((lp_q - lp_cf).argmax(1) == y).numpy()
                correct.append(c)
                correct_cal.append(cc)
                acc.append(float(c.mean()))
                cal.append(float(cc.mean()))
            lo, hi = _interval(np.stack(correct).astype(float), n_boot, seed=k)
            clo, chi = _interval(np.stack(correct_cal).astype(float), n_boot, seed=k)
            rows.append({"condition": cond, "shots": k, "accuracy": float(np.mean(acc)), "accuracy_ci90": [lo, hi],
                         "accuracy_min": min(acc), "accuracy_max": max(acc), "accuracy_by_seed": acc,
                         "calibrated_accuracy": float(np.mean(cal)), "calibrated_accuracy_ci90": [clo, chi],
                         "calibrated_accuracy_min": min(cal), "calibrated_accuracy_max": max(cal),
                         "calibrated_accuracy_by_seed": cal, "n_queries": int(len(correct[0]))})
    return {"task": task_name, "labels": list(labels), "chance": 1.0 / len(labels), "shots": list(shots),
            "conditions": list(conditions), "seeds": list(seeds), "rows": rows}


def evaluate(model: torch.nn.Module, tok: Any, task: ICLTask, shots: Sequence[int], conditions: Sequence[str],
             seeds: Sequence[int], n_ctx: int | None, *, cached: bool = True, batch_size: int = 32,
             n_boot: int = 1000, bos: str = "auto") -> dict[str, Any]:
    """Accuracy and calibrated accuracy per (shots, condition), over seeds. Everything is encoded first."""
    encoded = encode_task(task, tok, shots, conditions, seeds, n_ctx, bos=bos)
    scores = score_all(model, encoded, cached=cached, batch_size=batch_size)
    return summarize(task.name, task.labels, scores, shots, conditions, seeds, n_boot=n_boot)


CSV_COLUMNS = ("task", "condition", "shots", "accuracy", "accuracy_ci90_low", "accuracy_ci90_high", "accuracy_min",
               "accuracy_max", "calibrated_accuracy", "calibrated_accuracy_ci90_low", "calibrated_accuracy_ci90_high",
               "n_seeds", "n_queries")


def results_csv(results: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in results["rows"]:
        w.writerow([results["task"], r["condition"], r["shots"], f"{r['accuracy']:.6f}", f"{r['accuracy_ci90'][0]:.6f}",
                    f"{r['accuracy_ci90'][1]:.6f}", f"{r['accuracy_min']:.6f}", f"{r['accuracy_max']:.6f}",
                    f"{r['calibrated_accuracy']:.6f}", f"{r['calibrated_accuracy_ci90'][0]:.6f}",
                    f"{r['calibrated_accuracy_ci90'][1]:.6f}", len(results["seeds"]), r["n_queries"]])
    return buf.getvalue()


def as_list(value: str | Sequence[Any], what: str, cast: type) -> list[Any]:
    """'0,1,2' or [0, 1, 2] -> [0, 1, 2]; a bad item raises ConfigError naming the option."""
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    try:
        return [cast(v) for v in items]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a comma-separated list of {cast.__name__}, got {value!r}") from None


def run_icl_eval(model_path: str | Path, task_path: str | Path, shots: str | Sequence[int] = (0, 1, 2, 4, 8, 16),
                 conditions: str | Sequence[str] = ("gold",), seeds: str | Sequence[int] = (0, 1, 2),
                 out_dir: str | Path = "runs/icl-eval", *, cached: bool = True, batch_size: int = 32,
                 bos: str = "auto", device: str = "auto") -> dict[str, Any]:
    """Evaluate a local causal LM k-shot on a task; write {out_dir}/{task}.json and .csv atomically.

    shots, conditions and seeds take lists or comma-separated strings ("0,1,2,4"). task_path is a
    YAML file or the name of a built-in task (see `builtin_tasks()`). All input is checked (task
    file, model folder, verbalizers, shots, context length) before anything is scored or written;
    problems raise EmergelabError subclasses with one line. Returns the results dict (the JSON
    content) with "json_path" and "csv_path" added.
    """
    shots = sorted(set(as_list(shots, "shots", int)))
    conditions = list(dict.fromkeys(as_list(conditions, "conditions", str)))
    seeds = list(dict.fromkeys(as_list(seeds, "seeds", int)))
    if batch_size < 1:
        raise ConfigError("batch_size must be >= 1")
    if any(k < 0 for k in shots):
        raise ConfigError(f"shots must be >= 0, got {min(shots)}")
    if not shots or not conditions or not seeds:
        raise ConfigError("shots, conditions and seeds must each list at least one value")
    task = load_task(task_path)
    bad = [c for c in conditions if c not in CONDITIONS]
    if bad:
        raise ConfigError(f"Unknown condition '{bad[0]}' (choose from {', '.join(CONDITIONS)})")
    if max(shots) >= len(task.examples):
        raise TaskError(f"Task '{task.name}' has {len(task.examples)} examples: {max(shots)} shots leave no query")
    if bos not in BOS_MODES:
        raise ConfigError(f"bos must be one of {', '.join(BOS_MODES)}, got '{bos}'")
    lm = load_hf_model(model_path, kind="causal", device=resolve_device(device))
    results = evaluate(lm.model, lm.tokenizer, task, shots, conditions, seeds, lm.n_ctx, cached=cached,
                       batch_size=batch_size, bos=bos)
    results = {"model": str(model_path), **results}
    out = Path(out_dir)
    json_path, csv_path = out / f"{task.name}.json", out / f"{task.name}.csv"
    write_json_atomic(json_path, results)
    write_text_atomic(csv_path, results_csv(results))
    return {**results, "json_path": str(json_path), "csv_path": str(csv_path)}
