"""The one number formatter of every report: `fmt(x, digits, kind)`.

Reports show numbers from summaries and the store, which can be None (not measured), NaN (undefined),
inf, bools, Python or numpy ints and floats from 1e-17 to 1e6. One function turns all of them into
the text of a table cell, a headline or a figure title, so two reports never show one number two ways.
It is also the `fmt` filter of the report templates (`{{ x | fmt(2) }}`).

Kinds:
    auto     ints with thousands separators; floats with `digits` decimals (and thousands separators),
             switching to scientific with `digits` significant digits when fixed decimals would show
             at most one significant digit (0 < |x| < 10**-digits) or it is huge (|x| >= 1e12)
    fixed    always `digits` decimals, never scientific (ints too: fmt(3, 2, "fixed") == "3.00")
    sci      scientific, `digits` decimals in the mantissa: 6.39e-04
    sig      `digits` significant digits, like "%g" with thousands separators
    percent  a fraction shown as percent: 0.975 -> "97.5%"
    seconds  a duration in seconds: "1,234.5 s"

Example:
    >>> fmt(None), fmt(float("nan")), fmt(float("inf")), fmt(True)
    ('—', '—', '∞', 'yes')
    >>> fmt(1300), fmt(0.12345), fmt(0.12345, 2), fmt(6.39e-4), fmt(2.5e-8, 2, "sci")
    ('1,300', '0.123', '0.12', '6.39e-04', '2.50e-08')
    >>> fmt(0.975, 1, "percent"), fmt(184.23, 1, "seconds"), fmt(0.5, 3, sign=True), fmt(1234.5678, 4, "sig")
    ('97.5%', '184.2 s', '+0.500', '1,235')
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

__all__ = ["MISSING", "fmt"]

MISSING = "—"  # what a missing or undefined number reads as, everywhere
Kind = Literal["auto", "fixed", "sci", "sig", "percent", "seconds"]
_KINDS = ("auto", "fixed", "sci", "sig", "percent", "seconds")
_HUGE = 1e12  # auto: beyond this, fixed decimals are a wall of digits


def fmt(x: Any, digits: int = 3, kind: Kind = "auto", *, sign: bool = False, missing: str = MISSING) -> str:
    """`x` as report text; `digits` = decimals (auto, fixed, sci, percent, seconds) or significant digits (sig).

    None and NaN read as `missing`, ±inf as ±∞, bools as yes/no; a string is returned unchanged (a cell
    that already holds text); `sign=True` writes a "+" before positive numbers (differences).

    Example:
        >>> fmt(-0.0421, 2, sign=True), fmt(3, 2, "fixed"), fmt("n/a")
        ('-0.04', '3.00', 'n/a')
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown kind {kind!r}; choices: {', '.join(_KINDS)}")
    if digits < 0:
        raise ValueError("digits must be >= 0")
    if x is None:
        return missing
    if isinstance(x, str):
        return x
    if isinstance(x, bool) or type(x).__name__ == "bool_":  # numpy bool is no numbers.Number
        return "yes" if x else "no"
    if not isinstance(x, numbers.Real):
        if hasattr(x, "item"):  # 0-d numpy arrays and torch scalars
            return fmt(x.item(), digits, kind, sign=sign, missing=missing)
        return str(x)
    plus = "+" if sign else ""
    if isinstance(x, numbers.Integral) and kind in ("auto", "sig"):
        return f"{int(x):{plus},}"
    v = float(x)
    if math.isnan(v):
        return missing
    if math.isinf(v):
        return ("−∞" if v < 0 else (plus + "∞")) + (" s" if kind == "seconds" else "")
    if kind == "percent":
        return f"{100 * v:{plus},.{digits}f}%"
    if kind == "seconds":
        return f"{v:{plus},.{digits}f} s"
    if kind == "sci":
        return f"{v:{plus}.{digits}e}"
    if kind == "sig":
        return f"{v:{plus},.{max(digits, 1)}g}"
    if kind == "auto" and v != 0 and (abs(v) < 10.0**-digits or abs(v) >= _HUGE):
        return f"{v:{plus}.{max(digits - 1, 0)}e}"
    return f"{v:{plus},.{digits}f}"
