"""The `rbf-approx` experiment end to end (a few seconds): targets met and its errors exactly as published,
summary.json shaped as documented, the curves the report draws computed by the analysis and stored, the report
rebuilt from the store alone (also after --reanalyze) and opening cleanly in headless Chromium."""

import inspect
import json

import pytest

from emergelab.api import reanalyze_run, render_report, run_experiment
from emergelab.errors import ConfigError
from emergelab.experiments import rbf_approx  # noqa: F401  (registers the experiment)
from emergelab.registry import experiments
from emergelab.report.rbf_approx import render_rbf_approx_report
from emergelab.runs.store import RunStore
from emergelab.sweeps import lookup

# max abs error on the held-out points, as published (README); a refactor must not move them
PUBLISHED = {("x^2", 5): 6.39e-4, ("x^2", 10): 4.27e-5, ("x^2", 20): 2.44e-8,
             ("sin(3x)", 5): 5.76e-2, ("sin(3x)", 10): 4.88e-4, ("sin(3x)", 20): 4.66e-7}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    store = tmp_path_factory.mktemp("rbf") / "e.db"
    return run_experiment("rbf-approx", store=store, progress=False), store


def test_summary_holds_results_and_passing_checks(finished):
    result, _ = finished
    s = json.loads((result.run_dir / "summary.json").read_text())
    assert set(s) >= {"results", "checks"}
    assert [(r["function"], r["k"]) for r in s["results"]] == [
        (fn, k) for fn in ("x^2", "sin(3x)") for k in (5, 10, 20)]
    for r in s["results"]:
        assert set(r) == {"function", "k", "max_abs_error", "rmse"}
        assert 0 < r["rmse"] <= r["max_abs_error"]
    err = {(r["function"], r["k"]): r["max_abs_error"] for r in s["results"]}
    assert {key: float(f"{e:.2e}") for key, e in err.items()} == PUBLISHED
    assert err[("x^2", 10)] <= 1e-4 and err[("x^2", 20)] <= 1e-6
    assert err[("x^2", 5)] > err[("x^2", 10)] > err[("x^2", 20)]
    names = [c["name"] for c in s["checks"]]
    assert any("K=10" in n for n in names) and any("K=20" in n for n in names)
    assert all(set(c) == {"name", "passed", "detail"} and c["passed"] is True for c in s["checks"])


def test_store_holds_every_fit(finished):
    result, store = finished
    with RunStore(store, create=False) as st:
        run = st.get_run(result.run_id)
        assert run.status == "completed" and run.config["k_values"] == [5, 10, 20]
        fit = st.get_result(run.id, "fit/x^2/K20")
        assert len(fit["centers"]) == 20 and len(fit["pred_test"]) == 1000
        steps, values = st.metric_series(run.id, "x^2/max_abs_error")
        assert steps == [5, 10, 20] and values[-1] == fit["max_abs_error"]


def test_analysis_stores_what_the_report_draws(finished):
    result, store = finished
    with RunStore(store, create=False) as st:
        curves = st.get_result(result.run_id, "curves")
        fit = st.get_result(result.run_id, "fit/sin(3x)/K10")
    assert set(curves) == {"x", "x_test", "targets", "fits"} and set(curves["targets"]) == {"x^2", "sin(3x)"}
    n = len(curves["x"])
    assert curves["x"][0] == -1.0 and curves["x"][-1] == 1.0 and len(curves["targets"]["x^2"]) == n
    c = next(c for c in curves["fits"] if (c["function"], c["k"]) == ("sin(3x)", 10))
    assert len(c["fit"]) == n and len(c["basis"]) == 10 and all(len(b) == n for b in c["basis"])
    assert max(c["basis"][0]) <= 1.0 and len(c["abs_error"]) == len(curves["x_test"]) == 1000
    assert max(c["abs_error"]) == pytest.approx(fit["max_abs_error"], rel=1e-3)
    assert max(abs(a - b) for a, b in zip(c["fit"], curves["targets"]["sin(3x)"], strict=True)) < 1e-3
    # the report takes data only: nothing to evaluate (no target functions, no Gaussians) is handed over
    assert list(inspect.signature(render_rbf_approx_report).parameters) == ["data"]


def test_reanalyze_reproduces_summary_and_report(finished, tmp_path):
    result, store = finished
    before = result.report_path.read_bytes()
    redone = reanalyze_run(result.run_id, store=store)
    assert redone.summary == result.summary
    assert redone.report_path.read_bytes() == before


def test_bad_config_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="functions"):
        run_experiment("rbf-approx", overrides=["functions=[x^3]"], store=tmp_path / "e.db", progress=False)
    assert not (tmp_path / "e.db").exists()


@pytest.mark.browser
def test_report_is_rebuilt_from_the_store_and_opens_cleanly(finished, chromium_page):
    result, store = finished
    original = result.report_path.read_text()
    result.report_path.unlink()
    path = render_report(result.run_id, store=store)
    assert path.read_text() == original  # deterministic, and needs nothing but the store

    errors = []
    chromium_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    chromium_page.on("pageerror", lambda e: errors.append(str(e)))
    chromium_page.goto(path.as_uri())
    chromium_page.wait_for_load_state("load")
    assert errors == []
    widths = chromium_page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert len(widths) == 3 and all(w > 0 for w in widths)
    text = chromium_page.inner_text("body")
    assert result.run_id in text and "sin(3x)" in text and "4/4 passed" in text


def test_sweep_metrics_exist_in_the_summary(finished):
    """The summary values `emergelab sweep` tabulates by default are paths that exist."""
    summary = finished[0].summary
    missing = [m for m in experiments.get("rbf-approx").sweep_metrics if lookup(summary, m, KeyError) is KeyError]
    assert missing == []
