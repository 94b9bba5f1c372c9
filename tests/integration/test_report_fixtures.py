"""The synthetic report fixtures cannot drift from what real runs hand their reports: a tiny real run of
each experiment with a fixture (a few seconds each) renders its report, and the data dict it rendered
has the fixture's nested keys and leaf types (`tests/fixtures/schema.py`)."""

from __future__ import annotations

import json

import pytest
from fixtures.report_induction import induction_report_data
from fixtures.report_text_attention import text_attention_report_data
from fixtures.schema import diff_schemas

import emergelab.experiments  # noqa: F401  (registers the experiments)
from emergelab import api
from emergelab.registry import experiments
from emergelab.report import induction as induction_report
from emergelab.report import text_attention as text_attention_report
from emergelab.runs.names import split_head_metric

SPORTS = ["the striker scored a late goal", "the keeper saved a penalty", "the team won the final",
          "a goal in extra time", "the match ended in a draw", "fans cheered the winning goal"]
FOOD = ["bake the bread and serve it warm", "simmer the soup for an hour", "the chef roasted the lamb",
        "whisk the eggs and sugar", "fry the onions in butter", "the cake needs more sugar"]


def _metric_kind(name: str) -> str:
    """Metric names matter to the report (it looks them up), head indices do not (model size)."""
    head = split_head_metric(name)
    return f"heads/{head[0]}/L*H*" if head else name


def _rendered_data(monkeypatch, module, function: str, name: str, overrides: list[str], tmp_path) -> dict:
    """Run `name` for real and return the dict its report function was called with (a pass-through spy:
    the report is still rendered and written)."""
    seen = []
    real = getattr(module, function)
    monkeypatch.setattr(module, function, lambda data: seen.append(data) or real(data))
    result = api.run_experiment(name, overrides=overrides, store=tmp_path / "e.db", progress=False)
    assert result.status == "completed" and seen, f"{name}: the report function was not called"
    return json.loads(json.dumps(seen[-1]))  # what the store holds is JSON: compare JSON with JSON


@pytest.mark.slow
def test_induction_fixture_matches_a_real_run(monkeypatch, tmp_path):
    tiny = list(experiments.get("induction").tiny)  # the contract tests' run: seconds
    assert tiny
    real = _rendered_data(monkeypatch, induction_report, "render_induction_report", "induction",
                          [*tiny, "threads=1"], tmp_path)
    fixture = json.loads(json.dumps(induction_report_data()))
    assert list(real["models"]) == list(fixture["models"]) == ["2L", "1L"]
    assert diff_schemas(fixture, real, {"models.*.metrics": _metric_kind}) == []


@pytest.mark.slow
def test_text_attention_fixture_matches_a_real_run(monkeypatch, tmp_path):
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                              for texts, y in ((SPORTS, "sports"), (FOOD, "food")) for t in texts))
    overrides = [f"corpus={corpus}", "encoders=[learned]", "epochs=3", "test_fraction=0.5", "threads=1"]
    real = _rendered_data(monkeypatch, text_attention_report, "render_text_attention_report", "text-attention",
                          overrides, tmp_path)
    fixture = json.loads(json.dumps(text_attention_report_data()))
    # encoders: a map (the tiny run trains one of the fixture's two); top words: keyed by class name
    maps = {"encoders": None, "encoders.*.explain.top_words": None}
    assert diff_schemas(fixture, real, maps) == []


def test_the_schema_check_sees_drift():
    fixture = induction_report_data()
    real = json.loads(json.dumps(fixture))
    real["models"]["2L"]["summary"]["final"]["new_key"] = 1.0
    real["models"]["1L"]["summary"]["phase_change"]["drop"] = "renamed to a string"
    del real["models"]["2L"]["metrics"]["probe/icl_score"]
    diff = diff_schemas(fixture, real, {"models.*.metrics": _metric_kind})
    assert "models.2L.summary.final: keys only the real data has: ['new_key']" in diff
    assert "models.1L.summary.phase_change.drop: fixture holds ['number'], real data ['str']" in diff
    assert "models.2L.metrics: keys only the fixture has: ['probe/icl_score']" in diff
