"""icl-eval scoring: shared-prefix key/value caching vs naive full-prompt scoring.

Run (from the repo root; needs only the package's own dependencies, transformers included):

    .venv/bin/python benchmarks/bench_icl_eval.py            # ~1-2 min on an idle 2-core machine
    .venv/bin/python benchmarks/bench_icl_eval.py --quick    # smoke run

Workload: a random GPT-2 (4 layers, n_embd 128, 4 heads) with a word-level tokenizer trained
offline on the task texts, saved to a temp folder and loaded back through `load_causal_lm`
(the path `emergelab icl-eval` takes). Task: the built-in sentiment sentences, widened to 240
examples with short lead-ins ("Honestly, ...") so that 16 shots leave >= 200 queries; one seed,
16 gold demonstrations, 200 queries + the content-free query. Both paths run in ONE process, on
the same encoded prompts, in interleaved rounds (order alternating); time = median over rounds;
speedup = median of the per-round ratios naive / cached. Same numbers: max |cached - naive| over
all (query, label) log-probs, checked against 1e-5.

Rewrites the "## icl-eval shared-prefix caching" section of benchmarks/RESULTS.md (other sections
are left untouched) unless --no-write is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import transformers
import yaml
from results_md import RESULTS, write_section  # noqa: E402  (benchmarks/results_md.py)

from emergelab.icl import kshot
from emergelab.models.hf import load_hf_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.fixtures builds the model
from tests.fixtures import hf_models  # noqa: E402

SECTION = "## icl-eval shared-prefix caching"
LEAD_INS = ("", "Honestly, ", "Overall, ", "In short, ", "To be fair, ")


def build_task(folder: Path) -> Path:
    base = kshot.load_task("sentiment")
    examples = [{"text": lead + text, "label": label} for lead in LEAD_INS for text, label in base.examples]
    path = folder / "sentiment240.yaml"
    path.write_text(yaml.safe_dump({"name": "sentiment240", "template": base.template,
                                    "verbalizers": base.verbalizers, "examples": examples}, sort_keys=False))
    return path


def load_avg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="2 rounds, 50 queries")
    ap.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.queries = 2, 50
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    load0 = load_avg()

    with tempfile.TemporaryDirectory() as tmp:
        task_path = build_task(Path(tmp))
        task = kshot.load_task(task_path)
        folder = hf_models.byte_bpe_lm(Path(tmp) / "gpt2", kshot.task_texts(task), n_layer=4, n_embd=128,
                                       n_head=4, n_positions=1024)
        lm = load_hf_model(folder)
        model, tok, n_ctx = lm.model, lm.tokenizer, lm.n_ctx
    n_params = sum(p.numel() for p in model.parameters())
    prompts, _ = kshot.encode_task(task, tok, [args.shots], ["gold"], [0], n_ctx)[(0, args.shots, "gold")]
    # keep `queries` real queries + the content-free one (last)
    prompts.queries = prompts.queries[: args.queries] + prompts.queries[-1:]
    q_len = statistics.mean(len(q) for q in prompts.queries)

    def run(cached: bool) -> tuple[float, torch.Tensor]:
        t0 = time.perf_counter()
        lp = kshot.score_prompts(model, prompts, cached=cached, batch_size=args.batch_size)
        return time.perf_counter() - t0, lp

    run(True), run(False)  # warm-up
    times: dict[bool, list[float]] = {True: [], False: []}
    ratios, max_diff = [], 0.0
    for r in range(args.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        got = {c: run(c) for c in order}
        for c in order:
            times[c].append(got[c][0])
        ratios.append(got[False][0] / got[True][0])
        max_diff = max(max_diff, float((got[True][1] - got[False][1]).abs().max()))
    med_c, med_n = statistics.median(times[True]), statistics.median(times[False])
    speed = statistics.median(ratios)
    load1 = load_avg()

    ok_speed, ok_same = speed >= 3.0, max_diff <= 1e-5
    lines = [
        SECTION, "",
        f"- date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: 2 CPU cores ({platform.machine()}), no GPU, `torch.set_num_threads({args.threads})`; load average "
        f"(1/5/15 min) {load0} at start, {load1} at end (the machine is shared with other work)",
        f"- python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}",
        f"- model: random GPT-2 (`GPT2LMHeadModel`, 4 layers, n_embd 128, 4 heads, {n_params:,} parameters), "
        f"word-level tokenizer ({len(tok)} tokens) trained offline on the task texts, saved to a temp folder and "
        "loaded with `kshot.load_causal_lm` (offline)",
        f"- workload: task `sentiment` widened to {len(task.examples)} examples, seed 0, {args.shots} gold "
        f"demonstrations = a {len(prompts.prefix)}-token prefix, {args.queries} queries + the content-free query "
        f"(mean {q_len:.1f} tokens each), 2 single-token labels, batch {args.batch_size}, float32, `torch.no_grad()`",
        "- naive = every sequence is prefix + query (`score_prompts(cached=False)`); cached = the prefix is encoded "
        "once, each batch runs only its query tokens on a deep copy of the prefix's `DynamicCache` repeated over the "
        "batch (`score_prompts(cached=True)`)",
        f"- timing: one process, one warm-up each, {args.rounds} interleaved rounds (order alternates); seconds = "
        "median; speedup = median of per-round naive/cached ratios (min-max in brackets)",
        f"- command: `.venv/bin/python benchmarks/bench_icl_eval.py{' --quick' if args.quick else ''}`",
        "",
        "| path | seconds (median) | speedup (target >= 3x) | max abs diff of label log-probs (target <= 1e-5) |",
        "|---|---|---|---|",
        f"| naive full prompts | {med_n:.3f} | 1 (reference) | |",
        f"| shared-prefix cache | {med_c:.3f} | **{speed:.1f}x** {'✅' if ok_speed else '❌'} "
        f"({min(ratios):.1f}-{max(ratios):.1f}) | {max_diff:.1e} {'✅' if ok_same else '❌'} |",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(SECTION, section)
        print(f"wrote the '{SECTION}' section of {RESULTS}")
    sys.exit(0 if ok_speed and ok_same else 1)


if __name__ == "__main__":
    main()
