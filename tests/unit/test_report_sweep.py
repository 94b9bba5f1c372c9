"""The sweep report's panels (report/sweep.py): readable titles from summary paths, log axes where the values
span decades, and the page built from a hand-made `SweepTable` (the real sweeps: tests/integration/test_sweep.py)."""

from __future__ import annotations

import doctest
import re

import pytest

from emergelab.emergence.table import SweepTable
from emergelab.report import sweep as R


def test_docstring_examples_of_the_title_and_axis_rules_hold():
    for fn in (R.metric_title, R.log_scale):
        finder = doctest.DocTestFinder().find(fn, globs={"metric_title": R.metric_title, "log_scale": R.log_scale})
        runner = doctest.DocTestRunner()
        for test in finder:
            runner.run(test)
        assert runner.failures == 0 and runner.tries > 0


@pytest.mark.parametrize(("path", "title"), [
    ("fits.x^2.k_10.rmse", "fits, x^2, K=10: RMSE"),
    ("results.0.max_abs_error", "results, first: max abs error"),  # rbf-approx
    ("results.-1.max_abs_error", "results, last: max abs error"),
    ("error_by_k.transformer.-1", "transformer: error at the last k"),  # icl-regression
    ("fresh.error_by_k.transformer.-1", "fresh tasks, transformer: error at the last k"),
    ("task_diversity.distance_to_dmmse", "task diversity: distance to dMMSE"),
    ("final.icl_accuracy", "final: ICL accuracy"),  # icl-classification
    ("final.flip_follows_context", "final: label flips following the context"),
    ("2L.final.repeated_loss", "2-layer model, final: repeated-token loss"),  # induction
    ("at_max_shots.calibrated_accuracy", "at the most shots: calibrated accuracy"),  # icl-eval
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest)"),  # digits
    ("per_split.2.model.test_accuracy", "per split, #3, model: test accuracy"),
    ("a.-3.b", "a, #3 from the end: b"),
])
def test_metric_titles(path, title):
    assert R.metric_title(path) == title


def test_every_experiments_sweep_metrics_get_a_readable_title():
    from emergelab.api import get_experiment, list_experiments

    paths = [p for name, _ in list_experiments() for p in get_experiment(name).sweep_metrics]
    assert len(paths) >= 20
    for p in paths:
        title = R.metric_title(p)
        # no dotted path, no snake_case, no bare list index is left in a title
        assert "_" not in title and "." not in title and not re.search(r"(^|[ ,])-?\d+($|[ ,:])", title), (p, title)


@pytest.mark.parametrize(("values", "log"), [
    ([20, 50, 200], False),  # 10x: linear
    ([20, 2000], True), ([1e-6, 1e-4], True), ([1.0, 100.0], True), ([1.0, 99.0], False),
    ([0.0, 1e-3, 1.0], False), ([-1.0, 1e3], False),  # a log axis cannot show 0 or negatives
    ([True, False], False), (["grid", "kmeans"], False), ([1, "a"], False), ([float("nan"), 1e3, 1.0], False),
    ([], False),
])
def test_log_scale_only_for_positive_numbers_spanning_two_decades(values, log):
    assert R.log_scale(values) is log


def _table(grid: dict, values: dict[str, list]) -> SweepTable:
    xs = grid[next(iter(grid))]
    rows = [{"point": {next(iter(grid)): x}, "run_id": f"r{i}", "status": "completed", "reused": False,
             "values": {m: v[i] for m, v in values.items()}} for i, x in enumerate(xs)]
    return SweepTable("s-1", "rbf-approx", grid, list(values), rows)


def test_panels_have_log_axes_where_values_span_decades_and_readable_titles():
    table = _table({"n_train": [20, 200, 2000]}, {"results.0.max_abs_error": [1e-2, 1e-5, 1e-8],
                                                  "final.icl_accuracy": [0.2, 0.5, 0.9]})
    fig = R.metrics_figure(table)
    err, acc = [ax for ax in fig.axes if ax.get_visible()]
    assert (err.get_yscale(), err.get_xscale()) == ("log", "log")
    assert acc.get_yscale() == "linear"
    assert err.get_title() == "results, first: max abs error"
    assert [t.get_text() for t in err.texts] == ["results.0.max_abs_error"]  # the path, in gray under the title
    assert [t.get_text() for t in err.get_xticklabels()] == ["20", "200", "2000"]
    assert "log scale" in err.get_xlabel()

    narrow = R.metrics_figure(_table({"n_train": [20, 50]}, {"results.0.max_abs_error": [0.5, 0.02]}))
    ax = narrow.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "linear")  # 2.5x and 25x: no decade span
    assert ax.get_xticks().tolist() == [0, 1]  # evenly spaced, in grid order


def test_page_names_each_value_readably_with_its_path():
    html = R.render_sweep_report(_table({"n_train": [20, 200, 2000]}, {"results.-1.max_abs_error": [1e-2, 1e-5, 1e-8]}))
    assert "results, last: max abs error" in html and '<code class="path">results.-1.max_abs_error</code>' in html
    assert "against n_train (log scale" in html
    table = _table({"n_train": [20, 200, 2000]}, {"results.-1.max_abs_error": [1e-2, 1e-5, 1e-8]})
    table.breakthroughness = {"results.-1.max_abs_error": {"all": -1.5}}
    html = R.render_sweep_report(table)
    assert "How sudden is each change?" in html
    assert html.count('<code class="path">results.-1.max_abs_error</code>') == 2  # the table and the B table
