"""Metric names: how experiments write them and reports read them back, in one place.

A metric name is a '/'-joined path: `2L/probe/repeated_loss`, `heads/induction/L1H0`. Experiments build
names with `metric(...)` / `head_metric(...)`; reports take them apart with `split_head_metric` instead of
parsing strings of their own.

Example:
    >>> head_metric("induction", 1, 0)
    'heads/induction/L1H0'
    >>> metric("2L", "probe", "loss")
    '2L/probe/loss'
    >>> split_head_metric("heads/induction/L1H0")
    ('induction', 1, 0)
"""

from __future__ import annotations

import re

_HEAD = re.compile(r"^L(\d+)H(\d+)$")


def metric(*parts: str | int) -> str:
    """Join name parts with '/', skipping empty ones: metric("", "probe", "loss") -> 'probe/loss'."""
    return "/".join(str(p).strip("/") for p in parts if str(p).strip("/"))


def head_name(layer: int, head: int) -> str:
    """'L{layer}H{head}', the label of one attention head in names, tables and figures."""
    return f"L{int(layer)}H{int(head)}"


def parse_head_name(name: str) -> tuple[int, int] | None:
    """'L1H0' -> (1, 0); anything else -> None."""
    m = _HEAD.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def head_metric(kind: str, layer: int, head: int, prefix: str = "") -> str:
    """The stored name of head score `kind` of head (layer, head): '[prefix/]heads/{kind}/L{l}H{h}'."""
    return metric(prefix, "heads", kind, head_name(layer, head))


def split_head_metric(name: str, prefix: str = "") -> tuple[str, int, int] | None:
    """'[prefix/]heads/{kind}/L{l}H{h}' -> (kind, layer, head); any other name -> None."""
    if prefix:
        head = prefix.strip("/") + "/"
        if not name.startswith(head):
            return None
        name = name[len(head):]
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != "heads":
        return None
    lh = parse_head_name(parts[2])
    return (parts[1], *lh) if lh else None
