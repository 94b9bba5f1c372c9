"""The one error boundary of the CLI, branch by branch, through the real entry point: a user-caused failure is
ONE line on stderr and exit code 2 (naming the file where one is involved); Ctrl-C is exit code 130; our own
bug prints its traceback and a line asking to report it, exit code 1; a closed stdout stays silent.

Where a real input of a real command triggers a branch, the test uses it (/dev/full as stdout, a closed
stdout, a run whose report.html became a folder, icl-eval --out in places that cannot hold a folder). For
branches no shipped command reaches today with a real input (the commands check their files first), a
command behind the same boundary (`guarded`) does the failing operation for real: reads a non-UTF-8 file,
allocates a 40 TB tensor, loads a corrupt safetensors file, ... Our bug and Ctrl-C go through the real entry
point (`main`), with a command registered on the real app by a small script.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from emergelab.cli.boundary import BUG_LINE, guarded
from emergelab.errors import DataError

SCRIPT = """
import os, signal, time

from emergelab.cli import main
from emergelab.cli.app import command


@command("boom")
def boom(kind: str) -> None:
    if kind == "bug":
        {}["missing"]
    if kind == "interrupt":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


main()
"""


def boom(kind: str, path: str = "") -> None:
    """Fail the way `kind` says, for real."""
    p = Path(path)
    if kind == "emergelab-error":
        raise DataError("the data folder 'd' holds no images")
    if kind == "not-utf8":
        p.read_text(encoding="utf-8")
    if kind == "not-utf8-open":
        with open(path, encoding="utf-8") as f:
            f.read()
    if kind == "not-utf8-bytes":
        b"ok \xff".decode("utf-8")
    if kind == "cpu-oom":
        import torch

        torch.empty(10**13)
    if kind == "memory":
        bytearray(1 << 60)
    if kind == "write":
        with open(path, "w") as f:
            f.write("x")
    if kind == "yaml":
        yaml.safe_load(p.read_text())
    if kind == "json":
        json.loads(p.read_text())
    if kind == "safetensors":
        from safetensors.torch import load_file

        load_file(p)
    if kind == "sqlite":
        sqlite3.connect(p).execute("SELECT * FROM runs")


APP = typer.Typer()
APP.command("boom")(guarded(boom))
APP.command("other")(lambda: None)  # a second command, so that typer keeps 'boom' as a subcommand


def in_process(kind: str, path: str = "") -> subprocess.CompletedProcess:
    """`boom KIND --path PATH` behind the CLI's boundary, in this process (a subprocess per case would
    cost seconds of interpreter start each)."""
    r = CliRunner().invoke(APP, ["boom", kind, "--path", path])
    return subprocess.CompletedProcess(["boom", kind], r.exit_code, r.stdout, r.stderr)


def run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    kw = {"capture_output": True, **kw}
    return subprocess.run([sys.executable, *args], cwd=cwd, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)


def one_line(r: subprocess.CompletedProcess, code: int = 2) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == code and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize(("kind", "content", "message"), [
    ("emergelab-error", None, "Error: the data folder 'd' holds no images"),
    ("not-utf8", b"seed: 1\n#\xff\n", "Error: '{path}' is not UTF-8 text (byte 9: invalid start byte); save it as"),
    ("not-utf8-open", b"\xfe\xff", "Error: '{path}' is not UTF-8 text (byte 0: invalid start byte)"),
    ("not-utf8-bytes", None, "Error: An input is not UTF-8 text (byte 3: invalid start byte)"),
    ("cpu-oom", None, "Error: out of memory: one tensor needed 37252.9 GiB; use a smaller model, batch or data"),
    ("memory", None, "Error: out of memory; use a smaller model, batch or data size"),
    ("yaml", b"a: [1, 2\n", "Error: '{path}' is not valid YAML"),
    ("json", b'{"a": 1,,}', "Error: '{path}' is not valid JSON (line 1)"),
    ("safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{bad", "Error: '{path}' is not a readable safetensors file"),
    ("sqlite", b"garbage" * 200, "Error: '{path}' is not a valid SQLite database"),
])
def test_user_caused_failures_are_one_line_exit_2(tmp_path, kind, content, message):
    path = tmp_path / "input.bin"
    if content is not None:
        path.write_bytes(content)
    line = one_line(in_process(kind, str(path)))
    assert line.startswith(message.format(path=path)), line


@pytest.mark.parametrize(("where", "message"), [
    ("afile/x.txt", "Error: 'afile' is a file, not a folder (in 'afile/x.txt')"),
    ("adir", "Error: 'adir': Is a directory"),
    ("missing/x.txt", "Error: 'missing/x.txt': No such file or directory"),
    ("/proc/nosuch/x.txt", "Error: '/proc/nosuch/x.txt': No such file or directory"),
    ("/sys/x.txt", "Error: '/sys/x.txt': "),  # sysfs refuses new files, even to root
    ("/dev/full", "Error: No space left on device; free some disk space or write elsewhere"),
])
def test_os_errors_on_paths_name_the_file_and_the_reason(tmp_path, monkeypatch, where, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    assert one_line(in_process("write", where)).startswith(message)


def script(tmp_path: Path, kind: str) -> subprocess.CompletedProcess:
    """`boom KIND` registered on the real app, through the real entry point (`main`)."""
    (tmp_path / "boom.py").write_text(SCRIPT)
    return run(["boom.py", "boom", kind], cwd=tmp_path)


def test_our_bug_prints_the_traceback_and_asks_for_a_report(tmp_path):
    r = script(tmp_path, "bug")
    assert r.returncode == 1 and "Traceback" in r.stderr and "KeyError: 'missing'" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == BUG_LINE and "emergelab 0." in BUG_LINE


def test_ctrl_c_is_exit_130_with_one_line(tmp_path):
    assert one_line(script(tmp_path, "interrupt"), code=130) == "Interrupted."


def test_a_full_disk_on_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        r = run(["-m", "emergelab.cli", "config", "induction"], cwd=tmp_path, capture_output=False, stdout=full,
                stderr=subprocess.PIPE)
    assert one_line(r) == "Error: No space left on device; free some disk space or write elsewhere"


def test_a_closed_stdout_is_silent(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "emergelab.cli", "list"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before the command writes (`emergelab list | head -0`)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) in (0, 1) and err == "", err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from emergelab import api

    root = tmp_path_factory.mktemp("store")
    result = api.run_experiment("rbf-approx", overrides=["functions=[x^2]", "k_values=[5]", "n_test=50",
                                                         "threads=1"], store=root / "e.db", progress=False)
    return root, result


def test_a_real_command_writing_where_a_folder_stands_is_one_line(finished_run):
    root, result = finished_run
    report = result.run_dir / "report.html"
    report.unlink()
    report.mkdir()
    r = run(["-m", "emergelab.cli", "report", result.run_id, "--store", "e.db"], cwd=root)
    assert one_line(r) == f"Error: '{report.relative_to(root)}': Is a directory"  # as the store names it
    report.rmdir()
    r = run(["-m", "emergelab.cli", "report", result.run_id, "--store", "e.db"], cwd=root)
    assert r.returncode == 0 and report.is_file(), r.stderr


@pytest.mark.parametrize(("out", "message"), [
    ("afile", "--out 'afile' is a file, not a folder"),
    ("afile/sub", "--out 'afile/sub' cannot be created: 'afile' is a file, not a folder"),
    ("/proc/nosuch/sub", "--out '/proc/nosuch/sub' cannot be created in '/proc': No such file or directory"),
    ("/sys/emergelab", "--out '/sys/emergelab' cannot be created in '/sys': Operation not permitted"),
])
def test_icl_eval_out_is_checked_before_any_work(tmp_path, out, message):
    (tmp_path / "afile").write_text("x")
    r = run(["-m", "emergelab.cli", "icl-eval", "--model", "random", "--task", "sentiment", "--out", out,
             "--store", "e.db"], cwd=tmp_path)
    assert one_line(r) == f"Error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no store, no run, no probe left behind


@pytest.mark.parametrize(("args", "message"), [
    (["list", "extra"], "Error: Got unexpected extra argument(s) (extra); see: emergelab list --help"),
    (["nosuch"], "Error: No such command 'nosuch'; see: emergelab --help"),
    (["sweep", "rbf-approx", "--grid", "n_train=20", "--workers", "x"], "Error: Invalid value for '--workers'"),
])
def test_usage_errors_are_one_line_too(tmp_path, args, message):
    r = run(["-c", "import sys; from emergelab.cli import main; sys.argv[0] = 'emergelab'; main()", *args],
            cwd=tmp_path)
    assert one_line(r).startswith(message)
    assert list(tmp_path.iterdir()) == []
