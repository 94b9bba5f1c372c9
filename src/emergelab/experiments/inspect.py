"""`inspect`: one text through one model, explained in one self-contained report (`emergelab inspect`).

Attention of every layer and head, attention rollout, the logit lens, token attributions (Captum), the head
detectors on the text, and, with a corrupted text of as many tokens, activation patching (residual stream by
layer x position, heads by layer x head). Causal LMs get everything; an encoder (MiniLM) gets what needs no
logits (attention, rollout, detectors) and the report says why the rest is missing. Everything the report needs
is checked before a run exists: the model folder and tokenizer, the text against the context length, the target
token against the vocabulary, the corrupted text's length.

Store layout:
    results  "model" (name, family, causal, n_layers, n_heads, n_ctx, vocab_size), "tokens" ([T] strings),
             "prediction", "lens", "attribution", "detectors" ({name: (L, H)}), "patching", "wall_seconds"
    files    inspect.safetensors: attention (L, H, T, T) uint8 (sqrt(weight) x 255; causal: (L, H, T(T+1)/2), the
             lower triangle row by row) or, above `page_cells`, each query's top keys: attention (L, H, T, K) uint8
             + attention_keys (L, H, T, K) int16; rollout (T, T) uint8 (each row / its max x 255; causal: packed)
             + rollout_max (T,) float32 (report/inspect.py `pack_attention`, `pack_rollout`); report.html

Example:
    >>> result = run_experiment("inspect", overrides=["model=models/gpt2", "text=The capital of France is",
    ...                                                 "target=' Paris'"])
    >>> result.summary["lens"]["target_rank_last"], result.report_path
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, EmergelabError
from ..interpret.attention import attention, encode, rollout
from ..interpret.attribution import attribute_tokens
from ..interpret.heads import DETECTORS, detection_patterns, head_scores
from ..interpret.lens import logit_lens, resolve_target
from ..interpret.patching import activation_patching, attribution_patching
from ..models.hf import HFModel, check_model_folder, context_length, load_hf_model, load_tokenizer
from ..report.inspect import pack_attention, pack_rollout, render_inspect_report
from ..runs.store import Run, RunStore
from ..tensorfile import read_safetensors, write_safetensors
from .configs.inspect import RANDOM, InspectConfig
from .kit import Checks, FinishedRun, device_of, register

ARRAYS = "inspect.safetensors"
ENCODERS = ("bert", "roberta", "distilbert", "electra", "mpnet", "xlm-roberta", "albert", "deberta", "deberta-v2")
IG_TOLERANCE = 0.05  # |delta| of integrated gradients, as a share of |f(x) - f(baseline)| (+ 1e-3 logits)


# --- the model: an alias, a folder, or the random control ----------------------------------------------------
def model_folder(cfg: InspectConfig, run_dir: Path | None = None) -> Path:
    """The local folder `cfg.model` names: an alias's (models.catalog: a missing package is one line naming its
    install command; SmolLM2 is converted once), a folder, or `random`, built in `run_dir` from the text. A folder
    that is not a model is a ModelLoadError (one line)."""
    from ..models.catalog import ALIASES, ensure_converted

    if cfg.model == RANDOM:
        if run_dir is None:
            raise ConfigError("model=random is built when the run starts")
        from ..models.hf_random import random_causal_lm

        folder = run_dir / "model"
        if not (folder / "config.json").is_file():
            random_causal_lm(folder, [cfg.text, *([cfg.corrupt] if cfg.corrupt else [])], seed=cfg.seed,
                             vocab_size=300)
        return folder
    if cfg.model in ALIASES:
        return ensure_converted(cfg.model)
    if not Path(cfg.model).expanduser().exists() and not any(c in cfg.model for c in "/\\."):
        raise ConfigError(f"model: '{cfg.model}' is not an alias ({', '.join(ALIASES)}) or a local folder "
                          f"(inspect does not take run ids yet)")
    return check_model_folder(Path(cfg.model).expanduser() if cfg.model.startswith("~") else cfg.model)


def is_causal(folder: Path) -> bool:
    """Whether the folder's config names a causal LM (else an encoder, loaded as a base model)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    if archs:
        return any(a.endswith("ForCausalLM") or "LMHead" in a for a in archs)
    return config.get("model_type") not in ENCODERS


def check(cfg: InspectConfig) -> None:
    """Model folder, tokenizer, context length, target token and corrupted text: bad input creates nothing."""
    if not cfg.model:
        raise ConfigError("model: set a model: an alias (smollm2-135m, minilm) or a local Hugging Face folder "
                          "(--set model=...)")
    if not cfg.text.strip():
        raise ConfigError("text: set the text to inspect (--set text='...')")
    if cfg.model == RANDOM:
        return  # its tokenizer is trained on the text when the run starts: it encodes it
    folder = model_folder(cfg)
    tok = load_tokenizer(folder)
    n_ctx = context_length(folder)
    ids = tok(cfg.text)["input_ids"]
    if n_ctx is not None and len(ids) > n_ctx:
        raise ConfigError(f"text: {len(ids)} tokens, longer than the model's context of {n_ctx} tokens; shorten it")
    if cfg.corrupt:
        n = len(tok(cfg.corrupt)["input_ids"])
        if n != len(ids):
            raise ConfigError(f"corrupt: {n} tokens, the text has {len(ids)}: patching compares position by position, "
                              f"so give a corrupted text of as many tokens")
    if cfg.target:
        if not is_causal(folder):
            raise ConfigError(f"target: '{folder}' is not a causal LM (no next-token logits to explain)")
        resolve_target(HFModel(None, tok, n_ctx), cfg.target, len(tok))  # type: ignore[arg-type]


# --- the computation (this experiment's "training") ------------------------------------------------------------
def compute(cfg: InspectConfig, ctx: Any, resume: bool = False) -> None:
    store, t0 = ctx.store, time.perf_counter()
    folder = model_folder(cfg, ctx.dir)
    causal = is_causal(folder)
    lm = load_hf_model(folder, "causal" if causal else "base", device=device_of(cfg))
    enc = encode(lm, cfg.text)
    ids = enc.ids  # (1, T)
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} inspect", total=5, loss="-")
        att = attention(lm, enc.inputs)
        patterns = att.patterns.float()  # (L, 1, H, T, T)
        L, _, H = patterns.shape[:3]
        cfg_model = lm.model.config
        store.put_result(ctx.id, "model", {
            "name": cfg.model, "family": str(getattr(cfg_model, "model_type", "?")), "causal": causal,
            "n_layers": L, "n_heads": H, "n_ctx": lm.n_ctx, "vocab_size": len(lm.tokenizer)})
        store.put_result(ctx.id, "tokens", enc.tokens[0])
        arrays = pack_attention(patterns[:, 0], cfg.page_cells, causal)
        arrays.update(pack_rollout(rollout(patterns, cfg.head_fusion, cfg.discard_ratio)[0], causal))
        scores = head_scores(patterns, detection_patterns(ids.to(patterns.device)))
        store.put_result(ctx.id, "detectors", {d: scores[d].tolist() for d in DETECTORS})
        write_safetensors(ctx.dir / ARRAYS, arrays)
        store.add_artifact(ctx.id, ARRAYS, "arrays")
        del patterns, att
        ctx.progress.update(bar, completed=1)
        if not causal:
            why = f"{type(lm.model).__name__} is an encoder: no next-token logits"
            for key in ("prediction", "lens", "attribution", "patching"):
                store.put_result(ctx.id, key, {"available": False, "why": why})
        else:
            with torch.no_grad():
                logits = lm.model(ids.to(lm.model.device)).logits[0, -1].float()  # (V,)
            probs = logits.softmax(-1)
            top = int(logits.argmax())
            target = resolve_target(lm, cfg.target, logits.shape[-1]) if cfg.target else top
            store.put_result(ctx.id, "prediction", {
                "available": True, "id": top, "token": _tok(lm, top), "prob": float(probs[top]), "target_id": target,
                "target": _tok(lm, target), "target_prob": float(probs[target]), "target_given": bool(cfg.target)})
            store.put_result(ctx.id, "lens", _lens(lm, ids, target, cfg))
            ctx.progress.update(bar, completed=2)
            store.put_result(ctx.id, "attribution", _attribution(lm, ids, target, cfg))
            ctx.progress.update(bar, completed=3)
            store.put_result(ctx.id, "patching", _patching(lm, ids, target, cfg, L))
        ctx.progress.update(bar, completed=5)
    store.put_result(ctx.id, "wall_seconds", time.perf_counter() - t0)


def _tok(lm: HFModel, i: int) -> str:
    return lm.tokenizer.decode([i])


def _lens(lm: HFModel, ids: torch.Tensor, target: int, cfg: InspectConfig) -> dict[str, Any]:
    T = ids.shape[1]
    positions = list(range(max(0, T - cfg.lens_positions), T))
    try:
        lens = logit_lens(lm, ids, target=target, k=cfg.top_k, positions=positions)
    except ConfigError as e:
        return {"available": False, "why": str(e)}
    return {"available": True, "labels": lens.labels, "positions": positions,
            "top_tokens": [row[0] for row in lens.top_tokens],  # [R][P][k]
            "top_probs": lens.top_probs[:, 0].tolist(), "target_rank": lens.target_rank[:, 0].tolist(),
            "target_prob": lens.target_prob[:, 0].tolist(), "first_in_top_k": lens.first_in_top(position=-1)}


def _attribution(lm: HFModel, ids: torch.Tensor, target: int, cfg: InspectConfig) -> dict[str, Any]:
    try:
        a = attribute_tokens(lm, ids, method=cfg.attribution, target=target, position=-1, n_steps=cfg.n_steps,
                             internal_batch_size=cfg.internal_batch_size)
    except ConfigError as e:
        return {"available": False, "why": str(e)}
    ig = a.delta is not None
    return {"available": True, "method": a.method, "scores": a.scores[0].tolist(),
            "target_logit": float(a.target_logits[0]),
            "baseline_logit": float(a.baseline_logits[0]) if ig else None,
            "delta": float(a.delta[0]) if ig else None, "n_steps": a.n_steps}


def _patching(lm: HFModel, ids: torch.Tensor, target: int, cfg: InspectConfig, L: int) -> dict[str, Any]:
    T = ids.shape[1]
    if not cfg.corrupt:
        return {"available": False, "why": "no corrupted text given (--corrupt)"}
    bad = encode(lm, cfg.corrupt).ids
    if bad.shape != ids.shape:  # checked before the run; a tokenizer that changes its mind lands here
        raise EmergelabError(f"corrupt: {bad.shape[1]} tokens, the text has {T}")
    with torch.no_grad():
        corrupt_logits = lm.model(bad.to(lm.model.device)).logits[0, -1].float()
    ranked = corrupt_logits.argsort(descending=True).tolist()
    foil = next(i for i in ranked if i != target)  # the corrupted run's answer, where it is not the target

    def metric(logits: torch.Tensor) -> torch.Tensor:  # logit difference target - foil at the last position
        return (logits[:, -1, target] - logits[:, -1, foil]).mean()

    grids = []
    for what in ("resid_pre", "heads"):
        method = cfg.patching
        if method == "auto":  # exact costs one forward per cell; heads grids are small
            method = "exact" if what == "heads" or L * T <= cfg.exact_cells else "attribution"
        fn = activation_patching if method == "exact" else attribution_patching
        r = fn(lm, ids, bad, metric, what=what)
        grids.append({"what": what, "method": r.method, "effect": r.effect.tolist(),
                      "normalized": r.normalized.tolist(), "rows": r.layers, "cols": r.cols,
                      "clean": r.clean, "corrupted": r.corrupted, "seconds": r.seconds, "forwards": r.forwards})
    return {"available": True, "target": _tok(lm, target), "foil": _tok(lm, foil), "foil_id": foil,
            "corrupt_tokens": encode(lm, cfg.corrupt).tokens[0], "grids": grids}


# --- analysis (store only) -------------------------------------------------------------------------------------
def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = FinishedRun(store, run, InspectConfig)
    model, tokens = view.require("model"), view.require("tokens")
    pred, lens, attr = view.require("prediction"), view.require("lens"), view.require("attribution")
    patch, det = view.require("patching"), view.require("detectors")
    arrays = read_arrays(run)
    dense = "attention_keys" not in arrays
    K = len(tokens) if dense else int(arrays["attention"].shape[-1])
    mass = 1.0 if dense else float(((arrays["attention"].float() / 255) ** 2).sum(-1).mean())
    summary: dict[str, Any] = {
        "model": model, "n_tokens": len(tokens), "target": pred.get("target"), "target_id": pred.get("target_id"),
        "target_given": pred.get("target_given", False), "prediction": pred.get("token"),
        "prediction_prob": pred.get("prob"), "attention_format": "dense" if dense else "top_keys",
        "attention_top_keys": K, "attention_mass_shown": mass}
    summary["lens"] = {"available": lens["available"]}
    if lens["available"]:
        summary["lens"].update(target_rank_last=lens["target_rank"][-1][-1],
                               target_prob_last=lens["target_prob"][-1][-1], first_in_top_k=lens["first_in_top_k"])
    summary["attribution"] = {"available": attr["available"]}
    if attr["available"]:
        order = sorted(range(len(tokens)), key=lambda i: -abs(attr["scores"][i]))[:5]
        summary["attribution"].update(method=attr["method"], delta=attr["delta"], top=[
            {"position": i, "token": tokens[i], "score": attr["scores"][i]} for i in order])
    summary["detectors"] = [_best(name, scores) for name, scores in det.items()]
    summary["patching"] = {"available": patch["available"]}
    if patch["available"]:
        first = patch["grids"][0]
        summary["patching"].update(foil=patch["foil"], clean=first["clean"], corrupted=first["corrupted"],
                                   grids=[_strongest(g) for g in patch["grids"]])
    summary["checks"] = checks(summary, lens, attr, pred)
    return summary


def _best(name: str, scores: list[list[float]]) -> dict[str, Any]:
    layer, head = max(((i, j) for i in range(len(scores)) for j in range(len(scores[0]))),
                      key=lambda ij: scores[ij[0]][ij[1]])
    return {"detector": name, "layer": layer, "head": head, "score": scores[layer][head]}


def _strongest(grid: dict[str, Any]) -> dict[str, Any]:
    eff = grid["effect"]
    cells = ((i, j) for i in range(len(eff)) for j in range(len(eff[0])))
    layer, unit = max(cells, key=lambda ij: abs(eff[ij[0]][ij[1]]))
    return {"what": grid["what"], "method": grid["method"], "layer": layer, "unit": unit, "effect": eff[layer][unit],
            "normalized": grid["normalized"][layer][unit]}


def checks(summary: dict[str, Any], lens: dict[str, Any], attr: dict[str, Any], pred: dict[str, Any]) -> list:
    c = Checks()
    if lens["available"]:
        top = lens["top_tokens"][-1][-1][0]
        c.add("logit lens after the last block = the model's prediction", top == pred["token"],
              f"lens top-1 {top!r}, model {pred['token']!r}")
    if attr["available"] and attr["delta"] is not None:
        gap = abs(attr["target_logit"] - attr["baseline_logit"])
        tol = IG_TOLERANCE * gap + 1e-3
        c.add(f"integrated gradients complete (|delta| <= {IG_TOLERANCE:.0%} of |f(x) - f(baseline)|)",
              abs(attr["delta"]) <= tol, f"delta {attr['delta']:.2e}, f(x) - f(baseline) {gap:.3g}")
    return c.rows


# --- the report ------------------------------------------------------------------------------------------------
def read_arrays(run: Run) -> dict[str, torch.Tensor]:
    return read_safetensors(run.dir / ARRAYS, what="Inspect arrays")[0]


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    view = FinishedRun(store, run, InspectConfig)
    keys = ("model", "tokens", "prediction", "lens", "attribution", "patching", "detectors")
    return view.report_data(arrays=read_arrays(run), wall_seconds=view.result("wall_seconds"),
                            **{k: view.require(k) for k in keys})


EXPERIMENT = register(
    "inspect", InspectConfig, compute, analyze, report_data=report_data, render=render_inspect_report, check=check,
    sweep_metrics=("prediction_prob", "lens.target_rank_last"),
    tiny=("model=random", "text=the cat sat on the mat and the cat sat on the", "corrupt=the dog ran on the log and "
          "the dog ran on the", "n_steps=8"),
    summary_paths=lambda cfg: cfg.summary_paths())
