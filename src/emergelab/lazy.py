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
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`: `exports` maps each public name to the (relative or absolute)
    module that defines it; the module is imported when the name is first read, then the value is cached."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        import sys

        setattr(sys.modules[package], name, value)  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
