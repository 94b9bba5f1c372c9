"""What the CLI prints reads well where it lands: tables never split a run id or a number across lines (in a
pipe, in a narrow terminal, in a wide one), sweep progress lines fit 80 columns, and --help shows readable
types and an example for every command within 80 columns. Every command runs behind the error boundary."""

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from emergelab.cli import app
from emergelab.runs.store import RunStore
from emergelab.sweeps.plan import SweepPlan, Task
from emergelab.sweeps.progress import SweepProgress

RUN_IDS = ["20261202-035034-icl-classification-dfb5", "20261202-035035-rbf-approx-0c1e"]
SWEEP_ID = "icl-classification-62a3265393"


@pytest.fixture
def store(tmp_path) -> Path:
    """A real store with two runs (one with a long experiment name) and a sweep over them; nothing trained."""
    path = tmp_path / "e.db"
    with RunStore(path) as st:
        for run_id, seed in zip(RUN_IDS, (123456, 7), strict=True):
            experiment = run_id.split("-", 2)[2].rsplit("-", 1)[0]
            st.create_run(experiment, {"seed": seed}, "0123456789abcdef", seed, "0.1.0", run_id=run_id)
            st.set_status(run_id, "completed")
        st.put_sweep(SWEEP_ID, "icl-classification", {"grid": {"seed": [123456, 7], "task.pool_size": [1, 4096]},
                                                      "overrides": [], "config": None, "metrics": []})
        st.add_sweep_run(SWEEP_ID, 0, RUN_IDS[0])
    return path


def cli(*args: str, cwd: Path, columns: int) -> str:
    r = subprocess.run([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": str(columns)}, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def on_terminal(*args: str, cwd: Path, columns: int) -> str:
    """What a terminal `columns` wide shows (stdout and stderr on a pseudo-terminal), without colours."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    proc = subprocess.Popen([sys.executable, "-m", "emergelab.cli", *args], cwd=cwd, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()).replace("\r\n", "\n")


def whole_on_one_line(text: str, *tokens: str) -> None:
    lines = text.splitlines()
    for token in tokens:
        assert any(token in line for line in lines), f"{token!r} split or missing in:\n{text}"


@pytest.mark.parametrize("where", ["pipe-40", "terminal-40", "terminal-200"])
def test_tables_never_split_run_ids_or_numbers(store, tmp_path, where):
    kind, columns = where.split("-")
    show = cli if kind == "pipe" else on_terminal
    runs = show("list-runs", "--store", str(store), cwd=tmp_path, columns=int(columns))
    whole_on_one_line(runs, *RUN_IDS, "123456", "icl-classification")
    assert len([line for line in runs.splitlines() if line.strip()]) == 3  # header + one line per run
    sweeps = show("list-sweeps", "--store", str(store), cwd=tmp_path, columns=int(columns))
    whole_on_one_line(sweeps, SWEEP_ID, "seed=123456,7; task.pool_size=1,4096", "1/4")
    experiments = show("list", cwd=tmp_path, columns=int(columns))
    whole_on_one_line(experiments, "icl-classification", "rbf-approx", "text-attention")
    if kind == "pipe" or int(columns) >= 200:  # room enough: every description on its row's line
        whole_on_one_line(experiments, "max error 1e-6 by K=20")


def test_a_wide_enough_terminal_gets_a_table_whose_prose_wraps_but_names_do_not(tmp_path):
    text = on_terminal("list", cwd=tmp_path, columns=70)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 70
    names = [line.split()[0] for line in lines if line[1:2] != " " and line.strip()]  # rows start at column 2
    assert {"induction", "rbf-approx", "icl-classification", "digits"} <= set(names), text
    assert len(lines) > len(names)  # the descriptions wrapped onto lines of their own


def plan(n_points: int, label_len: int) -> SweepPlan:
    points = [{"task.pool_size": 2**i, "model.d_model": "x" * label_len} for i in range(n_points)]
    todo = [Task(i, p, {}, "h", f"20261202-0350{i:02d}-icl-classification-{i:04x}") for i, p in enumerate(points)]
    return SweepPlan("icl-classification-62a3265393", "icl-classification", points, {}, todo)


@pytest.mark.parametrize("label_len", [1, 30, 200])
def test_sweep_progress_lines_fit_80_columns_and_keep_ids_whole(monkeypatch, label_len):
    monkeypatch.setenv("COLUMNS", "80")
    p = plan(12, label_len)
    stream = io.StringIO()
    bar = SweepProgress(p, stream=stream)
    bar.begin("2 worker processes")
    for task in p.todo:
        bar.started(task)
    for task in p.todo:
        bar.finished(task, "ValueError: " + "a long error message " * 8 if task.index % 3 == 0 else None)
    text = stream.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    whole_on_one_line(text, p.sweep_id, "  (2 worker processes)", "[8/12, 0 running, 4 failed]",
                      *(t.run_id for t in p.todo))
    lines = text.splitlines()
    done = lines.index("    20261202-035011-icl-classification-000b  [8/12, 0 running, 4 failed]")
    if label_len == 200:  # only a label too long for a line of its own is shortened
        assert lines[done - 1].startswith("  done    task.pool_size=2048, model.d_model=xxx")
        assert lines[done - 1].endswith("x…") and len(lines[done - 1]) == 80
    else:
        assert lines[done - 1] == f"  done    task.pool_size=2048, model.d_model={'x' * label_len}"


def test_sweep_progress_is_one_line_per_event_where_it_fits(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    points = [{"n_train": 50}, {"n_train": 200}]
    todo = [Task(i, p, {}, "h", f"20261202-03503{i}-rbf-approx-dfb{i}") for i, p in enumerate(points)]
    stream = io.StringIO()
    bar = SweepProgress(SweepPlan("rbf-approx-62a3265393", "rbf-approx", points, {}, todo), stream=stream)
    bar.begin("in this process")
    for task in todo:
        bar.started(task)
        bar.finished(task, None)
    assert stream.getvalue().splitlines() == [
        "Sweep rbf-approx-62a3265393: 2 points, 0 reused, 2 to run (in this process)",
        "  started n_train=50  20261202-035030-rbf-approx-dfb0  [0/2, 1 running]",
        "  done    n_train=50  20261202-035030-rbf-approx-dfb0  [1/2, 0 running]",
        "  started n_train=200  20261202-035031-rbf-approx-dfb1  [1/2, 1 running]",
        "  done    n_train=200  20261202-035031-rbf-approx-dfb1  [2/2, 0 running]"]


def test_help_shows_an_example_per_command_and_readable_types_in_80_columns():
    commands = typer.main.get_command(app).commands
    assert set(commands) >= {"run", "sweep", "icl-eval", "list", "config", "list-runs", "list-sweeps", "show",
                             "report"}
    for name in ["", *commands]:
        r = CliRunner().invoke(app, [*([name] if name else []), "--help"], env={"COLUMNS": "80"})
        assert r.exit_code == 0, r.output
        lines = [line.rstrip() for line in r.output.splitlines()]
        assert max(len(line) for line in lines) <= 80, r.output
        assert "<list[str]>" not in r.output and "<path>" not in r.output, r.output
        start = lines.index(" Examples:") + 1
        examples = lines[start:lines.index("", start)]
        assert examples and all(line.startswith("   emergelab ") for line in examples), (name, r.output)
    run_help = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "80"}).output
    assert "KEY=VALUE" in run_help and "RUN_ID" in run_help and "FILE" in run_help


def test_every_command_runs_behind_the_error_boundary():
    for name, cmd in typer.main.get_command(app).commands.items():
        assert getattr(cmd.callback, "__emergelab_guarded__", False), f"{name} has no error boundary"
