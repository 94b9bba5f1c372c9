"""Emergence analysis: phase-change detection over training, and how sudden a change is along a sweep
(BIG-bench breakthroughness over a sweep's table). Running sweeps is `emergelab.sweeps`."""

from .metrics import breakthroughness
from .phase import detect_phase_change, smooth
from .table import SweepTable, sudden_changes

__all__ = ["SweepTable", "breakthroughness", "detect_phase_change", "smooth", "sudden_changes"]
