"""The one number formatter of the reports (`emergelab.report.format.fmt`)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from emergelab.report import format as format_module
from emergelab.report.format import MISSING, fmt
from emergelab.report.html import render_fragment


def test_docstring_examples_hold():
    assert doctest.testmod(format_module).failed == 0


@pytest.mark.parametrize("x", [None, float("nan"), np.float32("nan"), np.nan])
def test_missing_and_undefined_read_as_a_dash(x):
    assert fmt(x) == MISSING == "—"
    assert fmt(x, missing="n/a") == "n/a"


@pytest.mark.parametrize(("x", "digits", "kind", "out"), [
    (float("inf"), 3, "auto", "∞"), (-np.inf, 3, "auto", "−∞"), (float("inf"), 1, "seconds", "∞ s"),
    (True, 3, "auto", "yes"), (np.bool_(False), 3, "auto", "no"),
    (0, 3, "auto", "0"), (1300, 3, "auto", "1,300"), (np.int64(-25000), 3, "auto", "-25,000"),
    (3, 2, "fixed", "3.00"), (3, 1, "percent", "300.0%"), (12, 1, "seconds", "12.0 s"),
    (0.0, 3, "auto", "0.000"), (0.12345, 3, "auto", "0.123"), (1234.5678, 1, "auto", "1,234.6"),
    (np.float32(0.5), 2, "auto", "0.50"), (np.array(0.25), 2, "auto", "0.25"),
    # small floats would read as 0.000 with fixed decimals: scientific instead
    (6.39e-4, 3, "auto", "6.39e-04"), (-4.27e-5, 2, "auto", "-4.3e-05"), (0.0012, 3, "auto", "0.001"),
    (2.5e13, 3, "auto", "2.50e+13"), (6.39e-4, 3, "fixed", "0.001"),
    (6.3859e-4, 2, "sci", "6.39e-04"), (2.44e-8, 2, "sci", "2.44e-08"), (0.0, 2, "sci", "0.00e+00"),
    (1234.5678, 4, "sig", "1,235"), (0.000123456, 4, "sig", "0.0001235"), (1234, 4, "sig", "1,234"),
    (0.975, 1, "percent", "97.5%"), (0.3, 0, "percent", "30%"),
    (184.2345, 1, "seconds", "184.2 s"), (5012.25, 1, "seconds", "5,012.2 s"),
])
def test_kinds(x, digits, kind, out):
    assert fmt(x, digits, kind) == out


def test_sign_marks_differences():
    assert (fmt(0.5, 3, sign=True), fmt(-0.5, 3, sign=True), fmt(0.0, 3, sign=True)) == ("+0.500", "-0.500", "+0.000")
    assert fmt(2, sign=True) == "+2" and fmt(0.25, 1, "percent", sign=True) == "+25.0%"
    assert fmt(None, sign=True) == "—"


def test_text_passes_through_and_bad_arguments_fail():
    assert fmt("L1H0") == "L1H0"
    with pytest.raises(ValueError, match="kind"):
        fmt(1.0, 3, "hex")
    with pytest.raises(ValueError, match="digits"):
        fmt(1.0, -1)


def test_it_is_the_template_filter():
    assert str(render_fragment("_text.html", text=fmt(6.39e-4))) == "<p>6.39e-04</p>"
    from emergelab.report.html import _env

    assert _env().filters["fmt"] is fmt
