"""Synthetic tasks and dataset loaders, shared by training and analysis. Their configs live in the
torch-free `tasks.configs`; names load on first use (`emergelab.lazy`)."""

from ..lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["InductionBatch", "InductionTask"], ".induction"),
    **dict.fromkeys(["RegressionTask"], ".regression"),
    **dict.fromkeys(["BurstyTaskConfig", "CurriculumConfig", "InductionTaskConfig", "RegressionTaskConfig"],
                    ".configs"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
