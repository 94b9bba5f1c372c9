import torch
import torch.nn.functional as F

from emergelab.models.attention_pool import AttentionPooling


def test_weights_sum_to_one_and_padding_gets_none():
    pool = AttentionPooling(6, n_queries=1)
    tokens = torch.randn(4, 7, 6, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(4, 7, dtype=torch.bool)
    mask[:, 5:] = False
    pooled, alpha = pool(tokens, mask)
    assert pooled.shape == (4, 6) and alpha.shape == (4, 7)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(4))
    assert torch.all(alpha[:, 5:] == 0)
    torch.testing.assert_close(pooled, (alpha[..., None] * tokens).sum(1))
    pooled_q, alpha_q = AttentionPooling(6, n_queries=3)(tokens, mask)
    assert pooled_q.shape == (4, 3, 6) and alpha_q.shape == (4, 3, 7)


def test_the_explanation_picks_the_planted_feature():
    """Sequences of 8 noise tokens; one carries a marker (feature 0 = 3) and its feature 1 holds the
    class sign. Only attending to the marked token solves the task, so the weights must find it."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    pool, head = AttentionPooling(4), torch.nn.Linear(4, 2)
    opt = torch.optim.Adam([*pool.parameters(), *head.parameters()], lr=0.02)

    def batch(n):
        x = torch.randn(n, 8, 4, generator=g)
        x[..., 0] = 0.0
        where = torch.randint(0, 8, (n,), generator=g)
        y = torch.randint(0, 2, (n,), generator=g)
        x[torch.arange(n), where, 0] = 3.0
        x[torch.arange(n), where, 1] = torch.where(y == 1, 2.0, -2.0)
        return x, y, where

    for _ in range(300):
        x, y, _ = batch(64)
        pooled, _ = pool(x)
        loss = F.cross_entropy(head(pooled), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y, where = batch(500)
    with torch.no_grad():
        pooled, alpha = pool(x)
        acc = (head(pooled).argmax(-1) == y).float().mean().item()
    assert acc > 0.95
    assert (alpha.argmax(-1) == where).float().mean().item() > 0.95
    assert alpha[torch.arange(500), where].mean().item() > 0.5
