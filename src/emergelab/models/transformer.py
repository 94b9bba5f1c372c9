"""A GPT-style decoder with TransformerLens-named HookPoints and a fused-attention fast path.

With no hook listening on `hook_attn_scores` / `hook_pattern`, attention runs through
`F.scaled_dot_product_attention` and never materializes the (T, T) pattern, so the model
trains as fast as a plain nanoGPT-style model. Attach a hook (or `run_with_cache`) and the
same weights run the explicit path, exposing scores and patterns.

Hook names (shapes; B batch, T positions, H heads, D d_head, C d_model):
    hook_embed, hook_pos_embed                                (B, T, C)
    blocks.{i}.hook_resid_pre / hook_resid_mid / hook_resid_post  (B, T, C)
    blocks.{i}.ln1.hook_normalized, blocks.{i}.ln2.hook_normalized (B, T, C)  [layernorm=True]
    blocks.{i}.attn.hook_q / hook_k / hook_v / hook_z         (B, T, H, D)
    blocks.{i}.attn.hook_attn_scores / hook_pattern           (B, H, T_query, T_key)
    blocks.{i}.hook_attn_out, blocks.{i}.hook_mlp_out         (B, T, C)
    blocks.{i}.mlp.hook_pre / hook_post                       (B, T, d_mlp)   [d_mlp > 0]
    ln_final.hook_normalized                                  (B, T, C)       [layernorm=True]

Example:
    >>> cfg = TransformerConfig(n_layers=2, d_model=48, n_heads=4, d_mlp=0, n_ctx=64, d_vocab=130)
    >>> model = Transformer(cfg, seed=0)
    >>> logits = model(torch.zeros(8, 64, dtype=torch.long))         # (8, 64, 130)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import at_least, invalid
from ..hooks import HookedModule, HookPoint
from ..registry import models


@dataclass
class TransformerConfig:
    n_layers: int = 2  # depth; 1-layer attention-only models cannot form induction heads
    d_model: int = 48  # residual stream width
    n_heads: int = 4  # must divide d_model
    d_mlp: int = 0  # 0 = attention-only (the induction-head setting)
    n_ctx: int = 64  # longest sequence (learned positional embeddings)
    d_vocab: int = 130  # number of token ids
    layernorm: bool = False  # attention-only toy models are easier to read without it
    tie_embeddings: bool = False  # unembedding = embedding^T
    bias: bool = True  # biases in attention and MLP linears
    act_fn: Literal["gelu", "relu"] = "gelu"
    # std of the normal init of weights and embeddings (output projections scaled by 1/sqrt(2 n_layers));
    # None = 1/sqrt(d_model). GPT-2's 0.02 makes small models sit far longer on their loss plateaus.
    init_std: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least(self, 1, "n_layers", "d_model", "n_heads", "n_ctx", "d_vocab")
        if self.d_mlp < 0:
            invalid("d_mlp", "must be >= 0 (0 means attention-only)")
        if self.d_model % self.n_heads:
            invalid("n_heads", f"must divide d_model ({self.d_model})")
        if self.init_std is not None and self.init_std <= 0:
            invalid("init_std", "must be > 0 (or null for 1/sqrt(d_model))")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class LayerNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_normalized(self.ln(x))


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.W_qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.W_O = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()
        self.hook_z = HookPoint()
        future = torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool).triu(1)  # a key after its query
        self.register_buffer("causal_bias", torch.zeros(cfg.n_ctx, cfg.n_ctx).masked_fill(future, float("-inf")),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.W_qkv(x).view(B, T, 3, self.n_heads, self.d_head)
        if self.hook_q.active or self.hook_k.active or self.hook_v.active:
            q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # selects: a hook may edit them in place
        else:
            q, k, v = qkv.unbind(2)  # backward is one stack, where 3 selects each scatter into zeros
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)  # (B, T, H, D)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if self.hook_pattern.active or self.hook_attn_scores.active:
            # One fused bias + matmul, with q scaled (B*T*C values) rather than the scores (B*H*T*T):
            # the explicit path allocates only the scores and the pattern.
            H, D = self.n_heads, self.d_head
            scores = torch.baddbmm(
                self.causal_bias[:T, :T], (q * (1 / math.sqrt(D))).reshape(B * H, T, D),
                k.transpose(-2, -1).reshape(B * H, D, T),
            ).view(B, H, T, T)
            scores = self.hook_attn_scores(scores)
            pattern = self.hook_pattern(scores.softmax(dim=-1))
            z = pattern @ v  # (B, H, T, D)
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        z = self.hook_z(z.transpose(1, 2))  # (B, T, H, D)
        return self.W_O(z.reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.W_in = nn.Linear(cfg.d_model, cfg.d_mlp, bias=cfg.bias)
        self.W_out = nn.Linear(cfg.d_mlp, cfg.d_model, bias=cfg.bias)
        self.act = nn.GELU() if cfg.act_fn == "gelu" else nn.ReLU()
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_out(self.hook_post(self.act(self.hook_pre(self.W_in(x)))))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1 = LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.attn = Attention(cfg)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()
        self.has_mlp = cfg.d_mlp > 0
        if self.has_mlp:
            self.ln2 = LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
            self.mlp = MLP(cfg)
            self.hook_resid_mid, self.hook_mlp_out = HookPoint(), HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        x = x + self.hook_attn_out(self.attn(self.ln1(x)))
        if self.has_mlp:
            x = self.hook_resid_mid(x)
            x = x + self.hook_mlp_out(self.mlp(self.ln2(x)))
        return self.hook_resid_post(x)


@models.register("transformer", "GPT-style decoder with TransformerLens-named hook points")
class Transformer(HookedModule):
    """tokens (B, T) int64 -> logits (B, T, d_vocab)."""

    def __init__(self, cfg: TransformerConfig, seed: int | None = 0):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.unembed = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.d_vocab, bias=False)
        self.setup_hooks()
        self.reset_parameters(torch.Generator().manual_seed(seed) if seed is not None else None)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Normal(0, init_std) weights, residual-output projections scaled by 1/sqrt(2 n_layers) (GPT-2)."""
        std = self.cfg.init_std or 1 / math.sqrt(self.cfg.d_model)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln" in name or name.startswith("ln_final"):
                p.fill_(1.0)
            else:
                scale = 1 / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("W_O.weight", "W_out.weight")) else 1
                nn.init.normal_(p, 0.0, std * scale, generator=generator)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, T, d_vocab)."""
        x = self.forward_embeds(self.embed(tokens))
        return self.unembed(x) if self.unembed is not None else x @ self.embed.weight.T  # (B, T, V)

    def forward_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        """Continuous inputs (B, T, d_model) -> final residual stream (B, T, d_model), after ln_final.

        For tasks whose inputs are vectors, not tokens (in-context regression: a linear read-in before,
        a linear read-out after). Positional embeddings and every hook point apply as usual.
        """
        B, T, C = embeds.shape
        if T > self.cfg.n_ctx:
            raise ValueError(f"sequence length {T} exceeds n_ctx={self.cfg.n_ctx}")
        pos = torch.arange(T, device=embeds.device)
        x = self.hook_embed(embeds) + self.hook_pos_embed(self.pos_embed(pos))[None]  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.ln_final(x)

    # --- the model contract (tests/contract): a tiny instance and a learnable batch ---------
    @classmethod
    def tiny(cls, seed: int = 0) -> Transformer:
        return cls(TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=16, d_vocab=13,
                                     layernorm=True), seed=seed)

    def example_batch(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Counting sequences mod d_vocab from random starts: (B, n_ctx) int64."""
        start = torch.randint(0, self.cfg.d_vocab, (batch_size, 1), generator=generator)
        return (start + torch.arange(self.cfg.n_ctx)) % self.cfg.d_vocab

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over all positions."""
        logits = self(tokens[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def per_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V) for inputs tokens[:, :T]; returns (B, T-1) loss of predicting tokens[:, 1:]."""
    V = logits.shape[-1]
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), reduction="none"
    ).view(tokens.shape[0], -1)
