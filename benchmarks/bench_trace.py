"""What `trace()` of every activation costs, vs a plain forward, nnsight's trace and TransformerLens, in ONE process.

Two models:
    SmolLM2-135M-Instruct   the catalog's conversion (emergelab.models.catalog.ensure_converted), 128 tokens
    our 2-layer Transformer the `induction` experiment's default shape (attention-only, d_model 48, 4 heads)

Per model, each contender runs on the same token ids, interleaved in rounds (the order rotates every round) so
that the shared machine's load hits all alike; seconds per call = median over rounds, and each ratio = median
of the per-round ratios to the plain forward of the same attention implementation:
    plain forward (fused)   transformers' SDPA / our SDPA path, no hooks (for reference)
    plain forward (eager)   eager attention (HF) / our explicit-softmax path (a no-op hook on hook_pattern):
                            what every tool below has to run to expose attention patterns -> the baseline
    emergelab trace         `trace(model, ids)`: every canonical name (resid pre/mid/post, attn pattern, z,
                            attn_out, mlp_out, final norm, logits)
    nnsight trace           the same activations saved from an `NNsight` wrapper (values checked against ours)
    TransformerLens         3.x `run_with_cache`. Ours: a HookedTransformer with our weights copied in (logits
                            checked). SmolLM2: `HookedTransformer.from_pretrained` of the local folder (it cannot:
                            the reason is recorded) and `TransformerBridge.boot_transformers(folder)`, which
                            loads it offline, caching our names only and all of its ~1,400 hooks

Run in the benchmark venv (benchmarks/requirements.txt: nnsight, transformer-lens 3.x):

    .venv-bench/bin/python benchmarks/bench_trace.py                # ~3-6 min on the shared 2-core machine
    .venv-bench/bin/python benchmarks/bench_trace.py --rounds 3 --no-write

Rewrites the "## trace: every activation vs a plain forward, nnsight, TransformerLens" section of
benchmarks/RESULTS.md unless --no-write is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from results_md import write_section  # noqa: E402  (benchmarks/results_md.py)

from emergelab.interpret import trace
from emergelab.models.catalog import ensure_converted
from emergelab.models.hf import load_hf_model
from emergelab.models.transformer import Transformer, TransformerConfig

SECTION = "## trace: every activation vs a plain forward, nnsight, TransformerLens"
TARGET = 1.15


def pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160] if text else ''}"


# --------------------------------------------------------------------------- timing
def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, round_s: float) -> dict[str, list[float]]:
    """Seconds per call of each fn, one value per round; each fn gets about `round_s` per round."""
    n = {}
    for k, fn in fns.items():
        fn()  # warm-up (allocator, lazy init)
        t0 = time.perf_counter()
        fn()
        n[k] = max(1, min(50, round(round_s / max(time.perf_counter() - t0, 1e-6))))
    keys, out = list(fns), {k: [] for k in fns}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t0 = time.perf_counter()
            for _ in range(n[k]):
                fns[k]()
            out[k].append((time.perf_counter() - t0) / n[k])
    return out


def ratio(a: list[float], b: list[float]) -> tuple[float, float, float]:
    rs = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(rs), min(rs), max(rs)


@contextmanager
def explicit_attention(model: Transformer):
    """Our model runs its explicit softmax path (as when a pattern is read) with nothing recorded."""
    handles = [b.attn.hook_pattern.register_forward_hook(lambda *_: None) for b in model.blocks]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def cache_size(cache: dict[str, torch.Tensor]) -> tuple[int, float]:
    return len(cache), sum(t.numel() * t.element_size() for t in cache.values()) / 2**20


# --------------------------------------------------------------------------- SmolLM2
def nnsight_hf(model: Any) -> tuple[Callable[[torch.Tensor], dict[str, Any]], str]:
    from nnsight import NNsight

    wrapped = NNsight(model)

    def run(ids: torch.Tensor) -> dict[str, Any]:
        saved: dict[str, Any] = {}
        with torch.no_grad(), wrapped.trace(ids):
            saved["hook_embed"] = wrapped.model.embed_tokens.output.save()
            for i, layer in enumerate(wrapped.model.layers):  # in execution order (nnsight >= 0.5 needs it)
                saved[f"blocks.{i}.hook_resid_pre"] = layer.input.save()
                saved[f"blocks.{i}.attn.hook_z"] = layer.self_attn.o_proj.input.save()
                out = layer.self_attn.output
                saved[f"blocks.{i}.hook_attn_out"] = out[0].save()
                saved[f"blocks.{i}.attn.hook_pattern"] = out[1].save()
                saved[f"blocks.{i}.hook_resid_mid"] = layer.post_attention_layernorm.input.save()
                saved[f"blocks.{i}.hook_mlp_out"] = layer.mlp.output.save()
                saved[f"blocks.{i}.hook_resid_post"] = layer.output.save()
            saved["ln_final.hook_normalized"] = wrapped.model.norm.output.save()
            saved["logits"] = wrapped.lm_head.output.save()
        return {k: getattr(v, "value", v) for k, v in saved.items()}

    return run, f"nnsight {pkg('nnsight')}"


def compare(ours: dict[str, torch.Tensor], theirs: dict[str, Any]) -> float:
    """Max abs diff over the names both hold (theirs reshaped to ours: z is flat in nnsight)."""
    return max(diffs(ours, theirs).values(), default=0.0)


def diffs(ours: dict[str, torch.Tensor], theirs: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in theirs.items():
        if k in ours and isinstance(v, torch.Tensor):
            out[k] = (ours[k] - v.reshape(ours[k].shape)).abs().max().item() if v.numel() == ours[k].numel() \
                else float("inf")
    return out


def differing(d: dict[str, float], tol: float = 1e-4) -> str:
    """The name templates (layer replaced by i) whose values differ by more than tol."""
    names = sorted({re.sub(r"blocks\.\d+\.", "blocks.i.", k) for k, v in d.items() if v > tol})
    return f" (differ: {', '.join(names)})" if names else ""


def bench_smollm2(args: argparse.Namespace) -> tuple[list[list[str]], list[str]]:
    folder = ensure_converted("smollm2-135m", args.cache_dir)
    lm = load_hf_model(folder)
    model = lm.model
    ids = torch.randint(0, model.config.vocab_size, (1, args.tokens), generator=torch.Generator().manual_seed(0))
    notes = [f"SmolLM2-135M-Instruct from `{folder}` (30 layers, d_model 576, 9 query / 3 KV heads), "
             f"{args.tokens} random token ids, batch 1, float32"]

    def plain(impl: str) -> Callable[[], Any]:
        def call() -> Any:
            model.set_attn_implementation(impl)
            with torch.no_grad():
                return model(ids)
        return call

    model.set_attn_implementation("eager")  # trace then needs no switch: eager is what it would switch to
    fns: dict[str, Callable[[], Any]] = {"plain forward (SDPA)": plain("sdpa"), "plain forward (eager)": plain("eager"),
                                         "emergelab trace": lambda: trace(model, ids)}
    ref = trace(model, ids)
    n, mb = cache_size(ref)
    info = {"emergelab trace": f"{n} tensors, {mb:.0f} MB"}
    try:
        run, label = nnsight_hf(model)
        got = run(ids)
        info["nnsight trace"] = f"{len(got)} tensors, max abs diff vs trace {compare(ref, got):.1e}"
        fns["nnsight trace"] = lambda: run(ids)
        notes.append(f"nnsight: {label}, `NNsight(model).trace(ids)` saving the same activations "
                     f"(embed, per layer resid_pre, z = o_proj input, attn_out, pattern, resid_mid, mlp_out, "
                     f"resid_post; final norm, logits)")
    except Exception as e:  # noqa: BLE001  (a peer that fails is a result)
        info["nnsight trace"] = f"could not run: {first_line(e)}"
    try:
        from transformer_lens import HookedTransformer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            HookedTransformer.from_pretrained(str(folder), hf_model=model, tokenizer=lm.tokenizer, device="cpu")
        info["TransformerLens HookedTransformer"] = "loaded (unexpected)"
    except Exception as e:  # noqa: BLE001
        info["TransformerLens HookedTransformer"] = (f"cannot load the local model offline: "
                                                     f"{first_line(e)[:90]} ...")
    try:
        from transformer_lens.model_bridge import TransformerBridge

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(str(folder), device="cpu")  # eager attention, local folder
        same = set(ref)

        def bridge_same() -> Any:
            with torch.no_grad():
                return bridge.run_with_cache(ids, names_filter=lambda n: n in same)

        def bridge_all() -> Any:
            with torch.no_grad():
                return bridge.run_with_cache(ids)

        logits, got = bridge_same()
        d = diffs(ref, dict(got.items())) | {"logits": (logits - ref["logits"]).abs().max().item()}
        same_values = {k: v for k, v in d.items() if v <= 1e-4}
        fns["TransformerLens TransformerBridge, same names"] = bridge_same
        fns["TransformerLens TransformerBridge, all its hooks"] = bridge_all
        info["TransformerLens TransformerBridge, same names"] = (
            f"`boot_transformers(folder)` loads offline; {len(got)} tensors; max abs diff vs trace "
            f"{max(same_values.values(), default=0):.1e}{differing(d)}")
        info["TransformerLens TransformerBridge, all its hooks"] = f"{len(bridge_all()[1])} tensors"
    except Exception as e:  # noqa: BLE001
        info["TransformerLens TransformerBridge, same names"] = f"could not run: {first_line(e)}"
    times = interleaved(fns, args.rounds, args.round_s)
    model.set_attn_implementation("sdpa")
    return table(times, "plain forward (eager)", info), notes


# --------------------------------------------------------------------------- our Transformer
def tl_hooked(ours: Transformer, cfg: TransformerConfig) -> Any:
    from bench_transformer import copy_to_tl, tl_config  # benchmarks/bench_transformer.py: the same conversion
    from transformer_lens import HookedTransformer

    tl = HookedTransformer(tl_config(cfg))
    copy_to_tl(ours, tl, cfg)
    return tl.eval()


def bench_ours(args: argparse.Namespace) -> tuple[list[list[str]], list[str]]:
    cfg = TransformerConfig(n_layers=2, d_model=48, n_heads=4, d_mlp=0, n_ctx=64, d_vocab=130)
    model = Transformer(cfg, seed=0).eval()
    x = torch.randint(0, cfg.d_vocab, (args.batch, cfg.n_ctx), generator=torch.Generator().manual_seed(0))
    notes = [f"our Transformer: the induction experiment's default 2-layer shape ({cfg.d_model} wide, {cfg.n_heads} "
             f"heads, attention-only, context {cfg.n_ctx}, vocabulary {cfg.d_vocab}), batch {args.batch}"]

    def plain_fused() -> Any:
        with torch.no_grad():
            return model(x)

    def plain_explicit() -> Any:
        with torch.no_grad(), explicit_attention(model):
            return model(x)

    fns: dict[str, Callable[[], Any]] = {"plain forward (SDPA)": plain_fused,
                                         "plain forward (explicit softmax)": plain_explicit,
                                         "emergelab trace": lambda: trace(model, x),
                                         "emergelab run_with_cache": lambda: model.run_with_cache(x)}
    ref = trace(model, x)
    n, mb = cache_size(ref)
    info = {"emergelab trace": f"{n} tensors, {mb:.1f} MB", "emergelab run_with_cache": "the model's own HookPoints"}
    try:
        from nnsight import NNsight

        wrapped = NNsight(model)
        points = [name for name, m in model.named_modules() if type(m).__name__ == "HookPoint"]

        order: list[str] = []  # execution order (nnsight >= 0.5 wants it), recorded by one hooked forward
        mods = dict(model.named_modules())
        handles = [mods[p].register_forward_hook(lambda *_, p=p: order.append(p)) for p in points]
        with torch.no_grad(), explicit_attention(model):
            model(x)
        for h in handles:
            h.remove()

        def envoy(path: str) -> Any:
            obj: Any = wrapped
            for part in path.split("."):
                obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
            return obj

        def run() -> dict[str, Any]:
            saved: dict[str, Any] = {}  # defined outside: nnsight runs the with-body as its own function
            with torch.no_grad(), explicit_attention(model), wrapped.trace(x):
                for p in order:
                    saved[p] = envoy(p).output.save()
            return {k: getattr(v, "value", v) for k, v in saved.items()}

        got = run()
        info["nnsight trace"] = f"{len(got)} HookPoint outputs, max abs diff vs trace {compare(ref, got):.1e}"
        fns["nnsight trace"] = run
    except Exception as e:  # noqa: BLE001
        info["nnsight trace"] = f"could not run: {first_line(e)}"
    try:
        tl = tl_hooked(model, cfg)
        with torch.no_grad():
            diff = (tl(x) - model(x)).abs().max().item()

        def tl_cache() -> Any:
            with torch.no_grad():
                return tl.run_with_cache(x)

        fns["TransformerLens run_with_cache"] = tl_cache
        info["TransformerLens run_with_cache"] = (f"HookedTransformer, our weights; logits max abs diff {diff:.1e}; "
                                                  f"{len(tl_cache()[1])} hooks cached")
    except Exception as e:  # noqa: BLE001
        info["TransformerLens run_with_cache"] = f"could not run: {first_line(e)}"
    times = interleaved(fns, args.rounds, args.round_s)
    return table(times, "plain forward (explicit softmax)", info), notes


def table(times: dict[str, list[float]], base: str, info: dict[str, str]) -> list[list[str]]:
    rows = []
    for k, ts in times.items():
        med = statistics.median(ts) * 1e3
        if k == base:
            r = "1.00 (baseline)"
        else:
            m, lo, hi = ratio(ts, times[base])
            mark = (" ✅" if m <= TARGET else " ❌") if k == "emergelab trace" else ""
            r = f"**{m:.2f}x**{mark} ({lo:.2f}-{hi:.2f})"
        rows.append([k, f"{med:.1f} ({min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f})", r, info.get(k, "")])
    for k, v in info.items():  # peers that could not run
        if k not in times:
            rows.append([k, "-", "-", v])
    return rows


def render(rows: list[list[str]]) -> str:
    out = ["| contender | ms per call, median (min-max) | vs baseline, median (min-max) | notes |", "|---|---|---|---|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--round-s", type=float, default=1.5, help="seconds per contender per round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=None, help="model cache of the SmolLM2 conversion (default: the user's)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start, load0 = dt.datetime.now(dt.UTC), os.getloadavg()
    sections = []
    for name, fn in (("SmolLM2-135M (128 tokens)", bench_smollm2), ("our 2-layer Transformer", bench_ours)):
        print(f"{name} ...", flush=True)
        rows, notes = fn(args)
        sections.append((name, rows, notes))
        print(render(rows), flush=True)
    load1 = os.getloadavg()
    lines = [SECTION, "",
             f"- date: {start:%Y-%m-%d %H:%M} UTC",
             f"- machine: {os.cpu_count()} CPU cores ({platform.machine()}), no GPU, `torch.set_num_threads("
             f"{args.threads})`; load average (1/5/15 min) {' / '.join(f'{v:.1f}' for v in load0)} at start, "
             f"{' / '.join(f'{v:.1f}' for v in load1)} at end (the machine is shared with other work)",
             f"- python {platform.python_version()}, torch {torch.__version__}, transformers {pkg('transformers')}, "
             f"nnsight {pkg('nnsight')}, transformer-lens {pkg('transformer-lens')}",
             f"- {args.rounds} interleaved rounds (order rotates), ~{args.round_s} s per contender per round; ratio = "
             f"median of per-round ratios to the plain forward of the same attention implementation (eager / "
             f"explicit softmax: what exposing patterns needs); target: trace <= {TARGET}x",
             f"- command: `.venv-bench/bin/python benchmarks/bench_trace.py {' '.join(sys.argv[1:])}`".rstrip()]
    for name, rows, notes in sections:
        lines += ["", f"### {name}", "", *[f"- {n}" for n in notes], "", render(rows)]
    lines += ["", "Reading: each ratio pairs calls of the same round (same background load); the min-max spread shows "
              "how busy the shared machine was, so medians within ~0.1x of each other are ties. trace stores "
              "detached tensors through forward hooks and adds no work beyond the eager / explicit attention that "
              "reading patterns needs (the fused SDPA forward is the cost of not reading them). HookedTransformer "
              "3.x loads only the models on its official list (from the hub); TransformerBridge loads the local "
              "folder offline and, on the names both have, gives the same values, except its "
              "`ln_final.hook_normalized`, which sits at another point of the final RMSNorm."]
    text = "\n".join(lines) + "\n"
    if not args.no_write:
        write_section(SECTION, text)
        print("wrote benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
