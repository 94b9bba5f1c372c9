"""Reduced `digits` runs: the SOM -> RBF -> attention pipeline trains every split through the trainer, keeps
every split's weights, recomputes its analysis from them (`--reanalyze`), resumes a killed run to the same
summary, explains itself, and reads IDX files."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from fixtures.report_digits import digits_report_data
from fixtures.schema import diff_schemas

from emergelab import api, run_experiment
from emergelab.experiments.digits import report_data
from emergelab.runs.store import RunStore
from emergelab.tasks.digits import load_digits_data, write_idx
from emergelab.train.checkpoint import list_checkpoints
from tests.fixtures.live_runs import wait_for_metric_step

SPLITS = [0, 1]
REDUCED = ["split_seeds=[0,1]", "data.max_samples=500", "som.epochs=10", "train.epochs=30", "explain_samples=3",
           "threads=1"]


def without_timings(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.startswith("wall_seconds")}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("digits") / "e.db"
    return store, run_experiment("digits", overrides=REDUCED, store=store, progress=False)


def stored(store, run_id: str, name: str):
    with RunStore(store, create=False) as st:
        return st.get_result(run_id, name)


def test_reduced_run_is_accurate_and_reports_every_metric(finished):
    _, result = finished
    s = json.loads((result.run_dir / "summary.json").read_text())
    assert s["test_accuracy"] >= 0.88 and [p["seed"] for p in s["per_split"]] == SPLITS
    for key in ("macro_recall", "macro_f1", "roc_auc_ovr"):
        assert 0.85 <= s[key] <= 1.0
    assert s["som"]["quantization_error"] > 0 and 0 <= s["som"]["topographic_error"] <= 1
    assert set(s["baselines"]) == set(s["baselines_std"]) == {"logistic_regression", "svm_rbf", "rbf_network"}
    for metrics in s["baselines"].values():
        assert set(metrics) == {"test_accuracy", "macro_recall", "macro_f1", "roc_auc_ovr"}
    assert s["baselines"]["svm_rbf"]["test_accuracy"] >= 0.93
    assert [c["name"] for c in s["checks"]][-1] == "within 1.0 point of the RBF-SVM"


def test_every_split_keeps_its_weights_and_its_telemetry(finished):
    store, result = finished
    steps = 30 * 6  # 30 epochs of ceil(375 / 64) updates
    for seed in SPLITS:
        folder = result.run_dir / "checkpoints" / "splits" / str(seed)
        assert (folder / "som.safetensors").is_file()
        assert [s for s, _ in list_checkpoints(folder)] == [steps]
        with RunStore(store, create=False) as st:
            epochs, acc = st.metric_series(result.run_id, f"splits/{seed}/test/accuracy")
        assert epochs == list(range(31)) and acc[-1] > acc[0]


def test_reanalyze_recomputes_everything_from_the_checkpoints(finished):
    store, result = finished
    explain = stored(store, result.run_id, "explain")
    with RunStore(store, create=False) as st:  # analysis results are recomputed, not read back
        st.delete_results(result.run_id, "explain")
    again = api.reanalyze_run(result.run_id, store=store)
    assert without_timings(again.summary) == without_timings(result.summary)
    assert stored(store, result.run_id, "explain") == explain
    assert again.summary["wall_seconds"] == result.summary["wall_seconds"]  # training time is the stored one


def test_the_report_fixture_has_the_shape_of_real_report_data(finished):
    store, result = finished
    with RunStore(store, create=False) as st:
        real = json.loads(json.dumps(report_data(st, st.get_run(result.run_id))))
    assert diff_schemas(json.loads(json.dumps(digits_report_data())), real) == []


def test_explanations_point_at_prototypes_of_the_predicted_class(finished):
    store, result = finished
    ex = stored(store, result.run_id, "explain")
    assert ex["image_shape"] == [8, 8] and ex["som_shape"] == [10, 10]
    assert len(ex["prototypes"]) == 100 and len(ex["prototypes"][0]) == 64
    hits = np.array(ex["hit_map"])  # (classes, rows, cols) training counts
    importance = np.array(ex["class_importance"])  # (classes, units)
    # the units a class attends to most are units where that class's training images land
    unit_class = hits.reshape(10, -1).argmax(0)
    agree = [unit_class[importance[c].argmax()] == c for c in range(10)]
    assert sum(agree) >= 7
    for sample in ex["samples"]:
        assert len(sample["top_units"]) == 5 and abs(sum(sample["probabilities"]) - 1) < 1e-3
    assert set(ex["embeddings"]) == {"input", "rbf", "pooled"}
    assert ex["silhouette"]["tsne"]["pooled"] > ex["silhouette"]["tsne"]["input"]  # classes separate later on


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "emergelab.cli", *args]


def test_a_killed_run_keeps_finished_splits_and_resumes_to_the_same_summary(finished, tmp_path):
    _, clean = finished
    store = tmp_path / "e.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli("run", "digits", "--no-progress", "--store", str(store),
                                 *sum((["--set", s] for s in REDUCED), [])),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # kill inside the second split, after its checkpoint at epoch 10
    run_id = wait_for_metric_step(store, "splits/1/test/accuracy", 11, proc, timeout=180, poll=0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    run_dir = store.parent / run_id
    first = run_dir / "checkpoints" / "splits" / "0" / "step_00000180.safetensors"
    assert first.is_file() and list_checkpoints(first.parent.parent / "1")[-1][0] in (60, 120)
    kept = first.stat().st_mtime_ns
    resumed = api.resume_run(run_id, store=store, progress=False)
    assert resumed.status == "completed" and first.stat().st_mtime_ns == kept  # the finished split was kept
    assert without_timings(resumed.summary) == without_timings(clean.summary)


def test_idx_folder_and_corrupt_file(tmp_path):
    X, y, _ = load_digits_data()
    data = tmp_path / "idx"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte", X[:600].reshape(-1, 8, 8).astype(np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", y[:600].astype(np.uint8))
    result = run_experiment("digits", overrides=["split_seeds=[0]", "train.epochs=30", "som.epochs=10",
                                                 "explain_samples=1", f"data.path={data}", "baselines=false"],
                            store=tmp_path / "e.db", progress=False)
    assert result.summary["test_accuracy"] >= 0.8 and result.summary["baselines"] == {}

    (data / "train-images-idx3-ubyte").write_bytes(b"")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(_cli("run", "digits", "--store", str(tmp_path / "x.db"), "--set", f"data.path={data}"),
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "empty or truncated" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.db").exists()  # nothing written for bad input
