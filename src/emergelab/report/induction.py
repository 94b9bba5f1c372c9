"""Self-contained HTML report for the ``induction`` experiment (Olsson et al. 2022 reproduction).

The report shows, in order: a plain-language headline with the target checks; probe loss curves
(first occurrences vs repeated tokens) with the phase-change window; the ICL score; head-score heatmaps
before/during/after the phase change and head scores over training; an interactive attention viewer;
the ablation tables (induction heads, a control of heads outside the circuit, each head
alone); the config and provenance.

Input is a plain ``dict`` (contract in :func:`render_induction_report`) that
``experiments.induction.report_data`` builds from the run store; this module only formats it.

Example:
    >>> html = render_induction_report(report_data(store, run))
    >>> html.startswith("<!DOCTYPE html>") and "Attention viewer" in html
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emergelab.report import figures as F
from emergelab.report import head_figures as H
from emergelab.report import series as S
from emergelab.report.format import fmt
from emergelab.report.html import Section, render_fragment, render_run_page, run_meta, wall_rows
from emergelab.report.induction_ablation import _head_list, _summary, ablation_view
from emergelab.runs.names import head_name

__all__ = ["render_induction_report"]

HEAD_KINDS = ("prefix_matching", "induction", "previous_token", "duplicate_token")
KIND_TITLES = {
    "prefix_matching": "prefix matching",
    "induction": "induction (copying)",
    "previous_token": "previous token",
    "duplicate_token": "duplicate token",
}
ROLE_ORDER = {"induction": 0, "previous_token": 1, "other": 2}

TITLE = "Induction heads and the in-context learning phase change"
SUBTITLE = (
    "Reproduction of Olsson et al. (2022), “In-context learning and induction heads”: a 2-layer "
    "attention-only transformer should form induction heads in a sudden phase change, visible as a "
    "drop in loss on repeated tokens; a 1-layer control should not."
)


# --------------------------------------------------------------------------------------------------
# data access (tolerant: a missing metric yields an empty series, never an exception)


def _phase(model: Mapping[str, Any]) -> dict[str, Any]:
    pc = dict(_summary(model).get("phase_change") or {})
    pc.setdefault("detected", False)
    for key in ("start_step", "end_step", "steepest_step", "drop"):
        pc.setdefault(key, None)
    return pc


def _moments(model: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Before / during / after the phase change, else start / middle / end of training."""
    return S.moments(S.logged_steps(model.get("metrics") or {}), _phase(model))


def _heads_of(summary: Mapping[str, Any], key: str) -> list[tuple[int, int]]:
    return [(h["layer"], h["head"]) for h in _head_list(summary, key)]


# --------------------------------------------------------------------------------------------------
# figures


def _window(model: Mapping[str, Any], **kw: Any) -> F.Window | None:
    return F.Window.of(_phase(model), **kw)


def _fig_losses(models: Mapping[str, Mapping[str, Any]]) -> str:
    panels = []
    for i, (label, model) in enumerate(models.items()):
        metrics = model.get("metrics") or {}
        curves = [F.Curve(*S.series(metrics, name), label=text, color=color, lw=lw, alpha=alpha)
                  for name, color, lw, alpha, text in (
                      ("train/loss", F.TRAIN_COLOR, 0.9, 0.45, "train loss"),
                      ("probe/first_loss", F.FIRST_COLOR, 1.7, 1.0, "first occurrence"),
                      ("probe/repeated_loss", F.REPEAT_COLOR, 1.9, 1.0, "repeated token"))]
        status = "phase change" if _phase(model)["detected"] else "no phase change"
        panels.append(F.Panel(f"{label} · {model.get('n_layers', '?')} layer(s) — {status}", curves,
                              windows=[_window(model)], ylabel="probe loss (nats / token)" if i == 0 else None))
    # overlay panel: repeated-token loss of every model on the same axes, the key comparison
    overlay, windows = [], []
    for i, (label, model) in enumerate(models.items()):
        color, metrics = F.MODEL_COLORS[i % len(F.MODEL_COLORS)], model.get("metrics") or {}
        overlay += [F.Curve(*S.series(metrics, "probe/repeated_loss"), label=f"{label} repeated", color=color, lw=1.9),
                    F.Curve(*S.series(metrics, "probe/first_loss"), label=f"{label} first", color=color, lw=1.0,
                            ls=":")]
        windows.append(_window(model, color=color, label=None))
    panels.append(F.Panel("all models: repeated (solid) vs first (dotted)", overlay, windows=windows))
    # one legend under the panels: inside any panel it would sit on top of a curve
    return F.curve_panels(panels, figsize=(4.0 * len(panels), 3.8), sharey=True, legend="below")


def _fig_icl(models: Mapping[str, Mapping[str, Any]]) -> str:
    curves, windows = [], []
    for i, (label, model) in enumerate(models.items()):
        color = F.MODEL_COLORS[i % len(F.MODEL_COLORS)]
        curves.append(F.Curve(*S.series(model.get("metrics") or {}, "probe/icl_score"), label=label, color=color))
        windows.append(_window(model, color=color, label=None))
    panel = F.Panel("", curves, windows=windows, hlines=[(0.0, None, "-")], ylabel="ICL score")
    return F.curve_panels([panel], figsize=(10.0, 2.7))


def _fig_head_heatmaps(model: Mapping[str, Any]) -> str | None:
    heads = S.head_series(model.get("metrics") or {})
    n_layers, n_heads = S.head_dims(heads, model.get("n_layers"), model.get("n_heads"))
    summary = _summary(model)
    return H.head_heatmaps(heads, [(k, KIND_TITLES[k]) for k in ("prefix_matching", "previous_token")],
                           _moments(model), n_layers, n_heads,
                           highlight={"prefix_matching": _heads_of(summary, "induction_heads"),
                                      "previous_token": _heads_of(summary, "previous_token_heads")})


def _fig_head_lines(model: Mapping[str, Any]) -> str | None:
    summary = _summary(model)
    roles = dict.fromkeys(_heads_of(summary, "induction_heads"), "induction")
    for key in _heads_of(summary, "previous_token_heads"):
        roles.setdefault(key, "previous_token")
    return H.head_lines(S.head_series(model.get("metrics") or {}), [(k, KIND_TITLES[k]) for k in HEAD_KINDS],
                        window=_window(model, label=None), roles=roles)


# --------------------------------------------------------------------------------------------------
# section content


def _model_facts(label: str, model: Mapping[str, Any]) -> dict[str, Any]:
    """Plain-language facts for the headline card; strings here are escaped by the template."""
    summary = _summary(model)
    pc = _phase(model)
    final = dict(summary.get("final") or {})
    if pc["detected"]:
        phase = (
            f"Phase change between steps {fmt(pc['start_step'], 2)} and {fmt(pc['end_step'], 2)}"
            f" (steepest at step {fmt(pc['steepest_step'], 2)}); repeated-token loss fell by"
            f" {fmt(pc['drop'], 2)} nats."
        )
    else:
        phase = "No phase change detected: the repeated-token loss never dropped suddenly."
    facts = [phase]
    if final:
        rep, fst, icl = (fmt(final.get(k), 2) for k in ("repeated_loss", "first_loss", "icl_score"))
        facts.append(
            f"Final probe loss {fmt(final.get('loss'), 2)}: {rep} on repeated tokens vs {fst} on first"
            f" occurrences (ICL score {icl})."
        )
    abl = dict(summary.get("ablation") or {})
    ind = _head_list(summary, "induction_heads")
    if abl and abl.get("heads"):
        clean, ablated = (fmt(abl.get(k), 2) for k in ("clean_repeated_loss", "ablated_repeated_loss"))
        ctl = dict(abl.get("control") or {})
        if ctl.get("repeated_loss") is not None:
            sets, n = len(ctl.get("draws") or []), ctl.get("n_heads")
            how = (f"mean of {sets} sets" if sets > 1 else
                   f"fewer than the {len(abl['heads'])} induction heads" if ctl.get("choice") == "fewer_heads" else "")
            control = (f"; ablating {n} head{'s' if n != 1 else ''} outside the induction circuit instead (control"
                       f"{f'; {how}' if how else ''}): {fmt(ctl.get('repeated_loss'), 2)}")
        else:
            control = f"; no control ablation: {ctl.get('how') or 'none recorded'}"
        facts.append(f"Ablating the induction heads raises repeated-token loss from {clean} to {ablated}{control}.")
    elif ind:
        facts.append("No ablation results recorded.")
    return {
        "label": label,
        "n_layers": model.get("n_layers"),
        "n_heads": model.get("n_heads"),
        "detected": bool(pc["detected"]),
        "facts": facts,
        "induction_heads": [{"name": head_name(h["layer"], h["head"]), "score": h.get("score")} for h in ind],
        "previous_token_heads": [
            {"name": head_name(h["layer"], h["head"]), "score": h.get("score")}
            for h in _head_list(summary, "previous_token_heads")
        ],
        "wall_seconds": summary.get("wall_seconds"),
    }


def _attention_payload(models: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out = []
    for label, model in models.items():
        ex = dict(model.get("example") or {})
        heads = sorted(
            (dict(h) for h in ex.get("heads") or []),
            key=lambda h: (ROLE_ORDER.get(h.get("role", "other"), 3), h.get("layer", 0), h.get("head", 0)),
        )
        out.append(
            {
                "label": label,
                "tokens": [str(t) for t in ex.get("tokens") or []],
                "repeat": ex.get("repeat") or None,
                "heads": [
                    {
                        "name": head_name(h["layer"], h["head"]),
                        "role": str(h.get("role") or "other"),
                        # 4 decimals is far below what a colour can show and keeps the file small
                        "pattern": np.round(np.asarray(h.get("pattern") or [], dtype=float), 4),
                    }
                    for h in heads
                ],
            }
        )
    return {"models": out}


# --------------------------------------------------------------------------------------------------
# public API


def render_induction_report(data: Mapping[str, Any]) -> str:
    """Render the full self-contained HTML report of an ``induction`` run.

    ``data`` keys: ``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version,
    git_commit), ``config`` (nested dict), ``models`` (ordered ``{label: {n_layers, n_heads, metrics,
    summary, example}}``; ``metrics`` is ``{name: {steps, values}}`` without the model's prefix,
    ``summary`` the model's part of summary.json) and ``checks`` (``[{name, passed, detail}]``).
    ``tests/fixtures/report_induction.py`` holds a complete instance, checked against a real run's.
    Missing optional pieces render as "no data".

    Example:
        >>> html = render_induction_report(report_data(store, run))
        >>> "<script>alert(1)</script>" in html  # example tokens are escaped text
        False
    """
    run = dict(data.get("run") or {})
    models = {str(k): dict(v) for k, v in (data.get("models") or {}).items()}
    checks = [dict(c) for c in data.get("checks") or []]
    model_labels = list(models)
    analysis = dict(dict(data.get("config") or {}).get("analysis") or {})

    cards = [_model_facts(label, m) for label, m in models.items()]
    n_pass = sum(bool(c.get("passed")) for c in checks)
    headline = render_fragment("induction_headline.html", cards=cards, checks=checks, n_pass=n_pass)

    loss = render_fragment(
        "figure.html",
        figures=[
            {
                "src": _fig_losses(models),
                "alt": "Probe loss curves per model: first occurrence vs repeated tokens",
                "caption": (
                    "Probe loss on tokens seen for the first time (blue; unpredictable from context) and on "
                    "repeated tokens (orange; predictable by copying what followed the earlier occurrence), "
                    "with the training loss faint in gray. Shaded: detected phase-change window; dashed: "
                    "steepest step. The last panel overlays all models."
                ),
            }
        ],
    )
    icl = render_fragment(
        "figure.html",
        figures=[
            {
                "src": _fig_icl(models),
                "alt": "In-context learning score over training",
                "caption": (
                    "probe/icl_score as logged by the experiment, per model; shaded: phase-change windows."
                ),
            }
        ],
    )
    head_figs = []
    for label, model in models.items():
        heat, lines = _fig_head_heatmaps(model), _fig_head_lines(model)
        moments = ", ".join(f"{name} = step {fmt(step, 0, 'fixed')}" for name, step in _moments(model))
        head_figs.append(
            {
                "label": label,
                "heat": heat,
                "lines": lines,
                "moments": moments,
                "detected": _phase(model)["detected"],
            }
        )
    heads = render_fragment("induction_heads.html", models=head_figs)
    attention = render_fragment("induction_attention.html", labels=model_labels)
    ablation = render_fragment(
        "induction_ablations.html",
        models=[(label, ablation_view(m, analysis)) for label, m in models.items()],
    )

    sections = [
        Section(
            "summary",
            "Summary",
            headline,
            lead="What happened in each model, and whether the experiment's target checks passed.",
        ),
        Section(
            "loss",
            "Loss curves",
            loss,
            lead="An induction head turns repeated tokens from unpredictable into nearly free: the "
            "orange curve drops suddenly while the blue one does not.",
        ),
        Section(
            "icl",
            "In-context learning score",
            icl,
            lead="How much better the model predicts tokens later in context than earlier.",
        ),
        Section(
            "heads",
            "Head scores",
            heads,
            lead="Per-head diagnostic scores. Induction heads attend to the token after an earlier "
            "copy of the current token (prefix matching); previous-token heads feed them.",
        ),
        Section(
            "attention",
            "Attention viewer",
            attention,
            lead="Attention patterns on an example sequence with a repeated segment. Hover a cell for "
            "its weight; hover or click a token (or a row label) to see where it attends.",
        ),
        Section(
            "ablation",
            "Ablations",
            ablation,
            lead="Removing the induction heads should destroy the benefit on repeated tokens. The control "
            "asks whether removing the same number of heads that are not part of the induction circuit hurts "
            "as much: its heads are neither induction heads nor previous-token heads (the induction heads "
            "read the previous-token heads' output, so those belong to the circuit), taken from the induction "
            "heads' own layer where it has enough of them, else from any layer, and drawn at random several "
            "times when there are more possible sets; its effect is the mean over the sets. A model with fewer "
            "such heads than induction heads gets all of them as its control (a weaker one, said beside it); a "
            "model with none gets no control rather than one made of circuit heads.",
        ),
    ]
    meta = run_meta(run, checks, {"started": run.get("started_at", "—")})
    return render_run_page(
        TITLE,
        data,
        sections,
        provenance=wall_rows({f"wall time {label}": _summary(m).get("wall_seconds") for label, m in models.items()}),
        subtitle=SUBTITLE,
        meta=meta,
        data={"attention-data": _attention_payload(models)},
        scripts=("attention.js",),
    )
