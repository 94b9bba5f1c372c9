"""Bursty item-label sequences (tasks/bursty.py): layout, burstiness, Zipf, novel classes, label flips."""

import pytest
import torch

from emergelab.config import ConfigError
from emergelab.tasks.bursty import BurstyTask, BurstyTaskConfig, head_score_masks, item_positions, make_probes


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def task():
    return BurstyTask(BurstyTaskConfig(n_classes=64, n_labels=16, n_context=8, burstiness=4, dim=15))


def test_shapes_and_token_layout(task):
    b = task.sample(32, gen())
    assert b.tokens.shape == (32, 17, 15) and b.tokens.dtype == torch.float32
    assert b.target.shape == (32,) and b.classes.shape == (32, 9) and b.labels.shape == (32, 8)
    # label tokens are exactly the label vectors of the recorded labels; targets are the trained map
    lab_tokens = b.tokens[:, item_positions(8) + 1]
    assert torch.equal(lab_tokens, task.label_vectors[b.labels])
    assert torch.equal(b.target, task.class_label[b.classes[:, -1]])
    assert torch.equal(b.labels, task.class_label[b.classes[:, :-1]])


def test_burstiness_counts(task):
    b = task.bursty(200, gen(1), burstiness=4)
    ctx, q = b.classes[:, :-1], b.classes[:, -1]
    assert torch.all((ctx == q[:, None]).sum(1) == 4)
    for row in ctx:  # N/B = 2 classes, each exactly B = 4 times
        _, counts = row.unique(return_counts=True)
        assert counts.tolist() == [4, 4]
    b2 = task.bursty(200, gen(1), burstiness=2)
    assert torch.all((b2.classes[:, :-1] == b2.classes[:, -1:]).sum(1) == 2)


def test_zero_burstiness_never_shows_the_query_class():
    t = BurstyTask(BurstyTaskConfig(n_classes=16, n_labels=8, n_context=8, burstiness=0, dim=7))
    b = t.sample(500, gen(2))
    assert not b.query_in_context.any()


def test_zipf_frequencies():
    t = BurstyTask(BurstyTaskConfig(n_classes=50, n_labels=8, burstiness=0, zipf_alpha=1.0, dim=7))
    q = t.no_context(40_000, gen(3)).classes[:, -1]
    freq = torch.bincount(q, minlength=50).float() / len(q)
    expected = 1 / torch.arange(1, 51).float()
    expected /= expected.sum()
    assert torch.allclose(freq[:5], expected[:5], atol=0.01)
    assert freq[0] / freq[9] == pytest.approx(10, rel=0.2)
    uniform = BurstyTask(BurstyTaskConfig(n_classes=50, n_labels=8, burstiness=0, dim=7)).class_probs
    assert torch.allclose(uniform, torch.full((50,), 1 / 50))


def test_novel_sequences_use_fresh_means_and_distinct_labels(task):
    b = task.bursty(100, gen(4), burstiness=2, novel=True)
    assert torch.all(b.classes < 0) and torch.all(b.weights_target == -1)
    # items are not near any trained class mean
    items = b.tokens[:, item_positions(8)].reshape(-1, 15)
    nearest = torch.cdist(items, task.means).min(1).values
    assert nearest.min() > 0.3
    for ctx_cls, ctx_lab in zip(b.classes[:, :-1], b.labels, strict=True):
        labels_of = {c: {lab for c2, lab in zip(ctx_cls.tolist(), ctx_lab.tolist(), strict=True) if c2 == c}
                     for c in ctx_cls.tolist()}
        assert all(len(v) == 1 for v in labels_of.values())  # one label per class within the sequence
        assert len({next(iter(v)) for v in labels_of.values()}) == len(labels_of)  # distinct across classes
    # target is the label the context gives the query's class
    same = b.query_in_context
    assert torch.all(b.labels[same].view(100, 2) == b.target[:, None])


def test_label_flip_is_one_consistent_permutation(task):
    b = task.bursty(200, gen(5), burstiness=2, flip=True)
    true_ctx = task.class_label[b.classes[:, :-1]]
    assert torch.equal(b.weights_target, task.class_label[b.classes[:, -1]])
    assert (b.target != b.weights_target).float().mean() > 0.8  # labels really move
    for i in range(200):  # one bijection per sequence, applied to context and target alike
        mapping = {}
        trained = true_ctx[i].tolist() + [b.weights_target[i].item()]
        flipped = b.labels[i].tolist() + [b.target[i].item()]
        for t, f in zip(trained, flipped, strict=True):
            assert mapping.setdefault(t, f) == f
        assert len(set(mapping.values())) == len(mapping)


def test_no_context_probe(task):
    b = task.no_context(300, gen(6))
    assert not b.query_in_context.any()
    assert torch.equal(b.target, task.class_label[b.classes[:, -1]])


def test_novel_fraction_and_determinism():
    cfg = BurstyTaskConfig(n_classes=64, n_labels=16, n_context=8, burstiness=4, p_novel=0.5, dim=15)
    t = BurstyTask(cfg)
    b = t.sample(400, gen(7))
    novel = b.classes[:, -1] < 0
    assert 0.4 < novel.float().mean() < 0.6
    assert torch.all(b.query_in_context.sum(1) == 4)
    b2 = BurstyTask(cfg).sample(400, gen(7))
    assert torch.equal(b.tokens, b2.tokens) and torch.equal(b.target, b2.target)
    assert not torch.equal(b.tokens, t.sample(400, gen(8)).tokens)


def test_within_class_noise_scales_spread():
    def spread(eps):
        t = BurstyTask(BurstyTaskConfig(n_classes=16, n_labels=8, burstiness=4, within_class_noise=eps, dim=31))
        b = t.bursty(200, gen(9), burstiness=4)
        return (b.tokens[:, -1] * (1 + eps**2) ** 0.5 - t.means[b.classes[:, -1]]).norm(dim=1).mean()
    assert spread(0.0) < 1e-6 and spread(0.5) > 2 * spread(0.1)


@pytest.mark.parametrize("kw, key", [({"burstiness": 3}, "burstiness"), ({"n_classes": 4}, "n_classes"),
                                     ({"zipf_alpha": -1.0}, "zipf_alpha"), ({"p_novel": 1.5}, "p_novel"),
                                     ({"n_labels": 1}, "n_labels")])
def test_bad_config(kw, key):
    with pytest.raises(ConfigError, match=key):
        BurstyTaskConfig(**kw)


def test_probes_are_drawn_in_a_fixed_order_from_one_generator(task):
    p = make_probes(task, 50, 2, gen(10))
    g = gen(10)  # the same draws, one after another: novel, no-context, flip
    novel, no_ctx, flip = task.bursty(50, g, 2, novel=True), task.no_context(50, g), task.bursty(50, g, 2, flip=True)
    for got, want in ((p.novel, novel), (p.no_context, no_ctx), (p.flip, flip)):
        assert torch.equal(got.tokens, want.tokens) and torch.equal(got.target, want.target)
    assert torch.all(p.novel.classes < 0) and not p.no_context.query_in_context.any()


def test_head_score_masks_mark_the_pairing_and_the_look_up(task):
    b = make_probes(task, 20, 2, gen(11)).novel
    masks = head_score_masks(b)
    T = 17
    prev = masks["previous_token"]
    assert prev.shape == (20, T, T)
    assert prev[0].nonzero().tolist() == [[2 * i + 1, 2 * i] for i in range(8)]  # label -> its item
    ind = masks["induction"]
    assert ind[:, : T - 1].sum() == 0  # only the query looks up
    keys = ind[:, T - 1].nonzero()  # (row, key): label positions after items of the query's class
    assert torch.all(keys[:, 1] % 2 == 1)
    assert torch.equal(ind[:, T - 1, item_positions(8) + 1].bool(), b.query_in_context)
    assert torch.all(ind.sum((1, 2)) == 2)  # burstiness 2: the query's class sits twice in the context
