"""Self-contained HTML reports (one offline file: inline CSS/JS, base64 PNG figures, escaped text).

Reports only format: every number comes from a run's summary or store, through the one formatter `fmt`.
Each experiment's report is one module here with one page function, `render_<experiment>_report(data) -> str`;
`data` is what the experiment's `report_data(store, run)` reads from the store (its module docstring lists the
keys), and `experiments.kit.register` composes the two into the experiment's `report(store, run)`.

Example:
    >>> from emergelab.report import fmt, render_induction_report
    >>> html = render_induction_report(report_data(store, run))
    >>> "http://" in html or "https://" in html
    False
    >>> fmt(6.39e-4), fmt(1300), fmt(None)
    ('6.39e-04', '1,300', '—')
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "fig_to_data_uri": ".figures",
    "fmt": ".format",
    **dict.fromkeys(["Section", "json_for_script", "render_fragment", "render_page"], ".html"),
    "render_induction_report": ".induction",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
