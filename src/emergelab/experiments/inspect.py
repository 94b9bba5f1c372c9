"""`inspect`: one text through one model, explained in one self-contained report (`emergelab inspect`).

Attention of every layer and head, attention rollout, the logit lens, token attributions (Captum), the head
detectors on the text, and, with a corrupted text of as many tokens, activation patching (residual stream by
layer x position, heads by layer x head). Causal LMs (ours from a run id: text = token ids, '3 5 7 3 5') get
everything; an encoder (MiniLM) gets what needs no logits (attention, rollout, detectors), the report says why.
Checked before a run exists: model and tokenizer, text vs context length, target vs vocabulary, corrupt's length.

Store layout:
    results  "model" (name, family, causal, n_layers, n_heads, n_ctx, vocab_size), "tokens" ([T] strings),
             "prediction", "lens", "attribution", "detectors" ({name: (L, H)}), "patching", "wall_seconds"
    files    inspect.safetensors: attention (L, H, T, T) uint8 (sqrt(weight) x 255; causal: (L, H, T(T+1)/2), the
             lower triangle row by row) or, above `page_cells`, each query's top keys: attention (L, H, T, K) uint8 +
             attention_keys (L, H, T, K) int16; rollout (T, T) uint8 (each row / its max x 255; causal: packed) +
             rollout_max (T,) float32 (report/inspect.py `pack_attention`, `pack_rollout`); report.html

Example:
    >>> result = run_experiment("inspect", overrides=["model=models/gpt2", "text=The capital of", "target=' France'"])
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
from ..models.catalog import ALIASES, ensure_converted, resolve_model
from ..models.hf import HFModel, check_model_folder, context_length, load_hf_model, load_tokenizer
from ..report.inspect import pack_attention, pack_rollout, render_inspect_report
from ..runs.store import Run, RunStore
from ..tensorfile import read_safetensors, write_safetensors
from .configs.inspect import RANDOM, InspectConfig
from .kit import Checks, FinishedRun, device_of, register

ARRAYS = "inspect.safetensors"
RESULTS = ("model", "tokens", "prediction", "lens", "attribution", "patching", "detectors")  # the order analyze reads
ENCODERS = ("bert", "roberta", "distilbert", "electra", "mpnet", "xlm-roberta", "albert", "deberta", "deberta-v2")
IG_TOLERANCE = 0.05  # |delta| of integrated gradients, as a share of |f(x) - f(baseline)| (+ 1e-3 logits)


# --- the model: an alias, a folder, a run id (one of our Transformers), or the random control ------------------
def is_run_id(spec: str) -> bool:  # a run (models.catalog.resolve_model): not random, an alias or path-like
    return spec not in (RANDOM, *ALIASES) and not Path(spec).expanduser().exists() and not set("/\\.~") & set(spec)


def load(cfg: InspectConfig, run_dir: Path | None = None, store: Any = None) -> tuple[Any, bool, str]:
    """(model, causal, family): a run id's RunModel (catalog.resolve_model; family 'emergelab'), else an HFModel."""
    if is_run_id(cfg.model):
        return resolve_model(cfg.model, device=device_of(cfg), store=store), True, "emergelab"
    causal = is_causal(folder := model_folder(cfg, run_dir))
    lm = load_hf_model(folder, "causal" if causal else "base", device=device_of(cfg))
    return lm, causal, str(getattr(lm.model.config, "model_type", "?"))


def model_folder(cfg: InspectConfig, run_dir: Path | None = None) -> Path:
    """The local folder of `cfg.model`: an alias's (models.catalog: a missing package is one line naming its install
    command; SmolLM2 converted once), a folder, or `random`, built in `run_dir`. Not a model: ModelLoadError."""
    if cfg.model == RANDOM:
        if run_dir is None:
            raise ConfigError("model=random is built when the run starts")
        from ..models.hf_random import random_causal_lm

        folder = run_dir / "model"
        if not (folder / "config.json").is_file():
            random_causal_lm(folder, [cfg.text, *([cfg.corrupt] if cfg.corrupt else [])], seed=cfg.seed, vocab_size=300)
        return folder
    if cfg.model in ALIASES:
        return ensure_converted(cfg.model)
    return check_model_folder(Path(cfg.model).expanduser() if cfg.model.startswith("~") else cfg.model)


def is_causal(folder: Path) -> bool:
    """Whether the folder's config names a causal LM (else an encoder, loaded as a base model)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if archs := config.get("architectures"):
        return any(a.endswith("ForCausalLM") or "LMHead" in a for a in archs)
    return config.get("model_type") not in ENCODERS


def check(cfg: InspectConfig) -> None:
    """Model, tokenizer, context, corrupt, target (a run id's texts: token ids in its vocabulary): nothing created."""
    if not cfg.model:
        raise ConfigError("model: set a model: an alias (smollm2-135m, minilm), a local Hugging Face folder or a "
                          "run id (--set model=...)")
    if not cfg.text.strip():
        raise ConfigError("text: set the text to inspect (--set text='...')")
    if cfg.model == RANDOM:
        return  # its tokenizer is trained on the text when the run starts: it encodes it
    if is_run_id(cfg.model):  # an unknown run, or one without a Transformer: ModelLoadError, one line
        tok, n_ctx, causal, folder = (lm := resolve_model(cfg.model)).tokenizer, lm.n_ctx, True, Path(cfg.model)
    else:
        folder = model_folder(cfg)
        tok, n_ctx, causal = load_tokenizer(folder), context_length(folder), is_causal(folder)
    ids = _named("text", tok, cfg.text)["input_ids"]
    if n_ctx is not None and len(ids) > n_ctx:
        raise ConfigError(f"text: {len(ids)} tokens, longer than the model's context of {n_ctx} tokens; shorten it")
    if cfg.corrupt:
        n = len(_named("corrupt", tok, cfg.corrupt)["input_ids"])
        if n != len(ids):
            raise ConfigError(f"corrupt: {n} tokens, the text has {len(ids)}: patching compares position by position, "
                              f"so give a corrupted text of as many tokens")
    if cfg.target:
        if not causal:
            raise ConfigError(f"target: '{folder}' is not a causal LM (no next-token logits to explain)")
        _named("target", resolve_target, HFModel(None, tok, n_ctx), cfg.target, len(tok))  # type: ignore[arg-type]


def _named(key: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ConfigError as e:  # our models' texts are token ids: not integers, or outside the vocabulary
        raise ConfigError(f"{key}: {e}") from None


# --- the computation (this experiment's "training") ------------------------------------------------------------
def compute(cfg: InspectConfig, ctx: Any, resume: bool = False) -> None:
    store, t0 = ctx.store, time.perf_counter()
    lm, causal, family = load(cfg, ctx.dir, store.path)
    ids = (enc := encode(lm, cfg.text)).ids  # (1, T)
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} inspect", total=5, loss="-")
        att = attention(lm, enc.inputs if isinstance(lm, HFModel) else ids)  # ours take ids, not a mapping
        patterns = att.patterns.float()  # (L, 1, H, T, T)
        L, _, H = patterns.shape[:3]
        store.put_result(ctx.id, "model", {"name": cfg.model, "family": family, "causal": causal, "n_layers": L,
                                           "n_heads": H, "n_ctx": lm.n_ctx, "vocab_size": len(lm.tokenizer)})
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
            logits, tok = _last_logits(lm, ids), lm.tokenizer  # (V,)
            p = logits.softmax(-1)
            top = int(logits.argmax())
            target = resolve_target(lm, cfg.target, logits.shape[-1]) if cfg.target else top
            store.put_result(ctx.id, "prediction", {
                "available": True, "id": top, "token": tok.decode([top]), "prob": float(p[top]), "target_id": target,
                "target": tok.decode([target]), "target_prob": float(p[target]), "target_given": bool(cfg.target)})
            store.put_result(ctx.id, "lens", _lens(lm, ids, target, cfg))
            ctx.progress.update(bar, completed=2)
            store.put_result(ctx.id, "attribution", _attribution(lm, ids, target, cfg))
            ctx.progress.update(bar, completed=3)
            store.put_result(ctx.id, "patching", _patching(lm, ids, target, cfg, L))
        ctx.progress.update(bar, completed=5)
    store.put_result(ctx.id, "wall_seconds", time.perf_counter() - t0)


@torch.no_grad()
def _last_logits(lm: Any, ids: torch.Tensor) -> torch.Tensor:
    """The last position's logits (V,) float32: HF models return `.logits`, our Transformer the tensor."""
    out = lm.model(ids.to(next(lm.model.parameters()).device))
    return getattr(out, "logits", out)[0, -1].float()


def _lens(lm: HFModel, ids: torch.Tensor, target: int, cfg: InspectConfig) -> dict[str, Any]:
    positions = list(range(max(0, ids.shape[1] - cfg.lens_positions), ids.shape[1]))
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
            "target_logit": float(a.target_logits[0]), "baseline_logit": float(a.baseline_logits[0]) if ig else None,
            "delta": float(a.delta[0]) if ig else None, "n_steps": a.n_steps}


def _patching(lm: HFModel, ids: torch.Tensor, target: int, cfg: InspectConfig, L: int) -> dict[str, Any]:
    if not cfg.corrupt:
        return {"available": False, "why": "no corrupted text given (--corrupt)"}
    bad = encode(lm, cfg.corrupt).ids
    if bad.shape != ids.shape:  # checked before the run; a tokenizer that changes its mind lands here
        raise EmergelabError(f"corrupt: {bad.shape[1]} tokens, the text has {ids.shape[1]}")
    ranked = _last_logits(lm, bad).argsort(descending=True).tolist()
    foil = next(i for i in ranked if i != target)  # the corrupted run's answer, where it is not the target

    def metric(logits: torch.Tensor) -> torch.Tensor:  # logit difference target - foil at the last position
        return (logits[:, -1, target] - logits[:, -1, foil]).mean()

    grids = []
    for what in ("resid_pre", "heads"):
        method = cfg.patching
        if method == "auto":  # exact costs one forward per cell; heads grids are small
            method = "exact" if what == "heads" or L * ids.shape[1] <= cfg.exact_cells else "attribution"
        fn = activation_patching if method == "exact" else attribution_patching
        r = fn(lm, ids, bad, metric, what=what)
        grids.append({"what": what, "method": r.method, "effect": r.effect.tolist(), "rows": r.layers, "cols": r.cols,
                      "normalized": r.normalized.tolist(), "clean": r.clean, "corrupted": r.corrupted,
                      "seconds": r.seconds, "forwards": r.forwards})
    return {"available": True, "target": lm.tokenizer.decode([target]), "foil": lm.tokenizer.decode([foil]),
            "foil_id": foil, "corrupt_tokens": encode(lm, cfg.corrupt).tokens[0], "grids": grids}


# --- analysis (store only) -------------------------------------------------------------------------------------
def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = FinishedRun(store, run, InspectConfig)
    model, tokens, pred, lens, attr, patch, det = (view.require(k) for k in RESULTS)
    arrays = read_arrays(run)
    dense = "attention_keys" not in arrays
    K = len(tokens) if dense else int(arrays["attention"].shape[-1])
    mass = 1.0 if dense else float(((arrays["attention"].float() / 255) ** 2).sum(-1).mean())
    summary: dict[str, Any] = {
        "model": model, "n_tokens": len(tokens), "target": pred.get("target"), "target_id": pred.get("target_id"),
        "target_given": pred.get("target_given", False), "prediction": pred.get("token"), "prediction_prob":
        pred.get("prob"), "attention_format": "dense" if dense else "top_keys", "attention_top_keys": K,
        "attention_mass_shown": mass}
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
    return view.report_data(arrays=read_arrays(run), wall_seconds=view.result("wall_seconds"),
                            **{k: view.require(k) for k in RESULTS})


EXPERIMENT = register(
    "inspect", InspectConfig, compute, analyze, report_data=report_data, render=render_inspect_report, check=check,
    sweep_metrics=("prediction_prob", "lens.target_rank_last"),
    tiny=("model=random", "text=the cat sat on the mat and the cat sat on the", "corrupt=the dog ran on the log and "
          "the dog ran on the", "n_steps=8"),
    summary_paths=lambda cfg: cfg.summary_paths())
