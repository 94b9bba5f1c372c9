"""Sweep executors on one machine: in-process (one point at a time, all cores) vs local worker processes vs
Ray tasks, on the same small sweep.

Run (from the repo root; Ray comes with `make` / `pip install 'emergelab[ray]'`):

    .venv/bin/python benchmarks/bench_sweep.py            # ~4-6 min on an idle 2-core machine
    .venv/bin/python benchmarks/bench_sweep.py --quick    # smoke run

Workload: `icl-regression` reduced (d = 3, 2 layers x 32, 4 heads, 600 steps, batch 32, 256 eval prompts),
swept over seed = 0..3 (4 points). Each executor runs the whole sweep into its own fresh store, so nothing is
reused; wall time includes starting processes or Ray, and for Ray sending each run (rows, report, checkpoints)
back from its task's scratch store to the driver, the one writer of the store. Same numbers: the largest
relative difference of the tabulated summary values against the in-process sweep (thread counts differ, so
floating-point sums may).

Rewrites the "## Sweep executors" section of benchmarks/RESULTS.md unless --no-write is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from results_md import RESULTS, write_section  # noqa: E402

from emergelab.sweeps import run_sweep  # noqa: E402
from emergelab.sweeps.executors import threads_per_worker  # noqa: E402

SECTION = "## Sweep executors"
TINY = ["threads=0", "task.d=3", "model.n_layers=2", "model.d_model=32", "model.n_heads=4", "model.d_mlp=64",
        "train.batch_size=32", "train.warmup_steps=50", "train.log_every=100", "train.checkpoint_every=300",
        "analysis.eval_size=256", "analysis.probe_size=64", "analysis.n_boot=100"]
METRICS = ["error_by_k.transformer.-1", "error_by_k.transformer.3", "task_diversity.distance_to_ridge"]


def load_avg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(label: str, steps: int, points: int, folder: Path, **kw) -> tuple[float, list]:
    t0 = time.perf_counter()
    res = run_sweep("icl-regression", {"seed": list(range(points))}, overrides=[*TINY, f"train.steps={steps}"],
                    metrics=METRICS, store=folder / label / "e.db", progress=False, **kw)
    wall = time.perf_counter() - t0
    if res.failed:
        raise SystemExit(f"{label}: points failed: {res.failed}")
    print(f"{label}: {wall:.1f} s", flush=True)
    return wall, [r["values"] for r in res.rows]


def max_rel_diff(a: list, b: list) -> float:
    out = 0.0
    for ra, rb in zip(a, b, strict=True):
        for m in METRICS:
            x, y = ra[m], rb[m]
            out = max(out, abs(x - y) / max(abs(y), 1e-12))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="100 steps, 2 points")
    ap.add_argument("--no-write", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.points = 100, 2
    cores = os.cpu_count() or 1
    load_start = load_avg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base_wall, base_vals = timed("in-process", args.steps, args.points, folder)
        rows.append(("in-process, one point at a time", f"{torch.get_num_threads()} (all cores)", base_wall,
                     base_vals))
        for label, kw, threads in [
            ("workers", {"workers": cores}, f"{threads_per_worker(cores)} per worker, {cores} workers"),
            ("ray", {"executor": "ray", "workers": cores}, f"{threads_per_worker(cores)} per task, {cores} at once"),
        ]:
            wall, vals = timed(label, args.steps, args.points, folder, **kw)
            rows.append((f"`--executor ray --workers {cores}`" if label == "ray" else f"`--workers {cores}`",
                         threads, wall, vals))
    import ray

    lines = [
        SECTION,
        "",
        f"- date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {cores} CPU cores ({platform.machine()}), no GPU; load average (1/5/15 min) {load_start} at "
        f"start, {load_avg()} at end",
        f"- python {platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}",
        f"- workload: `icl-regression` reduced (d = 3, 2 layers x 32, {args.steps} steps, batch 32, 256 eval "
        f"prompts) swept over seed = 0..{args.points - 1}; each executor runs the whole sweep into a fresh store "
        "(nothing reused); wall time includes starting worker processes / Ray",
        f"- command: `.venv/bin/python benchmarks/bench_sweep.py{' --quick' if args.quick else ''}`",
        "",
        "| executor | torch threads | wall s | speed vs in-process | max rel. diff of summary values |",
        "|---|---|---|---|---|",
    ]
    for name, threads, wall, vals in rows:
        diff = "reference" if vals is base_vals else f"{max_rel_diff(vals, base_vals):.1e}"
        lines.append(f"| {name} | {threads} | {wall:.1f} | {base_wall / wall:.2f}x | {diff} |")
    lines.append("")
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(SECTION, section)
        print(f"wrote the '{SECTION}' section of {RESULTS}")
    sys.exit(0)


if __name__ == "__main__":
    main()
