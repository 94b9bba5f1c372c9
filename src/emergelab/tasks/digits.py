"""Handwritten digits: scikit-learn's bundled 8x8 set, or MNIST-style IDX files from a local folder.

IDX (the MNIST file format): big-endian magic `0x00 0x00 <dtype> <ndim>`, then ndim uint32
sizes, then the data. We read unsigned-byte files (dtype 0x08), optionally gzip-compressed.
A folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` (and optionally the `t10k-`
pair, appended); names may end in `.gz`.

For training and analysis alike (so both see the same numbers): `load_digits_task` (labels as class
indices, an optional stratified subsample), `split_digits` (a stratified split standardized on its
training part) and `epoch_batches` (the trainer's batch_fn: shuffled epochs with input noise).

Example:
    >>> X, y, shape = load_digits_data()               # (1797, 64) float32 in [0, 16], (1797,), (8, 8)
    >>> X, y, shape = load_digits_data("data/mnist")   # (n, 784) from IDX files, (28, 28)
    >>> task = load_digits_task()                      # task.classes == ['0', ..., '9']
    >>> split = split_digits(task, test_size=0.25, clip=3.0, split_seed=0)   # split.X_train (1347, 64)
"""

from __future__ import annotations

import gzip
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ..errors import DataError

IDX_UBYTE = 0x08
METRICS = ("test_accuracy", "macro_recall", "macro_f1", "roc_auc_ovr")  # what `test_metrics` measures


def _open(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (gzip.BadGzipFile, EOFError) as e:  # BadGzipFile is an OSError: catch it first
        raise DataError(f"IDX file '{path}' is not valid gzip ({e})") from None
    except OSError as e:
        raise DataError(f"Cannot read IDX file '{path}': {e.strerror or e}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes -> uint8 array of its declared shape."""
    path = Path(path)
    data = _open(path)
    if len(data) < 4:
        raise DataError(f"IDX file '{path}' is empty or truncated ({len(data)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != IDX_UBYTE or not 1 <= ndim <= 4:
        raise DataError(f"IDX file '{path}' has a bad header (magic {data[:4].hex()}; expected 000008xx)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file '{path}' is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(f"IDX file '{path}' declares shape {shape} ({expected} bytes) but holds "
                        f"{len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = struct.pack(">HBB", 0, IDX_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
    return path


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_folder(folder: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Data folder '{folder}' does not exist")
    parts = []
    for prefix in ("train", "t10k"):
        images, labels = _find(folder, f"{prefix}-images-idx3-ubyte"), _find(folder, f"{prefix}-labels-idx1-ubyte")
        if images is None and labels is None:
            continue
        if images is None or labels is None:
            raise DataError(f"Data folder '{folder}' has only one of the {prefix} images/labels IDX files")
        X, y = read_idx(images), read_idx(labels)
        if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
            raise DataError(f"IDX files in '{folder}': images {X.shape} and labels {y.shape} do not match")
        parts.append((X, y))
    if not parts:
        raise DataError(f"Data folder '{folder}' holds no train-images-idx3-ubyte / train-labels-idx1-ubyte files")
    shape = parts[0][0].shape[1:]
    if any(p[0].shape[1:] != shape for p in parts):
        raise DataError(f"IDX images in '{folder}' have different sizes")
    X = np.concatenate([p[0] for p in parts]).reshape(-1, shape[0] * shape[1]).astype(np.float32)
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return X, y, (int(shape[0]), int(shape[1]))


def load_digits_data(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(X (n, h*w) float32, y (n,) int64, (h, w)): sklearn's digits when `path` is None, else IDX files."""
    if path:
        return load_idx_folder(path)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int64), (8, 8)


@dataclass
class DigitsTask:
    X: np.ndarray  # (n, h*w) float32 pixels as loaded
    y: np.ndarray  # (n,) int64 class indices 0..C-1
    classes: list[str]  # the original label of each class index
    shape: tuple[int, int]  # (h, w) of one image


def load_digits_task(path: str | Path | None = None, max_samples: int = 0, seed: int = 0) -> DigitsTask:
    """The digits with labels as class indices; `max_samples` > 0 keeps a stratified subsample (seeded)."""
    X, y, shape = load_digits_data(path)
    if 0 < max_samples < len(X):
        X, _, y, _ = train_test_split(X, y, train_size=max_samples, stratify=y, random_state=seed)
    labels = np.unique(y)
    return DigitsTask(X, np.searchsorted(labels, y), [str(v) for v in labels], shape)


def check_digits_task(task: DigitsTask, path: str | Path | None = None) -> None:
    """Enough data for a stratified split: at least 2 classes, each with at least 2 examples."""
    if len(task.classes) < 2:
        raise DataError(f"The digits data at '{path}' holds a single class")
    if np.bincount(task.y).min() < 2:
        raise DataError("Every class needs at least 2 examples for a stratified split")


@dataclass
class DigitsSplit:
    """One stratified split; inputs standardized with the training part's statistics and clipped."""

    X_train: np.ndarray  # (n_train, d) float32
    X_test: np.ndarray  # (n_test, d) float32
    y_train: np.ndarray  # (n_train,) int64
    y_test: np.ndarray  # (n_test,) int64
    X_test_raw: np.ndarray  # (n_test, d) the test images' pixels
    scaler: StandardScaler

    def to_pixels(self, Z: np.ndarray) -> np.ndarray:
        """Standardized vectors (n, d) back to pixels, clipped to the test images' range."""
        return np.clip(self.scaler.inverse_transform(Z), self.X_test_raw.min(), self.X_test_raw.max())


def split_digits(task: DigitsTask, test_size: float, clip: float, split_seed: int) -> DigitsSplit:
    Xtr, Xte, ytr, yte = train_test_split(task.X, task.y, test_size=test_size, stratify=task.y,
                                          random_state=split_seed)
    scaler = StandardScaler().fit(Xtr)
    # near-constant border pixels explode when standardized: clip them
    std = [np.clip(scaler.transform(Z), -clip, clip).astype(np.float32) for Z in (Xtr, Xte)]
    return DigitsSplit(std[0], std[1], ytr, yte, Xte, scaler)


def test_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, macro recall, macro F1 and one-vs-rest macro ROC-AUC of class probabilities (n, C)."""
    pred = proba.argmax(1)
    return {
        "test_accuracy": float(accuracy_score(y_true, pred)),
        "macro_recall": float(recall_score(y_true, pred, average="macro")),
        "macro_f1": float(f1_score(y_true, pred, average="macro")),
        "roc_auc_ovr": float(roc_auc_score(y_true, proba, multi_class="ovr", labels=np.arange(proba.shape[1]))),
    }


def epoch_batches(X: torch.Tensor, y: torch.Tensor, batch_size: int, noise: float,
                  seed: int) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """The trainer's batch_fn: epochs of ceil(n / batch_size) batches, each epoch a fresh permutation of the
    n rows of X (n, d) (seeded by (seed, epoch)), plus Gaussian input noise from the step's generator, so
    a batch is a pure function of (seed, step) and a resumed run sees the same batches.

    Example:
        >>> batch_fn = epoch_batches(X, y, 64, noise=0.5, seed=0)
        >>> xb, yb = batch_fn(0, step_generator(0, 0))      # (64, d), (64,)
    """
    n = len(X)
    per_epoch = math.ceil(n / batch_size)
    orders: dict[int, torch.Tensor] = {}

    def batch_fn(step: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(step, per_epoch)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        idx = orders[epoch][i * batch_size: (i + 1) * batch_size]
        xb = X[idx]
        if noise > 0:
            xb = xb + noise * torch.randn(xb.shape, generator=g)
        return xb, y[idx]

    return batch_fn
