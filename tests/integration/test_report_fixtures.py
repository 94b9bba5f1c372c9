"""The synthetic report fixtures cannot drift from what real runs hand their reports: after a tiny real run of
each experiment with a fixture (a few seconds each), the data its report renders (the experiment's
`report_data`, which `kit.register` hands to the report's render function) has the fixture's nested keys and
leaf types (`tests/fixtures/schema.py`)."""

from __future__ import annotations

import json

import pytest
from fixtures.report_induction import induction_report_data
from fixtures.report_text_attention import text_attention_report_data
from fixtures.schema import diff_schemas

import emergelab.experiments  # noqa: F401  (registers the experiments)
from emergelab import api
from emergelab.experiments import induction, text_attention
from emergelab.registry import experiments
from emergelab.runs.names import split_head_metric
from emergelab.runs.store import RunStore

SPORTS = ["the striker scored a late goal", "the keeper saved a penalty", "the team won the final",
          "a goal in extra time", "the match ended in a draw", "fans cheered the winning goal"]
FOOD = ["bake the bread and serve it warm", "simmer the soup for an hour", "the chef roasted the lamb",
        "whisk the eggs and sugar", "fry the onions in butter", "the cake needs more sugar"]


def _metric_kind(name: str) -> str:
    """Metric names matter to the report (it looks them up), head indices do not (model size)."""
    head = split_head_metric(name)
    return f"heads/{head[0]}/L*H*" if head else name


def _rendered_data(module, name: str, overrides: list[str], tmp_path) -> dict:
    """Run `name` for real and return the data its report renders, read back from the store."""
    result = api.run_experiment(name, overrides=overrides, store=tmp_path / "e.db", progress=False)
    assert result.status == "completed" and result.report_path.is_file()
    with RunStore(tmp_path / "e.db", create=False) as store:
        data = module.report_data(store, store.get_run(result.run_id))
    return json.loads(json.dumps(data))  # what the store holds is JSON: compare JSON with JSON


@pytest.mark.slow
def test_induction_fixture_matches_a_real_run(tmp_path):
    tiny = list(experiments.get("induction").tiny)  # the contract tests' run: seconds
    assert tiny
    real = _rendered_data(induction, "induction", [*tiny, "threads=1"], tmp_path)
    fixture = json.loads(json.dumps(induction_report_data()))
    assert list(real["models"]) == list(fixture["models"]) == ["2L", "1L"]
    assert diff_schemas(fixture, real, {"models.*.metrics": _metric_kind}) == []


@pytest.mark.slow
def test_text_attention_fixture_matches_a_real_run(tmp_path):
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                              for texts, y in ((SPORTS, "sports"), (FOOD, "food")) for t in texts))
    overrides = [f"corpus={corpus}", "encoders=[learned]", "epochs=3", "test_fraction=0.5", "threads=1"]
    real = _rendered_data(text_attention, "text-attention", overrides, tmp_path)
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
