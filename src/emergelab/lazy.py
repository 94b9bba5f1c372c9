"""Packages whose public names load on first use, so that `import emergelab` (and the `emergelab` commands
that compute nothing: --help, list, config, list-runs, show) never import torch, scikit-learn or
transformers.

A package lists its exports once, name -> the submodule defining it, and takes `__getattr__`/`__dir__`
from `lazy_exports`; `from emergelab.train import TrainConfig` then imports `emergelab.train.config` only.

Example:
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"TrainConfig": ".config", "train": ".loop"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(module: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `module` (a package or a plain module; pass `__name__`): `exports` maps
    each public name to the module defining it (relative names are relative to `module`'s package); that
    module is imported when the name is first read, and the value is cached on `module`."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], sys.modules[module].__package__), name)
        setattr(sys.modules[module], name, value)  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module])) | set(exports))

    return __getattr__, __dir__
