"""Every experiment declares the summary its runs produce (its config's `summary_paths()`, experiments/configs/
schema.py), so `emergelab sweep --metric` is refused before a sweep runs. The declaration cannot drift: the
experiment contract tests (test_experiments.py) compare it with the summary of each experiment's tiny run, and
the runs here reach the branches those tiny runs do not (named heads and their controls; the Lasso and dMMSE
baselines of a sparse task from a finite pool)."""

import pytest

import emergelab.experiments  # noqa: F401  (declares the built-in experiments)
from emergelab import api
from emergelab.config import ConfigError
from emergelab.experiments.configs.schema import compare, matches
from emergelab.registry import experiments
from emergelab.sweeps import run_sweep
from emergelab.sweeps.grid import check_metrics
from emergelab.sweeps.run import declared_summary_paths

NAMES = experiments.names()
RBF_TINY = ["functions=[x^2]", "k_values=[5]", "n_test=50", "threads=1"]


@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_declares_its_summary_and_its_sweep_metrics_are_in_it(name):
    exp = experiments.get(name)
    paths = declared_summary_paths(exp, api.experiment_config(name))
    assert paths, f"{name} declares no summary: give its config a summary_paths() (experiments/configs/schema.py)"
    assert len(set(paths)) == len(paths), f"{name} declares a path twice"
    undeclared = [m for m in exp.sweep_metrics if not matches(m, paths)]
    assert not undeclared, f"{name}: default sweep metrics outside the declared summary: {undeclared}"


# runs whose summaries hold what the experiments' own tiny runs leave empty or out
VARIANTS = {
    # after 40 steps every head scores about 0.10 (prefix matching) and 0.115 (previous token): these thresholds
    # name one induction head (L0H1) and two previous-token heads (L0H0, L0H1), leaving a control pool of two
    "induction-named-heads": ("induction", ["analysis.induction_threshold=0.1008",
                                            "analysis.previous_token_threshold=0.1162", "model.depths=[2]",
                                            "analysis.control_draws=2"]),
    "icl-regression-sparse-pool": ("icl-regression", ["task.function=sparse", "task.pool_size=4"]),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_real_summary_is_the_declared_one(variant, tmp_path):
    name, overrides = VARIANTS[variant]
    exp = experiments.get(name)
    sets = [*exp.tiny, *overrides, "threads=1"]
    result = api.run_experiment(name, overrides=sets, store=tmp_path / "e.db", progress=False)
    assert result.status == "completed"
    declared = declared_summary_paths(exp, api.experiment_config(name, overrides=sets))
    undeclared, unfound = compare(result.summary, declared)
    assert not undeclared, f"{variant}: summary values its experiment does not declare: {undeclared}"
    assert not unfound, f"{variant}: declared paths its summary does not hold: {unfound}"
    if name == "induction":  # the lists this variant exists for were filled (else retune its thresholds)
        model = result.summary["2L"]
        assert model["induction_heads"] and model["previous_token_heads"], model
        assert model["ablation"]["control"]["pool"] and model["ablation"]["control"]["draws"], model["ablation"]


def test_an_unknown_metric_is_refused_before_the_sweep_creates_anything(tmp_path):
    store = tmp_path / "s" / "e.db"
    with pytest.raises(ConfigError, match=r"'results\.0\.rmsee'.*Did you mean: results\.0\.rmse\b"):
        run_sweep("rbf-approx", ["n_train=20,50"], overrides=RBF_TINY, metrics=["results.0.rmsee"], store=store,
                  progress=False)
    with pytest.raises(ConfigError, match=r"'nosuch'.*Choices: checks\.0\.detail, .*results\.0\.rmse\."):
        run_sweep("rbf-approx", ["n_train=20,50"], overrides=RBF_TINY, metrics=["nosuch"], store=store,
                  progress=False)
    assert not (tmp_path / "s").exists()


def test_a_metric_is_checked_against_every_point_and_a_long_summary_is_named_by_its_sections():
    induction = api.experiment_config("induction").summary_paths()
    one_layer = api.experiment_config("induction", overrides=["model.depths=[1]"]).summary_paths()
    check_metrics("induction", ["2L.final.repeated_loss", "2L.ablation.per_head.-1.first_loss", "2L.final"],
                  [one_layer, induction])  # one point's summary holding it is enough
    with pytest.raises(ConfigError, match="Did you mean: 2L.final.repeated_loss"):
        check_metrics("induction", ["2L.final.repeated_los"], [induction])
    with pytest.raises(ConfigError, match=r"top-level keys: 1L, 2L, checks, wall_seconds"):
        check_metrics("induction", ["nosuch"], [induction])
    with pytest.raises(ConfigError, match="'2L.final.loss'"):
        check_metrics("induction", ["2L.final.loss"], [one_layer])


def test_paths_match_by_value_section_or_any_list_index():
    paths = ["results.*.k", "checks.*.name", "grid.*.*"]
    assert matches("results.0.k", paths) and matches("results.-1.k", paths) and matches("results", paths)
    assert matches("grid.1.-2", paths)
    assert not matches("results.x.k", paths) and not matches("results.0.k.more", paths)
    assert not matches("result", paths) and not matches("checks.0.nam", paths)
    assert compare({"results": [{"k": 5}, {"k": 10, "extra": 1}], "checks": []}, paths) == \
        (["results.*.extra"], ["grid.*.*"])
