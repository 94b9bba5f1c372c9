"""interpret/attribution.py: Captum attribution on input embeddings (tiny HF models, our Transformer) and on
images (a tiny digits classifier). Each result is checked against a direct Captum call written here, against
integrated gradients' completeness, and gradient x input against autograd by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import (
    InputXGradient,
    IntegratedGradients,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Saliency,
)

from emergelab.errors import ConfigError
from emergelab.interpret.attribution import attribute_image, attribute_tokens
from emergelab.models.hf import load_hf_model
from emergelab.models.som import SOM
from emergelab.models.som_attention import SOMAttentionNet
from emergelab.models.transformer import Transformer, TransformerConfig
from tests.fixtures.hf_models import byte_bpe_lm, tiny_family_model

TEXTS = ["the cat sat on the mat", "a dog ran"]


@pytest.fixture(scope="module")
def tiny_lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("attr")
    return {fam: load_hf_model(tiny_family_model(root / fam, fam)) for fam in ("gpt2", "llama")}


@pytest.fixture(scope="module")
def ours():
    cfg = TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=16, d_vocab=50, layernorm=True)
    return Transformer(cfg, seed=0).eval()


def _ids(lm, text):
    return torch.tensor([lm.tokenizer(text)["input_ids"]])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_ig_equals_captum_layer_integrated_gradients(tiny_lms, family):
    """A token-id baseline: the same integral as Captum's LayerIntegratedGradients on the embedding module."""
    lm = tiny_lms[family]
    ids = _ids(lm, TEXTS[0])
    ours_ = attribute_tokens(lm, ids, target="mat", baseline=2, keep_first=False, n_steps=24)
    tok = lm.tokenizer.convert_tokens_to_ids("mat")
    lig = LayerIntegratedGradients(lambda x: lm.model(input_ids=x).logits[:, -1, tok], lm.model.get_input_embeddings())
    ref, delta = lig.attribute(ids, baselines=torch.full_like(ids, 2), n_steps=24, return_convergence_delta=True)
    torch.testing.assert_close(ours_.attributions, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_.scores, ref.sum(-1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_.delta, delta, rtol=1e-3, atol=1e-4)
    assert ours_.target_ids.tolist() == [tok] and ours_.target_tokens == ["mat"]


def test_ig_zero_and_saliency_equal_captum_on_inputs_embeds(tiny_lms):
    lm = tiny_lms["gpt2"]
    ids = _ids(lm, TEXTS[0])
    tok = 7
    embeds = lm.model.get_input_embeddings()(ids).detach()

    def f(e):
        return lm.model(inputs_embeds=e).logits[:, -1, tok]

    ref = IntegratedGradients(f).attribute(embeds, baselines=torch.zeros_like(embeds), n_steps=16)
    got = attribute_tokens(lm, ids, target=tok, baseline="zero", keep_first=False, n_steps=16)
    ref_kept = IntegratedGradients(f).attribute(embeds, baselines=torch.cat([embeds[:, :1], 0 * embeds[:, 1:]], 1),
                                                n_steps=16)
    kept = attribute_tokens(lm, ids, target=tok, baseline="zero", n_steps=16)  # keep_first: position 0 stays
    torch.testing.assert_close(kept.attributions, ref_kept, rtol=1e-4, atol=1e-5)
    assert kept.scores[0, 0] == 0 and got.scores[0, 0] != 0
    torch.testing.assert_close(got.attributions, ref, rtol=1e-4, atol=1e-5)
    ref_s = Saliency(f).attribute(embeds.clone().requires_grad_(), abs=True)
    got_s = attribute_tokens(lm, ids, target=tok, method="saliency")
    torch.testing.assert_close(got_s.attributions, ref_s)
    assert got_s.delta is None and got_s.baseline_logits is None


def test_gradient_x_input_equals_captum_layer_gradient_x_activation(tiny_lms):
    lm = tiny_lms["llama"]
    ids = _ids(lm, TEXTS[1])
    out = attribute_tokens(lm, ids, method="gradient_x_input")  # target: the model's own prediction
    tok = int(lm.model(input_ids=ids).logits[0, -1].argmax())
    ref = LayerGradientXActivation(lambda x: lm.model(input_ids=x).logits[:, -1, tok],
                                   lm.model.get_input_embeddings()).attribute(ids)
    torch.testing.assert_close(out.attributions, ref)
    assert out.target_ids.tolist() == [tok]


def test_gradient_x_input_by_hand_on_our_transformer(ours):
    ids = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(0))
    got = attribute_tokens(ours, ids, method="gradient_x_input", target=11, position=4)
    e = ours.embed(ids).detach().requires_grad_(True)
    logits = ours.unembed(ours.forward_embeds(e))  # (B, T, V)
    logits[:, 4, 11].sum().backward()
    torch.testing.assert_close(got.attributions, e * e.grad)
    assert got.scores[:, 5:].abs().max() == 0  # causal: positions after the target position play no part
    assert got.tokens[0] == [str(int(i)) for i in ids[0]]  # no tokenizer: ids as strings


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_ig_completeness_with_the_default_baseline(tiny_lms, family):
    out = attribute_tokens(tiny_lms[family], TEXTS, n_steps=64)
    gap = out.target_logits - out.baseline_logits
    assert gap.abs().min() > 0.1  # a real difference to explain
    torch.testing.assert_close(out.scores.sum(1), gap, atol=1e-3, rtol=1e-3)
    assert out.delta.abs().max() < 1e-3


def test_ig_completeness_on_our_transformer(ours):
    ids = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(1))
    out = attribute_tokens(ours, ids, n_steps=32)
    torch.testing.assert_close(out.scores.sum(1), out.target_logits - out.baseline_logits, atol=1e-3, rtol=1e-3)
    assert out.delta.abs().max() < 1e-3
    assert out.target_positions.tolist() == [11] * 4
    torch.testing.assert_close(out.target_logits, ours(ids)[torch.arange(4), -1, out.target_ids])


def test_padded_batch_equals_each_text_alone(tiny_lms):
    lm = tiny_lms["gpt2"]
    both = attribute_tokens(lm, TEXTS, n_steps=16)
    assert both.mask.sum(1).tolist() == [6, 3] and both.target_positions.tolist() == [5, 2]
    for b, text in enumerate(TEXTS):
        alone = attribute_tokens(lm, text, n_steps=16)
        n = alone.scores.shape[1]
        torch.testing.assert_close(both.scores[b, :n], alone.scores[0], rtol=1e-4, atol=1e-5)
        assert both.tokens[b] == alone.tokens[0] and both.target_ids[b] == alone.target_ids[0]
    assert both.scores[1, 3:].abs().max() == 0


def test_internal_batch_size_bounds_the_forward_and_keeps_the_result(tiny_lms):
    lm = tiny_lms["gpt2"]
    rows = []
    def record(_m, _a, kw):  # rows of every forward that builds a graph (the no-grad ones see just the B inputs)
        if torch.is_grad_enabled():
            rows.append(kw["input_ids"].shape[0])

    handle = lm.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        full = attribute_tokens(lm, TEXTS * 2, n_steps=20)
        assert max(rows) == 4 * 20
        rows.clear()
        small = attribute_tokens(lm, TEXTS * 2, n_steps=20, internal_batch_size=3)  # < B: chunks of examples
    finally:
        handle.remove()
    assert max(rows) <= 3
    torch.testing.assert_close(small.attributions, full.attributions, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(small.delta, full.delta, rtol=1e-2, atol=1e-5)


def test_parameters_keep_their_requires_grad_and_the_model_its_mode(ours):
    ours.pos_embed.weight.requires_grad_(False)
    ours.train()
    try:
        attribute_tokens(ours, torch.zeros(1, 4, dtype=torch.long), n_steps=4)
        assert not ours.pos_embed.weight.requires_grad and ours.embed.weight.requires_grad
        assert ours.training and all(m.training for m in ours.modules())
    finally:
        ours.pos_embed.weight.requires_grad_(True)
        ours.eval()


def test_byte_bpe_target_string(tmp_path):
    lm = load_hf_model(byte_bpe_lm(tmp_path / "bpe", ["The capital of France is Paris."] * 20, vocab_size=300))
    out = attribute_tokens(lm, "The capital of France is", target=" Paris", n_steps=8)
    assert out.target_tokens == ["ĠParis"] and out.scores.shape == (1, len(out.tokens[0]))


def test_bad_inputs_raise_one_clear_line(tiny_lms, tmp_path):
    lm = tiny_lms["gpt2"]
    with pytest.raises(ConfigError, match="Did you mean: saliency"):
        attribute_tokens(lm, TEXTS, method="salency")
    with pytest.raises(ConfigError, match="not one token"):
        attribute_tokens(lm, TEXTS, target="cat dog")
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        attribute_tokens(lm, TEXTS, target=10_000)
    with pytest.raises(ConfigError, match="position 7 is outside row 0"):
        attribute_tokens(lm, TEXTS, position=7)
    with pytest.raises(ConfigError, match="n_steps"):
        attribute_tokens(lm, TEXTS, n_steps=0)
    with pytest.raises(ConfigError, match="of equal lengths"):
        attribute_tokens(lm, [[3, 4, 5], [3]])
    with pytest.raises(ConfigError, match="need a tokenizer"):
        attribute_tokens(lm.model, "the cat")
    bert = load_hf_model(tiny_family_model(tmp_path / "bert", "bert"), kind="base")
    with pytest.raises(ConfigError, match=r"returns logits \(B, T, V\)"):
        attribute_tokens(bert, "the cat")


# --- images: a tiny digits classifier ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_net():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)[:300]
    som = SOM(3, 3, n_iter=5, seed=0).fit(X)
    net = SOMAttentionNet.from_som(som, X, n_classes=10, unit_dim=4, n_queries=2, seed=0).eval()
    return net, torch.from_numpy(X[:6])


def test_image_ig_equals_captum_and_is_complete(digits_net):
    net, x = digits_net
    out = attribute_image(net, x, n_steps=32, image_shape=(8, 8))
    targets = net(x).argmax(-1)
    ref, delta = IntegratedGradients(net).attribute(x, baselines=torch.zeros_like(x), target=targets, n_steps=32,
                                                    return_convergence_delta=True)
    torch.testing.assert_close(out.attributions, ref, rtol=1e-4, atol=1e-5)
    assert out.maps.shape == (6, 8, 8) and out.targets.tolist() == targets.tolist()
    torch.testing.assert_close(out.attributions.sum(1), out.target_logits - out.baseline_logits, atol=1e-3,
                               rtol=1e-3)
    assert out.delta.abs().max() < 1e-3 and delta.abs().max() < 1e-3


def test_image_saliency_and_gradient_x_input(digits_net):
    net, x = digits_net
    sal = attribute_image(net, x, method="saliency", target=3)
    torch.testing.assert_close(sal.attributions, Saliency(net).attribute(x.clone().requires_grad_(), target=3))
    gxi = attribute_image(net, x, method="gradient_x_input", target=[3] * 6, internal_batch_size=4)
    torch.testing.assert_close(gxi.attributions, InputXGradient(net).attribute(x.clone().requires_grad_(), target=3))
    xg = x.clone().requires_grad_(True)
    net(xg)[:, 3].sum().backward()
    torch.testing.assert_close(gxi.attributions, x * xg.grad)
    with pytest.raises(ConfigError, match="image_shape"):
        attribute_image(net, x, method="saliency", image_shape=(7, 7))
    with pytest.raises(ConfigError, match="names 2 classes for 6 inputs"):
        attribute_image(net, x, method="saliency", target=[1, 2])
    with pytest.raises(ConfigError, match="target class"):
        attribute_image(net, x, method="saliency", target=10)
