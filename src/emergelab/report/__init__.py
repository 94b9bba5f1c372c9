"""Self-contained HTML reports (one offline file: inline CSS/JS, base64 PNG figures, escaped text).

Example:
    >>> from emergelab.report import example_report_data, render_induction_report
    >>> html = render_induction_report(example_report_data())
    >>> "http://" in html or "https://" in html
    False
"""

from emergelab.report.figures import fig_to_data_uri
from emergelab.report.html import Section, json_for_script, render_fragment, render_page
from emergelab.report.induction import example_report_data, render_induction_report

__all__ = [
    "Section",
    "example_report_data",
    "fig_to_data_uri",
    "json_for_script",
    "render_fragment",
    "render_induction_report",
    "render_page",
]
