"""The ablation section of the induction report: which heads were mean-ablated (the named circuit, the
control outside it, each head alone) and what each did to the repeated-token loss."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emergelab.report.format import fmt
from emergelab.runs.names import head_name

ABLATION_KINDS = {
    "mean": "Each removed head writes, at every position, its average output over the evaluation batch (mean "
            "ablation): the part of its output that is the same for every input stays, the part that depends on "
            "the input is gone.",
    "zero": "Each removed head writes nothing (zero ablation).",
}


def _closest_to_circuit(pool: list[dict[str, Any]], analysis: Mapping[str, Any]) -> str:
    """How close the control's heads come to being named circuit heads themselves (their highest scores)."""
    parts = []
    for key, what, named, threshold in (
            ("previous_token_score", "previous-token", "previous-token heads", "previous_token_threshold"),
            ("prefix_matching_score", "prefix-matching", "induction heads", "induction_threshold")):
        scored = [h for h in pool if h.get(key) is not None]
        if scored:
            top = max(scored, key=lambda h: h[key])
            among = " among them" if len(scored) > 1 else ""
            at = f"; heads from {fmt(analysis[threshold], 2)} are named {named}" if analysis.get(threshold) else ""
            parts.append(f"highest {what} score{among} {fmt(top[key], 2)} ({head_name(top['layer'], top['head'])}{at})")
    return "; ".join(parts)


def _summary(model: Mapping[str, Any]) -> dict[str, Any]:
    return dict(model.get("summary") or {})


def _head_list(summary: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [dict(h) for h in (summary.get(key) or [])]


def ablation_view(model: Mapping[str, Any], analysis: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ablation tables of one model; `analysis`: the config's analysis section (thresholds)."""
    summary = _summary(model)
    abl = dict(summary.get("ablation") or {})
    if not abl:
        return None
    clean_r, clean_f = abl.get("clean_repeated_loss"), abl.get("clean_first_loss")
    ctl = dict(abl.get("control") or {})

    def delta(x: Any, ref: Any) -> float | None:
        return None if x is None or ref is None else float(x) - float(ref)

    def names(hs: Any) -> str:
        return ", ".join(head_name(h["layer"], h["head"]) for h in hs or []) or "none"

    sets = [dict(d) for d in ctl.get("draws") or []]
    spread = ""
    if len(sets) > 1 and ctl.get("repeated_loss_min") is not None:
        lo, hi = delta(ctl.get("repeated_loss_min"), clean_r), delta(ctl.get("repeated_loss_max"), clean_r)
        spread = (f"mean of {len(sets)} sets; repeated-loss rise {fmt(lo, 3, 'fixed', sign=True)} to "
                  f"{fmt(hi, 3, 'fixed', sign=True)}, standard deviation {fmt(ctl.get('repeated_loss_std'), 3)}")
    heads = abl.get("heads") or []
    rows = [
        {"name": "clean model", "heads": "", "what": "nothing removed",
         "repeated": clean_r, "first": clean_f},
        {"name": "induction heads ablated", "heads": names(heads),
         "what": "the induction heads, all at once (named by their prefix-matching score)",
         "repeated": abl.get("ablated_repeated_loss"), "first": abl.get("ablated_first_loss")},
        {"name": "control heads ablated", "heads": names(sets[0]["heads"]) if len(sets) == 1 else
         (f"{len(sets)} sets of {ctl.get('n_heads')} from {names(ctl.get('pool'))}" if sets else "none"),
         "what": "; ".join(x for x in (ctl.get("how") or "no control recorded", spread,
                                       _closest_to_circuit([dict(h) for h in ctl.get("pool") or []], analysis)) if x),
         "repeated": ctl.get("repeated_loss"), "first": ctl.get("first_loss")},
    ]
    for i, r in enumerate(rows):
        r["d_repeated"] = delta(r["repeated"], clean_r) if i else None
        r["d_first"] = delta(r["first"], clean_f) if i else None
    rise, c_rise = rows[1]["d_repeated"], rows[2]["d_repeated"]
    if not heads:
        verdict = "No induction heads were named in this model, so there is nothing to compare a control with."
    elif c_rise is None:
        verdict = "No control could be ablated, so this model's ablation does not show that the effect is specific."
    elif rise is not None and rise > 0:
        fewer = (f" ({ctl.get('n_heads')} head{'s' if ctl.get('n_heads') != 1 else ''} against {len(heads)}: "
                 "a weaker control than one of the same size)" if ctl.get("choice") == "fewer_heads" else "")
        verdict = (f"The control{fewer} raises the repeated-token loss by {fmt(c_rise, 2, 'fixed', sign=True)} nats, "
                   f"{fmt(c_rise / rise, 1, 'percent')} of the {fmt(rise, 2, 'fixed', sign=True)} nats the induction "
                   "heads' ablation costs (the check asks for at most a third).")
    else:
        verdict = "Ablating the induction heads does not raise the repeated-token loss."
    control_sets = [{"heads": names(d.get("heads")), "repeated": d.get("repeated_loss"),
                     "d_repeated": delta(d.get("repeated_loss"), clean_r), "first": d.get("first_loss"),
                     "d_first": delta(d.get("first_loss"), clean_f)} for d in sets] if len(sets) > 1 else []

    ind = {(h["layer"], h["head"]) for h in _head_list(summary, "induction_heads")}
    prev = {(h["layer"], h["head"]) for h in _head_list(summary, "previous_token_heads")}
    pool = {(h["layer"], h["head"]) for h in ctl.get("pool") or []}
    per_head = []
    for h in abl.get("per_head") or []:
        key = (h["layer"], h["head"])
        per_head.append(
            {
                "name": head_name(h["layer"], h["head"]),
                "induction": key in ind,
                "role": "induction" if key in ind else "previous token" if key in prev else
                        "control" if key in pool else "",
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
    return {"kind": ABLATION_KINDS.get(str(abl.get("kind")), ""), "rows": rows, "verdict": verdict,
            "control_sets": control_sets, "per_head": per_head}
