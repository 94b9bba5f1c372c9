"""The model zoo: one file per family, each registered in `emergelab.registry.models`."""

from .transformer import Transformer, TransformerConfig

__all__ = ["Transformer", "TransformerConfig"]
