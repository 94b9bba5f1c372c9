"""Data files shipped inside the package, read through `importlib.resources` (works from a wheel or a zip).

`topics.jsonl`: the project's own corpus for the `text-attention` experiment, 250 short English texts
written for emergelab (no third-party text), one JSON object per line: `{"text": ..., "label": ...}`;
50 texts for each of sports, science, food, finance and technology.

Example:
    >>> from emergelab.data import read_data_text
    >>> read_data_text("topics.jsonl").count("\\n")
    250
"""

from __future__ import annotations

from importlib import resources

from ..errors import DataError

PACKAGE = "emergelab.data"


def read_data_text(name: str) -> str:
    """The text of the shipped data file `name`; a clear error names the files that exist."""
    root = resources.files(PACKAGE)
    path = root.joinpath(name)
    if not path.is_file():
        shipped = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.endswith((".py", ".pyc")))
        raise DataError(f"No data file '{name}' in {PACKAGE}; shipped: {', '.join(shipped) or 'none'}")
    return path.read_text(encoding="utf-8")
