"""Emergence analysis: phase-change detection over training, and how sudden a change is along a sweep
(BIG-bench breakthroughness over a sweep's table). Running sweeps is `emergelab.sweeps`.
Names load on first use (`emergelab.lazy`)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "breakthroughness": ".metrics",
    **dict.fromkeys(["detect_phase_change", "smooth"], ".phase"),
    **dict.fromkeys(["SweepTable", "sudden_changes"], ".table"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
