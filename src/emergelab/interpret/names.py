"""Canonical (TransformerLens-style) activation names for Hugging Face model families, and where each lives.

`trace()` reads every canonical name from one torch hook on one module. A `Site` says which module (a path
relative to the block, or to the base model for names outside the blocks) and what to read from it:

    OUTPUT   the module's output (its first element when the module returns a tuple)
    INPUT    the module's first input (a forward pre-hook): e.g. resid_mid is the input of the second norm
    WEIGHTS  element 1 of the module's output tuple: the attention weights (returned by eager attention only)
    HEADS    the module's input (B, T, H * D) viewed as (B, T, H, D): the per-head attention output `z`, read
             at the input of the output projection (o_proj / c_proj / dense)

Families (selected by `config.model_type`; every path was read off the transformers source it maps):

    name     model types                      blocks           resid_mid
    gpt2     gpt2                             h                input of ln_2
    llama    llama, mistral, qwen2, qwen3     layers           input of post_attention_layernorm
    gpt_neox gpt_neox                         layers           input of post_attention_layernorm; none when
                                                               use_parallel_residual (attention and MLP read the
                                                               same stream, Pythia's default)
    bert     bert                             encoder.layer    attention output after its LayerNorm (post-LN)

BERT is post-LayerNorm: the stream between blocks is the LayerNorm's output, so here `hook_resid_mid` and
`hook_resid_post` are the normalized streams the next sublayer reads (equal to `output_hidden_states`), where
TransformerLens's HookedEncoder names the sums before the LayerNorm. `hook_attn_out` / `hook_mlp_out` are what
each sublayer adds to the stream (before the add and the LayerNorm) in every family.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

OUTPUT, INPUT, WEIGHTS, HEADS = "output", "input", "weights", "heads"
LOGITS = "logits"  # (B, T, d_vocab): the output embedding's output, for models that have one
RESID_MID = "hook_resid_mid"
_BLOCK_NAME = re.compile(r"blocks\.(\d+)\.")


@dataclass(frozen=True)
class Site:
    module: str  # path relative to the block ('' = the block itself) or to the base model
    read: str = OUTPUT


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    layers: str  # the ModuleList of blocks, relative to the base model
    before: Mapping[str, Site]  # names read before the first block
    block: Mapping[str, Site]  # names read in every block, in the order the forward computes them
    after: Mapping[str, Site] = field(default_factory=dict)  # names read after the last block
    parallel_flag: str | None = None  # config flag under which attention and MLP read one stream: no resid_mid


def _block(attn: str, z_proj: str, attn_out: str, mid: Site, mlp_out: str) -> dict[str, Site]:
    return {
        "hook_resid_pre": Site("", INPUT),
        "attn.hook_pattern": Site(attn, WEIGHTS),
        "attn.hook_z": Site(z_proj, HEADS),
        "hook_attn_out": Site(attn_out),
        RESID_MID: mid,
        "hook_mlp_out": Site(mlp_out),
        "hook_resid_post": Site(""),
    }


FAMILIES = (
    Family("gpt2", ("gpt2",), "h",
           before={"hook_embed": Site("wte"), "hook_pos_embed": Site("wpe")},
           block=_block("attn", "attn.c_proj", "attn", Site("ln_2", INPUT), "mlp"),
           after={"ln_final.hook_normalized": Site("ln_f")}),
    Family("llama", ("llama", "mistral", "qwen2", "qwen3"), "layers",
           before={"hook_embed": Site("embed_tokens")},
           block=_block("self_attn", "self_attn.o_proj", "self_attn", Site("post_attention_layernorm", INPUT), "mlp"),
           after={"ln_final.hook_normalized": Site("norm")}),
    Family("gpt_neox", ("gpt_neox",), "layers",
           before={"hook_embed": Site("embed_in")},
           block=_block("attention", "attention.dense", "post_attention_dropout",
                        Site("post_attention_layernorm", INPUT), "post_mlp_dropout"),
           after={"ln_final.hook_normalized": Site("final_layer_norm")},
           parallel_flag="use_parallel_residual"),
    Family("bert", ("bert",), "encoder.layer",
           before={"hook_embed": Site("embeddings.word_embeddings"),
                   "hook_pos_embed": Site("embeddings.position_embeddings")},
           block=_block("attention.self", "attention.output.dense", "attention.output.dropout", Site("attention"),
                        "output.dropout")),
)


def family_of(model: nn.Module) -> Family | None:
    """The mapped family of a transformers model (by `config.model_type`), or None."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return next((f for f in FAMILIES if model_type in f.model_types), None)


@dataclass
class NameMap:
    """Where every canonical name of one model lives: paths are relative to the model's root module."""

    family: str
    sites: dict[str, Site]  # canonical name -> Site with a full module path, in forward order
    blocks: list[str]  # module paths of the blocks, in order
    n_heads: int


def hf_name_map(model: nn.Module) -> NameMap | None:
    """The canonical names of a transformers model of a mapped family, or None (raw module paths only)."""
    family = family_of(model)
    if family is None:
        return None
    prefix = getattr(model, "base_model_prefix", "")
    base = f"{prefix}." if prefix and isinstance(getattr(model, prefix, None), nn.Module) else ""
    n_layers = len(model.get_submodule(base + family.layers))
    sites = {name: Site(base + s.module, s.read) for name, s in family.before.items()}
    block = dict(family.block)
    if family.parallel_flag and getattr(model.config, family.parallel_flag, False):
        del block[RESID_MID]
    blocks = [f"{base}{family.layers}.{i}" for i in range(n_layers)]
    for i, path in enumerate(blocks):
        for name, s in block.items():
            sites[f"blocks.{i}.{name}"] = Site(f"{path}.{s.module}" if s.module else path, s.read)
    sites.update({name: Site(base + s.module, s.read) for name, s in family.after.items()})
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:  # the LM head is a child of the root in every mapped family; found by identity anyway
        children = ((p, m) for walk in (model.named_children, model.named_modules) for p, m in walk())
        sites[LOGITS] = Site(next(p for p, m in children if m is head))
    return NameMap(family.name, sites, blocks, int(model.config.num_attention_heads))


def templates(names: list[str]) -> list[str]:
    """Names with their block number written `{i}`, each once, in order: a short list for messages."""
    return list(dict.fromkeys(_BLOCK_NAME.sub("blocks.{i}.", n) for n in names))
