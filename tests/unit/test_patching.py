"""Activation and attribution patching on tiny random models of every mapped transformers family and on our
Transformer: clean == corrupted gives zero effect; patching the last block's output at the metric's position
restores the clean metric; attribution equals exact patching where the metric is linear in the patched
activation and correlates with it on near-linear tiny models; labels; batching; errors; the heatmap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from emergelab.errors import ConfigError
from emergelab.interpret.patching import GRIDS, activation_patching, attribution_patching
from emergelab.models.hf import load_hf_model
from emergelab.models.transformer import Transformer, TransformerConfig
from emergelab.report.figures import fig_to_data_uri
from emergelab.report.patching_figures import patching_comparison_figure, patching_figure, token_label
from tests.fixtures import hf_models

FAMILIES = ("gpt2", "llama", "qwen2", "gpt_neox", "gpt_neox_serial", "bert")
DECODERS = ("gpt2", "llama", "gpt_neox")
B, HALF = 3, 5
T = 2 * HALF


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf-patching")
    folders = {f: hf_models.tiny_family_model(root / f, f) for f in hf_models.TINY_FAMILIES}
    folders["gpt_neox_serial"] = hf_models.tiny_family_model(root / "serial", "gpt_neox", use_parallel_residual=False)
    for f in DECODERS:  # small weights: nearly linear models, where the first-order estimate should hold
        folders[f"{f}_small"] = hf_models.tiny_family_model(root / f"{f}-small", f, initializer_range=0.02)
    return {f: load_hf_model(path, kind="base" if f == "bert" else "causal") for f, path in folders.items()}


def induction_pair(seed: int = 0, vocab: int = 21) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """clean: a random half repeated; corrupted: another first half, the same second half; the answers."""
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(3, vocab, (B, HALF), generator=g)
    clean = torch.cat([half, half], 1)
    corrupted = torch.cat([torch.randint(3, vocab, (B, HALF), generator=g), half], 1)
    return clean, corrupted, clean[:, HALF + 1:]


def repeat_metric(answers: torch.Tensor):
    """The mean logit of the correct next token on the repeat (positions HALF .. T-2)."""
    return lambda logits: logits[:, HALF:-1].gather(-1, answers[..., None]).mean()


def last_position_metric(logits: torch.Tensor) -> torch.Tensor:
    """Depends on the last position only: a few of its outputs (logits, or BERT's normalized last hidden state,
    whose sum of squares would be a constant)."""
    return logits[:, -1, :3].pow(2).sum(-1).mean()


@pytest.mark.parametrize("family", FAMILIES)
def test_clean_equal_to_corrupted_gives_zero_effect(lms, family):
    clean, _, answers = induction_pair(1)
    metric = last_position_metric if family == "bert" else repeat_metric(answers)
    for what in ("resid_pre", "heads"):
        for run in (activation_patching, attribution_patching):
            r = run(lms[family], clean, clean, metric, what=what)
            assert r.clean == pytest.approx(r.corrupted, abs=1e-6)
            assert r.effect.abs().max() <= 1e-5, (what, run.__name__)
            assert r.normalized.abs().max() == 0  # the ratio is undefined: written as 0


@pytest.mark.parametrize("family", FAMILIES)
def test_patching_the_last_blocks_output_at_the_metrics_position_restores_the_clean_metric(lms, family):
    model = lms[family]
    clean, corrupted, _ = induction_pair(2)
    r = activation_patching(model, clean, corrupted, last_position_metric, what="resid_post")
    n_layers = model.model.config.num_hidden_layers
    assert r.effect.shape == (n_layers, T) and r.method == "exact"
    assert abs(r.clean - r.corrupted) > 1e-3
    assert r.normalized[-1, -1].item() == pytest.approx(1.0, abs=1e-4)
    assert r.effect[-1, :-1].abs().max() <= 1e-5  # the last block's other positions do not reach it


def our_transformer(d_mlp: int) -> Transformer:
    return Transformer(TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=d_mlp, n_ctx=16, d_vocab=21,
                                         layernorm=False), seed=0)


def test_attribution_equals_exact_patching_where_the_metric_is_linear_in_the_activation():
    """Our Transformer without LayerNorm: the logits are linear in the last block's output and its MLP output,
    and, without an MLP, in its heads' z; there the first-order estimate is exact (and not on block 0's rows)."""
    clean, corrupted, answers = induction_pair(3)
    metric = repeat_metric(answers)
    for d_mlp, what in ((64, "resid_post"), (64, "mlp_out"), (0, "heads")):
        model = our_transformer(d_mlp)
        exact = activation_patching(model, clean, corrupted, metric, what=what)
        approx = attribution_patching(model, clean, corrupted, metric, what=what)
        assert approx.clean == pytest.approx(exact.clean, abs=1e-6)
        assert approx.corrupted == pytest.approx(exact.corrupted, abs=1e-5)
        assert exact.effect[-1].abs().max() > 1e-3
        torch.testing.assert_close(approx.effect[-1], exact.effect[-1], atol=2e-5, rtol=1e-4)
        integrated = attribution_patching(model, clean, corrupted, metric, what=what, steps=3)  # a constant
        torch.testing.assert_close(integrated.effect[-1], exact.effect[-1], atol=2e-5, rtol=1e-4)  # gradient
        assert integrated.forwards == 4 and integrated.corrupted == pytest.approx(approx.corrupted, abs=1e-6)
        assert exact.rows == [f"blocks.{i}.{GRIDS[what]}" for i in range(2)]
        if what == "resid_post":  # block 0's output reaches the logits through block 1's attention: an estimate
            assert (approx.effect[0] - exact.effect[0]).abs().max() > 1e-4


@pytest.mark.parametrize("family", DECODERS)
def test_attribution_correlates_with_exact_patching_on_a_near_linear_tiny_model(lms, family):
    clean, corrupted, answers = induction_pair(4)
    metric = repeat_metric(answers)
    for what, floor in (("heads", 0.95), ("resid_pre", 0.6)):
        exact = activation_patching(lms[f"{family}_small"], clean, corrupted, metric, what=what)
        approx = attribution_patching(lms[f"{family}_small"], clean, corrupted, metric, what=what)
        r = np.corrcoef(exact.effect.ravel().numpy(), approx.effect.ravel().numpy())[0, 1]
        assert r >= floor, (what, r)
        assert approx.forwards == 2 and exact.forwards > approx.forwards


def test_batching_over_positions_does_not_change_the_grid(lms):
    model = lms["llama"]
    clean, corrupted, answers = induction_pair(5)
    one = activation_patching(model, clean, corrupted, repeat_metric(answers), batch_size=1)
    three = activation_patching(model, clean, corrupted, repeat_metric(answers), batch_size=3)
    default = activation_patching(model, clean, corrupted, repeat_metric(answers))
    assert one.forwards == 2 + 2 * T and three.forwards == 2 + 2 * 4 and default.forwards == 2 + 2
    torch.testing.assert_close(three.effect, one.effect, atol=1e-5, rtol=0)
    torch.testing.assert_close(default.effect, one.effect, atol=1e-5, rtol=0)
    heads = activation_patching(model, clean, corrupted, repeat_metric(answers), what="heads", batch_size=3)
    assert heads.effect.shape == (2, 4) and heads.cols == ["H0", "H1", "H2", "H3"]


def test_labels_are_the_tokens_and_the_layers_names(lms):
    lm = lms["gpt2"]
    clean, corrupt = "the cat sat on the mat", "the dog sat on the log"
    target = lm.tokenizer.convert_tokens_to_ids("mat")
    r = attribution_patching(lm, clean, corrupt, lambda logits: logits[0, -2, target], what="resid_pre")
    assert r.cols == ["the", "cat", "sat", "on", "the", "mat"]
    assert r.corrupted_cols == ["the", "dog", "sat", "on", "the", "log"]
    assert r.rows == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"] and r.layers == ["L0", "L1"]
    # causal: what enters block 0 after the metric's position cannot move it
    assert r.effect[:, -1].abs().max() == 0


def test_clear_errors(lms):
    lm = lms["llama"]
    clean, corrupted, answers = induction_pair(6)
    metric = repeat_metric(answers)
    with pytest.raises(ConfigError, match=r"same shape \(equal length\): \(3, 10\) vs \(3, 9\)"):
        activation_patching(lm, clean, corrupted[:, :-1], metric)
    with pytest.raises(ConfigError, match="Unknown patching grid 'resid'.*resid_pre"):
        attribution_patching(lm, clean, corrupted, metric, what="resid")
    with pytest.raises(ConfigError, match="scalar tensor"):
        activation_patching(lm, clean, corrupted, lambda logits: logits[:, -1, 0])
    with pytest.raises(ConfigError, match="scalar tensor"):
        attribution_patching(lm, clean, corrupted, lambda logits: logits[:, -1, 0])
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        attribution_patching(lm, clean, corrupted, metric, steps=0)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        activation_patching(lm, clean, corrupted, metric, batch_size=-2)
    attn_only = Transformer(TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=0, n_ctx=16, d_vocab=21),
                            seed=0)
    with pytest.raises(ConfigError, match="no activation 'blocks.0.hook_mlp_out'|Unknown activation name"):
        activation_patching(attn_only, clean, corrupted, metric, what="mlp_out")


def test_heatmaps_are_labelled_with_tokens_and_layers(lms):
    lm = lms["gpt2"]
    clean, corrupt = "the cat sat on the mat", "the dog sat on the log"
    target = lm.tokenizer.convert_tokens_to_ids("mat")
    metric = lambda logits: logits[0, -2, target]  # noqa: E731
    exact = activation_patching(lm, clean, corrupt, metric)
    approx = attribution_patching(lm, clean, corrupt, metric)
    fig = patching_figure(exact)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [token_label(t, i) for i, t in enumerate(exact.cols)]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["L0", "L1"]
    red = [t.get_text() for t in ax.get_xticklabels() if t.get_color() == "#c92a2a"]
    assert red == ["cat·1", "mat·5"]  # the positions the corruption changed
    assert fig_to_data_uri(fig).startswith("data:image/png;base64,")
    both = patching_comparison_figure(exact, approx)
    assert "Pearson r = " in both.axes[2].get_title()
    assert token_label("Ġthe\n", 3) == "␣the↵·3"
    with pytest.raises(ValueError, match="'normalized' or 'effect'"):
        patching_figure(exact, value="raw")
