"""Self-contained HTML report for the ``icl-eval`` experiment (k-shot accuracy of a causal LM).

Sections: the checks; accuracy and calibrated accuracy vs the number of demonstrations, one curve per
condition with its 90% interval; the results table; the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.icl_eval.report`` (`FinishedRun.report_data`):
``run``, ``config``, ``summary`` (what summary.json holds: task, labels, chance, shots, conditions, seeds,
rows, at_max_shots, gain, checks), ``checks``, ``consistency`` (the cached-vs-full spot check) and
``wall_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from emergelab.report import figures as F
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows

__all__ = ["render_icl_eval_report"]

TITLE = "In-context learning of a language model: k-shot accuracy"
SUBTITLE = ("Each label scored by the log-probability of its verbalizer after the prompt text; demonstrations with "
            "gold, random, flipped or unrelated labels (Min et al. 2022; Wei et al. 2023).")
CONDITION_COLORS = {"gold": F.MODEL_COLORS[1], "random": F.MODEL_COLORS[2], "flipped": F.MODEL_COLORS[0],
                    "unrelated": F.MODEL_COLORS[3]}
# curves that coincide (an untrained model ignores the demonstrations' labels) stay visible by their dashes
CONDITION_STYLES = {"gold": "-", "random": "--", "flipped": "-.", "unrelated": (0, (1, 1.5))}


def _fig_accuracy(rows: Sequence[Mapping[str, Any]], conditions: Sequence[str], chance: float) -> str:
    """Two panels (accuracy, calibrated accuracy) vs shots, a line + 90% band per condition, chance dotted."""
    with F.report_style():
        fig, axes = F.new_figure(1, 2, figsize=(10.0, 3.4), sharey=True)
        for ax, (key, title) in zip(axes[0], (("accuracy", "accuracy"),
                                              ("calibrated_accuracy", "calibrated accuracy")), strict=True):
            for cond in conditions:
                mine = sorted((r for r in rows if r["condition"] == cond), key=lambda r: r["shots"])
                ks = [r["shots"] for r in mine]
                color = CONDITION_COLORS.get(cond, F.MODEL_COLORS[4])
                ax.fill_between(ks, [r[f"{key}_ci90"][0] for r in mine], [r[f"{key}_ci90"][1] for r in mine],
                                color=color, alpha=0.15, lw=0)
                ax.plot(ks, [r[key] for r in mine], marker="o", ls=CONDITION_STYLES.get(cond, "-"), color=color,
                        lw=1.8, ms=4, label=cond)
            ax.axhline(chance, color="#868e96", ls=":", lw=1.0, label="chance")
            # shots grow by doublings; symlog keeps 0 on the axis
            ax.set_xscale("symlog", base=2, linthresh=1)
            ticks = sorted({r["shots"] for r in rows})
            ax.set_xticks(ticks, [str(k) for k in ticks])
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("demonstrations (shots)")
            ax.set_title(f"{title} (90% interval shaded)")
            ax.legend(frameon=False, fontsize=8)
        return F.fig_to_data_uri(fig)


def _ci(interval: Sequence[float]) -> str:
    return f"{fmt(interval[0], 3, 'fixed')}–{fmt(interval[1], 3, 'fixed')}"


def render_icl_eval_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of an ``icl-eval`` run."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    checks = [dict(c) for c in data.get("checks") or []]
    rows = [dict(r) for r in summary.get("rows") or []]
    chance = float(summary.get("chance", 0.0))
    table = [{"condition": r["condition"], "shots": r["shots"], "accuracy": fmt(r["accuracy"], 3, "fixed"),
              "ci": _ci(r["accuracy_ci90"]),
              "spread": f"{fmt(r['accuracy_min'], 3, 'fixed')}–{fmt(r['accuracy_max'], 3, 'fixed')}",
              "calibrated": fmt(r["calibrated_accuracy"], 3, "fixed"),
              "calibrated_ci": _ci(r["calibrated_accuracy_ci90"]), "n_queries": r["n_queries"]} for r in rows]
    figure = render_fragment("figure.html", figures=[{
        "src": _fig_accuracy(rows, summary.get("conditions") or [], chance),
        "alt": "Accuracy vs number of demonstrations, per condition",
        "caption": "Mean over the demonstration seeds; the band is the 90% bootstrap interval. Flipped labels "
                   "pulling accuracy below chance means the model follows the demonstrations' mapping."}])
    cons = data.get("consistency") or {}
    extra = [("task", summary.get("task")), ("model", summary.get("model")),
             ("prefix tokens (longest prompts)", cons.get("prefix_tokens")),
             *wall_rows({"wall time (scoring)": data.get("wall_seconds")})]
    sections = [
        checks_section(checks, "The scoring's own consistency, and whether the model beats chance with the most "
                       "demonstrations.", title="Checks"),
        Section("curves", "Accuracy vs shots", figure,
                lead=f"Task {summary.get('task')} ({', '.join(summary.get('labels') or [])}); "
                     f"{len(summary.get('seeds') or [])} demonstration seed(s)."),
        Section("table", "Results table", Markup(render_fragment("icl_eval_table.html", rows=table,
                                                                 chance=fmt(chance, 3, "fixed")))),
    ]
    return render_run_page(TITLE, data, sections, provenance=extra, subtitle=SUBTITLE,
                           meta=run_meta(run, checks, {"task": summary.get("task", "—")}))
