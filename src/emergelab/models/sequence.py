"""A Transformer over sequences of vectors: linear read-in -> `Transformer.forward_embeds` -> linear read-out.

For tasks whose tokens are vectors rather than token ids: in-context regression prompts x_1, y_1, ..., x_N
(Garg et al. 2022; read out at the x positions, the even ones) and item-label sequences ending in a query
(Reddy 2023; read out at the last position). The wrapped Transformer gets d_vocab=1 and tied embeddings,
so its token embedding is an unused (1, d_model) row: inputs come through `read_in`.

Hook names are the Transformer's, prefixed with `transformer.`: `transformer.blocks.0.attn.hook_pattern`
(the `interpret/` helpers find the prefix themselves).

Example:
    >>> tcfg = vector_config(7, n_layers=2, d_model=32, n_heads=2)
    >>> VectorSequenceModel(3, 1, tcfg, read_at="even", seed=0)(torch.randn(8, 7, 3)).shape
    torch.Size([8, 4, 1])
    >>> VectorSequenceModel(3, 5, tcfg, read_at="last", seed=0)(torch.randn(8, 7, 3)).shape
    torch.Size([8, 5])
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..hooks import HookedModule
from ..registry import models
from .transformer import Transformer, TransformerConfig

ReadAt = Literal["even", "last"]
READ_AT = ("even", "last")


def vector_config(n_ctx: int, **shape: Any) -> TransformerConfig:
    """The Transformer config of a model over vector inputs: d_vocab=1 and tied embeddings, so the token
    embedding is one unused row (inputs come through the read-in); `shape` is n_layers, d_model, ...

    Example:
        >>> vector_config(21, n_layers=4, d_model=64, n_heads=4, d_mlp=256, layernorm=True).d_vocab
        1
    """
    return TransformerConfig(n_ctx=n_ctx, d_vocab=1, tie_embeddings=True, **shape)


@models.register("vector-sequence", "linear read-in -> Transformer -> linear read-out over vector sequences (ICL)")
class VectorSequenceModel(HookedModule):
    """seq (B, T, d_in) -> read-outs: (B, ceil(T/2), d_out) at positions 0, 2, 4, ... (`read_at="even"`) or
    (B, d_out) at the last position (`read_at="last"`).

    Args:
        d_in: size of each input vector.
        d_out: size of each read-out (1 for a regression target, n_labels for label logits).
        cfg: the wrapped Transformer's config (n_ctx >= T; d_vocab=1 with tied embeddings wastes nothing).
        read_at: where the read-out looks: "even" (the x positions of interleaved x, y prompts) or "last".
        seed: the Transformer is built from `seed`, then read-in and read-out weights are drawn
            N(0, 1/fan_in) from a generator seeded with seed + 1 (biases 0); None leaves torch's default
            init (for models about to load a checkpoint).
    """

    def __init__(self, d_in: int, d_out: int, cfg: TransformerConfig, read_at: ReadAt = "even",
                 seed: int | None = 0):
        super().__init__()
        if read_at not in READ_AT:
            raise ValueError(f"read_at must be one of {', '.join(READ_AT)}, got '{read_at}'")
        self.read_at = read_at
        # Build order (read_in, transformer, read_out, then the seeded init) is part of the numbers of stored
        # runs: keep it.
        self.read_in = nn.Linear(d_in, cfg.d_model)
        self.transformer = Transformer(cfg, seed=seed)
        self.read_out = nn.Linear(cfg.d_model, d_out)
        if seed is not None:
            g = torch.Generator().manual_seed(seed + 1)
            for lin in (self.read_in, self.read_out):
                nn.init.normal_(lin.weight, 0.0, 1 / lin.in_features**0.5, generator=g)
                nn.init.zeros_(lin.bias)
        self.setup_hooks()

    @property
    def cfg(self) -> TransformerConfig:
        """The wrapped Transformer's config (n_layers, n_heads, ...)."""
        return self.transformer.cfg

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """seq (B, T, d_in) -> (B, ceil(T/2), d_out) ("even") or (B, d_out) ("last")."""
        resid = self.transformer.forward_embeds(self.read_in(seq))  # (B, T, d_model)
        picked = resid[:, 0::2] if self.read_at == "even" else resid[:, -1]
        return self.read_out(picked)

    # --- the model contract (tests/contract): a tiny instance and a learnable batch ---------
    @classmethod
    def tiny(cls, seed: int = 0) -> VectorSequenceModel:
        return cls(3, 2, vector_config(9, n_layers=2, d_model=32, n_heads=2, d_mlp=64, layernorm=True),
                   read_at="even", seed=seed)

    def example_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(seq (B, n_ctx, d_in), target (B, ceil(n_ctx/2), d_out)): at every read-out position a fixed linear
        map of the input vector there, the same for every instance (so a few steps learn it)."""
        d_in, d_out, T = self.read_in.in_features, self.read_out.out_features, self.cfg.n_ctx
        W = torch.linspace(-1.0, 1.0, d_in * d_out).view(d_in, d_out)
        seq = torch.randn(batch_size, T, d_in, generator=generator)
        at = seq[:, 0::2] if self.read_at == "even" else seq[:, -1]
        return seq, at @ W

    @staticmethod
    def inputs(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor]:
        """What `forward` takes from a batch (the contract tests call `model(*model.inputs(batch))`)."""
        return (batch[0],)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean squared error of the read-outs (experiments pass their own loss to the trainer)."""
        seq, target = batch
        return F.mse_loss(self(seq), target)
