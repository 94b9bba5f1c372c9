"""The per-run progress bar: fits 80 columns and writes to stderr only."""

import io
import re
import subprocess
import sys

from rich.console import Console

from emergelab.runs.context import make_progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def rendered_lines(width: int, descriptions: list[str], steps: int) -> list[str]:
    buf = io.StringIO()
    progress = make_progress(console=Console(width=width, file=buf, force_terminal=True))
    with progress:
        for d in descriptions:
            task = progress.add_task(d, total=steps, loss="-")
            progress.update(task, completed=steps // 2, loss="12.345")
        progress.refresh()
    text = ANSI.sub("", buf.getvalue()).replace("\r", "\n")
    return [line for line in text.split("\n") if line.strip()]


def test_the_bar_fits_80_columns_and_keeps_the_end_of_a_long_description():
    long_id = "20260101-000000-icl-classification-ab12 splits/3"  # a sweep point's run id and a model label
    lines = rendered_lines(80, [long_id, "short"], steps=100_000)
    assert lines and max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert any("…ification-ab12 splits/3" in line for line in lines)  # the unique suffix and the label stay
    assert any("50000/100000" in line for line in lines)  # counters are not cut
    wide = rendered_lines(200, [long_id], steps=3000)
    assert max(len(line) for line in wide) < 130  # the bar does not stretch across a wide terminal


def test_progress_goes_to_stderr_and_stdout_stays_clean():
    code = ("from emergelab.runs.context import make_progress\n"
            "p = make_progress()\n"
            "with p:\n"
            "    t = p.add_task('run 2L', total=10, loss='-')\n"
            "    p.update(t, completed=10, loss='1.000')\n"
            "print('{}')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "{}\n"
    assert "run 2L" in out.stderr and "10/10" in out.stderr
