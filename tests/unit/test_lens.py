"""interpret/lens.py: the logit lens on tiny random causal LMs of every family (GPT-2, Llama and Qwen2 with
grouped-query attention, GPT-NeoX parallel and serial) and on our Transformer: at the last layer it is the
model's own output, at the others the final norm and unembedding of output_hidden_states; the target's rank and
probability; clear errors for a bad target; SmolLM2 (slow, where the converted folder exists)."""

from __future__ import annotations

import pytest
import torch

from emergelab.errors import ConfigError
from emergelab.interpret.lens import LogitLens, logit_lens, resolve_target, unembedding
from emergelab.interpret.tracing import trace
from emergelab.models.hf import load_hf_model
from emergelab.models.transformer import Transformer, TransformerConfig
from tests.fixtures import hf_models

CAUSAL = ("gpt2", "llama", "qwen2", "gpt_neox", "gpt_neox_serial")
B, T, V = 2, 7, 21


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf-lens")
    folders = {f: hf_models.tiny_family_model(root / f, f) for f in CAUSAL[:-1]}
    folders["gpt_neox_serial"] = hf_models.tiny_family_model(root / "serial", "gpt_neox", use_parallel_residual=False)
    folders["bert"] = hf_models.tiny_family_model(root / "bert", "bert")
    return {f: load_hf_model(p, kind="base" if f == "bert" else "causal") for f, p in folders.items()}


def ours(**overrides) -> Transformer:
    cfg = dict(n_layers=3, d_model=32, n_heads=4, d_mlp=32, n_ctx=16, d_vocab=V, layernorm=True) | overrides
    return Transformer(TransformerConfig(**cfg), seed=0)


def ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(3, V, (B, T), generator=torch.Generator().manual_seed(seed))


def check_against(lens: LogitLens, streams: list[torch.Tensor], logits: torch.Tensor, target: int, k: int):
    """Every row of the lens from `streams` (R x (B, T, V) logits computed independently); the last = `logits`."""
    torch.testing.assert_close(streams[-1], logits, atol=1e-5, rtol=0)
    assert lens.top_ids.shape == (len(streams), B, T, k)
    for r, row in enumerate(streams):
        probs = row.softmax(-1)
        top = probs.topk(k, dim=-1)
        torch.testing.assert_close(lens.top_probs[r], top.values, atol=1e-5, rtol=0)
        assert torch.equal(lens.top_ids[r], top.indices)
        torch.testing.assert_close(lens.target_prob[r], probs[..., target], atol=1e-5, rtol=0)
        order = probs.argsort(-1, descending=True)  # rank 1 = the most likely token
        assert torch.equal(lens.target_rank[r], (order == target).float().argmax(-1) + 1)


@pytest.mark.parametrize("family", CAUSAL)
def test_the_lens_is_the_models_output_at_the_last_layer_and_the_hidden_states_before(lms, family):
    lm, tokens, target = lms[family], ids(), 5
    with torch.no_grad():
        out = lm.model(tokens, output_hidden_states=True)
    head = unembedding(lm)
    n = lm.model.config.num_hidden_layers
    cache = trace(lm, tokens, names=[f"blocks.{n - 1}.hook_resid_post"])
    with torch.no_grad():
        # hidden_states[0 .. n-1] are the streams entering each block; the last one transformers returns is already
        # normalized, so the last row is read from the last block's resid_post
        streams = [head(h) for h in out.hidden_states[:n]] + [head(cache[f"blocks.{n - 1}.hook_resid_post"])]
    lens = logit_lens(lm, tokens, target=target, k=4)
    assert lens.names == ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(n)]
    check_against(lens, streams, out.logits, target, 4)
    assert lens.top_tokens[-1][0][0] == lm.tokenizer.batch_decode(lens.top_ids[-1, 0, 0, :, None].tolist())
    assert not torch.equal(lens.top_ids[0], lens.top_ids[-1])  # the layers do change the prediction


@pytest.mark.parametrize("overrides", [{}, {"tie_embeddings": True}, {"layernorm": False, "d_mlp": 0}])
def test_the_lens_on_our_transformer(overrides):
    model, tokens, target = ours(**overrides), ids(1), 9
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(3)]
    _, cache = model.run_with_cache(tokens, names=names)
    with torch.no_grad():
        logits = model(tokens)
        W_U = model.embed.weight.T if model.unembed is None else model.unembed.weight.T
        streams = [model.ln_final(cache[n]) @ W_U for n in names]  # the final norm and unembedding, by hand
    lens = logit_lens(model, tokens, target=target, k=3)
    check_against(lens, streams, logits, target, 3)
    assert lens.top_tokens is None and lens.input_tokens is None


def test_positions_text_and_the_first_layer_in_the_top_k(lms):
    lm = lms["llama"]
    lens = logit_lens(lm, "the cat sat on the", target="mat", positions=[-1, 0])
    full = logit_lens(lm, "the cat sat on the", target="mat")
    assert lens.positions == [4, 0] and lens.input_tokens == [["the", "cat", "sat", "on", "the"]]
    assert torch.equal(lens.top_ids, full.top_ids[:, :, [4, 0]])
    torch.testing.assert_close(lens.target_prob, full.target_prob[:, :, [4, 0]])
    assert lens.target_id == lm.tokenizer.convert_tokens_to_ids("mat")
    assert lens.labels == ["embed", "block 0", "block 1"]
    lens.target_rank = torch.tensor([9, 3, 1])[:, None, None]  # rows: embed, block 0, block 1
    assert lens.first_in_top(k=5, position=0) == 1 and lens.first_in_top(k=1, position=0) == 2
    lens.target_rank = torch.tensor([2, 9, 1])[:, None, None]  # in, out, in again: it entered at the last row
    assert lens.first_in_top(k=5, position=0) == 2
    lens.target_rank = torch.tensor([1, 1, 7])[:, None, None]
    assert lens.first_in_top(k=5, position=0) is None


def test_targets_resolve_to_one_token_or_fail_with_one_line(lms):
    lm = lms["gpt2"]
    assert resolve_target(lm, "dog", V) == lm.tokenizer.convert_tokens_to_ids("dog")
    assert resolve_target(lm, 4, V) == 4
    for target, match in [("Paris", "'Paris' is not in the model's vocabulary"),
                          ("cat dog", r"'cat dog' is 2 tokens for this tokenizer \('cat' \+ 'dog'\)"),
                          (V, "Target token id 21 is not in the vocabulary"), (-1, "not in the vocabulary"),
                          ("", "empty"), (2.5, "token string or a token id")]:
        with pytest.raises(ConfigError, match=match) as info:
            logit_lens(lm, ids(), target=target)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="no tokenizer: pass a token id"):
        logit_lens(ours(), ids(), target="dog")


def test_the_lens_refuses_what_it_cannot_read(lms):
    with pytest.raises(ConfigError, match="final norm and an unembedding"):
        logit_lens(lms["bert"], ids())
    with pytest.raises(ConfigError, match="positions must be integers from -7 to 6"):
        logit_lens(lms["gpt2"], ids(), positions=[7])
    with pytest.raises(ConfigError, match="k must be an integer from 1"):
        logit_lens(lms["gpt2"], ids(), k=0)


@pytest.mark.slow
def test_smollm2_puts_paris_first_for_the_capital_of_france(smollm2):
    lm = smollm2
    lens = logit_lens(lm, "The capital of France is", target=" Paris", positions=[-1])
    assert len(lens.names) == 31
    with torch.no_grad():
        logits = lm.model(**lm.tokenizer("The capital of France is", return_tensors="pt")).logits[0, -1]
    torch.testing.assert_close(lens.target_prob[-1, 0, 0], logits.softmax(-1)[lens.target_id], atol=1e-5, rtol=0)
    assert lens.target_rank[-1, 0, 0] == 1 and lens.top_tokens[-1][0][0][0] == " Paris"
    assert lens.target_rank[0, 0, 0] > 100  # the embedding alone does not predict it
