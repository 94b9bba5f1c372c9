"""A reduced `icl-regression` run (d = 3, a tiny transformer, a few hundred steps): the transformer already
learns in context (beats averaging at k = 2d), summary.json has the issue's keys, the report is built,
the probe metrics keep their names."""

import json
import os
import subprocess
import sys

import pytest

import emergelab.experiments.icl_regression  # noqa: F401  (registers the experiment)
from emergelab.api import experiment_config, run_experiment
from emergelab.registry import experiments
from emergelab.runs.store import RunStore
from emergelab.sweeps import lookup

REDUCED = [
    "seed=0", "threads=1", "task.d=3", "model.n_layers=2", "model.d_model=32", "model.n_heads=2", "model.d_mlp=64",
    "train.steps=400", "train.batch_size=64", "train.lr=3e-3", "train.warmup_steps=50", "train.log_every=100",
    "train.checkpoint_every=200", "analysis.eval_size=256", "analysis.probe_size=64", "analysis.n_boot=100",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("icl_regression") / "e.db"
    return run_experiment("icl-regression", overrides=REDUCED, store=store, progress=False)


def test_summary_keys_and_transformer_beats_averaging(finished):
    s = json.loads((finished.run_dir / "summary.json").read_text())
    assert s["d"] == 3 and s["k_values"] == list(range(7))
    for name in ("transformer", "least_squares", "ridge", "knn3", "averaging"):
        assert len(s["error_by_k"][name]) == 7, name
    e = s["error_by_k"]
    assert e["transformer"][6] < e["averaging"][6]
    assert e["transformer"][6] < e["transformer"][0]  # it uses the context
    assert max(e["least_squares"][3:]) < 1e-6
    assert s["tracks"]["closest"] in e and s["tracks"]["closest"] != "transformer"
    assert s["fresh"]["error_by_k"] == e  # no pool: the training tasks are the fresh tasks
    assert s["task_diversity"]["distance_to_dmmse"] is None and s["task_diversity"]["distance_to_ridge"] > 0
    assert {c["name"] for c in s["checks"]} and all(isinstance(c["passed"], bool) for c in s["checks"])
    lo, hi = s["interval_90"]["transformer"]["low"][6], s["interval_90"]["transformer"]["high"][6]
    assert lo <= e["transformer"][6] <= hi


def test_report_is_one_offline_page(finished):
    html = (finished.run_dir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "least_squares" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html


def test_finite_task_pool_reports_dmmse_like_behaviour_on_fresh_tasks(tmp_path):
    """Raventós et al.: pretrained on ONE task, the model ignores the context and predicts that task,
    which is what dMMSE over the pool does; ridge is far away on tasks outside the pool."""
    res = run_experiment("icl-regression", store=tmp_path / "e.db", progress=False,
                         overrides=[*REDUCED, "train.steps=200", "task.pool_size=1", "task.noise_std=0.5"])
    s = res.summary
    assert s["pool_size"] == 1 and s["checks"] == []  # the targets are for fresh noiseless tasks
    assert "dmmse" in s["error_by_k"] and "dmmse" in s["fresh"]["error_by_k"]
    td = s["task_diversity"]
    assert td["behaves_like"] == "dmmse" and td["distance_to_dmmse"] < 0.2 * td["distance_to_ridge"], td
    fresh = s["fresh"]["error_by_k"]
    assert fresh["transformer"][6] > 5 * fresh["ridge"][6]  # fails on tasks outside its pool
    assert s["error_by_k"]["transformer"][6] < 0.2 * fresh["transformer"][6]
    html = (res.run_dir / "report.html").read_text()
    assert "Task diversity" in html and "dmmse</b>-like" in html
    missing = [m for m in experiments.get("icl-regression").sweep_metrics if lookup(s, m, KeyError) is KeyError]
    assert missing == []  # with a pool, every default sweep value exists


def test_reanalyze_redoes_summary_from_the_store(finished):
    """`emergelab report RUN --reanalyze` rebuilds summary.json from the store and the final checkpoint."""
    summary_file = finished.run_dir / "summary.json"
    before = json.loads(summary_file.read_text())
    summary_file.write_text("{}")  # a stale or damaged summary
    r = subprocess.run([sys.executable, "-m", "emergelab.cli", "report", finished.run_id, "--reanalyze", "--store",
                        str(finished.run_dir.parent / "e.db")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert json.loads(summary_file.read_text())["error_by_k"] == before["error_by_k"]
    assert "Report:" in r.stdout


def test_probe_metrics_keep_their_names(finished):
    """The report plots probe/err_k{k}; the kit's probe callback logs them with train/loss and train/lr."""
    with RunStore(finished.run_dir.parent / "e.db", create=False) as st:
        names = set(st.metric_names(finished.run_id))
        steps, _ = st.metric_series(finished.run_id, "probe/err_k6")
    assert names == {f"probe/err_k{k}" for k in range(7)} | {"train/loss", "train/lr"}
    assert steps == [0, 100, 200, 300, 400]
    assert finished.summary["wall_seconds"] > 0


def test_one_train_default_changed_keeps_the_others():
    cfg = experiment_config("icl-regression", overrides=["train.steps=5"])
    assert cfg.train.steps == 5 and cfg.train.lr == 1.5e-3 and cfg.train.schedule == "cosine"
    assert cfg.train.weight_decay == 0.0 and cfg.train.log_every == 250 and cfg.device == "auto"
