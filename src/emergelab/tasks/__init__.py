"""Synthetic tasks and dataset loaders, shared by training and analysis."""

from .induction import InductionBatch, InductionTask, InductionTaskConfig

__all__ = ["InductionBatch", "InductionTask", "InductionTaskConfig"]
