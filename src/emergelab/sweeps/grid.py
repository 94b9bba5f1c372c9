"""A sweep's grid (parsed from `--grid` text, checked, expanded into points) and dotted paths into summaries.

Example:
    >>> grid = parse_grid(["task.pool_size=1,4", "seed=[0, 1]"])
    >>> expand(grid)[1], point_overrides(expand(grid)[1])
    ({'task.pool_size': 1, 'seed': 1}, ['task.pool_size=1', 'seed=1'])
    >>> lookup({"error_by_k": {"transformer": [1.0, 0.1]}}, "error_by_k.transformer.-1")
    0.1
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Sequence
from typing import Any

import yaml

from ..config import ConfigError, parse_override
from ..experiments.configs.schema import matches
from ..registry import did_you_mean

__all__ = ["check_grid", "check_metrics", "expand", "lookup", "parse_grid", "path_hint", "point_overrides",
           "summary_paths"]


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """['task.pool_size=1,4,16', 'seed=[0, 1]'] -> {'task.pool_size': [1, 4, 16], 'seed': [0, 1]}.

    Values are YAML: a YAML list is taken whole (use it for values with commas), anything else is split on
    commas and each piece parsed (`1e-3` -> 0.001, `true` -> True).
    """
    grid: dict[str, list[Any]] = {}
    for text in items:
        if "=" not in text:
            raise ConfigError(f"Grid '{text}' must look like key=v1,v2,..., e.g. seed=0,1,2")
        key, raw = parse_override(text)  # raw is already YAML-parsed
        if key in grid:
            raise ConfigError(f"Grid key '{key}' is given twice")
        if isinstance(raw, list):
            values = raw
        else:
            values = [_scalar(v) for v in str(text.split("=", 1)[1]).split(",")]
        if not values or any(v is None for v in values):
            raise ConfigError(f"Grid '{text}' needs one or more comma-separated values, e.g. {key}=1,2,4")
        grid[key] = values
    return grid


def _scalar(text: str) -> Any:
    """YAML, plus the floats YAML 1.1 leaves as strings ('1e-3')."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_grid(grid: dict[str, list[Any]]) -> None:
    """At least one key, each with distinct values (a repeated value would be the same point twice)."""
    if not grid:
        raise ConfigError("A sweep needs at least one --grid KEY=V1,V2,...")
    for key, values in grid.items():
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen) or not values:
            raise ConfigError(f"Grid '{key}' must list distinct values, got {values}")


def expand(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product, first key slowest: {'a': [1, 2], 'b': [3]} -> [{'a': 1, 'b': 3}, {'a': 2, 'b': 3}]."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_overrides(point: dict[str, Any]) -> list[str]:
    """A point as `--set` overrides: {'train.lr': 0.001} -> ['train.lr=0.001'] (values as flow YAML)."""
    return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in point.items()]


def lookup(tree: Any, dotted: str, default: Any = None) -> Any:
    """A value in a nested summary by dotted path; integer parts index lists ('error_by_k.transformer.-1').
    `default` when the path does not exist."""
    obj = tree
    for part in dotted.split("."):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.lstrip("-").isdigit() and -len(obj) <= int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return default
    return obj


def summary_paths(tree: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the scalar values in a summary, lists entered at their first item: what `--metric`
    can name (any list index works, e.g. `-1` for the last)."""
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in summary_paths(v, f"{prefix}{k}.")]
    if isinstance(tree, list):
        return summary_paths(tree[0], f"{prefix}0.") if tree else []
    return [prefix[:-1]] if prefix else []


def path_hint(name: str, paths: list[str]) -> str:
    """' Did you mean: a.b?' for a dotted path found in no summary, else a few of the paths that exist."""
    close = difflib.get_close_matches(name, paths, n=3, cutoff=0.6)
    if close:
        return f" Did you mean: {', '.join(close)}?"
    return f" The summaries have {len(paths)} values, e.g. {', '.join(paths[:8])}."


def check_metrics(experiment: str, metrics: Sequence[str], declared: Sequence[Sequence[str]]) -> None:
    """ConfigError, before anything runs, for a metric that no point's summary will hold. `declared`: each
    point's summary path patterns ('*' is any list index; experiments/configs/schema.py).

    Example:
        >>> check_metrics("rbf-approx", ["results.-1.rmse"], [["results.*.rmse", "results.*.k"]])  # passes
        >>> check_metrics("rbf-approx", ["results.0.rmsee"], [["results.*.rmse"]])
        Traceback (most recent call last):
        ConfigError: Unknown --metric 'results.0.rmsee': no rbf-approx summary has it. Did you mean: results.0.rmse?
    """
    patterns = sorted({p for paths in declared for p in paths})
    for name in metrics:
        if not matches(name, patterns):
            hint = _metric_hint(name, patterns)
            raise ConfigError(f"Unknown --metric '{name}': no {experiment} summary has it.{hint}")


def _metric_hint(name: str, patterns: list[str]) -> str:
    """' Did you mean: x?' over the declared paths (their '*' shown as the name's own index, else 0); without a
    close one, the paths themselves when they are few, else the summary's top-level keys."""
    parts = name.split(".")

    def shown(pattern: str) -> str:
        pat = pattern.split(".")
        return ".".join(parts[i] if p == "*" and i < len(parts) and parts[i].lstrip("-").isdigit()
                        else "0" if p == "*" else p for i, p in enumerate(pat))

    paths = list(dict.fromkeys(shown(p) for p in patterns))
    hint = did_you_mean(name, paths)
    if hint.startswith(" Did you mean") or len(paths) <= 12:
        return hint
    top = sorted({p.split(".")[0] for p in patterns})
    return f" Its summary's top-level keys: {', '.join(top)} (see summary.json of a finished run)."
