"""Name -> object registries that fail helpfully.

Example:
    >>> experiments = Registry("experiment")
    >>> @experiments.register("induction", "induction heads and the ICL phase change")
    ... def run_induction(cfg): ...
    >>> experiments.get("inductoin")
    Traceback (most recent call last):
    RegistryError: Unknown experiment 'inductoin'. Did you mean: induction?

An entry can be declared before its object exists: `declare(name, description, module, **info)` names the
module whose import registers the object, and what is known without importing it (`info`); `get` imports
the module on first use. This keeps `emergelab list` and `emergelab config` free of torch.

    >>> experiments.declare("induction", "induction heads", "emergelab.experiments.induction", config_cls=Cfg)
    >>> experiments.entry("induction").info["config_cls"]   # no import of the module yet
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

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
    obj: T | None  # None while only declared
    description: str
    module: str | None = None  # imported by `get` when the entry is only declared
    info: Mapping[str, Any] = field(default_factory=dict)  # known without importing `module`


class Registry(Generic[T]):
    """A registry of objects of one kind (experiments, models, tasks)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def declare(self, name: str, description: str, module: str, **info: Any) -> None:
        """Name an entry whose object `module` registers when imported (on the first `get`)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = Entry(name, None, description, module, info)

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Register `obj` under `name` (fills a declared entry, keeping its description and info)."""

        def deco(obj: T) -> T:
            old = self._entries.get(name)
            if old is not None and old.obj is not None:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = (replace(old, obj=obj, description=description or old.description) if old
                                   else Entry(name, obj, description))
            return obj

        return deco

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise RegistryError(f"Unknown {self.kind} '{name}'.{did_you_mean(name, list(self._entries))}")
        return self._entries[name]

    def get(self, name: str) -> T:
        entry = self.entry(name)
        if entry.obj is None:
            importlib.import_module(entry.module)
            entry = self._entries[name]
            if entry.obj is None:
                raise RuntimeError(f"importing {entry.module} did not register {self.kind} '{name}'")
        return entry.obj

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
