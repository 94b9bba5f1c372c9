"""`lm-induction`: the induction heads of a real causal language model, found and confirmed causally.

On SmolLM2-135M (the default; any causal LM `trace` maps: a local Hugging Face folder) every head is scored with
the prefix-matching and previous-token detectors on random token sequences written twice after a BOS token
(Olsson et al. 2022): the heads with a high prefix-matching score are named induction heads. Ablating the top
ones together must raise the loss on the repeated half by at least 1 nat while the first half barely moves, and
as many heads outside the circuit (neither induction nor previous-token heads, several random sets: the control
of the `induction` experiment, `induction_probe.ablation_control`) must move it far less. The measurements live
in `interpret/lm_induction_probe.py`; the checks of the control are the `induction` experiment's.

Nothing is trained: the "training" step measures (one traced forward, then one forward per ablation) and
stores what it found; the analysis builds the summary and the checks from the store alone.

Store layout:
    results  "model" (folder, family, layers, heads, KV heads, vocabulary), "scores" ({kind: (L, H) nested
             lists}), "heads" ({"induction", "previous_token": [{layer, head, scores...}]}), "ablation" (as the
             `induction` experiment's, plus "positions": the loss at every position clean / ablated / control),
             "wall_seconds", "summary"

Example:
    >>> result = run_experiment("lm-induction", overrides=["model=/path/to/smollm2-folder"])
    >>> result.summary["induction_heads"][0], result.summary["rise"], result.summary["control_rise"]
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..interpret.induction_probe import ablation_control
from ..interpret.lm_induction_probe import SCORE_KINDS, ablation_effects, measure_clean, repeated_random_tokens
from ..interpret.names import FAMILIES
from ..models.catalog import ALIASES, ensure_converted, resolve_model
from ..models.hf import check_model_folder, load_hf_model, load_tokenizer
from ..models.hf_random import random_llama
from ..report.lm_induction import render_lm_induction_report
from ..runs.context import RunContext
from ..runs.names import head_name
from ..runs.store import Run, RunStore
from . import kit
from .configs.lm_induction import LMInductionConfig, budget
from .induction import control_check

MIN_RISE = 1.0  # nats the repeated half's loss must rise when the induction heads are ablated
FIRST_MOVE_FRACTION = 0.25  # ... while the first half's loss moves by less than this fraction of that rise
COPY_FRACTION = 0.5  # in-context copying: the repeated half's loss is at most this fraction of the first half's
CAUSAL_FAMILIES = tuple(f for f in FAMILIES if f.name != "bert")  # families with attention patterns and logits


RANDOM = "random"  # the `model` value of an untrained Llama built in the run folder (the tiny runs use it)
RANDOM_WORDS = tuple(f"{a}{b}" for a in "bdgkmpst" for b in "aeiou")  # its word-level vocabulary (40 words)


# --- the model, checked before a run exists --------------------------------------------------------------
def _random_folder(cfg: LMInductionConfig, run_dir: Path) -> Path:
    folder = Path(run_dir) / "model"
    if not (folder / "config.json").is_file():
        random_llama(folder, RANDOM_WORDS, seed=cfg.seed, n_positions=max(64, cfg.n_positions))
    return folder


def load_model(cfg: LMInductionConfig, run_dir: Path) -> Any:
    """The model of `cfg.model` (models.catalog.resolve_model: an alias, a local Hugging Face folder or a run id),
    or `model=random`: an untrained Llama built once in `run_dir`."""
    device = kit.device_of(cfg)
    if cfg.model == RANDOM:
        return load_hf_model(_random_folder(cfg, run_dir), device=device)
    return resolve_model(cfg.model, device=device)


def _hf_config(folder: Path) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"model: could not read the config of '{folder}': {str(e).strip().splitlines()[0]}") from None


def _n_params(folder: Path, hf: Any) -> float:
    """The number of weights: from the safetensors files' sizes (float32 or 16-bit), else from the config."""
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    dtype = str(getattr(hf, "dtype", None) or "float32")
    if size:
        return size / (2 if "16" in dtype else 4)
    d, n = int(getattr(hf, "hidden_size", 0) or 0), int(getattr(hf, "num_hidden_layers", 0) or 0)
    return 12 * n * d * d + int(getattr(hf, "vocab_size", 0) or 0) * d


def _check_context(cfg: LMInductionConfig, n_ctx: int | None) -> None:
    if n_ctx is not None and cfg.n_positions > n_ctx:
        raise ConfigError(f"seq_len={cfg.seq_len} is invalid: {cfg.n_positions} tokens per sequence exceed the "
                          f"model's context of {n_ctx}")


def _check_bos(cfg: LMInductionConfig, tokenizer: Any) -> None:
    if cfg.bos and bos_id(tokenizer) is None:
        raise ConfigError(f"bos=true is invalid: the tokenizer of '{cfg.model}' has no BOS token; set bos=false")


def check(cfg: LMInductionConfig) -> None:
    """Model (alias: converted first; folder: family, context, tokenizer; run id: loaded), BOS and the run's size:
    bad input creates nothing."""
    if cfg.model == RANDOM:  # built by the run itself, to fit
        return
    if cfg.model in ALIASES:
        folder = ensure_converted(cfg.model)  # once, into the user's cache; a missing package names its install
    elif Path(cfg.model).expanduser().exists() or any(c in cfg.model for c in "/\\") or cfg.model[0] in ".~":
        folder = check_model_folder(Path(cfg.model).expanduser())
    else:  # a run id: one of our Transformers, small enough to load here
        lm = resolve_model(cfg.model)
        _check_context(cfg, lm.n_ctx)
        _check_bos(cfg, lm.tokenizer)
        m = lm.model.cfg
        kit.fits(cfg, budget(cfg, n_layers=m.n_layers, n_heads=m.n_heads, d_model=m.d_model, vocab_size=m.d_vocab,
                             n_params=sum(p.numel() for p in lm.model.parameters())))
        return
    hf = _hf_config(folder)
    if not any(hf.model_type in f.model_types for f in CAUSAL_FAMILIES):
        mapped = ", ".join(t for f in CAUSAL_FAMILIES for t in f.model_types)
        raise ConfigError(f"model: '{cfg.model}' is a {hf.model_type} model; lm-induction needs a causal LM of a "
                          f"mapped family ({mapped})")
    _check_context(cfg, next((getattr(hf, k) for k in ("n_positions", "max_position_embeddings")
                              if getattr(hf, k, None)), None))
    _check_bos(cfg, load_tokenizer(folder))
    kit.fits(cfg, budget(cfg, n_layers=int(hf.num_hidden_layers), n_heads=int(hf.num_attention_heads),
                         d_model=int(hf.hidden_size), vocab_size=int(hf.vocab_size), n_params=_n_params(folder, hf)))


def bos_id(tokenizer: Any) -> int | None:
    """The id every sequence starts with: the tokenizer's BOS token (SmolLM2: <|im_start|>), or None (also for
    our own models, whose tokens are plain integers)."""
    return getattr(tokenizer, "bos_token_id", None)


def model_info(cfg: LMInductionConfig, lm: Any, n_layers: int, n_heads: int, vocab: int, n_positions: int) -> dict:
    """What the report says about the model: where it came from, its family and shape."""
    config = getattr(lm.model, "config", None)
    model_type = getattr(config, "model_type", None)
    family = next((f.name for f in CAUSAL_FAMILIES if model_type in f.model_types), None)
    source = getattr(lm, "run_id", None) or getattr(config, "_name_or_path", None) or cfg.model
    return {"spec": cfg.model, "folder": str(source), "model_type": model_type or type(lm.model).__name__,
            "family": family or f"emergelab {type(lm.model).__name__}", "n_layers": n_layers, "n_heads": n_heads,
            "n_kv_heads": int(getattr(config, "num_key_value_heads", None) or n_heads), "vocab_size": vocab,
            "n_positions": n_positions, "bos_id": bos_id(lm.tokenizer) if cfg.bos else None}


# --- measurement (the "training" of this experiment) ----------------------------------------------------------
def _named(scores: dict[str, torch.Tensor], kind: str, threshold: float) -> list[dict[str, Any]]:
    """Heads whose `kind` score reaches `threshold`, highest first, each with all its scores."""
    grid = scores[kind]
    L, H = grid.shape
    heads = [(layer, head) for layer in range(L) for head in range(H) if grid[layer, head] >= threshold]
    heads.sort(key=lambda lh: -float(grid[lh]))
    return [{"layer": layer, "head": head, **{k: round(float(scores[k][layer, head]), 4) for k in SCORE_KINDS}}
            for layer, head in heads]


def measure(cfg: LMInductionConfig, ctx: RunContext, resume: bool = False) -> None:
    """Score every head, name the circuit, ablate it and its control; everything goes to the run's results.
    Deterministic given the seed, so a resume that finds no stored ablation simply measures again."""
    store = ctx.store
    if store.get_result(ctx.id, "ablation") is not None:
        return
    t0 = time.perf_counter()
    lm = load_model(cfg, ctx.dir)
    embeddings = lm.model.get_input_embeddings() if hasattr(lm.model, "get_input_embeddings") else None
    vocab = min(len(lm.tokenizer), getattr(embeddings, "num_embeddings", len(lm.tokenizer)))
    batch = repeated_random_tokens(vocab, cfg.n_seqs, cfg.seq_len, kit.generator(kit.eval_seed(cfg.seed)),
                                   bos_id=bos_id(lm.tokenizer) if cfg.bos else None,
                                   exclude=getattr(lm.tokenizer, "all_special_ids", ()))
    with ctx.progress:
        bar = ctx.progress.add_task(f"{ctx.id} forward passes", total=None, loss="-")
        clean = measure_clean(lm, batch)
        L, H = clean.scores["prefix_matching"].shape
        induction = _named(clean.scores, "prefix_matching", cfg.induction_threshold)
        prev = _named(clean.scores, "previous_token", cfg.previous_token_threshold)
        named = [(h["layer"], h["head"]) for h in induction]
        ablated = named[: cfg.n_ablated] if cfg.n_ablated else named
        # the control never holds a circuit head: neither a previous-token head nor a named induction head left
        # out of the ablated set
        circuit = {(h["layer"], h["head"]) for h in prev} | set(named[len(ablated):])
        control = ablation_control(ablated, circuit, L, H, cfg.control_draws, random.Random(kit.eval_seed(cfg.seed)))
        n_forwards = 1 + bool(ablated) + len(control["sets"]) + len(ablated) * cfg.per_head
        ctx.progress.update(bar, total=n_forwards, completed=1)
        ablation = ablation_effects(lm, batch, clean, ablated, control, how=cfg.ablation, per_head=cfg.per_head,
                                    step=lambda: ctx.progress.advance(bar))
    store.put_result(ctx.id, "model", model_info(cfg, lm, L, H, vocab, int(batch.tokens.shape[1])))
    store.put_result(ctx.id, "scores", {k: [[round(v, 4) for v in row] for row in clean.scores[k].tolist()]
                                        for k in SCORE_KINDS})
    store.put_result(ctx.id, "heads", {"induction": induction, "previous_token": prev})
    store.put_result(ctx.id, "wall_seconds", time.perf_counter() - t0)
    store.put_result(ctx.id, "ablation", ablation)  # last: its presence marks the measurement complete


# --- analysis (store only) ------------------------------------------------------------------------------------
def _names(heads: list[dict[str, Any]], key: str | None = None) -> str:
    if not heads:
        return "none"
    return ", ".join(head_name(h["layer"], h["head"]) + (f" ({h[key]:.2f})" if key else "") for h in heads)


def target_checks(summary: dict[str, Any], label: str) -> list[dict[str, Any]]:
    c = kit.Checks()
    clean = summary["clean"]
    first, rep = clean["first_loss"], clean["repeated_loss"]
    c.add(f"in-context copying: repeated-half loss <= {COPY_FRACTION:.0%} of the first half's", rep <= COPY_FRACTION
          * first, f"{rep:.2f} vs {first:.2f} nats")
    ind, prev, ab = summary["induction_heads"], summary["previous_token_heads"], summary["ablation"]
    c.add(f"induction heads found (prefix-matching score >= {summary['thresholds']['induction']:g})", bool(ind),
          _names(ind[:8], "prefix_matching") + (f" and {len(ind) - 8} more" if len(ind) > 8 else ""))
    top = ind[0] if ind else None
    earlier = [h for h in prev if top is not None and h["layer"] < top["layer"]]
    c.add("a previous-token head in an earlier layer than the top induction head", bool(earlier),
          (_names(earlier[:4], "previous_token") + f" before {head_name(top['layer'], top['head'])}") if top else
          "no induction head")
    rise, moved = summary["rise"], summary["first_moved"]
    n = len(ab["heads"])
    c.add(f"ablating the top {n} induction head{'s' if n != 1 else ''} raises the repeated-half loss by >= "
          f"{MIN_RISE:g} nat", n > 0 and rise >= MIN_RISE, f"{rise:+.2f} nats ({_names(ab['heads'])}, {ab['kind']} "
                                                            "ablation)")
    c.add(f"the same ablation moves the first-half loss by < {FIRST_MOVE_FRACTION:.0%} of that rise",
          n > 0 and rise > 0 and moved < FIRST_MOVE_FRACTION * rise, f"moved {moved:.3f} nats")
    c.add(*control_check(label, ab))
    return c.rows


def analyze(store: RunStore, run: Run) -> dict[str, Any]:
    view = kit.FinishedRun(store, run, LMInductionConfig)
    cfg = view.cfg
    model, heads = view.require("model"), view.require("heads")
    ablation = {k: v for k, v in view.require("ablation").items() if k != "positions"}
    ctl = ablation["control"]
    scores = view.require("scores")
    for h in ctl["pool"]:  # how far the control's heads are from being named themselves (the report says)
        h["previous_token_score"] = scores["previous_token"][h["layer"]][h["head"]]
        h["prefix_matching_score"] = scores["prefix_matching"][h["layer"]][h["head"]]
    clean_rep = ablation["clean_repeated_loss"]
    summary: dict[str, Any] = {
        "model": model,
        "seq_len": cfg.seq_len, "n_seqs": cfg.n_seqs,
        "thresholds": {"induction": cfg.induction_threshold, "previous_token": cfg.previous_token_threshold},
        "clean": {"first_loss": ablation["clean_first_loss"], "repeated_loss": clean_rep},
        "induction_heads": heads["induction"],
        "previous_token_heads": heads["previous_token"],
        "ablation": ablation,
        "rise": round(ablation["ablated_repeated_loss"] - clean_rep, 6),
        "first_moved": round(abs(ablation["ablated_first_loss"] - ablation["clean_first_loss"]), 6),
        "control_rise": None if ctl["repeated_loss"] is None else round(ctl["repeated_loss"] - clean_rep, 6),
        "control_rise_std": ctl["repeated_loss_std"],
        "wall_seconds": round(view.result("wall_seconds", 0.0), 2),
    }
    summary["checks"] = target_checks(summary, model_label(model))
    return summary


def model_label(model: dict[str, Any]) -> str:
    """How reports and checks name the model: the alias, else the folder's name."""
    spec = str(model.get("spec") or "")
    return Path(spec).name if ("/" in spec or "\\" in spec) else spec or "model"


def report_data(store: RunStore, run: Run) -> dict[str, Any]:
    """Everything the report shows, from the store alone: the summary, every head's scores, the loss by position."""
    view = kit.FinishedRun(store, run, LMInductionConfig)
    return view.report_data(scores=view.require("scores"), positions=view.require("ablation").get("positions", {}),
                            label=model_label(view.require("model")))


EXPERIMENT = kit.register(
    "lm-induction",
    LMInductionConfig, measure, analyze, report_data=report_data, render=render_lm_induction_report, check=check,
    sweep_metrics=("rise", "control_rise", "first_moved", "clean.repeated_loss", "wall_seconds"),
    tiny=("model=random", "seq_len=8", "n_seqs=2", "control_draws=2", "induction_threshold=0.1",
          "previous_token_threshold=0.16", "n_ablated=2"))
