"""Every registered experiment gets these tests by registering with `tiny` overrides (kit.register):
it runs, its summary is JSON-safe and is the one its config declares (`summary_paths()`, what `sweep --metric`
is checked against), its sweep metrics exist in the summary, its report re-renders byte-identically from the
store, and `--reanalyze` reproduces the summary."""

import json
import math

import pytest

import emergelab.experiments  # noqa: F401  (registers the built-in experiments)
from emergelab import api
from emergelab.experiments.configs.schema import compare
from emergelab.registry import experiments
from emergelab.sweeps import lookup
from emergelab.sweeps.run import declared_summary_paths

NAMES = experiments.names()
VOLATILE = ("wall_seconds",)  # timings differ between a run and its reanalysis


def _strip(tree):
    """The summary without timing values (a reanalysis measures no training time)."""
    if isinstance(tree, dict):
        return {k: _strip(v) for k, v in tree.items() if not any(k.startswith(v_) for v_ in VOLATILE)}
    if isinstance(tree, list):
        return [_strip(v) for v in tree]
    return tree


def _finite_json(tree) -> bool:
    if isinstance(tree, float):
        return math.isfinite(tree)
    if isinstance(tree, dict):
        return all(isinstance(k, str) and _finite_json(v) for k, v in tree.items())
    if isinstance(tree, list):
        return all(_finite_json(v) for v in tree)
    return tree is None or isinstance(tree, (str, int, bool))


def test_every_experiment_is_registered():
    assert {"induction", "icl-regression", "icl-classification", "digits", "rbf-approx", "text-attention"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_declared_experiment_registers_its_code_with_the_declared_config(name):
    """`emergelab.experiments` declares each experiment (description, config class) without importing its code;
    the registry imports the module on first use, and the module registers the same config class."""
    declared = experiments.entry(name)
    assert declared.description and declared.module
    exp = experiments.get(name)
    assert exp.config_cls is declared.info["config_cls"] and exp.name == name


@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_has_tiny_overrides(name):
    exp = experiments.get(name)
    assert exp.tiny, f"{name} registers no tiny overrides"
    api.experiment_config(name, overrides=list(exp.tiny) + ["threads=1"])  # they validate


@pytest.fixture(scope="module", params=NAMES)
def finished(request, tmp_path_factory):
    name = request.param
    exp = experiments.get(name)
    if not exp.tiny:
        pytest.skip(f"{name} has no tiny overrides")
    store = tmp_path_factory.mktemp(name) / "e.db"
    result = api.run_experiment(name, overrides=list(exp.tiny) + ["threads=1"], store=store, progress=False)
    return name, store, result


def test_it_runs_and_its_summary_is_json_safe(finished):
    name, _, result = finished
    assert result.status == "completed"
    on_disk = json.loads((result.run_dir / "summary.json").read_text())
    assert on_disk == result.summary
    assert _finite_json(on_disk), f"{name}: summary holds NaN/inf or non-JSON values"
    assert isinstance(on_disk.get("checks", []), list)


def test_its_summary_is_the_declared_one(finished):
    name, _, result = finished
    exp = experiments.get(name)
    declared = declared_summary_paths(exp, api.experiment_config(name, overrides=list(exp.tiny) + ["threads=1"]))
    assert declared, f"{name} declares no summary: give its config a summary_paths() (experiments/configs/schema.py)"
    undeclared, unfound = compare(result.summary, declared)
    assert not undeclared, f"{name}: summary values the experiment does not declare: {undeclared}"
    assert not unfound, f"{name}: declared paths the summary does not hold: {unfound}"


def test_its_sweep_metrics_exist_in_the_summary(finished):
    name, _, result = finished
    metrics = experiments.get(name).sweep_metrics
    assert metrics, f"{name} declares no default sweep metrics"
    missing = [m for m in metrics if lookup(result.summary, m, KeyError) is KeyError]
    assert not missing, f"{name}: sweep metrics not in the summary: {missing}"


def test_its_report_rerenders_byte_identically_from_the_store(finished):
    _, store, result = finished
    before, summary = result.report_path.read_bytes(), (result.run_dir / "summary.json").read_bytes()
    result.report_path.unlink()
    (result.run_dir / "summary.json").unlink()
    again = api.render_report(result.run_id, store=store)
    assert again.read_bytes() == before
    assert (result.run_dir / "summary.json").read_bytes() == summary  # a deleted summary.json comes back


def test_reanalyze_reproduces_the_summary(finished):
    name, store, result = finished
    redone = api.reanalyze_run(result.run_id, store=store)
    assert _strip(redone.summary) == _strip(result.summary), f"{name}: --reanalyze changed the summary"
