"""Name -> object registries that fail helpfully.

Example:
    >>> experiments = Registry("experiment")
    >>> @experiments.register("induction", "induction heads and the ICL phase change")
    ... def run_induction(cfg): ...
    >>> experiments.get("inductoin")
    Traceback (most recent call last):
    RegistryError: Unknown experiment 'inductoin'. Did you mean: induction?
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import RegistryError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """' Did you mean: x?' when a close match exists, else a list of the valid choices."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        return f" Did you mean: {', '.join(close)}?"
    if choices:
        return f" Choices: {', '.join(sorted(choices))}."
    return ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    """A registry of objects of one kind (experiments, models, tasks)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = Entry(name, obj, description)
            return obj

        return deco

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise RegistryError(f"Unknown {self.kind} '{name}'.{did_you_mean(name, list(self._entries))}")
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


experiments: Registry = Registry("experiment")
models: Registry = Registry("model")
tasks: Registry = Registry("task")
estimators: Registry = Registry("estimator")  # scikit-learn shaped classic models (SOM, RBF network)
