import torch

from emergelab.interpret.heads import (
    detection_patterns,
    head_scores,
    mul_score,
    prefix_matching_pattern,
    query_mean_score,
)

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
