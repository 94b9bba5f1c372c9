"""Self-contained HTML report of an `inspect` run: one text through one model.

Sections: the input and the model's prediction; the attention viewer (layer and head selects, a pooled canvas
heatmap and a token strip, hover to see where a token looks; inspect.js); attention rollout in the same viewer;
the logit-lens table; token attributions; the head-detector table (a row selects its head in the viewer); the
activation-patching heatmaps when a corrupted text was given; the checks; config and provenance.

The attention weights travel as compact typed arrays (bytes, zlib-compressed, base64) inside one JSON element: dense
(L, H, T, T) up to the run's `page_cells`, else each query's top keys. Every string reaches the page escaped:
Jinja autoescapes the tables, the JSON element escapes '<', '>' and '&', and the script writes tokens with
textContent only.

Input is the dict `experiments.inspect.report_data` reads from the store: run, config, summary, checks, model,
tokens, prediction, lens, attribution, patching, detectors, arrays (the tensors of inspect.safetensors),
wall_seconds.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from emergelab.report import figures as F
from emergelab.report.format import fmt
from emergelab.report.html import Section, checks_section, render_fragment, render_run_page, run_meta, wall_rows
from emergelab.report.patching_figures import TITLES, patching_figure, token_label

__all__ = ["pack_attention", "pack_rollout", "render_inspect_report"]

TITLE = "Inspect: one text through one model"
SUBTITLE = ("Attention of every head, attention rollout (Abnar & Zuidema 2020), the logit lens (nostalgebraist 2020), "
            "integrated gradients (Captum), head detectors and activation patching, on the text given.")
MAX_HEAD_ROWS = 24  # the head table lists the heads that score highest on any detector
DETECTOR_NAMES = {"previous_token": "previous token", "duplicate_token": "duplicate token", "induction": "induction"}


# --- the page's compact arrays (made when the run computes, stored in inspect.safetensors) ----------------------
def pack_attention(p: torch.Tensor, page_cells: int, causal: bool) -> dict[str, torch.Tensor]:
    """p (L, H, T, T) -> uint8 bytes round(sqrt(weight) x 255). Dense when the page can hold every weight (L x H x
    T x T cells, or L x H x T(T+1)/2 for a causal model, whose rows then hold only keys <= query, row after row),
    else each query row's top K keys (K = page_cells // (L x H x T), at least 1) with their key indices (int16).
    The square root keeps small weights: 1/1024 (uniform attention over 1,024 tokens) is byte 8, not 0; the
    smallest weight kept is about 4e-6.

    Example:
        >>> pack_attention(torch.full((1, 1, 4, 4), 0.25), 10**6, causal=False)["attention"][0, 0, 0]
        tensor([128, 128, 128, 128], dtype=torch.uint8)
    """
    L, H, T, _ = p.shape
    if L * H * (T * (T + 1) // 2 if causal else T * T) <= page_cells:
        if causal:
            q, k = torch.tril_indices(T, T)
            return {"attention": _sqrt_bytes(p[..., q, k])}  # (L, H, T(T+1)/2)
        return {"attention": _sqrt_bytes(p)}
    K = max(1, min(T, page_cells // (L * H * T)))
    w, k = p.topk(K, dim=-1)  # (L, H, T, K)
    return {"attention": _sqrt_bytes(w), "attention_keys": k.to(torch.int16).contiguous()}


def _sqrt_bytes(w: torch.Tensor) -> torch.Tensor:
    return (w.float().clamp(0, 1).sqrt() * 255).round().to(torch.uint8).contiguous()


def pack_rollout(r: torch.Tensor, causal: bool) -> dict[str, torch.Tensor]:
    """r (T, T) -> each row over its max, x 255 as uint8 (a causal model's rollout is lower triangular: its rows
    are packed as in `pack_attention`), and the row maxima (T,) float32."""
    m = r.float().amax(-1).clamp_min(1e-12)
    b = ((r / m[:, None]) * 255).round().to(torch.uint8)
    if causal:
        q, k = torch.tril_indices(*r.shape)
        b = b[q, k]
    return {"rollout": b.contiguous(), "rollout_max": m}


# --- the page ----------------------------------------------------------------------------------------------------
def _b64(t: Any) -> str:
    """The tensor's bytes, zlib-compressed (the browser's DecompressionStream('deflate') inflates them), base64."""
    return base64.b64encode(zlib.compress(np.ascontiguousarray(t.numpy()).tobytes(), 6)).decode("ascii")


def _per_head(t: torch.Tensor) -> list[str]:
    """(L, H, ...) -> one compressed base64 string per head, layer by layer: the page inflates a head when shown."""
    return [_b64(head) for layer in t for head in layer]


def _payload(data: Mapping[str, Any], start: dict[str, int]) -> dict[str, Any]:
    arrays, model, tokens = data["arrays"], data["model"], data["tokens"]
    keys = arrays.get("attention_keys")
    return {"tokens": tokens, "T": len(tokens), "L": model["n_layers"], "H": model["n_heads"],
            "causal": model["causal"], "start": start,
            "attention": {"format": "dense" if keys is None else "top_keys", "K": int(arrays["attention"].shape[-1]),
                          "packed": keys is None and model["causal"],
                          "weights": _per_head(arrays["attention"]), "keys": None if keys is None else _per_head(keys)},
            "rollout": {"weights": _b64(arrays["rollout"]), "fusion": data["config"].get("head_fusion", "mean"),
                        "max": [round(float(v), 6) for v in arrays["rollout_max"].tolist()]}}


def _start(data: Mapping[str, Any]) -> dict[str, int]:
    """The head shown first (the best induction head; in a text without repeats, the best previous-token head) and
    the query (the last
    token of a causal LM, the first ([CLS]) of an encoder for rollout)."""
    det, T = data["detectors"], len(data["tokens"])
    scores = np.asarray(det["induction"], dtype=float)
    if not scores.max() > 0:  # no repeated token in the text: no induction anywhere
        scores = np.asarray(det["previous_token"], dtype=float)
    layer, head = np.unravel_index(int(np.argmax(scores)), scores.shape)
    causal = data["model"]["causal"]
    return {"layer": int(layer), "head": int(head), "query": T - 1, "rollout_query": T - 1 if causal else 0}


def _overview(data: Mapping[str, Any]) -> Section:
    model, pred, tokens = data["model"], data["prediction"], data["tokens"]
    text = data["config"].get("text", "")
    rows = [("model", f"{model['name']} ({model['family']}, {model['n_layers']} layers x {model['n_heads']} heads, "
                      f"context {model['n_ctx']}, vocabulary {fmt(model['vocab_size'])})"),
            ("text", text if len(text) <= 600 else text[:600] + f" … ({len(text)} characters)"),
            ("tokens", f"{len(tokens)}")]
    if pred.get("available"):
        rows.append(("next token", f"{token_label(pred['token'], limit=24)} (p = {fmt(pred['prob'], 3, 'fixed')})"))
        which = "given" if pred["target_given"] else "the model's prediction"
        rows.append(("target", f"{token_label(pred['target'], limit=24)} ({which}; p = "
                               f"{fmt(pred['target_prob'], 3, 'fixed')})"))
    else:
        rows.append(("next token", pred.get("why", "—")))
    if data["config"].get("corrupt"):
        rows.append(("corrupted text", data["config"]["corrupt"][:600]))
    return Section("input", "Input and prediction", render_fragment("inspect_overview.html", rows=rows))


def _shown(token: str, limit: int) -> str:
    """A token for a table cell: whitespace made visible (a token of spaces alone would be an empty cell)."""
    text = token_label(token, limit=limit)
    return text if text.strip() else "\u2423" * max(1, min(len(text), limit))


def _lens(lens: Mapping[str, Any], tokens: Sequence[str], pred: Mapping[str, Any]) -> Section:
    lead = ("What the model would predict if it stopped after each layer: the residual stream through the final norm "
            "and the unembedding. Each cell: the top token and its probability (hover for the top-k).")
    if not lens.get("available"):
        return Section("lens", "Logit lens", render_fragment("inspect_lens.html", available=False,
                                                               why=lens.get("why", "")), lead=lead)
    positions, T = lens["positions"], len(tokens)
    target = pred["target"] if pred.get("available") else None
    columns = [{"position": p, "token": _shown(tokens[p], 10), "next": _shown(tokens[p + 1], 10) if p + 1 < T else ""}
               for p in positions]
    rows = []
    for r, label in enumerate(lens["labels"]):
        cells = []
        for j in range(len(positions)):
            toks, probs = lens["top_tokens"][r][j], lens["top_probs"][r][j]
            p = float(probs[0])
            cells.append({"token": _shown(toks[0], 10), "prob": fmt(p, 2, "fixed"),
                          "alpha": f"{min(0.8, p):.3f}", "color": "#fff" if p > 0.42 else "inherit",
                          "hit": target is not None and j == len(positions) - 1 and toks[0] == target,
                          "title": "  ".join(f"{_shown(t, 16)} {fmt(float(q), 3, 'fixed')}"
                                             for t, q in zip(toks, probs, strict=True))})
        rows.append({"label": label, "cells": cells, "rank": lens["target_rank"][r][-1],
                     "target_prob": fmt(float(lens["target_prob"][r][-1]), 3, "fixed")})
    body = render_fragment("inspect_lens.html", available=True, columns=columns, rows=rows,
                           target=token_label(target, limit=12) if target is not None else None)
    return Section("lens", "Logit lens", body, lead=lead)


def _attribution(attr: Mapping[str, Any], tokens: Sequence[str]) -> Section:
    title = "Token attributions"
    if not attr.get("available"):
        return Section("attribution", title, render_fragment("inspect_attribution.html", available=False,
                                                               why=attr.get("why", "")))
    scores = np.asarray(attr["scores"], dtype=float)
    span = float(np.abs(scores).max()) or 1.0
    strip = []
    for i, (t, s) in enumerate(zip(tokens, scores, strict=True)):
        a = min(1.0, abs(s) / span)
        bg = f"rgba(201,42,42,{a:.3f})" if s > 0 else f"rgba(28,126,214,{a:.3f})"
        strip.append({"text": t.replace("\n", "↵"), "bg": bg, "title": f"position {i}: {fmt(float(s), 3)}",
                      "last": i == len(tokens) - 1})
    order = np.argsort(-np.abs(scores), kind="stable")[:10]
    top = [{"position": int(i), "token": token_label(tokens[i], limit=24), "score": fmt(float(scores[i]), 3)}
           for i in order]
    method = attr["method"].replace("_", " ")
    legend = (f"{method} of the target's logit at the last position (outlined), on the input embeddings; red raises "
              f"it, blue lowers it (largest |score| {fmt(span, 3)}).")
    if attr.get("delta") is not None:
        legend += (f" f(x) = {fmt(attr['target_logit'], 3)}, f(baseline) = {fmt(attr['baseline_logit'], 3)}, "
                   f"convergence delta {fmt(attr['delta'], 2)} ({attr['n_steps']} steps, mean-embedding baseline).")
    body = render_fragment("inspect_attribution.html", available=True, tokens=strip, top=top, legend=legend)
    return Section("attribution", title, body)


def _heads_figure(det: Mapping[str, Any]) -> str:
    names = [d for d in DETECTOR_NAMES if d in det]
    L, H = np.asarray(det[names[0]]).shape
    with F.report_style():
        fig, axes = F.new_figure(1, len(names), figsize=(min(14.0, 2.2 + 1.2 * len(names) * max(2, H) * 0.45),
                                                        min(9.0, 1.4 + 0.26 * L)))
        for ax, name in zip(axes[0], names, strict=True):
            image = F.heatmap(ax, np.asarray(det[name], dtype=float), row_labels=[f"L{i}" for i in range(L)],
                              col_labels=[f"H{j}" for j in range(H)], vmin=0.0, vmax=1.0, cmap="Oranges",
                              annotate=L * H <= 64)
            ax.set_title(DETECTOR_NAMES[name])
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label="score")
        return F.fig_to_data_uri(fig)


def _heads(det: Mapping[str, Any]) -> Section:
    names = [d for d in DETECTOR_NAMES if d in det]
    stacked = np.stack([np.asarray(det[d], dtype=float) for d in names])  # (D, L, H)
    L, H = stacked.shape[1:]
    best = stacked.max(0)
    order = sorted(((i, j) for i in range(L) for j in range(H)), key=lambda ij: (-best[ij], ij))
    rows = [{"layer": i, "head": j, "scores": [{"text": fmt(float(stacked[d, i, j]), 3, "fixed"),
                                                "alpha": f"{0.6 * float(stacked[d, i, j]):.3f}"}
                                               for d in range(len(names))]} for i, j in order[:MAX_HEAD_ROWS]]
    figure = render_fragment("figure.html", figures=[{"src": _heads_figure(det), "alt": "Head detector scores",
                                                      "caption": "Share of each head's attention on the detector's "
                                                                 "pattern, on this text."}])
    table = render_fragment("inspect_heads.html", rows=rows, detectors=[DETECTOR_NAMES[d] for d in names],
                            hidden=max(0, L * H - MAX_HEAD_ROWS))
    lead = ("The TransformerLens detectors on the text itself: previous token, duplicate token (an earlier copy of "
            "the current token) and induction (the token after an earlier copy). Click a row to view that head.")
    return Section("heads", "Head detectors", figure + table, lead=lead)


def _patching(patch: Mapping[str, Any]) -> Section:
    title = "Activation patching"
    if not patch.get("available"):
        return Section("patching", title, render_fragment("_text.html", text=patch.get("why", "")))
    figures = []
    for g in patch["grids"]:
        result = SimpleNamespace(what=g["what"], method=g["method"], effect=torch.tensor(g["effect"]),
                                 normalized=torch.tensor(g["normalized"]), rows=g["rows"], cols=g["cols"],
                                 clean=g["clean"], corrupted=g["corrupted"],
                                 corrupted_cols=patch["corrupt_tokens"] if g["what"] != "heads" else None)
        how = "exact: one patched forward per cell" if g["method"] == "exact" else \
            "attribution patching: a first-order estimate from one backward pass"
        T = len(g["cols"])
        name = "activation patching" if g["method"] == "exact" else "attribution patching"
        title = (f"{name}: {TITLES.get(g['what'], g['what'])}\n"
                 f"clean {fmt(g['clean'], 3)}, corrupted {fmt(g['corrupted'], 3)}")
        fig = patching_figure(result, title=title, width=max(7.5, min(16.0, 1.6 + 0.22 * T)))
        figures.append({"src": F.fig_to_data_uri(fig), "alt": f"Patching {g['what']}",
                        "caption": f"{how} ({fmt(g['seconds'], 2)} s, {g['forwards']} forwards). 1 = patching that "
                                   f"cell from the clean run restores the clean logit difference."})
    lead = (f"Metric: the logit of the target \u201c{patch['target']}\u201d minus the logit of "
            f"\u201c{patch['foil']}\u201d (the corrupted run's answer) at the last position.")
    return Section("patching", title, render_fragment("figure.html", figures=figures), lead=lead)


def render_inspect_report(data: Mapping[str, Any]) -> str:
    """The full self-contained HTML page of an `inspect` run."""
    run, checks = dict(data.get("run") or {}), [dict(c) for c in data.get("checks") or []]
    summary, model, tokens = data.get("summary") or {}, data["model"], data["tokens"]
    start = _start(data)
    opening = "induction" if max(max(r) for r in data["detectors"]["induction"]) > 0 else "previous-token"
    fmt_note = ("every weight" if summary.get("attention_format") == "dense" else
                f"each query's {summary.get('attention_top_keys')} strongest keys "
                f"({fmt(100 * float(summary.get('attention_mass_shown', 0)), 1)}% of the attention on average)")
    attention = Section("attention", "Attention", render_fragment("inspect_viewer.html", id="ins-attention"),
                        lead=f"Pick a layer and a head; the heatmap shows {fmt_note} (rows: queries, columns: keys). "
                             f"It opens on layer {start['layer']}, head {start['head']}: the best {opening} head on "
                             f"this text.")
    roll = Section("rollout", "Attention rollout", render_fragment("inspect_viewer.html", id="ins-rollout"),
                   lead="How much each position's final representation draws on each input token, following the "
                        "attention through all layers (heads fused by their "
                        f"{data['config'].get('head_fusion', 'mean')}, residual added); colour per row, relative "
                        "to the row's largest value.")
    sections = [_overview(data), attention, roll, _lens(data["lens"], tokens, data["prediction"]),
                _attribution(data["attribution"], tokens), _heads(data["detectors"]), _patching(data["patching"]),
                checks_section(checks, "The computations' own consistency.", title="Checks",
                               empty_text="No check applies to this model.")]
    extra = [("model", model["name"]), ("tokens", len(tokens)),
             *wall_rows({"wall time (all computations)": data.get("wall_seconds")})]
    return render_run_page(TITLE, data, sections, provenance=extra, subtitle=SUBTITLE,
                           meta=run_meta(run, checks, {"model": model["name"], "tokens": len(tokens)}),
                           data={"inspect-data": _payload(data, start)}, scripts=("inspect.js",),
                           styles=("report.css", "inspect.css"))
