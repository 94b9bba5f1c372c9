"""The scikit-learn shape shared by the classic models (SOM, RBF network).

`fit(X, y=None)` returns self; learned state lives in attributes ending in `_`; using a model
before `fit` raises `NotFittedError`; `save(path)` / `load(path)` round-trip the learned state
through safetensors (tensors) plus JSON metadata (constructor parameters), never pickle.

Example:
    >>> som = SOM(10, 10, seed=0).fit(X)
    >>> som.save("som.safetensors")
    >>> same = SOM.load("som.safetensors")
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from .errors import EmergelabError, NotFittedError
from .tensorfile import read_safetensors, write_safetensors


class Estimator:
    """Mixin. Subclasses store constructor arguments under the same names (as scikit-learn does)."""

    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters if name != "self"}

    def fitted_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def check_fitted(self) -> None:
        if not self.fitted_attributes():
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(X) first")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def save(self, path: str | Path) -> Path:
        """Learned tensors/arrays to safetensors; parameters and scalar state as JSON metadata."""
        self.check_fitted()
        tensors, scalars = {}, {}
        for k, v in self.fitted_attributes().items():
            if isinstance(v, torch.Tensor):
                tensors[k] = v.detach().cpu().contiguous()
            elif isinstance(v, np.ndarray):
                tensors[k] = torch.from_numpy(np.ascontiguousarray(v))
                scalars[f"__numpy__{k}"] = True
            else:
                scalars[k] = v
        meta = {"class": type(self).__name__, "params": json.dumps(self.get_params()),
                "scalars": json.dumps(scalars)}
        return write_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        tensors, meta = read_safetensors(path, what="Model file")
        if meta.get("class") != cls.__name__:
            raise EmergelabError(f"Model file '{path}' holds a {meta.get('class')}, not a {cls.__name__}")
        obj = cls(**json.loads(meta["params"]))
        scalars = json.loads(meta.get("scalars", "{}"))
        for k, v in tensors.items():
            setattr(obj, k, v.numpy() if scalars.pop(f"__numpy__{k}", False) else v)
        for k, v in scalars.items():
            setattr(obj, k, v)
        return obj


def as_float_tensor(X: Any, name: str = "X", ndim: int = 2, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Validate input: numeric, `ndim`-dimensional, non-empty, finite. Raises ValueError naming the problem."""
    try:
        t = torch.as_tensor(np.asarray(X), dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric ({e})") from None
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(t.shape)}")
    if t.numel() == 0 or t.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t
