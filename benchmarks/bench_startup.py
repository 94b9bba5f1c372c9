"""Start-up of the commands that compute nothing: wall time of `emergelab --help`, `--version`, `list`,
`config induction`, `list-runs` and `show RUN`, next to `python -c pass` and `python -c "import torch"`.

Run (from the repo root, in the venv `make run` sets up):

    .venv/bin/python benchmarks/bench_startup.py               # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/bench_startup.py --before none # this tree only
    .venv/bin/python benchmarks/bench_startup.py --no-write    # print only

Every measurement is a fresh process started the way a user starts it (the venv's `emergelab` script), with
stdout and stderr captured; rounds interleave the commands (the order rotates each round) and the table gives
the median of `--rounds` (5), min-max in brackets. `list-runs` and `show` read a store holding one real tiny
`rbf-approx` run, made by the same tree's code. One more untimed run of each command reports which of the
slow-to-import libraries it loaded (sys.modules afterwards).

`--before REF` (default: the commit before the commands stopped importing torch) times the same commands on
REF's source as well: `git archive REF src` into a temporary folder, put first on PYTHONPATH, same venv and
same rounds, so both columns see the same machine load. Rewrites the "## Start-up" section of
benchmarks/RESULTS.md unless --no-write is given.
"""

from __future__ import annotations

# Only the standard library: this process must not pay (or hide) the imports it measures.
import argparse
import datetime as dt
import importlib.metadata as md
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

SECTION = "## Start-up"
ROOT = Path(__file__).resolve().parent.parent
BEFORE = "ec2aece6e68b2df6579881e90c12d39fe9b912c7^"  # the commit before "Start-up: ... import no torch"
HEAVY = ("torch", "sklearn", "transformers", "scipy", "matplotlib")
TINY_RUN = ["run", "rbf-approx", "--set", "functions=[x^2]", "--set", "k_values=[10, 20]", "--set", "n_test=200",
            "--set", "threads=1", "--no-progress"]

# Runs one command the way the `emergelab` script does, then prints the heavy packages it loaded.
CHILD = r"""
import json, sys
HEAVY = set(%r)
sys.argv = ["emergelab", *json.loads(sys.argv[1])]
from emergelab.cli import main
try:
    main()
except SystemExit:
    pass
sys.__stderr__.write("\nHEAVY " + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & HEAVY)) + "\n")
"""


class Tree:
    """The emergelab source a command runs: this checkout (`src=None`, as installed) or an extracted commit."""

    def __init__(self, label: str, src: Path | None, store: Path):
        self.label, self.src, self.store = label, src, store

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "EMERGELAB_STORE"}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if self.src is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(self.src), *filter(None, [env.get("PYTHONPATH")])])
        return env

    def run(self, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([*emergelab_cmd(), *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, cwd=self.store.parent)


def emergelab_cmd() -> list[str]:
    script = Path(sys.executable).parent / "emergelab"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "emergelab.cli"]


def extract(ref: str, into: Path) -> Path:
    """REF's src/ (git archive; the repository is not touched) under `into`; returns the folder to import from."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def make_store(tree: Tree) -> str:
    """Run the tiny rbf-approx with the tree's own code; returns its run id."""
    before = set(tree.store.parent.iterdir())
    proc = tree.run([*TINY_RUN, "--store", str(tree.store)])
    if proc.returncode != 0:
        raise SystemExit(f"{tree.label}: the tiny run failed:\n{proc.stderr[-2000:]}")
    made = [p.name for p in set(tree.store.parent.iterdir()) - before if p.is_dir() and "rbf-approx" in p.name]
    return made[0]


def commands(run_id: str, store: Path) -> dict[str, list[str] | None]:
    """name -> emergelab arguments (None: a reference command that is not emergelab)."""
    return {
        "emergelab --help": ["--help"],
        "emergelab --version": ["--version"],
        "emergelab list": ["list"],
        "emergelab config induction": ["config", "induction"],
        "emergelab list-runs": ["list-runs", "--store", str(store)],
        "emergelab show RUN": ["show", run_id, "--store", str(store)],
        "python -c pass": None,
        'python -c "import torch"': None,
    }


def time_once(tree: Tree, name: str, args: list[str] | None) -> float:
    if args is None:
        cmd = [sys.executable, "-c", "pass" if name.endswith("pass") else "import torch"]
    else:
        cmd = [*emergelab_cmd(), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=tree.env(), capture_output=True, text=True, timeout=600, cwd=tree.store.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{tree.label}: `{name}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def heavy_loaded(tree: Tree, args: list[str] | None) -> str:
    if args is None:
        return "(reference)"
    proc = subprocess.run([sys.executable, "-c", CHILD % (HEAVY,), json.dumps(args)], env=tree.env(),
                          capture_output=True, text=True, timeout=600, cwd=tree.store.parent)
    if "\nHEAVY " not in proc.stderr:
        return "? (failed)"
    loaded = json.loads(proc.stderr.rpartition("\nHEAVY ")[2].splitlines()[0])
    return ", ".join(loaded) or "none"


def loadavg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before", default=BEFORE, help="a git ref to time as well ('none': only this tree)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)
        (tmp / "now").mkdir()
        trees = [Tree("this tree", None, tmp / "now" / "e.db")]
        if args.before != "none":
            (tmp / "before").mkdir()
            try:
                trees.append(Tree("before", extract(args.before, tmp / "before" / "tree"),
                                  tmp / "before" / "e.db"))
            except subprocess.CalledProcessError as e:
                why = e.stderr.decode().strip()
                print(f"--before {args.before}: git archive failed ({why}); timing this tree only")
        cmds = {t.label: commands(make_store(t), t.store) for t in trees}
        names = list(cmds[trees[0].label])
        load0 = loadavg()
        walls = {(t.label, n): [] for t in trees for n in names}
        jobs = [(t, n) for n in names for t in trees]
        for r in range(args.rounds):
            for t, n in jobs[r % len(jobs):] + jobs[: r % len(jobs)]:  # rotate the order each round
                walls[(t.label, n)].append(time_once(t, n, cmds[t.label][n]))
            print(f"round {r + 1}/{args.rounds} done (load {loadavg()})", flush=True)
        load1 = loadavg()
        heavy = {(t.label, n): heavy_loaded(t, cmds[t.label][n]) for t in trees for n in names}

    header = "| command | " + " | ".join(f"{t.label}: s | {t.label}: loads" for t in trees) + " |"
    rows = [header, "|" + "---|" * (1 + 2 * len(trees))]
    for n in names:
        cells = [f"{med(walls[(t.label, n)])} | {heavy[(t.label, n)]}" for t in trees]
        rows.append(f"| `{n}` | " + " | ".join(cells) + " |")
    cmd = "python benchmarks/bench_startup.py" + (f" --rounds {args.rounds}" if args.rounds != 5 else "") + (
        f" --before {args.before}" if args.before != BEFORE else "")
    section = "\n".join([
        SECTION,
        "",
        f"- date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        f"- machine: {os.cpu_count()} CPU cores ({platform.machine()}); load average (1/5/15 min) {load0} at start, "
        f"{load1} at end (the machine is shared with other work)",
        f"- python {platform.python_version()}, torch {version('torch')}, scikit-learn {version('scikit-learn')}, "
        f"transformers {version('transformers')}, typer {version('typer')}",
        f"- each command a fresh process, as a user starts it (`{Path(emergelab_cmd()[0]).name}` from the venv), "
        f"output captured; {args.rounds} interleaved rounds (order rotates); seconds = median (min-max). "
        "`list-runs` and `show` read a store with one tiny `rbf-approx` run. *loads*: which of "
        f"{', '.join(HEAVY)} were in sys.modules after the command (one more, untimed run)",
        *([f"- *before*: the same commands on `{args.before}` (git archive of its src/ first on PYTHONPATH, "
           "same venv, same rounds): the commit before these commands stopped importing torch"]
          if len(trees) > 1 else []),
        "- target: `--help` and `list` under 1 s on this machine",
        f"- command: `{cmd}`",
        "",
        *rows,
    ]) + "\n"
    print("\n" + section)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_md import write_section  # benchmarks/results_md.py

        write_section(SECTION, section)


if __name__ == "__main__":
    main()
