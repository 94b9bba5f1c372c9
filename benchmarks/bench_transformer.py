"""Training throughput of emergelab's Transformer vs a plain nanoGPT-style model vs TransformerLens.

Run (from the repo root, in the benchmark venv that also has transformer-lens 3.x):

    .venv-bench/bin/python benchmarks/bench_transformer.py            # full run, ~2 min on an idle machine
    .venv-bench/bin/python benchmarks/bench_transformer.py --quick    # smoke run, under a minute

(benchmarks/requirements.txt says how .venv-bench is made.) Without transformer_lens the TL columns
are skipped with a note. All models live in ONE process, share the same random batches, and are
timed in interleaved rounds (the order rotates every round), so drift hits every model alike;
steps/s is the median over rounds and each ratio the median of per-round paired ratios. The
machine is shared: rounds during which other processes used the CPUs are dropped and re-run
(see timed_rounds). Before timing, our weights are copied into the plain model and into
HookedTransformer and the logits compared, which proves the three compute the same function of
the same shape.

Rewrites the "## Transformer training throughput" section of benchmarks/RESULTS.md (other
sections are left untouched) unless --no-write is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from results_md import RESULTS, write_section  # noqa: E402  (benchmarks/results_md.py)
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
        for i, (W, B_) in enumerate(
            ((tb.attn.W_Q, tb.attn.b_Q), (tb.attn.W_K, tb.attn.b_K), (tb.attn.W_V, tb.attn.b_V))
        ):
            W.copy_(w[i * C : (i + 1) * C].view(H, D, C).transpose(1, 2))  # (H, C, D)
            B_.copy_(b[i * C : (i + 1) * C].view(H, D))
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


def cpu_sample() -> tuple[int, int, int] | None:
    """(total, busy, this process) CPU jiffies so far, from /proc; None where unavailable."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
        return sum(v), sum(v) - v[3] - v[4], int(own[11]) + int(own[12])  # utime + stime, all threads
    except (OSError, ValueError, IndexError):
        return None


def others_share(a: tuple[int, int, int] | None, b: tuple[int, int, int] | None) -> float:
    """Share of the whole machine that *other* processes used between two cpu_sample()s."""
    if a is None or b is None or b[0] <= a[0]:
        return 0.0
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / (b[0] - a[0]))


@dataclass
class Rounds:
    rates: dict[str, list[float]]  # calls/s per clean round
    clean: int
    dropped: int  # rounds thrown away because other processes were using the CPUs
    contended: bool = False  # ran out of time before `repeats` clean rounds: dirty rounds kept


def timed_rounds(
    fns: dict[str, Callable[[], None]],
    repeats: int,
    max_calls: int,
    warmup: int,
    round_s: float,
    max_other: float = 0.1,
) -> Rounds:
    """Calls/s of each fn in interleaved rounds (the model order rotates every round).

    After `warmup` untimed calls, each fn gets n = clamp(round_s / t_call, 2, max_calls) calls per
    round, so a slow model (TransformerLens) does not stretch the run and every model's share of a
    round lasts about as long; round r of model A is then compared with round r of model B (see
    paired()). This machine is shared: when other processes use more than `max_other` of the CPUs
    during a round (read from /proc), torch's OpenMP threads stall on each other and steps get up to
    10x slower, so the round is dropped and repeated, until `repeats` clean rounds or a time budget
    of 3x the nominal duration (then all rounds are kept and the result is flagged as contended).
    """
    n: dict[str, int] = {}
    for k, fn in fns.items():
        best = math.inf
        for _ in range(max(warmup, 2)):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        n[k] = max(2, min(max_calls, round(round_s / max(best, 1e-6))))
    keys = list(fns)
    clean: dict[str, list[float]] = {k: [] for k in fns}
    dirty: dict[str, list[float]] = {k: [] for k in fns}
    deadline = time.monotonic() + 3 * repeats * len(fns) * round_s + 30
    r = 0
    while len(clean[keys[0]]) < repeats and time.monotonic() < deadline:
        rates, worst = {}, 0.0
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            s0, t0 = cpu_sample(), time.perf_counter()
            for _ in range(n[k]):
                fns[k]()
            rates[k] = n[k] / (time.perf_counter() - t0)
            worst = max(worst, others_share(s0, cpu_sample()))
        r += 1
        for k, v in rates.items():
            (clean if worst <= max_other else dirty)[k].append(v)
        if worst > max_other:
            print(f"    round {r}: other processes used {worst:.0%} of the CPUs; dropped", flush=True)
            wait_for_idle(15)
    n_clean, n_dirty = len(clean[keys[0]]), len(dirty[keys[0]])
    if n_clean >= max(3, repeats // 2):
        return Rounds(clean, n_clean, n_dirty)
    return Rounds({k: clean[k] + dirty[k] for k in keys}, n_clean, n_dirty, contended=True)


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median, min and max over rounds of a[r] / b[r] (same round, so same background load)."""
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


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


def cpu_busy(interval: float = 1.0) -> float | None:
    """Share of the CPUs that other processes used over the next `interval` s (None where unknown)."""
    s0 = cpu_sample()
    time.sleep(interval)
    s1 = cpu_sample()
    return None if s0 is None or s1 is None else others_share(s0, s1)


def wait_for_idle(max_wait: float, threshold: float = 0.1) -> float | None:
    """Wait (up to max_wait s) until other processes use < threshold of the CPUs; return the last reading.

    Other work on the 2 cores does more than add noise: torch's 2 OpenMP threads then wait on each
    other at every barrier and a step can take 10x longer, for every model alike.
    """
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy is not None and busy >= threshold and time.monotonic() < deadline:
        print(f"  machine {busy:.0%} busy with other processes; waiting for it to calm down ...", flush=True)
        time.sleep(4)
        busy = cpu_busy()
    return busy


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


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
    print(
        "  parameters: "
        + ", ".join(f"{k}={c:,}" for k, c in counts.items())
        + ("  (TL's extra d_vocab params = its unembed bias b_U, which it always has; zeroed)" if tl else "")
    )

    # equivalence: same weights -> same logits (proves same shape *and* same function)
    g = torch.Generator().manual_seed(1)
    probe = torch.randint(0, cfg.d_vocab, (4, seq), generator=g)
    with torch.no_grad():
        ref = ours(probe)
        diffs = {"plain": (plain(probe) - ref).abs().max().item()}
        out, cache = ours.run_with_cache(probe)
        diffs["ours run_with_cache"] = (out - ref).abs().max().item()
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
    train = timed_rounds(fns, args.repeats, args.steps, args.warmup, args.round_s)
    print(
        f"  train ({time.perf_counter() - t0:.0f}s): "
        + ", ".join(f"{k}={med(r):.2f} steps/s [{min(r):.2f}-{max(r):.2f}]" for k, r in train.rates.items())
        + f"; {train.clean} clean rounds, {train.dropped} dropped"
    )

    x = batches[0][0]
    ffns = {"ours fwd": fwd_fn(ours, x, False), "ours rwc": fwd_fn(ours, x, True), "plain fwd": fwd_fn(plain, x, False)}
    if tl is not None:
        ffns["TL fwd"], ffns["TL rwc"] = fwd_fn(tl, x, False), fwd_fn(tl, x, True)
    t0 = time.perf_counter()
    fwd = timed_rounds(ffns, args.repeats, 4 * args.steps, 3, args.round_s / 2)
    print(
        f"  fwd ({time.perf_counter() - t0:.0f}s): "
        + ", ".join(
            f"{k}={1000 / med(r):.1f} ms [{1000 / max(r):.1f}-{1000 / min(r):.1f}]" for k, r in fwd.rates.items()
        )
        + f"; {fwd.clean} clean rounds, {fwd.dropped} dropped"
    )
    return {"variant": v, "counts": counts, "train": train, "fwd": fwd, "n_hooks": n_hooks}


def _ratio(pair: tuple[float, float, float], ok: bool, digits: int = 2) -> str:
    m, lo, hi = pair
    return f"**{m:.{digits}f}** {'✅' if ok else '❌'} ({lo:.{digits}f}–{hi:.{digits}f})"


def _rounds(r: Rounds) -> str:
    s = f"{r.clean} clean" + (f", {r.dropped} dropped" if r.dropped else "")
    return s + (" — **CONTENDED: machine busy, numbers unreliable**" if r.contended else "")


def fmt_section(results: list[dict], args, batch: int, seq: int, cmd: str, load: tuple[str, str]) -> str:
    has_tl = TL_VERSION is not None
    cfg0 = results[0]["variant"].cfg
    L = [SECTION, ""]
    L.append(f"- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}")
    L.append(
        f"- machine: {os.cpu_count()} CPU cores ({platform.machine()}), no GPU, "
        f"`torch.set_num_threads({torch.get_num_threads()})`; load average (1/5/15 min) "
        f"{load[0]} at start, {load[1]} at end. The machine is shared: rounds during which other processes "
        f"used > 10% of the CPUs were dropped and re-run (count in the *rounds* column)"
    )
    L.append(
        f"- torch {torch.__version__}, python {platform.python_version()}, transformer-lens "
        + (TL_VERSION if has_tl else f"NOT AVAILABLE ({TL_ERROR}): TL columns skipped")
    )
    L.append(
        f"- shape: {cfg0.n_layers} layers, d_model {cfg0.d_model}, {cfg0.n_heads} heads (d_head {cfg0.d_head}), "
        f"vocab {cfg0.d_vocab}, n_ctx {cfg0.n_ctx}, biases, untied unembedding, GELU; "
        "MLP variant d_mlp 512 **with LayerNorm** (ours `layernorm=True`, TL `normalization_type='LN'`), "
        "attention-only variant d_mlp 0 **without LayerNorm** (ours `layernorm=False`, TL "
        "`attn_only=True, normalization_type=None`)"
    )
    L.append(
        f"- workload: batch {batch} x seq {seq}, float32, full training step = forward + cross-entropy + "
        f"backward + AdamW step (lr 1e-3, torch defaults); {args.warmup} warmup steps per model, then "
        f"{args.repeats} clean interleaved rounds (order rotates each round) of ~{args.round_s:g} s per model "
        f"(at most {args.steps} steps); steps/s = median over rounds; ratio = median over rounds of the "
        "paired per-round ratio, (min–max) in brackets"
    )
    L.append(
        "- models: **ours** = `emergelab.models.transformer.Transformer` (no hooks attached, so its SDPA "
        "path); **plain** = nanoGPT-style model defined in the benchmark (fused qkv Linear, "
        "`F.scaled_dot_product_attention(is_causal=True)`, learned positions, no hooks); **TL** = "
        "TransformerLens `HookedTransformer`. Our weights are copied into both before timing and the "
        "logits agree to < 1e-4. Parameter counts below: TL's extra `d_vocab` are its unembed bias."
    )
    L.append("- command: `" + cmd + "`")
    L.append("")
    hdr = "| variant | params ours / plain" + (" / TL" if has_tl else "") + " | rounds | ours steps/s | plain steps/s"
    hdr += " | TL steps/s" if has_tl else ""
    hdr += " | ours/plain (target ≥ 0.95)" + (" | ours/TL (target ≥ 1.8)" if has_tl else "") + " |"
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    for r in results:
        tr, c = r["train"].rates, r["counts"]
        row = f"| {r['variant'].name} | " + " / ".join(f"{c[k]:,}" for k in c) + f" | {_rounds(r['train'])} | "
        row += f"{med(tr['ours']):.2f} | {med(tr['plain']):.2f} | "
        if has_tl:
            row += f"{med(tr['TL']):.2f} | "
        a = paired(tr["ours"], tr["plain"])
        row += _ratio(a, a[0] >= 0.95, 3) + " |"
        if has_tl:
            b = paired(tr["ours"], tr["TL"])
            row += " " + _ratio(b, b[0] >= 1.8) + " |"
        L.append(row)
    L.append("")
    L.append(
        "Forward only, under `torch.no_grad()`, same batch (ms per call, median over rounds). "
        "`run_with_cache` (rwc) caches every hook point, so our model leaves its SDPA path for the explicit "
        "one that materializes the (B, H, T, T) scores and patterns; the overhead ratio is "
        "time(rwc) / time(fwd), paired per round:"
    )
    L.append("")
    hdr = "| variant | hooks cached | rounds | plain fwd ms | ours fwd ms | ours rwc ms | ours rwc/fwd (target ≤ 1.15)"
    hdr += " | TL fwd ms | TL rwc ms | TL rwc/fwd | ours rwc vs TL rwc speed |" if has_tl else " |"
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    for r in results:
        fw = r["fwd"].rates
        ms = {k: 1000 / med(v) for k, v in fw.items()}
        ov = paired(fw["ours fwd"], fw["ours rwc"])  # rate_fwd / rate_rwc = time_rwc / time_fwd
        row = (
            f"| {r['variant'].name} | {r['n_hooks']} | {_rounds(r['fwd'])} | {ms['plain fwd']:.1f} | "
            f"{ms['ours fwd']:.1f} | {ms['ours rwc']:.1f} | " + _ratio(ov, ov[0] <= 1.15) + " |"
        )
        if has_tl:
            tov = paired(fw["TL fwd"], fw["TL rwc"])
            vs = paired(fw["ours rwc"], fw["TL rwc"])
            row += f" {ms['TL fwd']:.1f} | {ms['TL rwc']:.1f} | {tov[0]:.2f} | {vs[0]:.2f}x |"
        L.append(row)
    L.append("")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 rounds of ~0.5 s (smoke test, noisy numbers)")
    ap.add_argument("--repeats", type=int, default=None, help="clean interleaved rounds (default 12)")
    ap.add_argument("--steps", type=int, default=20, help="max training steps per model per round")
    ap.add_argument("--round-s", type=float, default=None, help="target seconds per model per round (default 1)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per model first (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (the machine has 2 cores)")
    ap.add_argument("--wait-idle", type=float, default=120, help="wait up to this many s for other processes to finish")
    ap.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    q = args.quick
    args.repeats = args.repeats or (3 if q else 12)
    args.round_s = args.round_s or (0.5 if q else 1.0)
    args.warmup = args.warmup or (3 if q else 5)
    torch.set_num_threads(args.threads)
    batch, seq, vocab = 32, 128, 512
    common = dict(n_layers=2, d_model=128, n_heads=4, n_ctx=seq, d_vocab=vocab, act_fn="gelu", bias=True)
    variants = [
        Variant("MLP (d_mlp 512, LayerNorm)", TransformerConfig(d_mlp=512, layernorm=True, **common)),
        Variant("attn-only (d_mlp 0, no LN)", TransformerConfig(d_mlp=0, layernorm=False, **common)),
    ]
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, transformer-lens "
        + (TL_VERSION or f"unavailable ({TL_ERROR}); skipping the TL column")
    )
    busy = wait_for_idle(args.wait_idle)
    if busy is not None and busy >= 0.1:
        print(f"WARNING: {busy:.0%} of the CPUs are busy with other processes; numbers will be slow and noisy")
    load0, t0 = loadavg(), time.perf_counter()
    results = [run_variant(v, args, batch, seq) for v in variants]
    cmd = "python benchmarks/bench_transformer.py" + " ".join([""] + sys.argv[1:])
    section = fmt_section(results, args, batch, seq, cmd, (load0, loadavg()))
    print(f"\ntotal {time.perf_counter() - t0:.0f}s\n\n" + section)
    if not args.no_write:
        write_section(SECTION, section)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
