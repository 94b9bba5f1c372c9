"""In-context learning: baselines for in-context regression and their scoring; k-shot evaluation of
language models lives in `emergelab.icl.kshot` (imported on demand: it needs transformers)."""

from .baselines import (
    DMMSE,
    Averaging,
    Lasso,
    LeastSquares,
    NearestNeighbors,
    Ridge,
    TwoLayerNN,
    bootstrap_mean,
    error_by_k,
    errors_from_predictions,
    predict_by_k,
)

__all__ = ["DMMSE", "Averaging", "Lasso", "LeastSquares", "NearestNeighbors", "Ridge", "TwoLayerNN",
           "bootstrap_mean", "error_by_k", "errors_from_predictions", "predict_by_k"]
