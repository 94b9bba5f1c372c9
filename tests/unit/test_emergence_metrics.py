"""BIG-bench breakthroughness on sequences whose answer is known by hand."""

import math

import pytest

from emergelab.emergence.metrics import breakthroughness


def test_straight_line_scores_n_minus_one_with_the_direction_as_sign():
    assert breakthroughness([0.0, 0.25, 0.5, 0.75, 1.0]) == pytest.approx(4.0)
    assert breakthroughness([3.0, 2.0, 1.0]) == pytest.approx(-2.0)  # falls along the sweep


def test_a_jump_scores_higher_than_a_ramp_and_flat_majority_is_infinite():
    ramp = breakthroughness([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    jump = breakthroughness([0.0, 0.01, 0.03, 0.06, 0.9, 1.0])
    assert jump > 3 * ramp
    assert breakthroughness([0.0, 0.0, 0.0, 0.01, 0.9, 0.9]) == math.inf
    assert breakthroughness([1.0, 1.0, 1.0]) == 0.0


def test_needs_three_finite_values():
    with pytest.raises(ValueError, match="at least 3"):
        breakthroughness([0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        breakthroughness([0.0, float("nan"), 1.0])
