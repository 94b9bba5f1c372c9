"""Emergence: phase-change detection (sweeps and emergence metrics come later)."""

from .phase import detect_phase_change, smooth

__all__ = ["detect_phase_change", "smooth"]
