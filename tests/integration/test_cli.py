"""The command line as a user meets it: one clear line and exit code 2 for user errors, nothing created."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=300)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "inductoin"], "Unknown experiment 'inductoin'. Did you mean: induction, lm-induction?"),
        (["run", "--set", "model.n_heads=5"], "model.n_heads=5 is invalid: must divide d_model (48)"),
        (["run", "--set", "model.d_modle=64"], "Unknown config key 'model.d_modle'. Did you mean: model.d_model"),
        (["run", "--set", "train.lr=fast"], "Config key 'train.lr' expects float, got 'fast'"),
        (["run", "--set", "train.lr=-1"], "train.lr=-1.0 is invalid: must be a positive number"),
        (["run", "--set", "nonsense"], "must look like key=value"),
        (["run", "--config", "missing.yaml"], "Config file 'missing.yaml' does not exist"),
        (["run", "--set", "model.n_heads=0"], "model.n_heads=0 is invalid: must be >= 1"),
        (["run", "rbf-approx", "--set", "k_values=[100000]"], "K=100000 needs about 76 GiB for one fit"),
        (["icl-eval", "--model", "nope", "--task", "sentiment"], "Model path 'nope' is not a folder"),
        (["icl-eval", "--model", ".", "--task", "no-such-task"], "no-such-task"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_create_nothing(tmp_path, args, message):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, no database


def test_list_and_empty_store_and_unknown_run(tmp_path):
    r = cli("list", cwd=tmp_path)
    assert r.returncode == 0 and "induction" in r.stdout
    r = cli("list-runs", cwd=tmp_path)
    assert r.returncode == 2 and "No run store" in r.stderr
    (tmp_path / "bad.db").write_bytes(b"garbage" * 200)
    r = cli("show", "x", "--store", "bad.db", cwd=tmp_path)
    assert r.returncode == 2 and "not a valid SQLite database" in r.stderr and "Traceback" not in r.stderr


def test_store_env_var_and_resume_of_unknown_run(tmp_path):
    env = {"EMERGELAB_STORE": str(tmp_path / "elsewhere" / "e.db")}
    r = cli("run", "--resume", "nope", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "No run store" in r.stderr


def test_nan_loss_marks_the_run_failed_and_keeps_its_data(tmp_path):
    r = cli("run", "--no-progress", "--set", "train.lr=1e30", "--set", "train.grad_clip=0",
            "--set", "train.steps=200", "--set", "train.warmup_steps=0", "--set", "train.log_every=10",
            "--set", "train.checkpoint_every=10", "--set", "model.d_model=16", "--set", "train.batch_size=8",
            cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Loss became" in r.stderr and "marked failed" in r.stderr and "Traceback" not in r.stderr
    r = cli("list-runs", cwd=tmp_path)
    assert "failed" in r.stdout
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert (run_dir / "config.yaml").exists()
    assert not (run_dir / "summary.json").exists()


def test_config_prints_the_validated_yaml_and_runs_nothing(tmp_path):
    r = cli("config", "digits", "--set", "som.rows=6", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "rows: 6" in r.stdout and "split_seeds:" in r.stdout
    assert list(tmp_path.iterdir()) == []
    r = cli("config", "digits", "--set", "som.rowz=6", cwd=tmp_path)
    assert r.returncode == 2 and "Did you mean: som.rows?" in r.stderr


def test_config_file_that_is_a_folder_or_not_utf8_is_one_line(tmp_path):
    (tmp_path / "somedir").mkdir()
    (tmp_path / "n.yaml").write_bytes(b"seed: 1\n#\xff\n")
    for path, message in (("somedir", "is a folder, not a YAML file"), ("n.yaml", "is not UTF-8 text")):
        r = cli("run", "induction", "--config", path, cwd=tmp_path)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.yaml", "somedir"]  # no store, no run


def test_version_and_list_runs_of_an_unknown_experiment(tmp_path):
    from emergelab import __version__

    r = cli("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"emergelab {__version__}"
    r = cli("list-runs", "--experiment", "inductoin", cwd=tmp_path)
    assert r.returncode == 2 and "Did you mean: induction, lm-induction?" in r.stderr and "Traceback" not in r.stderr


def test_resume_refuses_another_experiment_and_new_config(tmp_path):
    r = cli("run", "rbf-approx", "--set", "functions=[x^2]", "--set", "k_values=[5]", "--set", "n_test=50",
            "--store", "e.db", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run_id = next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("Run "))
    r = cli("run", "digits", "--resume", run_id, "--store", "e.db", cwd=tmp_path)
    assert r.returncode == 2 and f"Run {run_id} is a rbf-approx run, not digits" in r.stderr, r.stderr
    r = cli("run", "--resume", run_id, "--set", "seed=1", "--store", "e.db", cwd=tmp_path)
    assert r.returncode == 2 and "drop --config/--set" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", "rbf-approx", "--resume", run_id, "--store", "e.db", cwd=tmp_path)
    assert r.returncode == 2 and "already completed" in r.stderr


def test_store_paths_that_cannot_be_a_store_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    for store, message in (("afile/x.db", "'afile' is a file, not a folder"), ("adir", "is a folder")):
        r = cli("run", "rbf-approx", "--store", store, cwd=tmp_path)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"] and not any((tmp_path / "adir").iterdir())
