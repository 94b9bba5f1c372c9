"""In-context learning: baselines for in-context regression and their scoring (`icl.baselines`); k-shot
evaluation of language models (`icl.kshot`, `icl.task`, `icl.prompts`, `icl.scoring`).
Names load on first use (`emergelab.lazy`)."""

from ..lazy import lazy_exports

_EXPORTS = dict.fromkeys(["DMMSE", "Averaging", "Lasso", "LeastSquares", "NearestNeighbors", "Ridge", "TwoLayerNN",
                          "bootstrap_mean", "error_by_k", "errors_from_predictions", "predict_by_k"], ".baselines")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
