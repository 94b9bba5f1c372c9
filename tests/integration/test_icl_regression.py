"""A reduced `icl-regression` run (d = 3, a tiny transformer, a few hundred steps): the transformer already
learns in context (beats averaging at k = 2d), summary.json has the issue's keys, the report is built."""

import json

import pytest

import emergelab.experiments.icl_regression  # noqa: F401  (registers the experiment)
from emergelab.api import run_experiment

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
    assert {c["name"] for c in s["checks"]} and all(isinstance(c["passed"], bool) for c in s["checks"])
    lo, hi = s["interval_90"]["transformer"]["low"][6], s["interval_90"]["transformer"]["high"][6]
    assert lo <= e["transformer"][6] <= hi


def test_report_is_one_offline_page(finished):
    html = (finished.run_dir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "least_squares" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
