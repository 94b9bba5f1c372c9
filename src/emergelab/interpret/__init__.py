"""Interpretability: head detectors, ablation and (later) lenses, patching and attribution."""

from .ablation import zero_ablate
from .heads import detection_patterns, head_scores, mul_score, prefix_matching_pattern, stack_patterns

__all__ = ["detection_patterns", "head_scores", "mul_score", "prefix_matching_pattern", "stack_patterns",
           "zero_ablate"]
