"""Self-contained HTML report for the ``induction`` experiment (Olsson et al. 2022 reproduction).

The report shows, in order: a plain-language headline with the target checks; probe loss curves
(first occurrences vs repeated tokens) with the phase-change window; the ICL score; head-score heatmaps
before/during/after the phase change and head scores over training; an interactive attention viewer;
the ablation table; the config and provenance.

Input is a plain ``dict`` (contract in :func:`render_induction_report`); the run store builds it, and
:func:`example_report_data` builds a deterministic synthetic one for tests and previews.

Example:
    >>> from emergelab.report.induction import example_report_data, render_induction_report
    >>> html = render_induction_report(example_report_data())
    >>> html.startswith("<!DOCTYPE html>") and "Attention viewer" in html
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emergelab.report import figures as F
from emergelab.report.html import Section, config_section, render_fragment, render_page, run_meta

__all__ = ["example_report_data", "render_induction_report", "head_name"]

HEAD_KINDS = ("prefix_matching", "induction", "previous_token", "duplicate_token")
KIND_TITLES = {
    "prefix_matching": "prefix matching",
    "induction": "induction (copying)",
    "previous_token": "previous token",
    "duplicate_token": "duplicate token",
}
_HEAD_METRIC = re.compile(r"^heads/(?P<kind>[a-z_]+)/L(?P<layer>\d+)H(?P<head>\d+)$")
ROLE_ORDER = {"induction": 0, "previous_token": 1, "other": 2}

TITLE = "Induction heads and the in-context learning phase change"
SUBTITLE = (
    "Reproduction of Olsson et al. (2022), “In-context learning and induction heads”: a 2-layer "
    "attention-only transformer should form induction heads in a sudden phase change, visible as a "
    "drop in loss on repeated tokens; a 1-layer control should not."
)


def head_name(layer: int, head: int) -> str:
    """Canonical head label.

    Example:
        >>> head_name(1, 2)
        'L1H2'
    """
    return f"L{int(layer)}H{int(head)}"


# --------------------------------------------------------------------------------------------------
# data access helpers (tolerant: a missing metric yields an empty series, never an exception)


def _series(model: Mapping[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    m = (model.get("metrics") or {}).get(name) or {}
    steps = np.asarray(m.get("steps") or [], dtype=float)
    values = np.asarray([np.nan if v is None else v for v in (m.get("values") or [])], dtype=float)
    n = min(len(steps), len(values))
    return steps[:n], values[:n]


def _head_metrics(
    model: Mapping[str, Any],
) -> dict[str, dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]]:
    """``{kind: {(layer, head): (steps, values)}}`` parsed from ``heads/{kind}/L{l}H{h}`` metric names."""
    out: dict[str, dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]] = {}
    for name in model.get("metrics") or {}:
        match = _HEAD_METRIC.match(name)
        if match:
            key = (int(match["layer"]), int(match["head"]))
            out.setdefault(match["kind"], {})[key] = _series(model, name)
    return out


def _summary(model: Mapping[str, Any]) -> dict[str, Any]:
    return dict(model.get("summary") or {})


def _phase(model: Mapping[str, Any]) -> dict[str, Any]:
    pc = dict(_summary(model).get("phase_change") or {})
    pc.setdefault("detected", False)
    for key in ("start_step", "end_step", "steepest_step", "drop"):
        pc.setdefault(key, None)
    return pc


def _dims(model: Mapping[str, Any], heads: Mapping[str, Mapping[tuple[int, int], Any]]) -> tuple[int, int]:
    keys = [k for per_kind in heads.values() for k in per_kind]
    n_layers = int(model.get("n_layers") or (max((k[0] for k in keys), default=-1) + 1) or 1)
    n_heads = int(model.get("n_heads") or (max((k[1] for k in keys), default=-1) + 1) or 1)
    return max(n_layers, 1), max(n_heads, 1)


def _value_at(steps: np.ndarray, values: np.ndarray, step: float) -> float:
    """Value logged at the step nearest to ``step`` (metrics are logged on a grid, not every step)."""
    if len(steps) == 0:
        return float("nan")
    return float(values[int(np.argmin(np.abs(steps - step)))])


def _all_steps(model: Mapping[str, Any]) -> np.ndarray:
    steps = [
        np.asarray((m or {}).get("steps") or [], dtype=float) for m in (model.get("metrics") or {}).values()
    ]
    steps = [s for s in steps if len(s)]
    return np.unique(np.concatenate(steps)) if steps else np.zeros(0)


def _moments(model: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Three snapshot steps: before/during/after the phase change, else start/middle/end of training."""
    steps = _all_steps(model)
    if len(steps) == 0:
        return []
    first, last = float(steps[0]), float(steps[-1])
    pc = _phase(model)
    if pc["detected"] and pc["start_step"] is not None and pc["end_step"] is not None:
        start, end = float(pc["start_step"]), float(pc["end_step"])
        during = float(pc["steepest_step"]) if pc["steepest_step"] is not None else (start + end) / 2
        # "before" = last logged step at or before the window opens, so it is truly pre-transition
        before_candidates = steps[steps <= start]
        before = float(before_candidates[-1]) if len(before_candidates) else first
        return [("before", before), ("during", during), ("after", last)]
    middle = float(steps[np.argmin(np.abs(steps - (first + last) / 2))])
    return [("start", first), ("middle", middle), ("end", last)]


def _head_list(summary: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [dict(h) for h in (summary.get(key) or [])]


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return f"{float(x):.{digits}f}"


# --------------------------------------------------------------------------------------------------
# figures


def _fig_losses(models: Mapping[str, Mapping[str, Any]]) -> str:
    labels = list(models)
    with F.report_style():
        fig, axes = F.new_figure(1, len(labels) + 1, figsize=(4.0 * (len(labels) + 1), 3.8), sharey=True)
        for i, label in enumerate(labels):
            model, ax = models[label], axes[0, i]
            pc = _phase(model)
            any_data = False
            for name, color, lw, alpha, text in (
                ("train/loss", F.TRAIN_COLOR, 0.9, 0.45, "train loss"),
                ("probe/first_loss", F.FIRST_COLOR, 1.7, 1.0, "first occurrence"),
                ("probe/repeated_loss", F.REPEAT_COLOR, 1.9, 1.0, "repeated token"),
            ):
                steps, values = _series(model, name)
                if len(steps):
                    any_data = True
                    ax.plot(steps, values, color=color, lw=lw, alpha=alpha, label=text)
            if not any_data:
                F.no_data(ax)
            F.mark_window(ax, pc["start_step"], pc["end_step"], pc["steepest_step"])
            status = "phase change" if pc["detected"] else "no phase change"
            ax.set_title(f"{label} · {model.get('n_layers', '?')} layer(s) — {status}")
            F.step_axis(ax)
            if i == 0:
                ax.set_ylabel("probe loss (nats / token)")
        # overlay panel: repeated-token loss of every model on the same axes, the key comparison
        ax = axes[0, -1]
        for i, label in enumerate(labels):
            color = F.MODEL_COLORS[i % len(F.MODEL_COLORS)]
            steps, values = _series(models[label], "probe/repeated_loss")
            if len(steps):
                ax.plot(steps, values, color=color, lw=1.9, label=f"{label} repeated")
            steps, values = _series(models[label], "probe/first_loss")
            if len(steps):
                ax.plot(steps, values, color=color, lw=1.0, ls=":", label=f"{label} first")
            pc = _phase(models[label])
            F.mark_window(ax, pc["start_step"], pc["end_step"], pc["steepest_step"], color=color, label=None)
        ax.set_title("all models: repeated (solid) vs first (dotted)")
        F.step_axis(ax)
        # one legend under the panels: inside any panel it would sit on top of a curve
        handles, names = [], []
        for a in axes.flat:
            for h, n in zip(*a.get_legend_handles_labels(), strict=True):
                if n not in names:
                    handles.append(h)
                    names.append(n)
        if handles:
            fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 8), frameon=False)
        return F.fig_to_data_uri(fig)


def _fig_icl(models: Mapping[str, Mapping[str, Any]]) -> str:
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(10.0, 2.7))
        ax = axes[0, 0]
        plotted = False
        for i, (label, model) in enumerate(models.items()):
            color = F.MODEL_COLORS[i % len(F.MODEL_COLORS)]
            steps, values = _series(model, "probe/icl_score")
            if len(steps):
                plotted = True
                ax.plot(steps, values, color=color, lw=1.9, label=label)
            pc = _phase(model)
            F.mark_window(ax, pc["start_step"], pc["end_step"], pc["steepest_step"], color=color, label=None)
        if plotted:
            ax.axhline(0, color="#adb5bd", lw=0.8)
            ax.legend(loc="best", frameon=False)
        else:
            F.no_data(ax)
        ax.set_ylabel("ICL score")
        F.step_axis(ax)
        return F.fig_to_data_uri(fig)


def _kinds_present(heads: Mapping[str, Any], wanted: Sequence[str]) -> list[str]:
    return [k for k in wanted if k in heads]


def _fig_head_heatmaps(model: Mapping[str, Any]) -> str | None:
    heads = _head_metrics(model)
    kinds = _kinds_present(heads, ("prefix_matching", "previous_token"))
    moments = _moments(model)
    if not kinds or not moments:
        return None
    n_layers, n_heads = _dims(model, heads)
    summary = _summary(model)
    marked = {
        "prefix_matching": [(h["layer"], h["head"]) for h in _head_list(summary, "induction_heads")],
        "previous_token": [(h["layer"], h["head"]) for h in _head_list(summary, "previous_token_heads")],
    }
    with F.report_style():
        height = len(kinds) * (0.4 * n_layers + 1.0) + 0.2
        fig, axes = F.new_figure(len(kinds), len(moments), figsize=(10.0, height))
        for r, kind in enumerate(kinds):
            mats = []
            for _, step in moments:
                mat = np.full((n_layers, n_heads), np.nan)
                for (layer, head), (steps, values) in heads[kind].items():
                    if layer < n_layers and head < n_heads:
                        mat[layer, head] = _value_at(steps, values, step)
                mats.append(mat)
            finite = np.concatenate([m[np.isfinite(m)] for m in mats]) if mats else np.zeros(0)
            # scores are fractions in [0, 1]; keep that fixed scale so models/moments are comparable
            vmin = min(0.0, float(finite.min())) if finite.size else 0.0
            vmax = max(1.0, float(finite.max())) if finite.size else 1.0
            im = None
            for c, ((moment, step), mat) in enumerate(zip(moments, mats, strict=True)):
                ax = axes[r, c]
                im = F.heatmap(
                    ax,
                    mat,
                    row_labels=[f"L{i}" for i in range(n_layers)],
                    col_labels=[f"H{j}" for j in range(n_heads)],
                    vmin=vmin,
                    vmax=vmax,
                    highlight=marked.get(kind, ()),
                )
                ax.set_title(f"{KIND_TITLES[kind]} — {moment} (step {step:,.0f})", fontsize=9.5)
            if im is not None:
                fig.colorbar(im, ax=list(axes[r, :]), shrink=0.9, pad=0.01, aspect=12)
        return F.fig_to_data_uri(fig)


def _fig_head_lines(model: Mapping[str, Any]) -> str | None:
    heads = _head_metrics(model)
    kinds = _kinds_present(heads, HEAD_KINDS)
    if not kinds:
        return None
    summary = _summary(model)
    ind = [(h["layer"], h["head"]) for h in _head_list(summary, "induction_heads")]
    prev = [(h["layer"], h["head"]) for h in _head_list(summary, "previous_token_heads")]
    # distinct hues within each family: warm = induction heads, cool = previous-token heads
    ind_colors = ["#d9480f", "#c2255c", "#f59f00", "#862e9c", "#e64980"]
    prev_colors = ["#2457a6", "#0c8599", "#5f3dc4", "#087f5b"]
    pc = _phase(model)
    with F.report_style():
        fig, axes = F.new_figure(1, len(kinds), figsize=(2.6 * len(kinds) + 0.6, 2.9), sharey=True)
        for c, kind in enumerate(kinds):
            ax = axes[0, c]
            for key in sorted(heads[kind]):
                steps, values = heads[kind][key]
                if key in ind:
                    color, lw, z, label = (
                        ind_colors[ind.index(key) % 5],
                        2.0,
                        3,
                        f"{head_name(*key)} (induction)",
                    )
                elif key in prev:
                    color, lw, z, label = (
                        prev_colors[prev.index(key) % 4],
                        1.8,
                        2,
                        f"{head_name(*key)} (prev-token)",
                    )
                else:
                    color, lw, z, label = "#ced4da", 0.9, 1, None
                ax.plot(steps, values, color=color, lw=lw, zorder=z, label=label)
            F.mark_window(ax, pc["start_step"], pc["end_step"], pc["steepest_step"], label=None)
            ax.set_title(KIND_TITLES.get(kind, kind))
            F.step_axis(ax)
            if c == 0:
                ax.set_ylabel("head score")
        handles, labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="#ced4da", lw=0.9))
        labels.append("other heads")
        fig.legend(handles, labels, loc="outside right center", frameon=False)
        return F.fig_to_data_uri(fig)


# --------------------------------------------------------------------------------------------------
# section content


def _model_facts(label: str, model: Mapping[str, Any]) -> dict[str, Any]:
    """Plain-language facts for the headline card; strings here are escaped by the template."""
    summary = _summary(model)
    pc = _phase(model)
    final = dict(summary.get("final") or {})
    if pc["detected"]:
        phase = (
            f"Phase change between steps {_fmt(pc['start_step'])} and {_fmt(pc['end_step'])}"
            f" (steepest at step {_fmt(pc['steepest_step'])}); repeated-token loss fell by"
            f" {_fmt(pc['drop'])} nats."
        )
    else:
        phase = "No phase change detected: the repeated-token loss never dropped suddenly."
    facts = [phase]
    if final:
        rep, fst, icl = (_fmt(final.get(k)) for k in ("repeated_loss", "first_loss", "icl_score"))
        facts.append(
            f"Final probe loss {_fmt(final.get('loss'))}: {rep} on repeated tokens vs {fst} on first"
            f" occurrences (ICL score {icl})."
        )
    abl = dict(summary.get("ablation") or {})
    ind = _head_list(summary, "induction_heads")
    if abl and abl.get("heads"):
        clean, ablated, control = (
            _fmt(abl.get(k))
            for k in ("clean_repeated_loss", "ablated_repeated_loss", "control_repeated_loss")
        )
        caveat = (
            "; the control includes previous-token heads, which the induction heads compose with,"
            " so it hurts too — see each head alone below"
            if abl.get("control_includes_previous_token_heads")
            else ""
        )
        facts.append(
            f"Ablating the induction heads raises repeated-token loss from {clean} to {ablated}"
            f" (as many control heads: {control}{caveat})."
        )
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


def _ablation_view(model: Mapping[str, Any]) -> dict[str, Any] | None:
    summary = _summary(model)
    abl = dict(summary.get("ablation") or {})
    if not abl:
        return None
    clean_r, clean_f = abl.get("clean_repeated_loss"), abl.get("clean_first_loss")

    def delta(x: Any, ref: Any) -> float | None:
        return None if x is None or ref is None else float(x) - float(ref)

    def names(hs: Any) -> str:
        return ", ".join(head_name(h["layer"], h["head"]) for h in hs or []) or "none"

    rows = [
        ("clean model", "", abl.get("clean_repeated_loss"), abl.get("clean_first_loss")),
        (
            "induction heads ablated",
            names(abl.get("heads")),
            abl.get("ablated_repeated_loss"),
            abl.get("ablated_first_loss"),
        ),
        (
            "control heads ablated" + (" (incl. previous-token heads)"
                                       if abl.get("control_includes_previous_token_heads") else ""),
            names(abl.get("control_heads")),
            abl.get("control_repeated_loss"),
            abl.get("control_first_loss"),
        ),
    ]
    ind = {(h["layer"], h["head"]) for h in _head_list(summary, "induction_heads")}
    per_head = []
    for h in abl.get("per_head") or []:
        per_head.append(
            {
                "name": head_name(h["layer"], h["head"]),
                "induction": (h["layer"], h["head"]) in ind,
                "repeated": h.get("repeated_loss"),
                "first": h.get("first_loss"),
                "d_repeated": delta(h.get("repeated_loss"), clean_r),
                "d_first": delta(h.get("first_loss"), clean_f),
            }
        )
    per_head.sort(key=lambda r: -(r["d_repeated"] if r["d_repeated"] is not None else -math.inf))
    scale = max((abs(r["d_repeated"]) for r in per_head if r["d_repeated"] is not None), default=0.0) or 1.0
    for r in per_head:
        d = r["d_repeated"]
        r["bar"] = 0.0 if d is None else round(100 * min(abs(d) / scale, 1.0), 1)
        r["neg"] = d is not None and d < 0
    return {
        "rows": [
            {
                "name": n,
                "heads": hs,
                "repeated": rep,
                "first": fst,
                "d_repeated": delta(rep, clean_r) if i else None,
                "d_first": delta(fst, clean_f) if i else None,
            }
            for i, (n, hs, rep, fst) in enumerate(rows)
        ],
        "per_head": per_head,
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


def _wall_rows(models: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    for label, model in models.items():
        wall = _summary(model).get("wall_seconds")
        if wall is not None:
            rows.append((f"wall time {label}", f"{float(wall):,.1f} s"))
    return rows


# --------------------------------------------------------------------------------------------------
# public API


def render_induction_report(data: Mapping[str, Any]) -> str:
    """Render the full self-contained HTML report of an ``induction`` run.

    ``data`` keys: ``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version,
    git_commit), ``config`` (nested dict), ``models`` (ordered ``{label: {n_layers, n_heads, metrics,
    summary, example}}``) and ``checks`` (``[{name, passed, detail}]``); see the module docs of
    :func:`example_report_data` for a complete instance. Missing optional pieces render as "no data".

    Example:
        >>> html = render_induction_report(example_report_data())
        >>> "<script>alert(1)</script>" in html
        False
    """
    run = dict(data.get("run") or {})
    models = {str(k): dict(v) for k, v in (data.get("models") or {}).items()}
    checks = [dict(c) for c in data.get("checks") or []]
    model_labels = list(models)

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
        moments = ", ".join(f"{name} = step {step:,.0f}" for name, step in _moments(model))
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
        "induction_ablation.html", models=[(label, _ablation_view(m)) for label, m in models.items()]
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
            lead="Zero-ablating the induction heads should destroy the benefit on repeated tokens; "
            "ablating the same number of other heads (control) should not.",
        ),
        config_section(run, data.get("config") or {}, _wall_rows(models)),
    ]
    meta = run_meta(run, checks, {"started": run.get("started_at", "—")})
    return render_page(
        f"{TITLE}",
        sections,
        subtitle=SUBTITLE,
        meta=meta,
        data={"attention-data": _attention_payload(models)},
        scripts=("attention.js",),
    )


# --------------------------------------------------------------------------------------------------
# synthetic example


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _example_pattern(T: int, role: str, start: int, seg: int, rng: np.random.Generator) -> list[list[float]]:
    """Causal attention pattern with the textbook shape for ``role`` (rows sum to 1)."""
    logits = rng.normal(0.0, 0.6, size=(T, T))
    logits[:, 0] += 1.5  # attention sinks on the first token are typical of trained models
    for q in range(T):
        if role == "previous_token" and q >= 1:
            logits[q, q - 1] += 6.0
        elif role == "induction" and q >= start + seg:
            logits[q, q - seg + 1] += 6.5  # the token after the earlier copy of the current token
        elif role == "other":
            logits[q, q] += 1.0
    logits[np.triu_indices(T, k=1)] = -np.inf
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return np.round(w, 4).tolist()


def example_report_data(seed: int = 0) -> dict[str, Any]:
    """A realistic, deterministic synthetic ``data`` dict for :func:`render_induction_report`.

    The "2L" model has a loss plateau followed by a sudden drop on repeated tokens (steps 800-1300) and
    two induction heads; the "1L" control stays flat. One example token is ``<script>alert(1)</script>``
    so tests can check escaping end to end.

    Example:
        >>> d = example_report_data()
        >>> list(d["models"]), d["models"]["2L"]["summary"]["phase_change"]["detected"]
        (['2L', '1L'], True)
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(0, 3001, 50)
    s = steps.astype(float)
    log_v = math.log(64)

    def noisy(x: np.ndarray, scale: float = 0.03) -> list[float]:
        return [round(float(v), 4) for v in x + rng.normal(0, scale, size=x.shape)]

    def metric(values: Sequence[float]) -> dict[str, list]:
        return {"steps": [int(v) for v in steps], "values": list(values)}

    # tokens: <bos>, a random prefix, then one segment repeated twice
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "and",
        "then",
        "<script>alert(1)</script>",
        "ran",
        "far",
        "away",
        "from",
        "dog",
        '"quoted"',
        "x & y",
        "it",
        "was",
        "big",
        "red",
        "blue",
        "sky",
    ]
    start, seg, n_rep = 6, 14, 2
    prefix = [str(w) for w in rng.choice(words, size=start - 1)]
    segment = [str(w) for w in rng.permutation(words)[:seg]]
    if "<script>alert(1)</script>" not in segment:
        segment[3] = "<script>alert(1)</script>"
    tokens = ["<bos>", *prefix, *segment * n_rep]
    T = len(tokens)

    def model(n_layers: int, phase: bool) -> dict[str, Any]:
        first = log_v + 0.7 * np.exp(-s / 250.0)
        if phase:
            drop = 3.75 * _sigmoid((s - 1000.0) / 90.0)
            repeated = first - 0.06 - drop
        else:
            repeated = first - 0.06 - 0.35 * (1 - np.exp(-s / 900.0))
        train = 0.55 * first + 0.45 * repeated
        icl = first - repeated
        metrics = {
            "train/loss": metric(noisy(train, 0.06)),
            "probe/loss": metric(noisy(0.5 * first + 0.5 * repeated, 0.02)),
            "probe/repeated_loss": metric(noisy(repeated, 0.03)),
            "probe/first_loss": metric(noisy(first, 0.02)),
            "probe/icl_score": metric(noisy(icl, 0.03)),
        }
        n_heads = 4
        induction = [(1, 2, 0.72), (1, 0, 0.55)] if phase else []
        previous = [(0, 1, 0.83)] if phase else [(0, 0, 0.41)]
        for kind in HEAD_KINDS:
            for layer in range(n_layers):
                for head in range(n_heads):
                    base = 0.04 + 0.03 * rng.random()
                    curve = np.full_like(s, base)
                    if kind in ("prefix_matching", "induction"):
                        for li, hi, final in induction:
                            if (li, hi) == (layer, head):
                                curve = base + (final - base) * _sigmoid((s - 1000.0) / 80.0)
                    elif kind == "previous_token":
                        for li, hi, final in previous:
                            if (li, hi) == (layer, head):
                                # previous-token heads form a little before the induction heads need them
                                center = 850.0 if phase else 600.0
                                curve = base + (final - base) * _sigmoid((s - center) / 110.0)
                    elif kind == "duplicate_token" and (layer, head) == (0, 3):
                        curve = base + 0.25 * (1 - np.exp(-s / 700.0))
                    metrics[f"heads/{kind}/L{layer}H{head}"] = metric(noisy(curve, 0.012))

        clean_r, clean_f = float(repeated[-1]), float(first[-1])
        per_head = []
        for layer in range(n_layers):
            for head in range(n_heads):
                bump = {(1, 2): 2.1, (1, 0): 1.3, (0, 1): 1.6}.get((layer, head), 0.0) if phase else 0.0
                if not phase and (layer, head) == (0, 0):
                    bump = 0.25
                per_head.append(
                    {
                        "layer": layer,
                        "head": head,
                        "repeated_loss": round(clean_r + bump + float(rng.normal(0, 0.02)), 4),
                        "first_loss": round(clean_f + 0.05 * bump + float(rng.normal(0, 0.01)), 4),
                    }
                )
        heads_abl = [{"layer": li, "head": hi} for li, hi, _ in induction]
        control = [{"layer": 1, "head": 1}, {"layer": 1, "head": 3}] if phase else []
        ablation = {
            "heads": heads_abl,
            "control_heads": control,
            "clean_repeated_loss": round(clean_r, 4),
            "clean_first_loss": round(clean_f, 4),
            "ablated_repeated_loss": round(clean_r + (3.45 if phase else 0.0), 4),
            "ablated_first_loss": round(clean_f + (0.08 if phase else 0.0), 4),
            "control_repeated_loss": round(clean_r + (0.07 if phase else 0.0), 4),
            "control_first_loss": round(clean_f + (0.01 if phase else 0.0), 4),
            "per_head": per_head,
        }
        if phase:
            pc = {
                "detected": True,
                "start_step": 800,
                "end_step": 1300,
                "steepest_step": 1000,
                "drop": round(float(repeated[16] - repeated[26]), 3),
            }
        else:
            pc = {
                "detected": False,
                "start_step": None,
                "end_step": None,
                "steepest_step": None,
                "drop": round(float(repeated[0] - repeated[-1]), 3),
            }
        roles = (
            [(1, 2, "induction"), (1, 0, "induction"), (0, 1, "previous_token"), (0, 0, "other")]
            if phase
            else [(0, 0, "previous_token"), (0, 2, "other")]
        )
        return {
            "n_layers": n_layers,
            "n_heads": n_heads,
            "metrics": metrics,
            "summary": {
                "phase_change": pc,
                "final": {
                    "loss": round(float(0.5 * first[-1] + 0.5 * repeated[-1]), 4),
                    "repeated_loss": round(clean_r, 4),
                    "first_loss": round(clean_f, 4),
                    "icl_score": round(float(icl[-1]), 4),
                },
                "induction_heads": [{"layer": li, "head": hi, "score": sc} for li, hi, sc in induction],
                "previous_token_heads": [{"layer": li, "head": hi, "score": sc} for li, hi, sc in previous],
                "ablation": ablation,
                "wall_seconds": 184.2 if phase else 97.5,
            },
            "example": {
                "tokens": tokens,
                "repeat": {"start": start, "segment_len": seg, "n_repeats": n_rep},
                "heads": [
                    {
                        "layer": li,
                        "head": hi,
                        "role": role,
                        "pattern": _example_pattern(T, role, start, seg, rng),
                    }
                    for li, hi, role in roles
                ],
            },
        }

    models = {"2L": model(2, True), "1L": model(1, False)}
    return {
        "run": {
            "id": "20250101-120000-induction-ab12cd",
            "experiment": "induction",
            "status": "completed",
            "started_at": "2025-01-01T12:00:00Z",
            "ended_at": "2025-01-01T12:04:42Z",
            "config_hash": "9f3c2a7b1e4d",
            "seed": seed,
            "version": "0.1.0",
            "git_commit": "0123abcd4567ef",
        },
        "config": {
            "seed": seed,
            "task": {"vocab_size": 64, "seq_len": T, "segment_len": seg, "n_repeats": n_rep},
            "models": {
                "2L": {"n_layers": 2, "n_heads": 4, "d_model": 64, "d_mlp": 0},
                "1L": {"n_layers": 1, "n_heads": 4, "d_model": 64, "d_mlp": 0},
            },
            "train": {"steps": 3000, "batch_size": 64, "lr": 1e-3, "warmup": 100, "log_every": 50},
            "notes": "synthetic example data <not a real run>",
        },
        "models": models,
        "checks": [
            {
                "name": "2L shows a phase change",
                "passed": True,
                "detail": "repeated-token loss fell 3.6 nats between steps 800 and 1,300",
            },
            {"name": "1L shows no phase change", "passed": True, "detail": "largest drop 0.30 nats (< 1.0)"},
            {
                "name": "2L has an induction head (prefix matching ≥ 0.4)",
                "passed": True,
                "detail": "L1H2 (0.72), L1H0 (0.55)",
            },
            {
                "name": "ablating induction heads raises repeated-token loss ≥ 1 nat",
                "passed": True,
                "detail": "+3.45 nats vs +0.07 for control heads",
            },
            {"name": "1L repeated-token loss stays high (≥ 2.5)", "passed": True, "detail": "final 3.75"},
        ],
    }
