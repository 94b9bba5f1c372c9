"""The model zoo: one file per family, each registered in `emergelab.registry.models`."""

from .attention_pool import AttentionPooling
from .sequence import VectorSequenceModel
from .som import SOM
from .som_attention import SOMAttentionNet
from .text_classifier import AttentionTextClassifier
from .transformer import Transformer, TransformerConfig

__all__ = ["SOM", "AttentionPooling", "AttentionTextClassifier", "SOMAttentionNet",
           "Transformer", "TransformerConfig", "VectorSequenceModel"]
