"""k-shot classification tasks: the task file (YAML, or JSONL examples beside it), the demonstration
conditions, and the seeded split into demonstrations and queries.

A task has an input template with "{text}", one verbalizer per label and labelled examples. For every
seed the examples are shuffled once: the first max(shots) form the demonstration pool, the rest are the
queries (the same queries for every shot count, so accuracies are comparable across k).

Demonstration conditions (Min et al. 2022; Wei et al. 2023):
    gold       demonstrations carry their true labels
    random     each demonstration label drawn uniformly from the label set (seeded)
    flipped    labels mapped by a fixed permutation: label i -> label (i + 1) mod L
    unrelated  verbalizers replaced 1:1 by unrelated words (" foo", " bar", ...): demonstrations
               AND the scored continuations use them, so the model can only learn the mapping
               from the context

Example:
    >>> task = load_task("sentiment")
    >>> task.fill("Great soup."), task.labels
    ('Review: Great soup.\nSentiment:', ['positive', 'negative'])
    >>> pool, queries = split_examples(task, max_shots=4, seed=0)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import ConfigError
from .choices import CONDITIONS

__all__ = ["CONDITIONS", "CONTENT_FREE", "ICLTask", "TaskError", "builtin_tasks", "condition_labels", "load_task",
           "split_examples", "task_texts"]

UNRELATED_WORDS = (" foo", " bar", " baz", " qux", " zip", " zap", " bim", " bop")  # Wei et al. 2023 use foo/bar
CONTENT_FREE = "N/A"  # Zhao et al. 2021's content-free input
TASKS_DIR = "tasks"  # package data: emergelab/icl/tasks/*.yaml


class TaskError(ConfigError):
    """A task file is missing a field, names an unknown label, or does not fit the model/tokenizer/shots."""


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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TaskError(f"Examples file '{path}' is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    for i, line in enumerate(text.splitlines(), 1):
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
    except UnicodeDecodeError as e:
        raise TaskError(f"Task file '{p}' is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
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


def split_examples(task: ICLTask, max_shots: int, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle with `seed`: the first max_shots indices are the demonstration pool, the rest the queries."""
    n = len(task.examples)
    if max_shots >= n:
        raise TaskError(f"Task '{task.name}' has {n} examples: {max_shots} shots leave no query (need > {max_shots})")
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[:max_shots], order[max_shots:]


def task_texts(task: ICLTask) -> list[str]:
    """Every string a prompt of `task` can contain (for training a tiny tokenizer on it)."""
    return ([task.fill(t) for t, _ in task.examples] + [task.fill(CONTENT_FREE)]
            + list(task.verbalizers.values()) + list(task.unrelated) + [task.separator])
