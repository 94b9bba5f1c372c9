"""The induction measurements (interpret/induction_probe.py) on a tiny untrained transformer: what they
return, that they agree with each other, and how the ablation control is chosen."""

import torch

from emergelab.devices import to_device
from emergelab.interpret.induction_probe import (
    LOSS_KEYS,
    ablation_control,
    ablation_effects,
    example_attention,
    measure,
    split_losses,
)
from emergelab.models.transformer import Transformer, TransformerConfig
from emergelab.tasks.induction import InductionTask, InductionTaskConfig

TASK = InductionTask(InductionTaskConfig(vocab_size=16, seq_len=24, segment_min=3, segment_max=6))


def tiny_model(n_layers: int = 2) -> Transformer:
    return Transformer(TransformerConfig(n_layers=n_layers, d_model=16, n_heads=2, d_mlp=0, n_ctx=24, d_vocab=17),
                       seed=0)


def test_measure_returns_losses_and_one_score_grid_per_kind():
    model, batch = tiny_model(), TASK.sample(32, torch.Generator().manual_seed(0))
    losses, scores = measure(model, batch, icl_early=2, icl_late=20)
    assert tuple(losses) == LOSS_KEYS and all(isinstance(v, float) for v in losses.values())
    assert set(scores) == {"previous_token", "duplicate_token", "induction", "prefix_matching"}
    assert all(s.shape == (2, 2) and torch.isfinite(s).all() for s in scores.values())
    # the losses of the cached forward are those of a plain forward
    rep, first = split_losses(model, batch)
    assert abs(rep - losses["repeated_loss"]) < 1e-6 and abs(first - losses["first_loss"]) < 1e-6
    # a batch moved (here to the CPU, a no-op) measures the same
    assert measure(model, to_device(batch, torch.device("cpu")), 2, 20)[0] == losses


def test_ablation_control_avoids_previous_token_heads_and_prefers_the_ablated_layers():
    grid = [[0.1, 0.0, 0.2], [0.9, 0.3, 0.05]]  # prefix-matching scores (2 layers x 3 heads)
    control = ablation_control([(1, 0)], prev={(1, 2)}, prefix_grid=grid, n_layers=2, n_heads=3)
    assert control == [(1, 1)]  # same layer as the ablated head, not a previous-token head
    control = ablation_control([(1, 0), (1, 1)], prev={(1, 2)}, prefix_grid=grid, n_layers=2, n_heads=3)
    assert control == [(0, 1), (0, 0)]  # other layer, lowest score first
    everything_else = ablation_control([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)], prev={(1, 2)}, prefix_grid=grid,
                                       n_layers=2, n_heads=3)
    assert everything_else == [(1, 2)]  # previous-token heads only when nothing else is left


def test_ablation_effects_cover_every_head_and_nothing_ablated_changes_nothing():
    model, batch = tiny_model(), TASK.sample(32, torch.Generator().manual_seed(1))
    ab = ablation_effects(model, batch, [], [], prev=set())
    assert ab["ablated_repeated_loss"] == ab["clean_repeated_loss"] == ab["control_repeated_loss"]
    assert [(h["layer"], h["head"]) for h in ab["per_head"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    ab = ablation_effects(model, batch, [(1, 0)], [(0, 1)], prev={(0, 1)})
    assert ab["heads"] == [{"layer": 1, "head": 0}] and ab["control_includes_previous_token_heads"]
    assert ab["ablated_repeated_loss"] == ab["per_head"][2]["repeated_loss"]


def test_example_attention_lists_every_head_by_role():
    model, batch = tiny_model(), TASK.sample(4, torch.Generator().manual_seed(2))
    ex = example_attention(model, TASK, batch, induction_heads=[{"layer": 1, "head": 1, "score": 0.5}],
                           prev_heads=[{"layer": 0, "head": 0, "score": 0.6}], index=2)
    assert [(h["layer"], h["head"], h["role"]) for h in ex["heads"]] == [
        (1, 1, "induction"), (0, 0, "previous_token"), (0, 1, "other"), (1, 0, "other")]
    assert ex["repeat"] == batch.repeat_of(2) and len(ex["tokens"]) == 24 and ex["tokens"][0] == "BOS"
    pattern = torch.tensor(ex["heads"][0]["pattern"])  # (T, T), causal, rows sum to 1
    assert pattern.shape == (24, 24) and torch.allclose(pattern.sum(-1), torch.ones(24), atol=1e-3)
    assert torch.all(pattern.triu(1) == 0)
