"""A reduced `icl-classification` run (about 15 s): summary keys and ranges, training moved the probes,
and the report is rebuilt from the store alone."""

import json

import pytest

import emergelab.experiments.icl_classification  # noqa: F401  (registers the experiment)
from emergelab import render_report, run_experiment
from emergelab.api import experiment_config
from emergelab.registry import experiments
from emergelab.runs.store import RunStore
from emergelab.sweeps import lookup

REDUCED = [
    "seed=0", "threads=1", "task.n_classes=64", "task.dim=31", "model.d_model=32", "train.steps=300",
    "train.batch_size=64", "train.log_every=50", "train.checkpoint_every=150", "analysis.probe_size=128",
    "analysis.eval_size=256",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("icl_cls") / "e.db"
    return run_experiment("icl-classification", overrides=REDUCED, store=store, progress=False), store


def test_summary_keys_and_ranges(finished):
    result, _ = finished
    s = json.loads((result.run_dir / "summary.json").read_text())
    assert set(s["final"]) >= {"icl_accuracy", "iwl_accuracy", "flip_follows_context", "flip_follows_weights"}
    assert all(0 <= v <= 1 for v in s["final"].values())
    assert set(s["phase_change"]) >= {"detected", "start_step", "end_step", "reason"}
    assert s["checks"] and all({"name", "passed", "detail"} <= set(c) for c in s["checks"])
    assert len(s["head_scores_final"]["induction"]) == 2 and len(s["head_scores_final"]["induction"][0]) == 2
    assert all(0 <= v <= 1 for grid in s["head_scores_final"].values() for row in grid for v in row)


def test_training_ran_and_beat_chance(finished):
    result, store = finished
    s = result.summary
    # with only 64 classes, 300 steps memorise class -> label well above chance (1/32)
    assert s["final"]["iwl_accuracy"] > 4 * s["chance"]
    assert s["final"]["flip_follows_weights"] > 2 * s["chance"]
    with RunStore(store, create=False) as st:
        steps, loss = st.metric_series(result.run_id, "train/loss")
        assert steps[-1] == 300 and loss[-1] < loss[0]
        steps, icl = st.metric_series(result.run_id, "probe/icl_accuracy")
        assert steps[0] == 0 and icl[-1] > icl[0]


def test_report_from_store(finished):
    result, store = finished
    html = (result.run_dir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "In-context vs in-weights" in html
    assert html.count("data:image/png;base64") >= 2
    again = render_report(result.run_id, store=store).read_text()
    assert again.startswith("<!DOCTYPE html>")


def test_sweep_metrics_exist_in_the_summary(finished):
    """The summary values `emergelab sweep` tabulates by default are paths that exist."""
    summary = finished[0].summary
    metrics = experiments.get("icl-classification").sweep_metrics
    missing = [m for m in metrics if lookup(summary, m, KeyError) is KeyError]
    assert missing == []


def test_metric_names_are_the_reports(finished):
    """probe/{accuracy} and heads/{kind}/L{l}H{h} on the transformer inside the wrapper (2 layers x 2 heads)."""
    result, store = finished
    with RunStore(store, create=False) as st:
        names = set(st.metric_names(result.run_id))
    heads = {f"heads/{kind}/L{layer}H{head}" for kind in ("previous_token", "induction") for layer in (0, 1)
             for head in (0, 1)}
    probes = {f"probe/{k}" for k in ("icl_accuracy", "iwl_accuracy", "flip_follows_context", "flip_follows_weights")}
    assert names == heads | probes | {"train/loss", "train/lr"}


def test_one_train_default_changed_keeps_the_others():
    cfg = experiment_config("icl-classification", overrides=["train.steps=5"])
    assert cfg.train.steps == 5 and cfg.train.batch_size == 128 and cfg.train.lr == 3e-3
    assert cfg.train.warmup_steps == 100 and cfg.train.checkpoint_every == 500 and cfg.device == "auto"
