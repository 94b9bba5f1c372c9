"""OMP_WAIT_POLICY=PASSIVE is set by `import emergelab` and the `emergelab` command, before torch loads.

Each case runs in a fresh interpreter: OpenMP reads the variable once, when torch's library is loaded.
libgomp itself reports what it read (OMP_DISPLAY_ENV=verbose): GOMP_SPINCOUNT is 0 under PASSIVE, 300000
with the variable unset and 3e10 under ACTIVE.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def python(code: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_DISPLAY_ENV")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=True)


def spin_counts(stderr: str) -> set[str]:
    """The GOMP_SPINCOUNT values libgomp printed at start-up (one per loaded copy of libgomp)."""
    found = set(re.findall(r"GOMP_SPINCOUNT = '(\d+)'", stderr))
    if not found:
        pytest.skip("torch's OpenMP runtime is not libgomp (it printed no GOMP_SPINCOUNT)")
    return found


def test_import_emergelab_sets_passive_before_torch_loads_and_keeps_a_users_value():
    code = "import emergelab, os; print(os.environ['OMP_WAIT_POLICY'])"
    default = python(code, OMP_DISPLAY_ENV="verbose")
    assert default.stdout.strip() == "PASSIVE"
    assert spin_counts(default.stderr) == {"0"}  # what OpenMP itself read: PASSIVE, idle threads sleep at once
    users = python(code, OMP_DISPLAY_ENV="verbose", OMP_WAIT_POLICY="ACTIVE")
    assert users.stdout.strip() == "ACTIVE"
    assert "0" not in spin_counts(users.stderr)  # the user's ACTIVE is what OpenMP got


def test_the_emergelab_command_sets_passive_before_torch_loads(tmp_path):
    """Runs the installed console script on a command that computes (a tiny `rbf-approx` run; `--help` no longer
    imports torch at all) and records the variable at torch's import."""
    script = Path(sys.executable).with_name("emergelab")
    if not script.is_file():
        pytest.skip("the emergelab console script is not installed next to this python")
    code = f"""
import importlib.abc, os, runpy, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
        return None
sys.meta_path.insert(0, Watch())
sys.argv = ["emergelab", "run", "rbf-approx", "--no-progress", "--store", {str(tmp_path / "e.db")!r},
            "--set", "functions=[x^2]", "--set", "k_values=[5]", "--set", "n_test=50", "--set", "threads=1"]
try:
    runpy.run_path({str(script)!r}, run_name="__main__")
except SystemExit:
    pass
print("AT_TORCH_IMPORT", seen)
"""
    out = python(code).stdout
    assert "AT_TORCH_IMPORT ['PASSIVE']" in out, out[-500:]
