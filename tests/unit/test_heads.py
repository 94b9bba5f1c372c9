import pytest
import torch

from emergelab.interpret.ablation import zero_ablate
from emergelab.interpret.heads import (
    attention_patterns,
    block_layers,
    block_prefix,
    detection_patterns,
    head_scores,
    mul_score,
    prefix_matching_pattern,
    query_mean_score,
    stack_patterns,
)
from emergelab.models.sequence import VectorSequenceModel, vector_config
from emergelab.models.transformer import Transformer, TransformerConfig

TOKENS = torch.tensor([[7, 1, 2, 3, 1, 2, 3]])  # a segment 1 2 3 repeated after a "BOS" 7
T = 7


def one_hot_rows(targets):
    """A (1, 1, T, T) pattern where query i attends fully to key targets[i]."""
    A = torch.zeros(1, 1, T, T)
    for i, j in enumerate(targets):
        A[0, 0, i, j] = 1.0
    return A


def test_previous_token_head_scores_known_value():
    A = one_hot_rows([0, 0, 1, 2, 3, 4, 5])  # row 0 can only attend to itself
    d = detection_patterns(TOKENS)
    assert abs(mul_score(A, d["previous_token"]).item() - 6 / 7) < 1e-6
    assert mul_score(A, d["induction"]).item() == 0.0


def test_induction_head_scores_known_value():
    # queries 4,5,6 (second copy) attend to the token after the first copy of themselves: 2,3,4
    A = one_hot_rows([0, 0, 0, 0, 2, 3, 4])
    d = detection_patterns(TOKENS)
    assert abs(mul_score(A, d["induction"]).item() - 3 / 7) < 1e-6
    # a duplicate-token head: 4,5,6 attend to the earlier copy of the same token: 1,2,3
    B = one_hot_rows([0, 0, 0, 0, 1, 2, 3])
    assert abs(mul_score(B, d["duplicate_token"]).item() - 3 / 7) < 1e-6
    assert mul_score(B, d["induction"]).item() == 0.0


def test_uniform_attention_gets_a_partial_score():
    A = torch.ones(1, 1, T, T).tril()
    A = A / A.sum(-1, keepdim=True)
    d = detection_patterns(TOKENS)
    # previous token: rows 1..6 put 1/(i+1) on i-1
    expected = sum(1 / (i + 1) for i in range(1, T)) / T
    assert abs(mul_score(A, d["previous_token"]).item() - expected) < 1e-6


def test_prefix_matching_pattern_and_score():
    start, L = torch.tensor([1]), torch.tensor([3])
    mask = prefix_matching_pattern(start, L, 2, T)
    assert mask[0].nonzero().tolist() == [[4, 2], [5, 3], [6, 4]]
    A = one_hot_rows([0, 0, 0, 0, 2, 3, 4])
    assert query_mean_score(A, mask).item() == 1.0
    A_half = 0.5 * A + 0.5 * one_hot_rows([0, 0, 0, 0, 4, 5, 6])
    assert abs(query_mean_score(A_half, mask).item() - 0.5) < 1e-6
    scores = head_scores(torch.stack([A, A_half]), detection_patterns(TOKENS), mask)  # (L=2, B, H, T, T)
    assert scores["prefix_matching"].shape == (2, 1)
    assert set(scores) == {"previous_token", "duplicate_token", "induction", "prefix_matching"}


def test_prefix_matching_with_three_copies_counts_every_earlier_copy():
    tokens_len = 10
    start, L = torch.tensor([1]), torch.tensor([3])
    mask = prefix_matching_pattern(start, L, 3, tokens_len)
    # query 7 (third copy, rel 6): keys after copies 1 and 2 -> rel 1 and 4 -> positions 2 and 5
    assert mask[0, 7].nonzero().flatten().tolist() == [2, 5]
    assert mask[0, :4].sum() == 0  # the first copy has no earlier copy


# --- hook names: the same helpers on a Transformer and on a model wrapping one ----------------------------
def _models():
    plain = Transformer(TransformerConfig(n_layers=2, d_model=16, n_heads=2, n_ctx=7, d_vocab=11), seed=0)
    wrapped = VectorSequenceModel(3, 1, vector_config(7, n_layers=2, d_model=16, n_heads=2), seed=0)
    return plain, wrapped


def test_block_prefix_is_found_from_the_hook_names():
    plain, wrapped = _models()
    assert block_prefix(plain) == "" and block_prefix(wrapped) == "transformer."
    assert block_layers(wrapped.hook_names(), "attn.hook_z") == ("transformer.", [0, 1])
    names = ["enc.blocks.0.attn.hook_pattern", "dec.blocks.0.attn.hook_pattern"]
    with pytest.raises(ValueError, match="prefix="):
        block_layers(names)
    assert block_layers(names, prefix="dec.") == ("dec.", [0])
    with pytest.raises(KeyError, match="hook_pattern"):
        block_layers(["embed.hook_x"])


def test_attention_patterns_and_stack_patterns_on_a_wrapped_model():
    _, wrapped = _models()
    seq = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(0))
    patterns = attention_patterns(wrapped, seq)
    assert patterns.shape == (2, 4, 2, 7, 7)
    _, cache = wrapped.run_with_cache(seq, names=lambda n: n.endswith("hook_pattern"))
    by_hand = torch.stack([cache[f"transformer.blocks.{i}.attn.hook_pattern"] for i in range(2)])
    assert torch.equal(patterns, by_hand)
    assert torch.equal(stack_patterns(cache), by_hand) and torch.equal(stack_patterns(cache, 1), by_hand[:1])
    assert torch.allclose(patterns.sum(-1), torch.ones(2, 4, 2, 7))


def test_stack_patterns_keeps_its_transformer_call():
    plain, _ = _models()
    tokens = torch.randint(0, 11, (3, 7), generator=torch.Generator().manual_seed(1))
    _, cache = plain.run_with_cache(tokens, names=lambda n: n.endswith("hook_pattern"))
    assert torch.equal(stack_patterns(cache, 2), torch.stack([cache[f"blocks.{i}.attn.hook_pattern"] for i in (0, 1)]))
    assert torch.equal(attention_patterns(plain, tokens), stack_patterns(cache, 2))


def test_zero_ablate_finds_the_prefix_and_matches_a_hand_made_hook():
    plain, wrapped = _models()
    seq = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        clean = wrapped(seq)
        with zero_ablate(wrapped, [(1, 0)]):
            ablated = wrapped(seq)

        def zero_head0(z, hook):
            z = z.clone()
            z[:, :, [0]] = 0.0
            return z

        with wrapped.hooks([("transformer.blocks.1.attn.hook_z", zero_head0)]):
            by_hand = wrapped(seq)
        assert torch.equal(wrapped(seq), clean)  # the hook is gone after the block
    assert not torch.allclose(ablated, clean) and torch.equal(ablated, by_hand)
    with pytest.raises(KeyError, match="transformer.blocks.5"), zero_ablate(wrapped, [(5, 0)]):
        pass
    tokens = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), zero_ablate(plain, [(0, 1)]):  # the Transformer itself: no prefix
        assert not torch.allclose(plain(tokens), Transformer(plain.cfg, seed=0)(tokens))


def test_detection_patterns_follow_the_tokens_device():
    """On the 'meta' device (shapes only): every pattern is built where the tokens are, as on a GPU."""
    tokens = torch.zeros(2, 6, dtype=torch.long, device="meta")
    for name, d in detection_patterns(tokens).items():
        assert d.device.type == "meta" and d.shape == (2, 6, 6), name
    start, L = torch.zeros(2, dtype=torch.long, device="meta"), torch.ones(2, dtype=torch.long, device="meta")
    assert prefix_matching_pattern(start, L, 2, 6).device.type == "meta"
