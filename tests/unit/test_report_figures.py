"""The figures several reports share (report/figures.py) and the series they read (report/series.py)."""

from __future__ import annotations

import base64
import doctest

import numpy as np
import pytest

from emergelab.report import figures as F
from emergelab.report import head_figures as H
from emergelab.report import series as S
from emergelab.runs.names import head_metric


def _png(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return png


def _metrics(n_layers: int = 2, n_heads: int = 2, prefix: str = "") -> dict:
    steps = list(range(0, 101, 10))
    out = {"probe/loss": {"steps": steps, "values": [1.0 - 0.01 * s for s in steps]}}
    for kind in ("induction", "previous_token"):
        for layer in range(n_layers):
            for head in range(n_heads):
                out[head_metric(kind, layer, head, prefix)] = {"steps": steps,
                                                               "values": [0.1 * layer + 0.01 * s * head for s in steps]}
    return out


def test_docstring_examples_hold():
    assert doctest.testmod(S).failed == 0
    assert doctest.testmod(F).failed == 0


def test_head_series_reads_names_written_by_runs_names():
    heads = S.head_series(_metrics())
    assert set(heads) == {"induction", "previous_token"} and set(heads["induction"]) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    steps, values = heads["induction"][(1, 1)]
    assert steps[-1] == 100 and values[-1] == pytest.approx(1.1)
    assert S.head_series(_metrics(prefix="2L"), prefix="2L").keys() == heads.keys()
    assert S.head_series(_metrics(prefix="2L")) == {}  # another prefix is not a head score of this model
    assert S.head_dims(heads) == (2, 2) and S.head_dims(heads, 3, 4) == (3, 4) and S.head_dims({}) == (1, 1)


def test_series_value_at_and_logged_steps():
    m = {"a": {"steps": [0, 10, 20], "values": [1.0, None, 3.0]}, "b": {"steps": [5], "values": [0.0]}}
    steps, values = S.series(m, "a")
    assert np.isnan(values[1]) and S.series(m, "missing")[0].size == 0
    assert S.value_at(steps, values, 18) == 3.0 and S.value_at(steps, values, 5) == 1.0  # ties: the earlier
    assert np.isnan(S.value_at(np.zeros(0), np.zeros(0), 3))
    assert S.logged_steps(m).tolist() == [0, 5, 10, 20] and S.logged_steps({}).size == 0


def test_moments_around_a_phase_change_or_over_training():
    steps = np.arange(0, 1001, 100)
    assert S.moments(steps, {"detected": False}) == [("start", 0.0), ("middle", 500.0), ("end", 1000.0)]
    assert S.moments(steps, {"detected": True, "start_step": 250, "end_step": 600, "steepest_step": None}) == [
        ("before", 200.0), ("during", 425.0), ("after", 1000.0)]
    assert S.moments([], None) == []


def test_window_of_a_stored_phase_change():
    assert F.Window.of({"detected": False, "start_step": None}) is None and F.Window.of(None) is None
    w = F.Window.of({"detected": True, "start_step": 1, "end_step": 5, "steepest_step": 3}, label=None)
    assert (w.start, w.end, w.steepest, w.label) == (1, 5, 3, None)


def test_curve_panels_draw_curves_windows_and_empty_panels():
    curve = F.Curve([0, 10, 20], [1.0, None, 0.5], label="probe")
    panels = [F.Panel("with data", [curve], windows=[F.Window(5, 15, 10), None], hlines=[(0.5, "chance", ":")],
                      ylim=(0, 1)),
              F.Panel("log", [curve], log=True, xlabel="epoch"),
              F.Panel("empty", [F.Curve([], [])])]
    for legend in ("below", "panel", "none"):
        assert len(_png(F.curve_panels(panels, figsize=(9, 3), legend=legend))) > 1000
    # the figures are deterministic: the same data renders the same bytes (reports re-render byte-identically)
    assert F.curve_panels(panels, figsize=(9, 3)) == F.curve_panels(panels, figsize=(9, 3))


def test_head_heatmaps_and_lines():
    heads = S.head_series(_metrics())
    kinds = [("induction", "induction"), ("previous_token", "previous token"), ("absent", "not logged")]
    at = S.moments(S.logged_steps(_metrics()), None)
    _png(H.head_heatmaps(heads, kinds, at, 2, 2, highlight={"induction": [(1, 1)]}))
    assert H.head_heatmaps(heads, [("absent", "x")], at, 2, 2) is None
    assert H.head_heatmaps(heads, kinds, [], 2, 2) is None
    window = F.Window(20, 60, 40)
    by_role = H.head_lines(heads, kinds, window=window, roles={(1, 1): "induction", (0, 1): "previous_token"})
    every_head = H.head_lines(heads, kinds, window=window, ylim=(0, 1.2), width=8)
    assert _png(by_role) != _png(every_head)
    assert H.head_lines(heads, [("absent", "x")]) is None


def test_head_score_axes_are_fixed_to_the_score_range():
    """A flat line must look flat: head scores are fractions, so the axis is [0, 1] whatever the run did."""
    steps = np.array([0.0, 10.0, 20.0])
    flat = {"induction": {(0, 0): (steps, np.array([0.05, 0.051, 0.052]))},
            "previous_token": {(0, 0): (steps, np.array([0.30, 0.31, 0.30]))}}
    fig = H.head_lines_figure(flat, [("induction", "induction"), ("previous_token", "previous token")])
    assert [ax.get_ylim() for ax in fig.axes if ax.get_title()] == [(-0.02, 1.02), (-0.02, 1.02)]
    # a score outside [0, 1] (a different measure) widens the fixed axis to include it, to the next 0.1
    assert H.score_ylim([-0.31, 0.5, 1.24]) == (-0.42, 1.32)
    assert H.score_ylim([0.0, 1.0]) == (-0.02, 1.02) and H.score_ylim([np.nan]) == (-0.02, 1.02)
    wide = {"induction": {(0, 0): (steps, np.array([0.2, 1.15, np.nan]))}}
    ax = H.head_lines_figure(wide, [("induction", "induction")]).axes[0]
    assert ax.get_ylim() == (-0.02, 1.22)
    # a caller's explicit range wins
    ax = H.head_lines_figure(flat, [("induction", "induction")], ylim=(0, 0.5)).axes[0]
    assert ax.get_ylim() == (0, 0.5)
