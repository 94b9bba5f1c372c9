"""The induction measurements (interpret/induction_probe.py) on a tiny untrained transformer: what they
return, that they agree with each other, how the ablation control is chosen (never a head of the induction circuit),
what mean ablation writes, and when the control check fails."""

import copy
import random

import pytest
import torch
from fixtures.report_induction import induction_report_data

from emergelab.devices import to_device
from emergelab.experiments.induction import control_check
from emergelab.interpret.ablation import head_means, mean_ablate, zero_ablate
from emergelab.interpret.induction_probe import (
    ABLATION_KINDS,
    LOSS_KEYS,
    ablation_control,
    ablation_effects,
    example_attention,
    measure,
    split_losses,
)
from emergelab.models.transformer import Transformer, TransformerConfig
from emergelab.report.induction_ablation import ablation_view as _ablation_view
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


def control(named, prev, n_layers=2, n_heads=4, draws=10, seed=0):
    return ablation_control(named, prev, n_layers, n_heads, draws, random.Random(seed))


def test_control_with_enough_heads_in_the_induction_heads_layer_tries_every_set():
    c = control([(1, 0)], prev={(0, 0)}, n_heads=3)
    assert c["choice"] == "same_layers" and c["pool"] == [(1, 1), (1, 2)]
    assert c["sets"] == [[(1, 1)], [(1, 2)]] and c["exhaustive"] and c["n_heads"] == 1
    assert "every one of the 2 possible sets" in c["how"] and "layer 1" in c["how"]


def test_control_draws_distinct_random_sets_when_there_are_more_than_draws():
    named, prev = [(2, 0), (2, 5)], {(0, 1), (1, 3), (2, 7)}
    c = control(named, prev, n_layers=3, n_heads=8, draws=5, seed=3)
    assert c["choice"] == "same_layers" and c["pool"] == [(2, 1), (2, 2), (2, 3), (2, 4), (2, 6)]
    assert len(c["sets"]) == 5 and not c["exhaustive"]  # 10 possible pairs, 5 drawn
    assert len({tuple(s) for s in c["sets"]}) == 5 and all(len(s) == 2 for s in c["sets"])
    assert all(set(s) <= set(c["pool"]) for s in c["sets"])
    assert control(named, prev, n_layers=3, n_heads=8, draws=5, seed=3) == c  # the seed decides
    assert control(named, prev, n_layers=3, n_heads=8, draws=5, seed=4)["sets"] != c["sets"]


def test_control_takes_other_layers_when_the_induction_layer_has_too_few():
    c = control([(1, 0), (1, 1), (1, 2)], prev={(0, 0)})
    assert c["choice"] == "other_layers" and c["pool"] == [(0, 1), (0, 2), (0, 3), (1, 3)]
    assert len(c["sets"]) == 4 and c["exhaustive"] and "any layer" in c["how"]


def test_control_with_too_few_heads_outside_the_circuit_never_takes_circuit_heads():
    # the default run's shape: every layer-1 head is an induction head, one layer-0 head a previous-token head
    c = control([(1, 0), (1, 1), (1, 2), (1, 3)], prev={(0, 2)})
    assert c["choice"] == "fewer_heads" and c["sets"] == [[(0, 0), (0, 1), (0, 3)]] and c["n_heads"] == 3
    assert "only 3 heads" in c["how"] and "fewer than the 4 induction heads" in c["how"]


def test_no_control_when_every_head_is_in_the_circuit_or_nothing_is_named():
    c = control([(1, 0), (1, 1)], prev={(0, 0), (0, 1)}, n_heads=2)
    assert c["choice"] == "none" and c["sets"] == [] and c["n_heads"] == 0
    assert "every head is an induction or previous-token head" in c["how"]
    assert control([], prev={(0, 0)})["choice"] == "none"


def test_control_sets_never_hold_circuit_heads_and_match_the_count_when_they_can():
    rng = random.Random(0)
    for _ in range(200):
        n_layers, n_heads = rng.randint(1, 3), rng.randint(1, 6)
        heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
        named = rng.sample(heads, rng.randint(0, len(heads)))
        prev = set(rng.sample(heads, rng.randint(0, len(heads)))) - set(named)
        c = control(named, prev, n_layers, n_heads, draws=4, seed=rng.randint(0, 99))
        outside = [h for h in heads if h not in named and h not in prev]
        assert all(not set(s) & (set(named) | prev) for s in c["sets"])
        assert len({tuple(s) for s in c["sets"]}) == len(c["sets"]) <= 4
        assert all(len(s) == min(len(named), len(outside)) for s in c["sets"])
        assert bool(c["sets"]) == bool(named and outside)


def test_ablation_effects_cover_every_head_and_nothing_ablated_changes_nothing():
    model, batch = tiny_model(), TASK.sample(32, torch.Generator().manual_seed(1))
    nothing = control([], prev=set(), n_heads=2)
    for kind in ABLATION_KINDS:
        ab = ablation_effects(model, batch, [], nothing, kind=kind)
        assert ab["kind"] == kind and ab["ablated_repeated_loss"] == ab["clean_repeated_loss"]
        assert ab["control"]["repeated_loss"] is None and ab["control"]["draws"] == []
        assert [(h["layer"], h["head"]) for h in ab["per_head"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    c = control([(1, 0)], prev={(0, 1)}, n_heads=2)  # the control: L1H1, then L0H0
    ab = ablation_effects(model, batch, [(1, 0)], c, kind="mean")
    assert ab["heads"] == [{"layer": 1, "head": 0}]
    assert ab["ablated_repeated_loss"] == ab["per_head"][2]["repeated_loss"]
    ctl = ab["control"]
    assert [d["heads"] for d in ctl["draws"]] == [[{"layer": 1, "head": 1}]]
    assert ctl["repeated_loss"] == ctl["draws"][0]["repeated_loss"] == ab["per_head"][3]["repeated_loss"]
    assert ctl["repeated_loss_min"] == ctl["repeated_loss_max"] and ctl["repeated_loss_std"] == 0.0
    zero = ablation_effects(model, batch, [(1, 0)], c, kind="zero")
    assert zero["ablated_repeated_loss"] != ab["ablated_repeated_loss"]  # the two kinds remove different things


def test_mean_ablation_on_a_batch_of_one_repeated_sequence_changes_nothing():
    """Every sequence alike: each head's mean output is its output, so writing the mean in is no change."""
    model = tiny_model()
    tokens = TASK.sample(1, torch.Generator().manual_seed(3)).tokens.repeat(6, 1)  # (6, T)
    with torch.no_grad():
        clean = model(tokens)
        means = head_means(model, tokens)
        assert sorted(means) == [0, 1] and means[0].shape == (24, 2, 8)  # (T, n_heads, d_head)
        with mean_ablate(model, [(0, 0), (1, 1)], means):
            same = model(tokens)
        with zero_ablate(model, [(0, 0), (1, 1)]):
            zeroed = model(tokens)
        other = TASK.sample(6, torch.Generator().manual_seed(4)).tokens
        with mean_ablate(model, [(0, 0)], means):
            moved = model(other)
    assert torch.allclose(same, clean, atol=1e-5) and not torch.allclose(zeroed, clean, atol=1e-3)
    assert not torch.allclose(moved, model(other), atol=1e-4)


def test_mean_ablation_needs_means_as_long_as_the_input():
    model = tiny_model()
    tokens = TASK.sample(4, torch.Generator().manual_seed(5)).tokens
    means = head_means(model, tokens[:, :10])
    with pytest.raises(ValueError, match="10 positions|24 positions"), torch.no_grad(), \
            mean_ablate(model, [(0, 0)], means):
        model(tokens)


def summary(named_rise: float, control_rises: list[float], clean: float = 0.3) -> dict:
    """An "ablation" summary as `ablation_effects` writes it, built by hand."""
    reps = [clean + r for r in control_rises]
    return {"kind": "mean", "heads": [{"layer": 1, "head": h} for h in range(4)], "clean_repeated_loss": clean,
            "ablated_repeated_loss": clean + named_rise,
            "control": {"choice": "same_layers" if reps else "none", "how": "every head is an induction or "
                        "previous-token head, so no head is left to ablate as a control", "n_heads": 4 if reps else 0,
                        "draws": [{"heads": [], "repeated_loss": r} for r in reps],
                        "repeated_loss": sum(reps) / len(reps) if reps else None,
                        "repeated_loss_min": min(reps, default=None), "repeated_loss_max": max(reps, default=None)}}


def test_control_check_passes_on_a_small_control_effect_with_both_numbers():
    name, passed, detail = control_check("2L", summary(4.48, [0.1, 0.2, 0.33]))
    assert passed and "1/3" in name
    assert detail.startswith("control +0.21 vs induction heads +4.48 nats (4.7%)") and "mean of 3 sets" in detail
    assert "+0.10 to +0.33" in detail


def test_control_check_fails_when_the_control_hurts_as_much():
    _, passed, detail = control_check("2L", summary(4.48, [4.15]))
    assert not passed and "control +4.15 vs induction heads +4.48 nats (92.6%)" in detail
    assert not control_check("2L", summary(3.0, [1.01]))[1]  # just over a third
    assert control_check("2L", summary(3.0, [0.99]))[1]


def test_control_check_fails_without_a_control_or_without_an_induction_effect():
    _, passed, detail = control_check("2L", summary(4.48, []))
    assert not passed and detail.startswith("no control: every head is an induction or previous-token head")
    _, passed, detail = control_check("2L", summary(-0.2, [-0.3]))
    assert not passed and "does not raise it" in detail


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


def test_the_report_explains_the_control_with_both_numbers():
    data = induction_report_data()
    analysis = data["config"]["analysis"]
    view = _ablation_view(data["models"]["2L"], analysis)
    names = [r["name"] for r in view["rows"]]
    assert names == ["clean model", "induction heads ablated", "control heads ablated"]
    control = view["rows"][2]
    assert control["heads"] == "L1H1, L1H3" and "neither induction nor previous-token" in control["what"]
    assert "highest previous-token score among them 0.05 (L1H1; heads from 0.40" in control["what"]
    assert "+0.07 nats, 2.0% of the +3.45 nats" in view["verdict"]
    roles = {r["name"]: r["role"] for r in view["per_head"]}
    assert roles["L1H2"] == "induction" and roles["L0H1"] == "previous token" and roles["L1H3"] == "control"
    # no control: said so, not hidden
    m = copy.deepcopy(data["models"]["2L"])
    m["summary"]["ablation"]["control"] |= {"choice": "none", "pool": [], "draws": [], "repeated_loss": None,
                                            "first_loss": None, "how": "every head is an induction or previous-token "
                                            "head, so no head is left to ablate as a control"}
    view = _ablation_view(m, analysis)
    assert view["rows"][2]["heads"] == "none" and view["rows"][2]["what"].startswith("every head is")
    assert view["verdict"].startswith("No control could be ablated")
