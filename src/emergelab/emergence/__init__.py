"""Emergence: phase-change detection, how sudden a change is along a sweep (breakthroughness), and sweeps of an
experiment over a grid of configs (local processes or Ray)."""

from .metrics import breakthroughness
from .phase import detect_phase_change, smooth
from .sweep import SweepResult, collect, expand, lookup, parse_grid, run_sweep

__all__ = ["SweepResult", "breakthroughness", "collect", "detect_phase_change", "expand", "lookup", "parse_grid",
           "run_sweep", "smooth"]
