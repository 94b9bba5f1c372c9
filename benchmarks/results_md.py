"""benchmarks/RESULTS.md: each benchmark script owns one `## ` section and rewrites only that one."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(title: str, section: str) -> None:
    """Replace (or append) the section starting with the line `title`; other sections are kept as they are."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pat = re.compile(rf"^{re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
