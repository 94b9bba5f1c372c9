"""Self-contained HTML report for the ``lm-induction`` experiment (the induction heads of a causal LM).

Sections: the checks; the heads found (a table, then every head's prefix-matching and previous-token scores as
layer x head heatmaps, the named heads boxed); the loss at every position of the repeated sequences, clean,
with the induction heads ablated and with the control's heads ablated; the ablation tables of the ``induction``
report (``report/induction_ablation.py``); the config and provenance.

Input is a plain ``dict`` built from the run store by ``experiments.lm_induction.report_data``: ``run``,
``config``, ``summary``, ``checks``, ``scores`` ({kind: (L, H) nested lists}), ``positions`` (loss curves by
position: clean, ablated, control_mean / control_min / control_max) and ``label`` (the model's name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emergelab.report import figures as F
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows
from emergelab.report.induction_ablation import ablation_view
from emergelab.runs.names import head_name

__all__ = ["fig_heatmaps", "fig_positions", "render_lm_induction_report"]

TITLE = "Induction heads of a language model"
SUBTITLE = ("Random tokens written twice: heads that attend to the token after the current token's earlier copy "
            "(prefix matching) are named induction heads and ablated against random heads outside the circuit "
            "(Olsson et al. 2022).")
HEATMAPS = (("prefix_matching", "prefix-matching score (induction)"), ("previous_token", "previous-token score"))
ROLE_OF = {"prefix_matching": "induction_heads", "previous_token": "previous_token_heads"}


def _cells(heads: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    return [(int(h["layer"]), int(h["head"])) for h in heads]


def fig_heatmaps(scores: Mapping[str, Any], summary: Mapping[str, Any]) -> str | None:
    """Two layer x head heatmaps side by side (rows: layers, columns: query heads), the named heads boxed.
    -> PNG data URI, or None without scores."""
    kinds = [(k, t) for k, t in HEATMAPS if scores.get(k)]
    if not kinds:
        return None
    mats = {k: np.asarray(scores[k], dtype=float) for k, _ in kinds}
    n_layers, n_heads = next(iter(mats.values())).shape
    with F.report_style():
        fig, axes = F.new_figure(1, len(kinds), figsize=(min(4.6 * len(kinds), 11.0), 0.26 * n_layers + 1.4))
        im = None
        for ax, (kind, title) in zip(axes[0], kinds, strict=True):
            im = F.heatmap(ax, mats[kind], row_labels=[f"L{i}" for i in range(n_layers)],
                           col_labels=[f"H{j}" for j in range(n_heads)], vmin=0.0, vmax=1.0,
                           annotate=n_layers * n_heads <= 400, highlight=_cells(summary.get(ROLE_OF[kind]) or []))
            ax.tick_params(axis="y", labelsize=7)
            ax.set_title(title, fontsize=9.5)
        if im is not None:
            fig.colorbar(im, ax=list(axes[0, :]), shrink=0.6, pad=0.01, aspect=30)
        return F.fig_to_data_uri(fig)


def fig_positions(positions: Mapping[str, Sequence[float]], summary: Mapping[str, Any]) -> str | None:
    """The loss at every position (mean over the batch): clean, induction heads ablated, control (mean, its
    sets' range shaded); the repeat's start marked. -> PNG data URI, or None without curves."""
    clean = positions.get("clean")
    if not clean:
        return None
    model = summary.get("model") or {}
    bos, seq_len = int(model.get("bos_id") is not None), int(summary.get("seq_len") or 0)
    x = np.arange(1, len(clean) + 1)  # loss index t scores the token at position t + 1
    with F.report_style():
        fig, axes = F.new_figure(1, 1, figsize=(10.0, 3.3))
        ax = axes[0, 0]
        ax.plot(x, clean, color=F.MODEL_COLORS[1], lw=1.8, label="clean model")
        if positions.get("control_min") and positions.get("control_max"):
            ax.fill_between(x, positions["control_min"], positions["control_max"], color=F.MODEL_COLORS[2],
                            alpha=0.22, lw=0)
        if positions.get("control_mean"):  # dashed over the clean line, which it mostly follows
            ax.plot(x, positions["control_mean"], color=F.MODEL_COLORS[2], lw=1.3, ls="--",
                    label="as many random heads outside the circuit ablated (mean; range shaded)")
        if positions.get("ablated"):
            ax.plot(x, positions["ablated"], color=F.MODEL_COLORS[0], lw=1.6, label="induction heads ablated")
        if seq_len:
            first_repeat = bos + seq_len  # the position of the repeat's first token
            ax.axvline(first_repeat - 0.5, color="#868e96", ls=":", lw=1.0)
            ax.text(first_repeat, ax.get_ylim()[1], " repeat starts", va="top", fontsize=8, color="#495057")
        ax.set_xlabel("token position")
        ax.set_ylabel("loss (nats)")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=8, loc="lower left")
        return F.fig_to_data_uri(fig)


def _head_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The named heads, induction heads first (highest prefix-matching score first), then previous-token heads."""
    ablated = set(_cells((summary.get("ablation") or {}).get("heads") or []))
    rows, seen = [], set()
    for role, key in (("induction", "induction_heads"), ("previous token", "previous_token_heads")):
        for h in summary.get(key) or []:
            cell = (int(h["layer"]), int(h["head"]))
            if cell in seen:
                continue
            seen.add(cell)
            rows.append({"name": head_name(*cell), "role": role, "ablated": cell in ablated,
                         **{k: fmt(h.get(k), 3, "fixed") for k in ("prefix_matching", "previous_token",
                                                                   "duplicate_token", "induction")}})
    return rows


def render_lm_induction_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of an ``lm-induction`` run."""
    run = dict(data.get("run") or {})
    summary = dict(data.get("summary") or {})
    checks = [dict(c) for c in data.get("checks") or []]
    model = dict(summary.get("model") or {})
    label = str(data.get("label") or "model")
    th = dict(summary.get("thresholds") or {})
    clean = dict(summary.get("clean") or {})
    heat = fig_heatmaps(data.get("scores") or {}, summary)
    pos = fig_positions(data.get("positions") or {}, summary)
    figures = [{"src": heat, "alt": "Prefix-matching and previous-token scores of every head (layer × head)",
                "caption": f"Every head of {label} ({model.get('n_layers')} layers × {model.get('n_heads')} query "
                           f"heads); boxed: the named induction heads (prefix matching >= "
                           f"{fmt(th.get('induction'), 2)}) and previous-token heads (>= "
                           f"{fmt(th.get('previous_token'), 2)})."}] if heat else []
    heads_body = render_fragment("lm_induction_heads.html", rows=_head_rows(summary), figures=figures)
    pos_body = render_fragment("figure.html", figures=[{
        "src": pos, "alt": "Loss by token position, clean and ablated",
        "caption": "Mean over the batch at each position. The first copy of the random tokens cannot be predicted; "
                   "the repeat can, by copying, until the induction heads are ablated. The control ablates as many "
                   "heads outside the circuit."}] if pos else [])
    analysis = {"induction_threshold": th.get("induction"), "previous_token_threshold": th.get("previous_token")}
    ablation_body = render_fragment("induction_ablations.html",
                                    models=[(label, ablation_view({"summary": summary}, analysis))])
    sections = [
        checks_section(checks, "Copying in context, the heads found, and whether ablating them (and only them) "
                       "breaks the copying (thresholds after Olsson et al. 2022 and this project's induction "
                       "experiment).", title="Acceptance checks"),
        Section("heads", "The heads found", heads_body,
                lead=f"{summary.get('n_seqs')} sequences of {summary.get('seq_len')} random tokens, each written "
                     f"twice; loss {fmt(clean.get('first_loss'), 2, 'fixed')} nats on the first copy, "
                     f"{fmt(clean.get('repeated_loss'), 2, 'fixed')} on the repeat."),
        Section("positions", "Loss by position", pos_body),
        Section("ablation", "Ablation: the induction heads against random heads", ablation_body),
    ]
    extra = [("model", model.get("spec")), ("folder", model.get("folder")), ("family", model.get("family")),
             ("layers × query heads (KV heads)",
              f"{model.get('n_layers')} × {model.get('n_heads')} ({model.get('n_kv_heads')})"),
             *wall_rows({"wall time (measurement)": summary.get("wall_seconds")})]
    return render_run_page(TITLE, data, sections, provenance=extra, subtitle=SUBTITLE,
                           meta=run_meta(run, checks, {"model": label}))
