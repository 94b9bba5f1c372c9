import pytest
import torch
import torch.nn.functional as F

from emergelab.models.transformer import Transformer, TransformerConfig


def make(**kw):
    cfg = dict(n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=16, d_vocab=20, layernorm=True)
    cfg.update(kw)
    return Transformer(TransformerConfig(**cfg), seed=0)


def test_hook_names_follow_transformerlens():
    names = set(make().hook_names())
    for expected in ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q",
                     "blocks.0.attn.hook_k", "blocks.0.attn.hook_v", "blocks.0.attn.hook_attn_scores",
                     "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_attn_out",
                     "blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out", "blocks.1.hook_resid_post",
                     "blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post", "ln_final.hook_normalized"]:
        assert expected in names
    attn_only = set(make(d_mlp=0, layernorm=False).hook_names())
    assert "blocks.0.hook_mlp_out" not in attn_only and "ln_final.hook_normalized" not in attn_only


def test_cache_shapes_and_same_output_as_plain_forward():
    model = make()
    tokens = torch.randint(0, 20, (3, 16), generator=torch.Generator().manual_seed(0))
    plain = model(tokens)
    logits, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(logits, plain, atol=1e-5, rtol=1e-5)
    assert cache["blocks.1.attn.hook_pattern"].shape == (3, 4, 16, 16)
    assert cache["pattern", 1] is cache["blocks.1.attn.hook_pattern"]
    assert cache["blocks.0.attn.hook_q"].shape == (3, 16, 4, 8)
    assert cache["blocks.0.attn.hook_z"].shape == (3, 16, 4, 8)
    assert cache["blocks.0.hook_resid_post"].shape == (3, 16, 32)
    assert cache["blocks.0.mlp.hook_post"].shape == (3, 16, 64)
    pat = cache["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pat.sum(-1), torch.ones(3, 4, 16))
    assert torch.all(pat.triu(1) == 0)  # causal
    # the residual stream adds up: resid_post = resid_pre + attn_out + mlp_out
    c = cache
    torch.testing.assert_close(c["blocks.1.hook_resid_post"],
                               c["blocks.1.hook_resid_pre"] + c["blocks.1.hook_attn_out"] + c["blocks.1.hook_mlp_out"])


def test_patterns_are_materialized_only_when_asked(monkeypatch):
    model = make()
    calls = {"sdpa": 0}
    real = F.scaled_dot_product_attention

    def counting(*a, **k):
        calls["sdpa"] += 1
        return real(*a, **k)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    tokens = torch.zeros(1, 8, dtype=torch.long)
    model(tokens)
    assert calls["sdpa"] == 2  # fused path in both layers
    model.run_with_cache(tokens, names="blocks.1.attn.hook_pattern")
    assert calls["sdpa"] == 3  # layer 0 fused, layer 1 explicit
    model.run_with_cache(tokens, names=["blocks.0.hook_resid_post"])
    assert calls["sdpa"] == 5


def test_hooks_ablate_and_are_always_removed():
    model = make()
    tokens = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(1))
    clean = model(tokens)

    def zero(z, hook):
        return torch.zeros_like(z)

    with model.hooks([("blocks.0.attn.hook_z", zero)]):
        ablated = model(tokens)
    assert not torch.allclose(clean, ablated)
    torch.testing.assert_close(model(tokens), clean)
    with pytest.raises(RuntimeError, match="boom"), model.hooks([("blocks.0.hook_resid_pre", zero)]):
        raise RuntimeError("boom")
    assert not any(hp.active for hp in model.hook_points.values())
    with pytest.raises(KeyError, match="Did you mean"), model.hooks([("blocks.0.attn.hook_patern", zero)]):
        pass


def test_ablating_a_head_through_hook_z_equals_zeroing_its_weights():
    model = make(d_mlp=0, layernorm=False)
    tokens = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(2))

    def kill_head_1(z, hook):
        z = z.clone()
        z[:, :, 1] = 0
        return z

    with model.hooks([("blocks.1.attn.hook_z", kill_head_1)]):
        via_hook = model(tokens)
    with torch.no_grad():
        model.blocks[1].attn.W_O.weight[:, 8:16] = 0
    torch.testing.assert_close(via_hook, model(tokens), atol=1e-6, rtol=1e-6)
