"""Reduced `digits` runs: the SOM -> RBF -> attention pipeline learns, explains itself, and reads IDX files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from emergelab import run_experiment
from emergelab.emergence.sweep import lookup
from emergelab.registry import experiments
from emergelab.tasks.digits import load_digits_data, write_idx

REDUCED = ["split_seeds=[0]", "model.epochs=25", "som.epochs=10", "explain_samples=3"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("digits") / "e.db"
    return run_experiment("digits", overrides=REDUCED, store=store, progress=False)


def test_reduced_run_is_accurate_and_reports_every_metric(finished):
    s = json.loads((finished.run_dir / "summary.json").read_text())
    assert s["test_accuracy"] >= 0.9
    for key in ("macro_recall", "macro_f1", "roc_auc_ovr"):
        assert 0.85 <= s[key] <= 1.0
    assert s["som"]["quantization_error"] > 0 and 0 <= s["som"]["topographic_error"] <= 1
    assert set(s["baselines"]) == {"logistic_regression", "svm_rbf", "rbf_network"}
    for metrics in s["baselines"].values():
        assert set(metrics) == {"test_accuracy", "macro_recall", "macro_f1", "roc_auc_ovr"}
    assert s["baselines"]["svm_rbf"]["test_accuracy"] >= 0.95
    assert (finished.run_dir / "som.safetensors").exists() and (finished.run_dir / "model.safetensors").exists()


def test_explanations_point_at_prototypes_of_the_predicted_class(finished):
    from emergelab.runs.store import RunStore

    with RunStore(finished.run_dir.parent / "e.db", create=False) as st:
        ex = st.get_result(finished.run_id, "explain")
    assert ex["image_shape"] == [8, 8] and ex["som_shape"] == [10, 10]
    assert len(ex["prototypes"]) == 100 and len(ex["prototypes"][0]) == 64
    hits = np.array(ex["hit_map"])  # (classes, rows, cols) training counts
    importance = np.array(ex["class_importance"])  # (classes, units)
    # the units a class attends to most are units where that class's training images land
    unit_class = hits.reshape(10, -1).argmax(0)
    agree = [unit_class[importance[c].argmax()] == c for c in range(10)]
    assert sum(agree) >= 8
    for sample in ex["samples"]:
        assert len(sample["top_units"]) == 5 and abs(sum(sample["probabilities"]) - 1) < 1e-3
    assert set(ex["embeddings"]) == {"input", "rbf", "pooled"}


def test_idx_folder_and_corrupt_file(tmp_path):
    X, y, _ = load_digits_data()
    data = tmp_path / "idx"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte", X[:600].reshape(-1, 8, 8).astype(np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", y[:600].astype(np.uint8))
    result = run_experiment("digits", overrides=[*REDUCED, f"data.path={data}", "baselines=false"],
                            store=tmp_path / "e.db", progress=False)
    assert result.summary["test_accuracy"] >= 0.8 and result.summary["baselines"] == {}

    (data / "train-images-idx3-ubyte").write_bytes(b"")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "emergelab.cli", "run", "digits", "--store", str(tmp_path / "x.db"),
                        "--set", f"data.path={data}"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "empty or truncated" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.db").exists()  # nothing written for bad input


def test_sweep_metrics_exist_in_the_summary(finished):
    """The summary values `emergelab sweep` tabulates by default are paths that exist."""
    summary = finished.summary
    missing = [m for m in experiments.get("digits").sweep_metrics if lookup(summary, m, KeyError) is KeyError]
    assert missing == []
