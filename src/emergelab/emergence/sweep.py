"""Moved: sweeps live in `emergelab.sweeps` (grid, plan, executors, output). Only `lookup` is still importable
from here, for the experiment tests that read summaries with it; import it from `emergelab.sweeps` instead.
This file goes once no test imports it."""

from ..sweeps.grid import lookup

__all__ = ["lookup"]
