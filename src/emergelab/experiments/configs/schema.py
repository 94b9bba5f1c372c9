"""What a run's summary holds, declared beside its config: each experiment config's `summary_paths()` lists the
dotted path patterns of the summary a run of that config produces ('*' stands for any one list index), so
`emergelab sweep --metric` is checked before anything runs. Torch- and numpy-free, like the configs.
The experiment contract tests run each experiment and compare these declarations with the real summary.

Example:
    >>> under("2L.phase_change", PHASE_CHANGE)[:2]
    ['2L.phase_change.detected', '2L.phase_change.start_step']
    >>> matches("results.-1.max_abs_error", ["results.*.max_abs_error"]), matches("results", ["results.*.k"])
    (True, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CHECKS = ("checks.*.name", "checks.*.passed", "checks.*.detail")  # the rows of `kit.Checks`
PHASE_CHANGE = ("detected", "start_step", "end_step", "steepest_step", "drop", "drop_fraction", "reason")
HEAD = ("layer", "head")  # a head named in a summary: {"layer", "head", ...}


def under(prefix: str, paths: Iterable[str]) -> list[str]:
    """`paths` below `prefix`: under('a', ['b', 'c.*']) -> ['a.b', 'a.c.*']."""
    return [f"{prefix}.{p}" for p in paths]


def _part_matches(part: str, pattern: str) -> bool:
    return part == pattern or (pattern == "*" and part.lstrip("-").isdigit())


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether dotted path `name` is in a summary with these patterns: a whole pattern (a value) or its start
    (a section or list). '*' matches any list index, negative ones included ('-1' is the last item)."""
    parts = name.split(".")
    for pattern in patterns:
        pat = pattern.split(".")
        if len(parts) <= len(pat) and all(_part_matches(a, b) for a, b in zip(parts, pat, strict=False)):
            return True
    return False


def _walk(tree: Any, prefix: str, leaves: set[str], empty: set[str]) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            _walk(value, f"{prefix}{key}.", leaves, empty)
    elif isinstance(tree, list):
        if not tree:
            empty.add(prefix[:-1])
        for value in tree:
            _walk(value, f"{prefix}*.", leaves, empty)
    elif prefix:
        leaves.add(prefix[:-1])


def compare(summary: dict[str, Any], patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """(undeclared, unfound) between a real summary and the patterns declared for it: the summary's values (every
    list item visited, indices as '*') that no pattern names, and the patterns that name no value of it, except
    those inside a list that is empty in this summary (nothing there to compare with).

    Example:
        >>> compare({"results": [{"k": 5}], "heads": []}, ["results.*.k", "results.*.rmse", "heads.*.layer"])
        ([], ['results.*.rmse'])
    """
    leaves: set[str] = set()
    empty: set[str] = set()
    _walk(summary, "", leaves, empty)
    declared = list(dict.fromkeys(patterns))
    undeclared = sorted(leaves - set(declared))
    unfound = [p for p in declared if p not in leaves and not any(p.startswith(e + ".*") for e in empty)]
    return undeclared, unfound
