"""Generic, safe building blocks for self-contained HTML reports.

Every report is ONE file that must open offline: no CDN, no fetches. CSS and JS are read from
``report/templates`` and inlined; data for scripts is embedded as ``<script type="application/json">``
via :func:`json_for_script`. Jinja2 runs with autoescape on, so any string that reaches the page is
escaped unless it is explicitly :class:`markupsafe.Markup` produced by our own templates.

Example:
    >>> from emergelab.report.html import Section, render_page, render_fragment
    >>> body = render_fragment("_text.html", text="<b>not bold</b>")
    >>> page = render_page("Demo", [Section("intro", "Intro", body)], meta={"run": "r1"})
    >>> "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold" not in page
    True
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from emergelab.report.format import MISSING, fmt

__all__ = ["Section", "checks_section", "config_section", "config_text", "json_for_script", "provenance_rows",
           "render_fragment", "render_page", "render_run_page", "read_asset", "resumed_text", "run_meta", "to_jsonable",
           "wall_rows"]

TEMPLATE_PACKAGE = "emergelab.report"
TEMPLATE_DIR = "templates"


@dataclass(frozen=True)
class Section:
    """One titled section of a report page.

    ``body`` must be :class:`Markup` (output of :func:`render_fragment`); a plain ``str`` is escaped,
    which is the safe failure mode if a caller forgets.

    Example:
        >>> Section("loss", "Loss curves", Markup("<p>ok</p>")).id
        'loss'
    """

    id: str
    title: str
    body: Markup | str
    lead: str | None = None  # one-sentence plain-language intro shown under the heading
    extra: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    # autoescape for every template (our fragments are .html, but be explicit: select_autoescape would
    # leave unknown extensions unescaped). StrictUndefined turns typos into errors instead of blanks.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt  # the one number formatter, also in templates
    env.filters["json_script"] = json_for_script
    return env


def read_asset(name: str) -> str:
    """Return the text of a static asset (CSS/JS) shipped in ``report/templates``.

    Example:
        >>> "body" in read_asset("report.css")
        True
    """
    return resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR, name).read_text(encoding="utf-8")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into strict-JSON-safe values.

    NaN/inf become ``None`` because ``JSON.parse`` rejects the ``NaN`` literal Python would emit.

    Example:
        >>> to_jsonable({"a": (1, float("nan"))})
        {'a': [1, None]}
    """
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(obj.tolist())
    if isinstance(obj, Sequence | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    return str(obj)


def json_for_script(obj: Any) -> Markup:
    """Serialise ``obj`` for a ``<script type="application/json">`` element.

    ``<``, ``>`` and ``&`` become ``\\u003c``/``\\u003e``/``\\u0026`` so no string value can close the
    script element (``</script>``) or open a comment (``<!--``); JSON.parse restores them. U+2028/9 are
    escaped too so the text is also valid if someone pastes it into JS source.

    Example:
        >>> str(json_for_script({"t": "</script>&"}))
        '{"t": "\\\\u003c/script\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(to_jsonable(obj), ensure_ascii=False, allow_nan=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return Markup(text)  # safe by construction: no markup characters remain


def render_fragment(template: str, **context: Any) -> Markup:
    """Render a template fragment (autoescaped) and mark the result safe for embedding in a page.

    Example:
        >>> str(render_fragment("_text.html", text="a < b"))
        '<p>a &lt; b</p>'
    """
    return Markup(_env().get_template(template).render(**context).strip())


def render_page(
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: str | None = None,
    meta: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    scripts: Sequence[str] = (),
    styles: Sequence[str] = ("report.css",),
) -> str:
    """Render a complete, self-contained HTML document.

    Args:
        title: page and header title.
        sections: rendered in order; each gets an anchor and a nav link.
        subtitle: small line under the title (e.g. the experiment description).
        meta: key/value chips in the header (run id, status, ...), all escaped.
        data: ``{element_id: obj}`` embedded as ``<script type="application/json" id=...>``.
        scripts / styles: asset file names in ``report/templates`` to inline.

    Example:
        >>> html = render_page("T", [], data={"d": {"x": "</script>"}})
        >>> "</script>\\"" in html, html.count("<script") == html.count("</script>")
        (False, True)
    """
    return (
        _env()
        .get_template("page.html")
        .render(
            title=title,
            subtitle=subtitle,
            sections=list(sections),
            meta=dict(meta or {}),
            data=dict(data or {}),
            css=Markup("\n".join(read_asset(s) for s in styles)),
            # Inline JS is ours (static files), never user data; "</" cannot appear in it by convention,
            # which we enforce so a stray string literal cannot end the element early.
            js=[Markup(_checked_js(read_asset(s))) for s in scripts],
        )
    )


def _checked_js(src: str) -> str:
    # "<script" matters too: after a "<!--" it switches the HTML parser into double-escaped mode
    if "<script" in src.lower() or "</script" in src.lower() or "<!--" in src:
        raise ValueError("inline script asset must not contain '<script', '</script' or '<!--'")
    return src


def config_text(config: Any) -> str:
    """A config (nested dict) as readable YAML for the report."""
    import yaml

    return yaml.safe_dump(to_jsonable(config), sort_keys=False, allow_unicode=True, width=100).strip()


def _utc_minute(stamp: Any) -> str:
    """'2026-12-02T08:10:33+00:00' -> '2026-12-02 08:10 UTC' (anything else as it is)."""
    try:
        t = dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _resume_point(resume: Mapping[str, Any]) -> str:
    """' from step 400' / ' from 1L step 400' / '' when the step is not known."""
    step = resume.get("from_step")
    if step is None:
        return ""
    label = resume.get("label")
    return f" from {label} step {step}" if label else f" from step {step}"


def resumed_text(resumes: Sequence[Mapping[str, Any]] | None) -> str | None:
    """How often a run was resumed, and the last time: '2x (last 2026-12-02 08:10 UTC from step 400)'; None
    for a run never resumed.

    Example:
        >>> resumed_text([{"at": "2026-12-02T08:10:05+00:00", "from_step": 400, "label": ""}])
        '1x (last 2026-12-02 08:10 UTC from step 400)'
    """
    if not resumes:
        return None
    last = resumes[-1]
    return f"{len(resumes)}x (last {_utc_minute(last.get('at'))}{_resume_point(last)})"


def provenance_rows(run: Mapping[str, Any], extra: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, str]]:
    """(key, value) rows: run id, experiment, status, version, git commit, seed, config hash, times, each resume
    (for a resumed run), + extra."""
    resumes = run.get("resumes") or []
    resumed = [("resumed", "; ".join(f"{_utc_minute(r.get('at'))}{_resume_point(r)}" for r in resumes))
               ] if resumes else []
    rows = [
        ("run id", run.get("id")),
        ("experiment", run.get("experiment")),
        ("status", run.get("status")),
        ("emergelab version", run.get("version")),
        ("git commit", run.get("git_commit") or "unknown"),
        ("seed", run.get("seed")),
        ("config hash", run.get("config_hash")),
        ("started", run.get("started_at")),
        ("ended", run.get("ended_at") or "not finished"),
        *resumed,
        *extra,
    ]
    return [(k, MISSING if v is None else str(v)) for k, v in rows]


def wall_rows(times: Mapping[str, Any], digits: int = 1) -> list[tuple[str, str]]:
    """Provenance rows {label: seconds} -> [(label, "1.2 s")], leaving out the times a run did not record.

    Example:
        >>> wall_rows({"wall time": 1.234, "analysis": None})
        [('wall time', '1.2 s')]
    """
    return [(label, fmt(float(s), digits, "seconds")) for label, s in times.items() if s is not None]


def run_meta(run: Mapping[str, Any], checks: Sequence[Mapping[str, Any]],
             extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The header chips of every run report: run, status, how often it was resumed (a resumed run only), seed,
    version, commit, the report's own `extra`, then how many target checks passed."""
    commit = run.get("git_commit")
    n_pass = sum(bool(c.get("passed")) for c in checks)
    resumed = resumed_text(run.get("resumes"))
    return {"run": run.get("id", "—"), "status": run.get("status", "—"), **({"resumed": resumed} if resumed else {}),
            "seed": run.get("seed", "—"), "version": run.get("version", "—"),
            "commit": str(commit)[:10] if commit else "unknown",
            **(extra or {}), "checks": f"{n_pass}/{len(checks)} passed" if checks else "none"}


def checks_section(checks: Sequence[Mapping[str, Any]], lead: str, title: str = "Acceptance checks",
                   **fragment: Any) -> Section:
    """The section of a run's checks (`checks.html`: how many passed, one row per check); `fragment` passes
    the template's options, e.g. `empty_text` for a run where no check applies."""
    n_pass = sum(bool(c.get("passed")) for c in checks)
    return Section("checks", title, render_fragment("checks.html", checks=checks, n_pass=n_pass, **fragment),
                   lead=lead)


def config_section(run: Mapping[str, Any], config: Any, extra: Sequence[tuple[str, Any]] = ()) -> Section:
    """The last section of every report: provenance next to the config."""
    body = render_fragment("provenance.html", provenance=provenance_rows(run, extra), config_text=config_text(config))
    return Section("config", "Config and provenance", body)


def render_run_page(title: str, report: Mapping[str, Any], sections: Sequence[Section], *,
                    provenance: Sequence[tuple[str, Any]] = (), **page: Any) -> str:
    """The page of one run's report: `sections`, then the run's config and provenance (`config_section` of
    the report data's `run` and `config`, plus the `provenance` rows); `page` goes to `render_page`
    (subtitle, meta, data, scripts, styles)."""
    config = config_section(report.get("run") or {}, report.get("config") or {}, provenance)
    return render_page(title, [*sections, config], **page)
