"""Emergence: phase-change detection, and sweeps of an experiment over a grid of configs (local or Ray)."""

from .phase import detect_phase_change, smooth
from .sweep import SweepResult, collect, expand, lookup, parse_grid, run_sweep

__all__ = ["SweepResult", "collect", "detect_phase_change", "expand", "lookup", "parse_grid", "run_sweep", "smooth"]
