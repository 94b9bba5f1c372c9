"""The model zoo: one file per family, each registered in `emergelab.registry.models` when its module is
imported. Names load on first use (`emergelab.lazy`)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "AttentionPooling": ".attention_pool",
    "VectorSequenceModel": ".sequence",
    "SOM": ".som",
    "SOMAttentionNet": ".som_attention",
    "AttentionTextClassifier": ".text_classifier",
    **dict.fromkeys(["Transformer", "TransformerConfig"], ".transformer"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
