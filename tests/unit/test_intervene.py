"""edit() and the ablations on tiny random models of every mapped transformers family and on our Transformer:
identity edits change nothing, hooks never leak, a zero-ablated head equals zeroing the input slice of the
output projection by hand (per query head under grouped-query attention), mean / resample write what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from emergelab.errors import ConfigError
from emergelab.interpret.ablation import zero_ablate
from emergelab.interpret.intervene import ReferenceMismatch, ablate, ablate_heads, edit
from emergelab.interpret.tracing import UnknownActivationName, activation_names, trace
from emergelab.models.hf import load_hf_model
from emergelab.models.transformer import Transformer, TransformerConfig
from tests.fixtures import hf_models

B, T, H, D = 3, 7, 4, 8
FAMILIES = ("gpt2", "llama", "qwen2", "gpt_neox", "gpt_neox_serial", "bert")
OUT_PROJ = {"gpt2": "transformer.h.{i}.attn.c_proj", "llama": "model.layers.{i}.self_attn.o_proj",
            "qwen2": "model.layers.{i}.self_attn.o_proj", "gpt_neox": "gpt_neox.layers.{i}.attention.dense",
            "gpt_neox_serial": "gpt_neox.layers.{i}.attention.dense",
            "bert": "encoder.layer.{i}.attention.output.dense"}


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf-intervene")
    folders = {f: hf_models.tiny_family_model(root / f, f) for f in hf_models.TINY_FAMILIES}
    folders["gpt_neox_serial"] = hf_models.tiny_family_model(root / "serial", "gpt_neox", use_parallel_residual=False)
    return {f: load_hf_model(path, kind="base" if f == "bert" else "causal") for f, path in folders.items()}


def tokens(seed: int = 0, batch: int = B) -> torch.Tensor:
    return torch.randint(3, 20, (batch, T), generator=torch.Generator().manual_seed(seed))


def out(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        o = model(ids)
    return o if isinstance(o, torch.Tensor) else (o.logits if hasattr(o, "logits") else o.last_hidden_state)


def hook_counts(model: nn.Module) -> list[tuple[int, int, int]]:
    return [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._forward_pre_hooks_with_kwargs))
            for m in model.modules()]


def editable(model) -> list[str]:
    """Every canonical name but the attention weights (not editable on transformers models)."""
    return [n for n in activation_names(model) if not n.endswith("hook_pattern")]


def our_transformer() -> Transformer:
    return Transformer(TransformerConfig(n_layers=2, d_model=32, n_heads=H, d_mlp=64, n_ctx=16, d_vocab=20,
                                         layernorm=True), seed=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_identity_edits_of_every_name_change_nothing(lms, family):
    model = lms[family].model
    ids = tokens()
    clean = out(model, ids)
    names = editable(model)
    assert "blocks.1.attn.hook_z" in names and "blocks.0.hook_resid_pre" in names
    before = hook_counts(model)
    with edit(model, {n: (lambda x: x) for n in names}):
        same = out(model, ids)
    with edit(model, {n: (lambda x, name: None) for n in names}):  # None keeps the activation
        kept = out(model, ids)
    assert (same - clean).abs().max() <= 1e-6 and (kept - clean).abs().max() <= 1e-6
    assert hook_counts(model) == before
    with edit(model, {"blocks.0.hook_resid_post": lambda x: x * 2}):  # an edit that does something
        assert (out(model, ids) - clean).abs().max() > 1e-3


def test_identity_edits_on_our_transformer_including_patterns():
    model = our_transformer()
    ids = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, _ = model.run_with_cache(ids)  # the explicit attention path the hooks switch on
        with edit(model, {n: (lambda x: x) for n in activation_names(model)}):
            same = model(ids)
        with edit(model, {"blocks.1.attn.hook_pattern": lambda p: torch.eye(16).expand_as(p)}):
            attends_self = trace(model, ids, names=["blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z",
                                                     "blocks.1.attn.hook_v"])
    assert (same - logits).abs().max() <= 1e-6
    # an edited pattern is what the head applies: attending to itself only, z is the value
    torch.testing.assert_close(attends_self["blocks.1.attn.hook_z"], attends_self["blocks.1.attn.hook_v"])
    assert all(not hp._forward_hooks for hp in model.hook_points.values())


def test_hooks_are_removed_after_an_exception_in_the_block_or_in_the_edit(lms):
    model = lms["llama"].model
    before = hook_counts(model)
    with pytest.raises(RuntimeError, match="inside the block"), edit(model, {"blocks.0.hook_resid_pre": lambda x: x}):
        assert hook_counts(model) != before
        raise RuntimeError("inside the block")
    assert hook_counts(model) == before

    def boom(x):
        raise RuntimeError("inside the edit")

    with pytest.raises(RuntimeError, match="inside the edit"), edit(model, {"blocks.1.attn.hook_z": boom}):
        out(model, tokens())
    assert hook_counts(model) == before
    with pytest.raises(ConfigError, match="returned shape"), \
            edit(model, {"blocks.1.hook_mlp_out": lambda x: x[:, :1]}):
        out(model, tokens())
    assert hook_counts(model) == before


def zero_slice_by_hand(model: nn.Module, family: str, layer: int, heads: list[int]):
    """A forward pre-hook on the output projection zeroing the heads' slice of its input (B, T, H * D)."""
    def hook(module, args):
        x = args[0].clone()
        for h in heads:
            x[..., h * D:(h + 1) * D] = 0
        return (x, *args[1:])

    return model.get_submodule(OUT_PROJ[family].format(i=layer)).register_forward_pre_hook(hook)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_ablation_of_a_head_equals_zeroing_the_output_projections_input_slice(lms, family):
    model = lms[family].model
    ids = tokens(1)
    clean = out(model, ids)
    with ablate_heads(lms[family], [(1, 2), (0, 1), (0, 3)]):  # an HFModel is taken too
        ablated = out(model, ids)
    handles = [zero_slice_by_hand(model, family, 1, [2]), zero_slice_by_hand(model, family, 0, [1, 3])]
    try:
        by_hand = out(model, ids)
    finally:
        for h in handles:
            h.remove()
    assert (ablated - clean).abs().max() > 1e-3
    torch.testing.assert_close(ablated, by_hand, atol=1e-6, rtol=0)
    torch.testing.assert_close(out(model, ids), clean, atol=0, rtol=0)  # nothing left behind


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_grouped_query_attention_ablates_one_query_head_of_a_shared_kv_head(lms, family):
    model = lms[family].model
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (4, 2)
    ids = tokens(2)
    z_name = "blocks.0.attn.hook_z"
    clean = trace(model, ids, names=[z_name])[z_name]
    results = []
    for head in (0, 1):  # query heads 0 and 1 share KV head 0
        with ablate_heads(model, [(0, head)]):
            z = trace(model, ids, names=[z_name, "logits"])
        other = 1 - head
        assert z[z_name][:, :, head].abs().max() == 0
        assert z[z_name][:, :, other].equal(clean[:, :, other]) and z[z_name][:, :, 2:].equal(clean[:, :, 2:])
        results.append(z["logits"])
    assert (results[0] - results[1]).abs().max() > 1e-3


def test_mean_and_resample_ablation_write_the_reference(lms):
    model = lms["gpt2"].model
    ids, ref_ids = tokens(3), tokens(4, batch=5)
    z_name = "blocks.1.attn.hook_z"
    ref = trace(model, ref_ids, names=[z_name])[z_name]  # (5, T, H, D)
    clean = trace(model, ids, names=[z_name])[z_name]
    with ablate_heads(model, [(1, 2)], how="mean", reference=ref_ids):
        mean = trace(model, ids, names=[z_name])[z_name]
    torch.testing.assert_close(mean[:, :, 2], ref.mean(0)[None, :, 2].expand(B, T, D))
    assert mean[:, :, [0, 1, 3]].equal(clean[:, :, [0, 1, 3]])
    with ablate_heads(model, [(1, 2)], how="resample", reference=ref_ids[:B]):
        resampled = trace(model, ids, names=[z_name])[z_name]
    torch.testing.assert_close(resampled[:, :, 2], ref[:B, :, 2])
    with ablate_heads(model, [(1, 2)], how="resample"):  # no reference: the batch's other examples
        rolled = trace(model, ids, names=[z_name])[z_name]
    torch.testing.assert_close(rolled[:, :, 2], clean.roll(1, dims=0)[:, :, 2])
    # a reference of the same inputs: the mean of identical rows is the row itself, nothing changes
    same = tokens(5, batch=1)
    with ablate_heads(model, [(0, 0), (1, 3)], how="mean", reference=same.repeat(4, 1)):
        unchanged = out(model, same)
    torch.testing.assert_close(unchanged, out(model, same), atol=1e-5, rtol=0)


def test_ablation_at_positions_changes_only_those_positions_and_later(lms):
    model = lms["llama"].model
    ids = tokens(6)
    name = "blocks.0.hook_resid_pre"
    clean = trace(model, ids, names=[name, "logits"])
    with ablate(model, name, positions=[4]):
        zeroed = trace(model, ids, names=[name, "logits"])
    assert zeroed[name][:, 4].abs().max() == 0
    assert zeroed[name][:, [0, 1, 2, 3, 5, 6]].equal(clean[name][:, [0, 1, 2, 3, 5, 6]])
    diff = (zeroed["logits"] - clean["logits"]).abs().amax(dim=(0, 2))  # (T,)
    assert diff[:4].max() <= 1e-6 and diff[4:].min() > 1e-4  # causal: earlier positions never see it
    with ablate_heads(model, [(1, 0)], positions=[-1]):
        last = trace(model, ids, names=["blocks.1.attn.hook_z"])["blocks.1.attn.hook_z"]
    full = trace(model, ids, names=["blocks.1.attn.hook_z"])["blocks.1.attn.hook_z"]
    assert last[:, -1, 0].abs().max() == 0 and last[:, :-1].equal(full[:, :-1])
    assert last[:, -1, 1:].equal(full[:, -1, 1:])


def test_a_tensor_patches_the_activation_patching_the_last_resid_post_gives_the_clean_logits(lms):
    model = lms["gpt_neox"].model
    clean_ids, corrupt_ids = tokens(7), tokens(8)
    name = "blocks.1.hook_resid_post"
    clean = trace(model, clean_ids, names=[name, "logits"])
    with edit(model, {name: clean[name]}):
        patched = out(model, corrupt_ids)
    torch.testing.assert_close(patched, clean["logits"], atol=1e-6, rtol=0)
    with edit(model, {name: clean[name][0, 3]}):  # (C,) broadcast to every example and position
        one = trace(model, corrupt_ids, names=[name])[name]
    assert one.equal(clean[name][0, 3].expand_as(one))


def test_our_transformer_ablate_heads_equals_the_older_zero_ablate():
    model = our_transformer()
    ids = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), ablate_heads(model, [(1, 2)]):
        new = model(ids)
    with torch.no_grad(), zero_ablate(model, [(1, 2)]):
        old = model(ids)
    assert new.equal(old) and not new.equal(model(ids))


def test_clear_errors(lms):
    model = lms["gpt2"].model
    with pytest.raises(UnknownActivationName, match="Did you mean: blocks.0.hook_resid_post"):
        edit(model, {"blocks.0.hook_resid_pots": lambda x: x}).__enter__()
    with pytest.raises(ConfigError, match=r"\(attn.hook_z\) instead"):
        edit(model, {"blocks.0.attn.hook_pattern": lambda x: x}).__enter__()
    with pytest.raises(UnknownActivationName, match="it has 2 blocks"):
        ablate_heads(model, [(2, 0)])
    with pytest.raises(ConfigError, match="4 heads per layer"):
        ablate_heads(model, [(0, 4)])
    with pytest.raises(ConfigError, match=r"\(layer, head\) pair"):
        ablate_heads(model, [3])
    with pytest.raises(ConfigError, match=r"\(layer, head\) pair"):
        ablate_heads(model, [(0.5, 1)])
    with ablate_heads(model, [(np.int64(1), torch.tensor(2))], positions=[np.int64(0)]):  # numpy / torch integers
        pass
    with pytest.raises(ConfigError, match="choose from zero, mean, resample"):
        ablate_heads(model, [(0, 0)], how="random").__enter__()
    with pytest.raises(ConfigError, match="needs reference inputs"):
        ablate_heads(model, [(0, 0)], how="mean").__enter__()
    before = hook_counts(model)
    with pytest.raises(ReferenceMismatch, match="3 positions"), \
            ablate_heads(model, [(0, 0)], how="mean", reference=tokens()[:, :3]):
        out(model, tokens())
    with pytest.raises(ConfigError, match="does not broadcast"), edit(model, {"hook_embed": torch.zeros(5)}):
        out(model, tokens())
    with pytest.raises(ConfigError, match="outside the 7 positions"), ablate(model, "hook_embed", positions=[9]):
        out(model, tokens())
    assert hook_counts(model) == before
