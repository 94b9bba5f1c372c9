"""tensorfile: the one reader/writer of safetensors files (checkpoints, estimators, caches)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import emergelab.tensorfile
from emergelab.errors import StoreError
from emergelab.tensorfile import read_safetensors, read_safetensors_metadata, write_safetensors


def test_round_trip_with_metadata_on_the_cpu(tmp_path):
    t = {"w": torch.arange(6.0).reshape(2, 3).t(), "i": torch.tensor([1, 2], dtype=torch.long)}  # w: a view
    path = write_safetensors(tmp_path / "sub" / "x.safetensors", t, {"note": "hi"})
    tensors, meta = read_safetensors(path, device="cpu")
    assert meta == {"note": "hi"} and read_safetensors_metadata(path) == {"note": "hi"}
    assert torch.equal(tensors["w"], t["w"]) and tensors["i"].dtype == torch.long
    assert all(v.device.type == "cpu" for v in tensors.values())
    assert [p.name for p in path.parent.iterdir()] == ["x.safetensors"]  # no temp file left behind


def test_missing_and_corrupt_files_are_one_line_store_errors(tmp_path):
    with pytest.raises(StoreError, match=r"^Model file '.*nope.safetensors' does not exist$"):
        read_safetensors(tmp_path / "nope.safetensors", what="Model file")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    for read in (read_safetensors, read_safetensors_metadata):
        with pytest.raises(StoreError, match="corrupt or not a safetensors file") as info:
            read(bad)
        assert "\n" not in str(info.value)


def test_the_module_is_a_leaf():
    """It must not pull in the trainer, models or the store (estimator.py imports it)."""
    tree = ast.parse(Path(emergelab.tensorfile.__file__).read_text())
    local = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0}
    assert local <= {"errors", "runs.atomic"}, local
