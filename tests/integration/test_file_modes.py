"""Every file of a run (store, config.yaml, checkpoints, summary.json, report.html) gets the mode the umask
gives a new file: 0644 under umask 022, 0600 under 077; folders 0755 / 0700."""

import os
import stat

import pytest

from emergelab.runner import get_experiment, run_experiment
from emergelab.runs.store import RunStore


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_real_runs_files_follow_the_umask(tmp_path, umask):
    store = tmp_path / "store" / "e.db"
    old = os.umask(umask)
    try:
        result = run_experiment("induction", overrides=[*get_experiment("induction").tiny, "threads=1"],
                                store=store, progress=False)
    finally:
        os.umask(old)
    with RunStore(store, readonly=True):
        pass  # the store closed cleanly: no -wal / -shm left to check
    modes = {p.relative_to(store.parent).as_posix(): oct(stat.S_IMODE(p.stat().st_mode))
             for p in store.parent.rglob("*") if p.is_file()}
    names = set(modes)
    rel = result.run_dir.relative_to(store.parent).as_posix()
    assert {"e.db", f"{rel}/config.yaml", f"{rel}/summary.json", f"{rel}/report.html"} <= names
    assert any(n.startswith(f"{rel}/checkpoints/") and n.endswith(".safetensors") for n in names)
    want_file, want_dir = oct(0o666 & ~umask), oct(0o777 & ~umask)
    assert modes == dict.fromkeys(names, want_file)
    folders = [p for p in result.run_dir.rglob("*") if p.is_dir()] + [result.run_dir]
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {p.name: want_dir for p in folders}
