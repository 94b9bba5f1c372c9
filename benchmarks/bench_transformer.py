"""Training throughput of emergelab's Transformer vs a plain nanoGPT-style model vs TransformerLens.

Run (from the repo root, in the benchmark venv that also has transformer-lens 3.x):

    .venv-bench/bin/python benchmarks/bench_transformer.py            # full run, a few minutes
    .venv-bench/bin/python benchmarks/bench_transformer.py --quick    # smoke run, ~1 minute

All models live in ONE process, share the same random batches, and are timed in interleaved
repeats (the order rotates every repeat) so that thermal / background drift hits every model
alike; the reported number is the median over repeats. Before timing, the weights of our model
are copied into the plain model and into HookedTransformer and the logits are compared, which
proves the three compute the same function of the same shape.

Rewrites the "## Transformer training throughput" section of benchmarks/RESULTS.md (other
sections are left untouched) unless --no-write is given.
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
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from emergelab.models.transformer import Transformer, TransformerConfig

try:  # optional column: TransformerLens 3.x (4.x removed HookedTransformer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformer_lens
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    try:
        from importlib.metadata import version as _pkg_version

        TL_VERSION = _pkg_version("transformer-lens")
    except Exception:  # pragma: no cover
        TL_VERSION = getattr(transformer_lens, "__version__", "?")
    TL_ERROR = ""
except Exception as e:  # ImportError, or a broken install
    HookedTransformer = HookedTransformerConfig = None
    TL_VERSION = None
    TL_ERROR = f"{type(e).__name__}: {e}"

SECTION = "## Transformer training throughput"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


# --------------------------------------------------------------------------- plain baseline
class PlainBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        C = cfg.d_model
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        # parameter order mirrors emergelab's Transformer so weights can be copied with zip()
        self.ln1 = nn.LayerNorm(C) if cfg.layernorm else nn.Identity()
        self.qkv = nn.Linear(C, 3 * C, bias=cfg.bias)
        self.proj = nn.Linear(C, C, bias=cfg.bias)
        self.has_mlp = cfg.d_mlp > 0
        if self.has_mlp:
            self.ln2 = nn.LayerNorm(C) if cfg.layernorm else nn.Identity()
            self.fc = nn.Linear(C, cfg.d_mlp, bias=cfg.bias)
            self.fc_out = nn.Linear(cfg.d_mlp, C, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        if self.has_mlp:
            x = x + self.fc_out(F.gelu(self.fc(self.ln2(x))))
        return x


class PlainGPT(nn.Module):
    """nanoGPT-style: fused qkv Linear, SDPA(is_causal=True), learned positions, no hooks."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.wte = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(PlainBlock(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.head = nn.Linear(cfg.d_model, cfg.d_vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(T, device=tokens.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


# --------------------------------------------------------------------------- model construction
def tl_config(cfg: TransformerConfig):
    return HookedTransformerConfig(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp if cfg.d_mlp > 0 else None,
        attn_only=cfg.d_mlp == 0,
        n_ctx=cfg.n_ctx,
        d_vocab=cfg.d_vocab,
        act_fn=cfg.act_fn,
        normalization_type="LN" if cfg.layernorm else None,
        device="cpu",
        seed=0,
    )


@torch.no_grad()
def copy_to_plain(ours: Transformer, plain: PlainGPT) -> None:
    src, dst = list(ours.parameters()), list(plain.parameters())
    assert [p.shape for p in src] == [p.shape for p in dst], "plain model layout differs from ours"
    for s, d in zip(src, dst, strict=True):
        d.copy_(s)


@torch.no_grad()
def copy_to_tl(ours: Transformer, tl, cfg: TransformerConfig) -> None:
    H, D, C = cfg.n_heads, cfg.d_head, cfg.d_model
    tl.embed.W_E.copy_(ours.embed.weight)
    tl.pos_embed.W_pos.copy_(ours.pos_embed.weight)
    for ob, tb in zip(ours.blocks, tl.blocks, strict=True):
        w, b = ob.attn.W_qkv.weight, ob.attn.W_qkv.bias  # rows: (3, H, D)
        for i, (W, B_) in enumerate(((tb.attn.W_Q, tb.attn.b_Q), (tb.attn.W_K, tb.attn.b_K),
                                     (tb.attn.W_V, tb.attn.b_V))):
            W.copy_(w[i * C:(i + 1) * C].view(H, D, C).transpose(1, 2))  # (H, C, D)
            B_.copy_(b[i * C:(i + 1) * C].view(H, D))
        tb.attn.W_O.copy_(ob.attn.W_O.weight.T.reshape(H, D, C))
        tb.attn.b_O.copy_(ob.attn.W_O.bias)
        if cfg.layernorm:
            tb.ln1.w.copy_(ob.ln1.ln.weight), tb.ln1.b.copy_(ob.ln1.ln.bias)
        if cfg.d_mlp > 0:
            if cfg.layernorm:
                tb.ln2.w.copy_(ob.ln2.ln.weight), tb.ln2.b.copy_(ob.ln2.ln.bias)
            tb.mlp.W_in.copy_(ob.mlp.W_in.weight.T), tb.mlp.b_in.copy_(ob.mlp.W_in.bias)
            tb.mlp.W_out.copy_(ob.mlp.W_out.weight.T), tb.mlp.b_out.copy_(ob.mlp.W_out.bias)
    if cfg.layernorm:
        tl.ln_final.w.copy_(ours.ln_final.ln.weight), tl.ln_final.b.copy_(ours.ln_final.ln.bias)
    tl.unembed.W_U.copy_(ours.unembed.weight.T)
    tl.unembed.b_U.zero_()  # TL always has an unembed bias; ours has none


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------- timing
@dataclass
class Variant:
    name: str
    cfg: TransformerConfig


def timed_rounds(fns: dict[str, callable], repeats: int, n: int, warmup: int) -> dict[str, list[float]]:
    """Calls/s of each fn: `warmup` untimed calls each, then `repeats` interleaved rounds of n calls."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rates: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeats):
        order = keys[r % len(keys):] + keys[: r % len(keys)]  # rotate so no model is always first
        for k in order:
            t0 = time.perf_counter()
            for _ in range(n):
                fns[k]()
            rates[k].append(n / (time.perf_counter() - t0))
    return rates


def train_step_fn(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], V: int):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    model.train()
    i = [0]

    def step() -> None:
        x, y = batches[i[0] % len(batches)]
        i[0] += 1
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def fwd_fn(model: nn.Module, x: torch.Tensor, cache: bool):
    model.eval()

    @torch.no_grad()
    def call() -> None:
        if cache:
            _, c = model.run_with_cache(x)
            assert len(c) > 0
        else:
            model(x)

    return call


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# --------------------------------------------------------------------------- main
def run_variant(v: Variant, args, batch: int, seq: int) -> dict:
    cfg = v.cfg
    torch.manual_seed(0)
    ours = Transformer(cfg, seed=0)
    plain = PlainGPT(cfg)
    copy_to_plain(ours, plain)
    tl = None
    if HookedTransformer is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tl = HookedTransformer(tl_config(cfg))
        copy_to_tl(ours, tl, cfg)

    counts = {"ours": n_params(ours), "plain": n_params(plain)}
    if tl is not None:
        counts["TL"] = n_params(tl)
    print(f"\n[{v.name}] {cfg}")
    print("  parameters: " + ", ".join(f"{k}={c:,}" for k, c in counts.items())
          + ("  (TL extra = unembed bias b_U, d_vocab params, zeroed)" if tl is not None else ""))

    # equivalence: same weights -> same logits
    g = torch.Generator().manual_seed(1)
    probe = torch.randint(0, cfg.d_vocab, (4, seq), generator=g)
    with torch.no_grad():
        ref = ours(probe)
        diffs = {"plain": (plain(probe) - ref).abs().max().item()}
        _, cache = ours.run_with_cache(probe)
        diffs["ours run_with_cache"] = (_ - ref).abs().max().item()
        if tl is not None:
            diffs["TL"] = (tl(probe) - ref).abs().max().item()
    print("  max |logit diff| vs ours: " + ", ".join(f"{k}={d:.1e}" for k, d in diffs.items()))
    assert all(d < 1e-4 for d in diffs.values()), f"models disagree: {diffs}"
    n_hooks = len(cache)

    batches = []
    for _ in range(4):
        t = torch.randint(0, cfg.d_vocab, (batch, seq + 1), generator=g)
        batches.append((t[:, :-1].contiguous(), t[:, 1:].contiguous()))

    fns = {"ours": train_step_fn(ours, batches, cfg.d_vocab), "plain": train_step_fn(plain, batches, cfg.d_vocab)}
    if tl is not None:
        fns["TL"] = train_step_fn(tl, batches, cfg.d_vocab)
    t0 = time.perf_counter()
    train = timed_rounds(fns, args.repeats, args.steps, args.warmup)
    print(f"  train ({time.perf_counter() - t0:.0f}s): "
          + ", ".join(f"{k}={med(r):.2f} steps/s [{min(r):.2f}-{max(r):.2f}]" for k, r in train.items()))

    x = batches[0][0]
    ffns = {"ours fwd": fwd_fn(ours, x, False), "ours rwc": fwd_fn(ours, x, True), "plain fwd": fwd_fn(plain, x, False)}
    if tl is not None:
        ffns["TL fwd"], ffns["TL rwc"] = fwd_fn(tl, x, False), fwd_fn(tl, x, True)
    t0 = time.perf_counter()
    fwd = timed_rounds(ffns, args.repeats, args.fwd_calls, max(2, args.warmup // 2))
    print(f"  fwd ({time.perf_counter() - t0:.0f}s): "
          + ", ".join(f"{k}={1000 / med(r):.1f} ms" for k, r in fwd.items()))
    return {"variant": v, "counts": counts, "train": train, "fwd": fwd, "n_hooks": n_hooks}


def fmt_section(results: list[dict], args, batch: int, seq: int, cmd: str) -> str:
    has_tl = TL_VERSION is not None
    L = [SECTION, ""]
    L.append(f"- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}")
    L.append(f"- machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
             f"torch.set_num_threads({torch.get_num_threads()}), no GPU")
    L.append(f"- torch {torch.__version__}, python {platform.python_version()}, transformer-lens "
             + (TL_VERSION if has_tl else f"NOT AVAILABLE ({TL_ERROR}) — TL column skipped"))
    L.append(f"- workload: batch {batch} x seq {seq}, vocab {results[0]['variant'].cfg.d_vocab}, full training step "
             "(forward + cross-entropy + backward + AdamW step), float32; "
             f"{args.warmup} warmup steps, median of {args.repeats} interleaved repeats x {args.steps} steps "
             f"(forward: x {args.fwd_calls} calls)")
    L.append("- models: **ours** = `emergelab.models.transformer.Transformer` (no hooks attached during training, "
             "so SDPA path); **plain** = nanoGPT-style (fused qkv, `F.scaled_dot_product_attention(is_causal=True)`, "
             "no hooks), defined in the benchmark; **TL** = TransformerLens `HookedTransformer`. "
             "Our weights are copied into both before timing and the logits agree to < 1e-4.")
    L.append("- command: `" + cmd + "`")
    L.append("")
    hdr = "| variant | params ours / plain" + (" / TL" if has_tl else "") + " | ours steps/s | plain steps/s"
    hdr += " | TL steps/s" if has_tl else ""
    hdr += " | ours/plain (≥0.95)" + (" | ours/TL (≥1.8)" if has_tl else "") + " |"
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    for r in results:
        tr = {k: med(v) for k, v in r["train"].items()}
        c = r["counts"]
        row = f"| {r['variant'].name} | " + " / ".join(f"{c[k]:,}" for k in c) + " | "
        row += f"{tr['ours']:.2f} | {tr['plain']:.2f} | "
        if has_tl:
            row += f"{tr['TL']:.2f} | "
        a = tr["ours"] / tr["plain"]
        row += f"{a:.3f} {'✅' if a >= 0.95 else '❌'} |"
        if has_tl:
            b = tr["ours"] / tr["TL"]
            row += f" {b:.2f} {'✅' if b >= 1.8 else '❌'} |"
        L.append(row)
    L.append("")
    L.append("Forward only, `torch.no_grad()`, same batch; `run_with_cache` caches every hook point "
             "(so our model takes its explicit attention path and materializes the patterns):")
    L.append("")
    hdr = "| variant | hooks cached | plain fwd ms | ours fwd ms | ours run_with_cache ms | ours rwc/fwd (≤1.15)"
    hdr += " | TL fwd ms | TL run_with_cache ms | TL rwc/fwd |" if has_tl else " |"
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    for r in results:
        ms = {k: 1000 / med(v) for k, v in r["fwd"].items()}
        ratio = ms["ours rwc"] / ms["ours fwd"]
        row = (f"| {r['variant'].name} | {r['n_hooks']} | {ms['plain fwd']:.1f} | {ms['ours fwd']:.1f} | "
               f"{ms['ours rwc']:.1f} | {ratio:.2f} {'✅' if ratio <= 1.15 else '❌'} |")
        if has_tl:
            row += f" {ms['TL fwd']:.1f} | {ms['TL rwc']:.1f} | {ms['TL rwc'] / ms['TL fwd']:.2f} |"
        L.append(row)
    L.append("")
    return "\n".join(L)


def write_section(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pat = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 repeats x 5 steps (smoke test, noisy numbers)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="training steps per repeat")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    q = args.quick
    args.repeats = args.repeats or (2 if q else 5)
    args.steps = args.steps or (5 if q else 20)
    args.warmup = args.warmup or (3 if q else 5)
    args.fwd_calls = 2 * args.steps
    torch.set_num_threads(args.threads)
    batch, seq, vocab = 32, 128, 512
    common = dict(n_layers=2, d_model=128, n_heads=4, n_ctx=seq, d_vocab=vocab, act_fn="gelu", bias=True)
    variants = [
        Variant("MLP (d_mlp=512, LayerNorm)", TransformerConfig(d_mlp=512, layernorm=True, **common)),
        Variant("attn-only (d_mlp=0, no LN)", TransformerConfig(d_mlp=0, layernorm=False, **common)),
    ]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, transformer-lens "
          + (TL_VERSION or f"unavailable ({TL_ERROR}); skipping the TL column"))
    t0 = time.perf_counter()
    results = [run_variant(v, args, batch, seq) for v in variants]
    cmd = "python benchmarks/bench_transformer.py" + " ".join([""] + sys.argv[1:])
    section = fmt_section(results, args, batch, seq, cmd)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s\n\n" + section)
    if not args.no_write:
        write_section(section)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
