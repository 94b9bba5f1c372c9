"""k-shot evaluation of a local causal language model on small classification tasks.

A task is a YAML file (or a JSONL file of examples next to it) with an input template, one
verbalizer per label and labelled examples. For every seed the examples are shuffled once: the
first max(shots) form the demonstration pool, the rest are the queries (the same queries for
every shot count, so accuracies are comparable across k). A prompt is

    [BOS] demo_1 SEP demo_2 SEP ... demo_k SEP template(query)  + verbalizer(label)

with demo_i = template(text_i) + verbalizer(label_i). Each label is scored by the summed
log-probability of its verbalizer tokens given the prompt; the prediction is the argmax.
Calibrated accuracy follows contextual calibration (Zhao et al. 2021): subtract the label
log-probs of the content-free query "N/A" under the same demonstrations.

Demonstration conditions (Min et al. 2022; Wei et al. 2023):
    gold       demonstrations carry their true labels
    random     each demonstration label drawn uniformly from the label set (seeded)
    flipped    labels mapped by a fixed permutation: label i -> label (i + 1) mod L
    unrelated  verbalizers replaced 1:1 by unrelated words (" foo", " bar", ...): demonstrations
               AND the scored continuations use them, so the model can only learn the mapping
               from the context

Shared-prefix caching: for one (seed, shots, condition) every query follows the same
demonstrations, so the prefix is encoded once (past_key_values) and each batch of queries runs
only its own tokens on a copy of that cache. `score(..., cached=False)` runs the full prompts
and gives the same log-probs (within float rounding); tests and the benchmark check this.

Example:
    >>> res = run_icl_eval("models/gpt2", "sentiment", shots=[0, 4], conditions=["gold", "flipped"],
    ...                    seeds=[0, 1, 2], out_dir="runs/icl-eval")
    >>> res["rows"][0]["accuracy"]
"""

from __future__ import annotations

import copy
import csv
import inspect
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import ConfigError, EmergelabError
from ..runs.atomic import write_json_atomic, write_text_atomic

__all__ = ["CONDITIONS", "CSV_COLUMNS", "EncodedPrompts", "ICLTask", "ModelLoadError", "TaskError", "builtin_tasks",
           "condition_labels", "encode_task", "evaluate", "load_causal_lm", "load_task", "make_tiny_causal_lm",
           "results_csv", "run_icl_eval", "score_prompts", "split_examples", "task_texts"]

CONDITIONS = ("gold", "random", "flipped", "unrelated")
UNRELATED_WORDS = (" foo", " bar", " baz", " qux", " zip", " zap", " bim", " bop")  # Wei et al. 2023 use foo/bar
CONTENT_FREE = "N/A"  # Zhao et al. 2021's content-free input
TASKS_DIR = "tasks"  # package data: emergelab/icl/tasks/*.yaml


class TaskError(ConfigError):
    """A task file is missing a field, names an unknown label, or does not fit the model/tokenizer/shots."""


class ModelLoadError(EmergelabError):
    """The model path is not a local Hugging Face folder that loads offline."""


# ----------------------------------------------------------------------------- tasks


@dataclass
class ICLTask:
    """A k-shot classification task. `examples` are (text, label) pairs; labels are keys of `verbalizers`."""

    name: str
    template: str  # must contain "{text}", e.g. "Review: {text}\nSentiment:"
    verbalizers: dict[str, str]  # label -> continuation, e.g. {"positive": " good"}; order = label index
    examples: list[tuple[str, str]]
    separator: str = "\n\n"  # between demonstrations and before the query
    unrelated: list[str] = field(default_factory=list)  # 1:1 replacements for the "unrelated" condition

    @property
    def labels(self) -> list[str]:
        return list(self.verbalizers)

    def fill(self, text: str) -> str:
        """The template with `text` in place of {text} (no str.format: other braces stay literal)."""
        return self.template.replace("{text}", text)


def builtin_tasks() -> list[str]:
    """Names of the tasks shipped with the package (usable as --task NAME)."""
    root = resources.files("emergelab.icl").joinpath(TASKS_DIR)
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def _resolve_task_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    if p.suffix == "" and p.name in builtin_tasks():
        return Path(str(resources.files("emergelab.icl") / TASKS_DIR / f"{p.name}.yaml"))
    raise TaskError(f"Task file '{path}' not found (built-in tasks: {', '.join(builtin_tasks())})")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TaskError(f"{path}:{i}: not valid JSON ({e.msg})") from None
    return rows


def load_task(path: str | Path) -> ICLTask:
    """Read and check a task YAML (or the name of a built-in task). Raises TaskError with one line.

    Fields: name, template (with {text}), verbalizers {label: text}, and either examples
    [{text, label}, ...] or examples_file (a JSONL path, relative to the YAML); optional
    separator (default a blank line) and unrelated (list of replacement verbalizers).
    """
    p = _resolve_task_path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TaskError(f"Task file '{p}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"Task file '{p}' must be a mapping with name, template, verbalizers, examples")
    for key in ("name", "template", "verbalizers"):
        if key not in raw:
            raise TaskError(f"Task file '{p}' is missing the field '{key}'")
    known = {"name", "template", "verbalizers", "examples", "examples_file", "separator", "unrelated", "description"}
    extra = sorted(set(raw) - known)
    if extra:
        raise TaskError(f"Task file '{p}' has unknown field '{extra[0]}' (known: {', '.join(sorted(known))})")
    if "{text}" not in str(raw["template"]):
        raise TaskError(f"Task file '{p}': template must contain '{{text}}'")
    verb = raw["verbalizers"]
    if not isinstance(verb, dict) or len(verb) < 2:
        raise TaskError(f"Task file '{p}': verbalizers must map at least two labels to text")
    verb = {str(k): str(v) for k, v in verb.items()}
    if len(set(verb.values())) != len(verb):
        raise TaskError(f"Task file '{p}': two labels share the same verbalizer")
    if "examples" in raw and "examples_file" in raw:
        raise TaskError(f"Task file '{p}': give examples or examples_file, not both")
    if "examples_file" in raw:
        ex_path = (p.parent / str(raw["examples_file"])).resolve()
        if not ex_path.is_file():
            raise TaskError(f"Task file '{p}': examples_file '{raw['examples_file']}' not found")
        rows = _read_jsonl(ex_path)
    elif "examples" in raw:
        rows = raw["examples"]
    else:
        raise TaskError(f"Task file '{p}' is missing the field 'examples' (or 'examples_file')")
    if not isinstance(rows, list) or not rows:
        raise TaskError(f"Task file '{p}': examples must be a non-empty list of {{text, label}}")
    examples = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "text" not in r or "label" not in r:
            raise TaskError(f"Task file '{p}': example {i} must have 'text' and 'label'")
        label = str(r["label"])
        if label not in verb:
            raise TaskError(f"Task file '{p}': example {i} has unknown label '{label}' (labels: {', '.join(verb)})")
        examples.append((str(r["text"]), label))
    unrelated = [str(u) for u in raw.get("unrelated") or UNRELATED_WORDS[: len(verb)]]
    if len(unrelated) < len(verb) or len(set(unrelated[: len(verb)])) < len(verb):
        raise TaskError(f"Task file '{p}': unrelated needs {len(verb)} distinct words, one per label")
    return ICLTask(name=str(raw["name"]), template=str(raw["template"]), verbalizers=verb, examples=examples,
                   separator=str(raw.get("separator", "\n\n")), unrelated=unrelated[: len(verb)])


# ----------------------------------------------------------------------------- prompts


def condition_labels(task: ICLTask, labels: Sequence[int], condition: str, rng: np.random.Generator) -> list[int]:
    """Demonstration label indices under a condition. flipped: i -> (i + 1) mod L; random: uniform; else gold."""
    L = len(task.verbalizers)
    if condition == "flipped":
        return [(y + 1) % L for y in labels]
    if condition == "random":
        return [int(v) for v in rng.integers(0, L, size=len(labels))]
    if condition in ("gold", "unrelated"):  # unrelated keeps the true mapping, only the words change
        return list(labels)
    raise ConfigError(f"Unknown condition '{condition}' (choose from {', '.join(CONDITIONS)})")


@dataclass
class EncodedPrompts:
    """Token ids for one (seed, shots, condition): a shared prefix, the queries and the label continuations."""

    prefix: list[int]  # BOS (if any) + demonstrations + separator
    queries: list[list[int]]  # template(text) per query; the last is the content-free "N/A" query
    verbalizers: list[list[int]]  # one token list per label (possibly several tokens)


def _encode(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _check_verbalizers(tok: Any, task: ICLTask, words: Sequence[str], what: str) -> list[list[int]]:
    # Encode each word after the template's tail ("\nSentiment:"), keeping the tokens that follow it: that
    # is how it is tokenized in a prompt. SentencePiece tokenizers would otherwise add a word-start marker.
    anchor = task.template.rsplit("{text}", 1)[1]
    head = _encode(tok, anchor) if anchor else []
    out = []
    for label, w in zip(task.labels, words, strict=True):
        joint = _encode(tok, anchor + w)
        ids = joint[len(head) :] if head and joint[: len(head)] == head else _encode(tok, w)
        if not ids:
            raise TaskError(f"Task '{task.name}': {what} {w!r} of label '{label}' encodes to no tokens")
        if tok.unk_token_id is not None and tok.unk_token_id in ids:
            raise TaskError(f"Task '{task.name}': {what} {w!r} of label '{label}' is unknown to the tokenizer")
        out.append(ids)
    if len({tuple(v) for v in out}) < len(out):
        raise TaskError(f"Task '{task.name}': two {what}s encode to the same tokens")
    return out


def split_examples(task: ICLTask, max_shots: int, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle with `seed`: the first max_shots indices are the demonstration pool, the rest the queries."""
    n = len(task.examples)
    if max_shots >= n:
        raise TaskError(f"Task '{task.name}' has {n} examples: {max_shots} shots leave no query (need > {max_shots})")
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[:max_shots], order[max_shots:]


def encode_task(task: ICLTask, tok: Any, shots: Sequence[int], conditions: Sequence[str], seeds: Sequence[int],
                n_ctx: int | None) -> dict[tuple[int, int, str], tuple[EncodedPrompts, list[int]]]:
    """Tokenize every prompt, checking verbalizers and lengths first.

    Returns {(seed, k, condition): (prompts, gold label index per query)}; the content-free
    query is appended to `prompts.queries` (it has no gold label). Raises TaskError.
    """
    for c in conditions:
        if c not in CONDITIONS:
            raise ConfigError(f"Unknown condition '{c}' (choose from {', '.join(CONDITIONS)})")
    if any(k < 0 for k in shots):
        raise ConfigError("shots must be >= 0")
    verb = {"task": _check_verbalizers(tok, task, list(task.verbalizers.values()), "verbalizer")}
    if "unrelated" in conditions:
        verb["unrelated"] = _check_verbalizers(tok, task, task.unrelated, "unrelated word")
    label_ix = {lab: i for i, lab in enumerate(task.labels)}
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    max_k = max(shots)
    out = {}
    for seed in seeds:
        pool, queries = split_examples(task, max_k, seed)
        q_ids = [_encode(tok, task.fill(task.examples[i][0])) for i in queries]
        q_ids.append(_encode(tok, task.fill(CONTENT_FREE)))
        gold = [label_ix[task.examples[i][1]] for i in queries]
        if not all(q_ids):  # the first verbalizer token is read at the query's last position
            raise TaskError(f"Task '{task.name}': a query encodes to no tokens (empty text and template?)")
        for cond in conditions:
            words = task.unrelated if cond == "unrelated" else list(task.verbalizers.values())
            for k in shots:
                # one rng per (seed, condition, k) so adding a shot count never changes the others
                rng = np.random.default_rng([seed, CONDITIONS.index(cond), k])
                demo = pool[:k]
                dl = condition_labels(task, [label_ix[task.examples[i][1]] for i in demo], cond, rng)
                text = "".join(task.fill(task.examples[i][0]) + words[y] + task.separator
                               for i, y in zip(demo, dl, strict=True))
                prompts = EncodedPrompts(bos + _encode(tok, text) if text else bos, q_ids,
                                         verb["unrelated" if cond == "unrelated" else "task"])
                longest = len(prompts.prefix) + max(map(len, q_ids)) + max(map(len, prompts.verbalizers))
                if n_ctx is not None and longest > n_ctx:
                    raise TaskError(f"Task '{task.name}': a {k}-shot prompt has {longest} tokens, longer than the "
                                    f"model's context of {n_ctx} (use fewer shots)")
                out[(seed, k, cond)] = (prompts, gold)
    return out


# ----------------------------------------------------------------------------- scoring


def _sequences(prompts: EncodedPrompts) -> tuple[list[list[int]], list[tuple[int, int, int, int]]]:
    """Continuation sequences after the prefix, and what to read from each.

    If every verbalizer is one token, one sequence per query scores all labels at its last position.
    Otherwise one sequence per (query, label): query + verbalizer. Returns the sequences and
    rows (seq index, query index, label index or -1 for all labels, query length).
    """
    seqs, rows = [], []
    if all(len(v) == 1 for v in prompts.verbalizers):
        for q, ids in enumerate(prompts.queries):
            seqs.append(ids)
            rows.append((len(seqs) - 1, q, -1, len(ids)))
    else:
        for q, ids in enumerate(prompts.queries):
            for j, v in enumerate(prompts.verbalizers):
                seqs.append(ids + v)
                rows.append((len(seqs) - 1, q, j, len(ids)))
    return seqs, rows


@torch.no_grad()
def score_prompts(model: torch.nn.Module, prompts: EncodedPrompts, *, cached: bool = True,
                  batch_size: int = 32) -> torch.Tensor:
    """Label log-probs (n_queries, n_labels), float32: sum over each verbalizer's tokens of log p(token | prompt).

    cached=True encodes the prefix once and runs only the query tokens against a copy of its
    key/value cache; cached=False runs prefix + query for every sequence. Sequences are right-padded
    and the pads masked (with causal attention no real token could see them anyway), so both
    paths compute the same function.
    """
    P = len(prompts.prefix)
    seqs, rows = _sequences(prompts)
    n_q, n_l = len(prompts.queries), len(prompts.verbalizers)
    out = torch.zeros(n_q, n_l, dtype=torch.float64)
    prefix_cache = None
    use_cache = cached and P > 0
    # transformers renamed past_key_values -> cache (5.2x; the old name goes in 5.40): accept both
    kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    if use_cache:
        pre = model(torch.tensor([prompts.prefix]), use_cache=True)
        prefix_cache = pre[kw]
    first_tok = torch.tensor([v[0] for v in prompts.verbalizers])
    for s in range(0, len(seqs), batch_size):
        chunk = seqs[s : s + batch_size]
        B, T = len(chunk), max(map(len, chunk))
        ids = torch.zeros(B, T, dtype=torch.long)  # right padding: with causal attention no real token sees a pad
        mask = torch.zeros(B, P + T, dtype=torch.long)
        mask[:, :P] = 1
        for b, c in enumerate(chunk):
            ids[b, : len(c)] = torch.tensor(c)
            mask[b, P : P + len(c)] = 1
        if use_cache:
            past = copy.deepcopy(prefix_cache)  # the model appends to the cache it is given: keep the prefix clean
            past.batch_repeat_interleave(B)
            logits = model(ids, attention_mask=mask, use_cache=True, **{kw: past}).logits
            off = 0
        else:
            full = torch.cat([torch.tensor([prompts.prefix] * B, dtype=torch.long).reshape(B, P), ids], dim=1)
            logits = model(full, attention_mask=mask, use_cache=False).logits
            off = P
        logp = logits.float().log_softmax(-1)
        for b, (_, q, j, qlen) in enumerate(rows[s : s + batch_size]):
            # logits at position t predict token t + 1; the first verbalizer token is predicted at qlen - 1
            if j < 0:
                out[q] = logp[b, off + qlen - 1, first_tok].double()
            else:
                v = prompts.verbalizers[j]
                pos = torch.arange(off + qlen - 1, off + qlen - 1 + len(v))
                out[q, j] = logp[b, pos, torch.tensor(v)].double().sum()
    del prefix_cache
    return out.float()


# ----------------------------------------------------------------------------- models


def load_causal_lm(path: str | Path) -> tuple[torch.nn.Module, Any, int | None]:
    """Load (model in eval mode, tokenizer, context length or None) from a local folder, offline only."""
    p = Path(path)
    if not p.is_dir():
        raise ModelLoadError(f"Model path '{path}' is not a folder (expected a local Hugging Face model folder)")
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"Model folder '{path}' has no config.json")
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach the network, whatever the folder's config says
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own output stays readable; errors still surface
    except ImportError:  # pragma: no cover - a declared dependency
        raise ModelLoadError("icl-eval needs the 'transformers' package: pip install transformers") from None
    try:
        tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"Could not load a causal LM from '{path}': {str(e).splitlines()[0]}") from None
    model.eval()
    cfg = model.config
    n_ctx = next((getattr(cfg, a) for a in ("n_positions", "max_position_embeddings", "n_ctx")
                  if isinstance(getattr(cfg, a, None), int)), None)
    return model, tok, n_ctx


def make_tiny_causal_lm(folder: str | Path, texts: Sequence[str], *, n_layer: int = 2, n_embd: int = 32,
                        n_head: int = 2, n_positions: int = 1024, seed: int = 0) -> Path:
    """Save a random GPT-2 + a word-level tokenizer trained on `texts` to `folder` (no download); for tests."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = Path(folder)
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[BOS]"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]")
    torch.manual_seed(seed)  # GPT2's init draws from the global RNG; seeded here so the folder is reproducible
    cfg = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def task_texts(task: ICLTask) -> list[str]:
    """Every string a prompt of `task` can contain (for training a tiny tokenizer on it)."""
    return ([task.fill(t) for t, _ in task.examples] + [task.fill(CONTENT_FREE)]
            + list(task.verbalizers.values()) + list(task.unrelated) + [task.separator])


# ----------------------------------------------------------------------------- evaluation


def _interval(correct: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """90% percentile bootstrap of the mean accuracy over seeds; correct (S, Q) resampled per seed over queries."""
    S, Q = correct.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, Q, size=(n_boot, S, Q))
    means = np.take_along_axis(np.broadcast_to(correct, (n_boot, S, Q)), idx, axis=2).mean(axis=(1, 2))
    lo, hi = np.quantile(means, [0.05, 0.95])
    return float(lo), float(hi)


def evaluate(model: torch.nn.Module, tok: Any, task: ICLTask, shots: Sequence[int], conditions: Sequence[str],
             seeds: Sequence[int], n_ctx: int | None, *, cached: bool = True, batch_size: int = 32,
             n_boot: int = 1000) -> dict[str, Any]:
    """Accuracy and calibrated accuracy per (shots, condition), over seeds. Everything is encoded first."""
    encoded = encode_task(task, tok, shots, conditions, seeds, n_ctx)
    rows = []
    for cond in conditions:
        for k in shots:
            acc, cal, correct, correct_cal = [], [], [], []
            for seed in seeds:
                prompts, gold = encoded[(seed, k, cond)]
                lp = score_prompts(model, prompts, cached=cached, batch_size=batch_size)
                lp_q, lp_cf = lp[:-1], lp[-1]
                y = torch.tensor(gold)
                c = (lp_q.argmax(1) == y).numpy()
                # contextual calibration: p(label|x) / p(label|"N/A"), i.e. a log-prob difference
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
    return {"task": task.name, "labels": task.labels, "chance": 1.0 / len(task.labels), "shots": list(shots),
            "conditions": list(conditions), "seeds": list(seeds), "rows": rows}


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


def _as_list(value: str | Sequence[Any], what: str, cast: type) -> list[Any]:
    """'0,1,2' or [0, 1, 2] -> [0, 1, 2]; a bad item raises ConfigError naming the option."""
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    try:
        return [cast(v) for v in items]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a comma-separated list of {cast.__name__}, got {value!r}") from None


def run_icl_eval(model_path: str | Path, task_path: str | Path, shots: str | Sequence[int] = (0, 1, 2, 4, 8, 16),
                 conditions: str | Sequence[str] = ("gold",), seeds: str | Sequence[int] = (0, 1, 2),
                 out_dir: str | Path = "runs/icl-eval", *, cached: bool = True, batch_size: int = 32) -> dict[str, Any]:
    """Evaluate a local causal LM k-shot on a task; write {out_dir}/{task}.json and .csv atomically.

    shots, conditions and seeds take lists or comma-separated strings ("0,1,2,4"). task_path is a
    YAML file or the name of a built-in task (see `builtin_tasks()`). All input is checked (task
    file, model folder, verbalizers, shots, context length) before anything is scored or written;
    problems raise EmergelabError subclasses with one line. Returns the results dict (the JSON
    content) with "json_path" and "csv_path" added.
    """
    shots = sorted(set(_as_list(shots, "shots", int)))
    conditions = list(dict.fromkeys(_as_list(conditions, "conditions", str)))
    seeds = list(dict.fromkeys(_as_list(seeds, "seeds", int)))
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
    model, tok, n_ctx = load_causal_lm(model_path)
    results = evaluate(model, tok, task, shots, conditions, seeds, n_ctx, cached=cached, batch_size=batch_size)
    results = {"model": str(model_path), **results}
    out = Path(out_dir)
    json_path, csv_path = out / f"{task.name}.json", out / f"{task.name}.csv"
    write_json_atomic(json_path, results)
    write_text_atomic(csv_path, results_csv(results))
    return {**results, "json_path": str(json_path), "csv_path": str(csv_path)}
