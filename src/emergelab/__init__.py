"""emergelab: grow, measure and explain emergent abilities, in-context learning and interpretability.

Quick tour:
    >>> import emergelab as el
    >>> result = el.run_experiment("induction", overrides=["train.steps=1500"])
    >>> result.summary["2L"]["induction_heads"]
    [{'layer': 1, 'head': 2, 'score': 0.81}, ...]

The names below load on first use (`emergelab.lazy`): `import emergelab` itself imports neither torch nor
scikit-learn, so the `emergelab` commands that compute nothing start in a fraction of a second.
"""

import os as _os

# Before anything imports torch: OpenMP (libgomp) reads OMP_WAIT_POLICY once, when torch's library loads.
# PASSIVE makes idle OpenMP threads sleep instead of spinning; beside another busy process, spinning threads
# made small fits many times slower (benchmarks/RESULTS.md, "OpenMP wait policy"). A user's own value is
# kept. The `emergelab` command imports this package first, so it is covered too; a program that imports
# torch before emergelab has to set the variable itself.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .lazy import lazy_exports  # noqa: E402
from .version import __version__ as __version__  # noqa: E402  (a leaf module: runs/ reads it too)

_EXPORTS = {
    **dict.fromkeys(["RunResult", "SweepResult", "list_experiments", "list_sweeps", "reanalyze_run",
                     "render_report", "resume_run", "run_experiment", "run_sweep"], ".api"),
    **dict.fromkeys(["ConfigError", "load_config"], ".config"),
    **dict.fromkeys(["EmergelabError", "NotFittedError", "StoreError", "TrainingDiverged"], ".errors"),
    **dict.fromkeys(["ActivationCache", "HookedModule", "HookPoint"], ".hooks"),
    **dict.fromkeys(["DMMSE", "LeastSquares", "Ridge", "TwoLayerNN", "error_by_k"], ".icl"),
    **dict.fromkeys(["detection_patterns", "head_scores", "prefix_matching_pattern", "zero_ablate", "trace", "edit",
                     "ablate_heads", "activation_patching", "attribution_patching", "attention_patterns",
                     "head_detectors", "rollout", "logit_lens", "attribute_tokens", "attribute_image",
                     "linear_probe", "project"], ".interpret"),
    **dict.fromkeys(["resolve_model", "model_statuses"], ".models.catalog"),
    "load_hf_model": ".models.hf",
    **dict.fromkeys(["SOM", "AttentionPooling", "Transformer", "TransformerConfig"], ".models"),
    **dict.fromkeys(["RBFClassifier", "RBFLayer", "RBFNetwork"], ".models.rbf"),
    "Registry": ".registry",
    "RunStore": ".runs.store",
    **dict.fromkeys(["InductionTask", "InductionTaskConfig", "RegressionTask", "RegressionTaskConfig"], ".tasks"),
    **dict.fromkeys(["TrainConfig", "load_model", "save_model", "train"], ".train"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
