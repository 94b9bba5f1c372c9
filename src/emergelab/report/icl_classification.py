"""Self-contained HTML report for the ``icl-classification`` experiment (in-context vs in-weights learning).

Sections: the target checks; ICL and in-weights accuracy over training with the phase-change window and
the label-flip probe; head scores over training (previous-token pairing in early layers, the query's
look-up of the matching label); the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.icl_classification.report_data``:
``run`` (id, experiment, status, started_at, ended_at, config_hash, seed, version, git_commit), ``config``,
``metrics`` ({name: {steps, values}}) and ``summary`` (what summary.json holds).

Example:
    >>> html = render_icl_classification_report(report_data(store, run))
    >>> html.startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from emergelab.report import figures as F
from emergelab.report.html import Section, config_section, render_fragment, render_page, run_meta

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






def _fmt(x: Any) -> str:
    return "—" if x is None else f"{float(x):.3f}"


# --- figures ----------------------------------------------------------------------------------------------
def _fig_accuracy(metrics: Mapping[str, Any], phase: Mapping[str, Any], chance: float,
                  copy_baseline: float | None) -> str:
    with F.report_style():
        fig, axes = F.new_figure(1, 2, figsize=(10, 3.2))
        pairs = (("icl_accuracy", "iwl_accuracy"), ("flip_follows_context", "flip_follows_weights"))
        for col, keys in enumerate(pairs):
            ax = axes[0, col]
            drawn = False
            for i, key in enumerate(keys):
                m = metrics.get(f"probe/{key}")
                if m and m["steps"]:
                    ax.plot(m["steps"], m["values"], lw=1.8, color=F.MODEL_COLORS[i % len(F.MODEL_COLORS)],
                            label=PROBE_LABELS[key])
                    drawn = True
            if not drawn:
                F.no_data(ax)
                continue
            ax.axhline(chance, color="#868e96", ls=":", lw=1.0, label="chance")
            if copy_baseline is not None:
                ax.axhline(copy_baseline, color="#868e96", ls="--", lw=0.9, label="copy a context label")
            if phase.get("detected"):
                F.mark_window(ax, phase.get("start_step"), phase.get("end_step"), phase.get("steepest_step"),
                              label="ICL phase change")
            ax.set_ylim(-0.02, 1.02)
            F.step_axis(ax)
            ax.set_title("accuracy over training" if col == 0 else "label-flip probe")
            ax.legend(frameon=False, fontsize=7.5)
        return F.fig_to_data_uri(fig)


def _fig_heads(metrics: Mapping[str, Any], phase: Mapping[str, Any]) -> str:
    kinds = (("previous_token", "previous-token score (label -> its item)"),
             ("induction", "look-up score (query -> labels of its class)"))
    with F.report_style():
        fig, axes = F.new_figure(1, 2, figsize=(10, 3.2))
        for col, (kind, title) in enumerate(kinds):
            ax = axes[0, col]
            names = sorted(n for n in metrics if n.startswith(f"heads/{kind}/"))
            if not names:
                F.no_data(ax)
                continue
            for i, name in enumerate(names):
                m = metrics[name]
                ax.plot(m["steps"], m["values"], lw=1.4, color=F.MODEL_COLORS[i % len(F.MODEL_COLORS)],
                        label=name.rsplit("/", 1)[-1])
            if phase.get("detected"):
                F.mark_window(ax, phase.get("start_step"), phase.get("end_step"), phase.get("steepest_step"),
                              label="ICL phase change")
            ax.set_ylim(-0.02, 1.02)
            F.step_axis(ax)
            ax.set_title(title)
            ax.legend(frameon=False, fontsize=7.5, ncol=2)
        return F.fig_to_data_uri(fig)


# --- text pieces ------------------------------------------------------------------------------------------


def _phase_text(phase: Mapping[str, Any]) -> str:
    if phase.get("detected"):
        return (f"ICL phase change: steps {phase['start_step']}–{phase['end_step']} "
                f"(steepest at {phase['steepest_step']}).")
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
    n_pass = sum(bool(c.get("passed")) for c in checks)

    rows = [{"name": label, "final": _fmt(final.get(k)), "probe": _fmt(probe.get(k))}
            for k, label in PROBE_LABELS.items()]
    accuracy = Markup("\n").join([
        render_fragment("figure.html", figures=[{
            "src": _fig_accuracy(metrics, phase, chance, summary.get("copy_baseline")),
            "alt": "Probe accuracies over training",
            "caption": "Left: ICL accuracy on novel classes (only the context gives their labels) and in-weights "
                       "accuracy with the query's class absent from the context. Right: with every label "
                       "permuted, the fraction of predictions that follow the context vs the weights. Dotted: "
                       "chance; dashed: copying a random context label; shaded: the ICL phase-change window "
                       "(detected on ICL accuracy above the copying level)."}]),
        render_fragment("icl_classification_final.html", rows=rows, chance=_fmt(chance), phase_text=_phase_text(phase)),
    ])
    heads = render_fragment("figure.html", figures=[{
        "src": _fig_heads(metrics, phase), "alt": "Head scores over training",
        "caption": "Left: mean attention from each label token to the item just before it. Right: mean attention "
                   "from the query to the label tokens that follow items of the query's class (novel-class "
                   "probe) — the in-context look-up, an induction-style head."}])

    sections = [
        Section("checks", "Target checks", render_fragment("checks.html", checks=checks, n_pass=n_pass),
                lead="Whether the experiment's targets for this configuration hold on this run."),
        Section("accuracy", "In-context vs in-weights accuracy", accuracy,
                lead="Probe accuracies logged during training, and the final numbers on fresh probes."),
        Section("heads", "Head scores over training", heads,
                lead="Whether the ICL jump coincides with a head learning to look the label up."),
        config_section(run, data.get("config") or {},
                       [] if summary.get("wall_seconds") is None
                       else [("wall time", f"{float(summary['wall_seconds']):,.1f} s")]),
    ]
    meta = run_meta(run, checks)
    return render_page(TITLE, sections, subtitle=SUBTITLE, meta=meta)
