"""Handwritten digits: scikit-learn's bundled 8x8 set, or MNIST-style IDX files from a local folder.

IDX (the MNIST file format): big-endian magic `0x00 0x00 <dtype> <ndim>`, then ndim uint32
sizes, then the data. We read unsigned-byte files (dtype 0x08), optionally gzip-compressed.
A folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` (and optionally the `t10k-`
pair, appended); names may end in `.gz`.

Example:
    >>> X, y, shape = load_digits_data()               # (1797, 64) float32 in [0, 16], (1797,), (8, 8)
    >>> X, y, shape = load_digits_data("data/mnist")   # (n, 784) from IDX files, (28, 28)
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

IDX_UBYTE = 0x08


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
