"""emergelab: grow, measure and explain emergent abilities, in-context learning and interpretability.

Quick tour:
    >>> import emergelab as el
    >>> result = el.run_experiment("induction", overrides=["train.steps=1500"])
    >>> result.summary["2L"]["induction_heads"]
    [{'layer': 1, 'head': 2, 'score': 0.81}, ...]
"""

import os as _os

# Before anything imports torch: OpenMP (libgomp) reads OMP_WAIT_POLICY once, when torch's library loads.
# PASSIVE makes idle OpenMP threads sleep instead of spinning; beside another busy process, spinning threads
# made small fits many times slower (benchmarks/RESULTS.md, "OpenMP wait policy"). A user's own value is
# kept. The `emergelab` command imports this package first, so it is covered too; a program that imports
# torch before emergelab has to set the variable itself.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .api import (  # noqa: E402
    RunResult,
    SweepResult,
    list_experiments,
    list_sweeps,
    reanalyze_run,
    render_report,
    resume_run,
    run_experiment,
    run_sweep,
)
from .config import ConfigError, load_config  # noqa: E402
from .errors import EmergelabError, NotFittedError, StoreError, TrainingDiverged  # noqa: E402
from .hooks import ActivationCache, HookedModule, HookPoint  # noqa: E402
from .icl import DMMSE, LeastSquares, Ridge, TwoLayerNN, error_by_k  # noqa: E402
from .interpret import detection_patterns, head_scores, prefix_matching_pattern, zero_ablate  # noqa: E402
from .models import SOM, AttentionPooling, Transformer, TransformerConfig  # noqa: E402
from .models.rbf import RBFClassifier, RBFLayer, RBFNetwork  # noqa: E402
from .registry import Registry  # noqa: E402
from .runs.store import RunStore  # noqa: E402
from .tasks import InductionTask, InductionTaskConfig  # noqa: E402
from .tasks.regression import RegressionTask, RegressionTaskConfig  # noqa: E402
from .train import TrainConfig, load_model, save_model, train  # noqa: E402
from .version import __version__ as __version__  # noqa: E402  (a leaf module: runs/ reads it too)

__all__ = [
    "DMMSE", "LeastSquares", "RegressionTask", "RegressionTaskConfig", "Ridge", "TwoLayerNN", "error_by_k",
    "reanalyze_run", "resume_run", "run_sweep", "SweepResult", "list_sweeps",
    "SOM", "AttentionPooling", "RBFClassifier", "RBFLayer", "RBFNetwork",
    "ActivationCache", "ConfigError", "EmergelabError", "HookPoint", "HookedModule", "InductionTask",
    "InductionTaskConfig", "NotFittedError", "Registry", "RunResult", "RunStore", "StoreError",
    "TrainConfig", "TrainingDiverged", "Transformer", "TransformerConfig", "detection_patterns",
    "head_scores", "list_experiments", "load_config", "load_model",
    "prefix_matching_pattern", "render_report", "run_experiment", "save_model", "train",
    "zero_ablate",
]
