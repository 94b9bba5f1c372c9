"""Commands that compute nothing start fast: `emergelab --help`, `--version`, `list`, `config EXPERIMENT`,
`list-runs` and `show RUN` import none of the libraries that take seconds to load; `config` and `list-runs`
not even numpy.

Measured on the shared 2-core machine (`python -X importtime -c "import X"`, warm file cache): torch 1.7 s,
transformers 1.9 s, scikit-learn 1.3 s (sklearn.manifold 1.5 s), scipy.stats 1.1 s, matplotlib.pyplot 0.6 s;
numpy 0.1 s, typer 0.07 s. The module check runs each command inside a fresh interpreter and reads
`sys.modules` afterwards: it does not depend on the machine's load. One wall-clock bound (5 s, generous: the
target is 1 s) runs the command as a user would, `python -m emergelab.cli ...`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import emergelab
import emergelab.experiments  # noqa: F401  (declares the built-in experiments)
from emergelab.registry import experiments

HEAVY = ("torch", "sklearn", "transformers", "scipy", "matplotlib")  # each >= 0.3 s to import here
BOUND_S = 5.0

# Runs each command in turn the way the `emergelab` script does, in one fresh interpreter, and records the heavy
# packages that appeared in sys.modules during it: passing means no command imported any of them (one that
# did is named; a later command that would import the same package is not).
CHILD = r"""
import json, sys
commands, heavy, out = json.loads(sys.argv[1]), set(json.loads(sys.argv[2])), sys.argv[3]
from emergelab.cli import main

def loaded():
    return {m.split(".")[0] for m in sys.modules} & heavy

results, before = {}, loaded()  # what importing the CLI alone loaded
at_import = sorted(before)
for name, args in commands.items():
    sys.argv = ["emergelab", *args]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    now = loaded()
    results[name] = {"code": code, "imported": sorted(now - before)}
    before = now
with open(out, "w") as f:
    json.dump({"at_import": at_import, "results": results}, f)
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(store path, run id): a store holding one real, completed tiny rbf-approx run."""
    path = tmp_path_factory.mktemp("startup") / "e.db"
    result = emergelab.run_experiment(
        "rbf-approx", overrides=["functions=[x^2]", "k_values=[10, 20]", "n_test=200", "threads=1"],
        store=path, progress=False)
    assert result.status == "completed"
    return path, result.run_id


def commands(store: tuple[Path, str]) -> dict[str, list[str]]:
    path, run_id = store
    return {
        "--help": ["--help"],
        "--version": ["--version"],
        "list": ["list"],
        "list-runs": ["list-runs", "--store", str(path)],
        "show": ["show", run_id, "--store", str(path)],
        "run --help": ["run", "--help"],
        **{f"config {name}": ["config", name] for name in experiments.names()},
    }


def test_commands_import_no_heavy_library(store: tuple[Path, str], tmp_path: Path) -> None:
    cmds, out = commands(store), tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cmds), json.dumps(HEAVY), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert out.is_file(), f"the commands crashed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    found = json.loads(out.read_text())
    assert not found["at_import"], f"importing emergelab.cli imported {found['at_import']}"
    results = found["results"]
    assert list(results) == list(cmds)
    failed = {name: r["code"] for name, r in results.items() if r["code"] != 0}
    assert not failed, f"exit codes: {failed}\n{proc.stderr[-4000:]}"
    heavy = {name: r["imported"] for name, r in results.items() if r["imported"]}
    assert not heavy, f"these commands imported heavy libraries: {heavy}"


def test_config_and_list_runs_import_no_numpy(store: tuple[Path, str], tmp_path: Path) -> None:
    """`config EXPERIMENT` reads a config class and `list-runs` the store: neither needs numpy (config classes
    are numpy-free, e.g. rbf-approx names its functions there and computes them in experiments/rbf_approx.py).
    Each command runs in its own interpreter, so one command's import cannot hide another's."""
    cmds = commands(store)
    names = ["list-runs", *(name for name in cmds if name.startswith("config "))]
    imported = {}
    for i, name in enumerate(names):
        out = tmp_path / f"numpy{i}.json"
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps({name: cmds[name]}), json.dumps(["numpy"]),
                               str(out)], capture_output=True, text=True, timeout=120)
        assert out.is_file(), f"{name} crashed:\n{proc.stderr[-4000:]}"
        found = json.loads(out.read_text())
        assert found["results"][name]["code"] == 0, proc.stderr[-4000:]
        if found["at_import"] or found["results"][name]["imported"]:
            imported[name] = "at the CLI's import" if found["at_import"] else "while it ran"
    assert not imported, f"these commands imported numpy: {imported}"


@pytest.mark.parametrize("name", ["--help", "--version", "list", "config induction", "list-runs", "show"])
def test_command_answers_within_bound(name: str, store: tuple[Path, str]) -> None:
    args = commands(store)[name]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "emergelab.cli", *args], capture_output=True, text=True,
                          timeout=120)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    if name in ("list-runs", "show"):
        assert store[1] in proc.stdout  # it read the store
    assert wall < BOUND_S, f"emergelab {name} took {wall:.1f} s (bound {BOUND_S} s, target 1 s)"
