"""Self-contained HTML report for the ``icl-classification`` experiment (in-context vs in-weights learning).

Sections: the acceptance checks; ICL and in-weights accuracy over training with the phase-change window and
the label-flip probe; head scores over training (previous-token pairing in early layers, the query's
look-up of the matching label), as lines and as layer x head grids before / during / after the phase change;
the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.icl_classification.report_data``:
``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version, git_commit), ``config``,
``metrics`` ({name: {steps, values}}) and ``summary`` (what summary.json holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from emergelab.report import figures as F
from emergelab.report import head_figures as H
from emergelab.report import series as S
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows
from emergelab.runs.names import metric

__all__ = ["render_icl_classification_report"]

TITLE = "In-context vs in-weights learning on bursty sequences"
SUBTITLE = (
    "A small attention-only transformer reads item-label pairs and names a query's label. Bursty contexts "
    "reward looking the label up in context (ICL); non-bursty ones reward memorising it (IWL) "
    "(Chan et al. 2022; Reddy 2023)."
)
PROBE_LABELS = {
    "icl_accuracy": "ICL accuracy (novel classes)",
    "iwl_accuracy": "in-weights accuracy (no-context probe)",
    "flip_follows_context": "label flip: follows the context",
    "flip_follows_weights": "label flip: follows the weights",
}
HEAD_KINDS = (("previous_token", "previous-token score (label -> its item)"),
              ("induction", "look-up score (query -> labels of its class)"))
SHORT_TITLES = {"previous_token": "previous token", "induction": "look-up"}  # heatmap panels are narrow
SCORE_RANGE = (-0.02, 1.02)  # accuracies and attention scores are fractions


def _window_text(phase: Mapping[str, Any]) -> str:
    """What the shading of a figure means, or that there is none."""
    if phase.get("detected"):
        return "Shaded: the ICL phase-change window (detected on ICL accuracy above the copying level)."
    return "No phase change was detected in ICL accuracy above the copying level, so nothing is shaded."


# --- figures ----------------------------------------------------------------------------------------------
def _fig_accuracy(metrics: Mapping[str, Any], phase: Mapping[str, Any], chance: float,
                  copy_baseline: float | None) -> str:
    hlines = [(chance, "chance", ":")] + ([] if copy_baseline is None else [(copy_baseline, "copy a context label",
                                                                            "--")])
    window = F.Window.of(phase, label="ICL phase change")
    panels = []
    for title, keys in (("accuracy over training", ("icl_accuracy", "iwl_accuracy")),
                        ("label-flip probe", ("flip_follows_context", "flip_follows_weights"))):
        curves = [F.Curve(*S.series(metrics, metric("probe", key)), label=PROBE_LABELS[key],
                          color=F.MODEL_COLORS[i % len(F.MODEL_COLORS)]) for i, key in enumerate(keys)]
        panels.append(F.Panel(title, curves, windows=[window], hlines=hlines, ylim=SCORE_RANGE))
    return F.curve_panels(panels, figsize=(10, 3.2))


def _fig_head_heatmaps(heads: S.HeadSeries, metrics: Mapping[str, Any], phase: Mapping[str, Any],
                       rising: list[Mapping[str, Any]]) -> str | None:
    n_layers, n_heads = S.head_dims(heads)
    boxed = {kind: [(h["layer"], h["head"]) for h in rising if h.get("kind") == kind] for kind, _ in HEAD_KINDS}
    return H.head_heatmaps(heads, [(k, SHORT_TITLES[k]) for k, _ in HEAD_KINDS],
                           S.moments(S.logged_steps(metrics), phase), n_layers, n_heads, highlight=boxed)


# --- text pieces ------------------------------------------------------------------------------------------


def _phase_text(phase: Mapping[str, Any]) -> str:
    if phase.get("detected"):
        return (f"ICL phase change: steps {fmt(phase['start_step'])}–{fmt(phase['end_step'])} "
                f"(steepest at {fmt(phase['steepest_step'])}).")
    return f"No ICL phase change detected ({phase.get('reason') or 'no data'})."


# --- public API -------------------------------------------------------------------------------------------
def render_icl_classification_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of an ``icl-classification`` run."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    metrics = dict(data.get("metrics") or {})
    checks = [dict(c) for c in summary.get("checks") or []]
    phase = dict(summary.get("phase_change") or {})
    chance = float(summary.get("chance") or 0.0)
    final, probe = dict(summary.get("final") or {}), dict(summary.get("final_probe") or {})

    rows = [{"name": label, "final": fmt(final.get(k), 3, "fixed"), "probe": fmt(probe.get(k), 3, "fixed")}
            for k, label in PROBE_LABELS.items()]
    accuracy = Markup("\n").join([
        render_fragment("figure.html", figures=[{
            "src": _fig_accuracy(metrics, phase, chance, summary.get("copy_baseline")),
            "alt": "Probe accuracies over training",
            "caption": "Left: ICL accuracy on novel classes (only the context gives their labels) and in-weights "
                       "accuracy with the query's class absent from the context. Right: with every label "
                       "permuted, the fraction of predictions that follow the context vs the weights. Dotted: "
                       "chance; dashed: copying a random context label. " + _window_text(phase)}]),
        render_fragment("icl_classification_final.html", rows=rows, chance=fmt(chance, 3, "fixed"),
                        phase_text=_phase_text(phase)),
    ])
    heads = S.head_series(metrics)
    lines = H.head_lines(heads, HEAD_KINDS, window=F.Window.of(phase, label=None), ylim=SCORE_RANGE, width=10)
    heat = _fig_head_heatmaps(heads, metrics, phase, list(summary.get("heads_rising_in_window") or []))
    head_figures = [] if lines is None else [{
        "src": lines, "alt": "Head scores over training",
        "caption": "Left: mean attention from each label token to the item just before it. Right: mean attention "
                   "from the query to the label tokens that follow items of the query's class (novel-class "
                   "probe) — the in-context look-up, an induction-style head. " + _window_text(phase)}]
    if heat is not None:
        moments = ", ".join(f"{name} = step {fmt(step, 0, 'fixed')}"
                            for name, step in S.moments(S.logged_steps(metrics), phase))
        head_figures.append({
            "src": heat, "alt": "Head scores per layer and head at three moments of training",
            "caption": f"The same scores per layer × head at {moments}."
                       + (" Boxed: heads whose score rose by 0.1 or more inside the phase-change window."
                          if phase.get("detected") else "")})
    heads_body = (render_fragment("figure.html", figures=head_figures) if head_figures
                  else render_fragment("_text.html", text="No head scores were logged in this run."))

    sections = [
        checks_section(checks, "Whether this run meets the acceptance thresholds of its regime (bursty, not bursty, "
                               "or Zipfian), set by this project after Chan et al. 2022 and Reddy 2023: bursty "
                               "training makes in-context learning appear abruptly with a look-up head; without "
                               "burstiness it stays near chance; Zipfian classes let both kinds of learning coexist.",
                       title="Acceptance checks"),
        Section("accuracy", "In-context vs in-weights accuracy", accuracy,
                lead="Probe accuracies logged during training, and the final numbers on fresh probes."),
        Section("heads", "Head scores over training", heads_body,
                lead="Whether the ICL jump coincides with a head learning to look the label up."),
    ]
    return render_run_page(TITLE, data, sections, provenance=wall_rows({"wall time": summary.get("wall_seconds")}),
                           subtitle=SUBTITLE, meta=run_meta(run, checks))
