"""OpenMP's wait policy beside a busy process: a 2-thread SOM fit and a short training run, with and without
OMP_WAIT_POLICY=PASSIVE.

Run (from the repo root):

    .venv/bin/python benchmarks/bench_omp.py              # ~3-5 min on 2 cores
    .venv/bin/python benchmarks/bench_omp.py --no-write   # print only

OpenMP (libgomp, torch's CPU threads) reads OMP_WAIT_POLICY once, when torch's library loads, so every
measurement runs in a fresh child process. The conditions:

    torch first, unset     the variable unset and torch imported before emergelab: OpenMP's default (idle
                           threads spin ~300,000 rounds before sleeping), i.e. what every user had before
                           emergelab set the variable, and what a program that imports torch first still gets
    emergelab first, unset the variable unset, emergelab imported first: what `import emergelab` and the
                           `emergelab` command now do (they set PASSIVE before torch loads)
    PASSIVE                OMP_WAIT_POLICY=PASSIVE in the environment (what `make` sets)
    ACTIVE (--active)      OMP_WAIT_POLICY=ACTIVE: a user's own value is kept, and this is what it costs

Each child also reports what OpenMP itself read (OMP_DISPLAY_ENV=verbose: GOMP_SPINCOUNT 300000 unset,
0 PASSIVE, 3e10 ACTIVE), so the table shows the setting took effect rather than assuming it.

Workloads, both on `--threads` (2) torch threads, timed after a small warm-up in the same child:
    SOM     `SOM(10, 10, seed=0).fit(X)`, X = sklearn digits (1797 x 64) through StandardScaler
    train   100 steps of `emergelab.train.train` on a 2-layer Transformer (d_model 32, 4 heads, n_ctx 32,
            vocab 32, batch 16, counting sequences), no checkpoints

While they run, `--busy` (1, then 2) other processes spin on the CPU (`while True: pass`), as other work on
a shared machine would. Rounds interleave the conditions; seconds = median over `--rounds` (3) children
(min-max in brackets). Rewrites the "## OpenMP wait policy" section of benchmarks/RESULTS.md unless
--no-write is given.
"""

from __future__ import annotations

# Only the standard library at module level: a child must control whether torch or emergelab loads first.
import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

SECTION = "## OpenMP wait policy"
CONDITIONS = {  # name -> (OMP_WAIT_POLICY or None for unset, import order)
    "torch first, unset": (None, "torch-first"),
    "emergelab first, unset": (None, "emergelab-first"),
    "PASSIVE": ("PASSIVE", "torch-first"),
    "ACTIVE": ("ACTIVE", "emergelab-first"),
}


# --- child ----------------------------------------------------------------------------------------------
def child(order: str, threads: int) -> None:
    # torch's OpenMP initializes when the first of these loads, with whatever the environment says then
    importlib.import_module("torch" if order == "torch-first" else "emergelab")
    import torch
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from emergelab.models.som import SOM
    from emergelab.models.transformer import Transformer, TransformerConfig
    from emergelab.train import TrainConfig, train

    torch.set_num_threads(threads)
    X = StandardScaler().fit_transform(load_digits().data)
    a = torch.randn(256, 256)
    for _ in range(20):  # warm-up: the OpenMP thread pool exists before anything is timed
        a @ a

    t0 = time.perf_counter()
    SOM(10, 10, seed=0).fit(X)
    som_s = time.perf_counter() - t0

    def batch_fn(step: int, g: torch.Generator) -> torch.Tensor:
        start = torch.randint(0, 32, (16, 1), generator=g)
        return (start + torch.arange(32)) % 32  # (16, 32) counting sequences

    model = Transformer(TransformerConfig(n_layers=2, d_model=32, n_heads=4, n_ctx=32, d_vocab=32), seed=0)
    cfg = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, log_every=100, checkpoint_every=100)
    t0 = time.perf_counter()
    train(model, lambda m, b: m.loss(b), batch_fn, cfg, seed=0)
    train_s = time.perf_counter() - t0
    print("RESULT " + json.dumps({"som": som_s, "train": train_s, "env": os.environ.get("OMP_WAIT_POLICY")}))


# --- parent ---------------------------------------------------------------------------------------------
def run_child(name: str, threads: int) -> dict:
    policy, order = CONDITIONS[name]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_DISPLAY_ENV")}
    env.update(OMP_DISPLAY_ENV="verbose", OMP_NUM_THREADS=str(threads))
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, __file__, "--child", order, "--threads", str(threads)], env=env,
                         capture_output=True, text=True, check=True, timeout=900)
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    # the first libgomp report is torch's copy (scikit-learn may load its own copy later)
    spins = re.findall(r"GOMP_SPINCOUNT = '(\d+)'", out.stderr)
    result["spincount"] = spins[0] if spins else "?"
    return result


def loadavg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def measure(names: list[str], busy: int, rounds: int, threads: int) -> dict[str, list[dict]]:
    """`rounds` interleaved rounds of every condition while `busy` processes spin on the CPU."""
    results: dict[str, list[dict]] = {n: [] for n in names}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(1.0)  # let the spinners get going
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order each round
                res = run_child(name, threads)
                results[name].append(res)
                print(f"busy {busy} round {r + 1} {name:24s} SOM {res['som']:.3f} s  train {res['train']:.3f} s  "
                      f"GOMP_SPINCOUNT {res['spincount']}", flush=True)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return results


def table_rows(results: dict[str, list[dict]], busy: int) -> list[str]:
    base = statistics.median(r["som"] for r in results["torch first, unset"])
    base_t = statistics.median(r["train"] for r in results["torch first, unset"])
    rows = []
    for name, rs in results.items():
        som, tr = [r["som"] for r in rs], [r["train"] for r in rs]
        policy, order = CONDITIONS[name]
        rows.append(f"| {busy} | {name} | {policy or 'unset'} | {order.replace('-', ' ')} | {rs[0]['spincount']} "
                    f"| {med(som)} | {base / statistics.median(som):.1f}x | {med(tr)} "
                    f"| {base_t / statistics.median(tr):.1f}x |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--busy", default="1,2", help="comma-separated numbers of processes spinning beside it")
    ap.add_argument("--active", action="store_true", help="also measure OMP_WAIT_POLICY=ACTIVE")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", choices=["torch-first", "emergelab-first"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.threads)
        return

    names = [n for n in CONDITIONS if n != "ACTIVE" or args.active]
    levels = [int(b) for b in args.busy.split(",")]
    load0 = loadavg()
    rows = [row for busy in levels for row in table_rows(measure(names, busy, args.rounds, args.threads), busy)]
    load1 = loadavg()

    import torch  # only for the versions line

    cmd = "python benchmarks/bench_omp.py" + (" --active" if args.active else "") + (
        f" --busy {args.busy}" if args.busy != "1,2" else "")
    section = "\n".join([
        SECTION,
        "",
        f"- date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {os.cpu_count()} CPU cores ({platform.machine()}), {args.threads} torch threads; *busy* = "
        "other processes spinning on the CPU throughout (`while True: pass`); load average (1/5/15 min) "
        f"{load0} at start, {load1} at end (the machine is shared with other work)",
        f"- python {platform.python_version()}, torch {torch.__version__} (OpenMP: libgomp)",
        "- workloads: **SOM** = `SOM(10, 10, seed=0).fit(X)` on sklearn digits through `StandardScaler`; "
        "**train** = 100 steps of `emergelab.train.train` on a 2-layer Transformer (d_model 32, 4 heads, "
        "n_ctx 32, vocab 32, batch 16)",
        f"- each measurement in a fresh process (OpenMP reads the variable when torch loads); seconds = median "
        f"of {args.rounds} (min-max); conditions interleaved; speed-up against *torch first, unset* at the same "
        "busy level. *OpenMP read*: GOMP_SPINCOUNT as libgomp reports it (OMP_DISPLAY_ENV): 300000 = default "
        "spinning, 0 = PASSIVE, 30000000000 = ACTIVE",
        "- *torch first, unset* is OpenMP's default, what the `emergelab` command and `import emergelab` gave "
        "before they set the variable (and what a program that imports torch first still gets); *emergelab "
        "first, unset* is what they do now",
        f"- command: `{cmd}`",
        "",
        "| busy | condition | OMP_WAIT_POLICY given | import order | OpenMP read (GOMP_SPINCOUNT) | SOM s "
        "| SOM speed-up | train s | train speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]) + "\n"
    print("\n" + section)
    if not args.no_write:
        from results_md import write_section  # benchmarks/results_md.py

        write_section(SECTION, section)


if __name__ == "__main__":
    main()
