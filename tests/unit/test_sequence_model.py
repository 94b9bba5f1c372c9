"""VectorSequenceModel (models/sequence.py): read-out positions and shapes, the seeded init that stored runs
depend on, checkpoint names."""

import pytest
import torch

from emergelab.models.sequence import VectorSequenceModel, vector_config
from emergelab.models.transformer import Transformer

CFG = vector_config(9, n_layers=2, d_model=16, n_heads=2, d_mlp=32, layernorm=True)


def test_read_at_even_and_last():
    seq = torch.randn(4, 9, 3, generator=torch.Generator().manual_seed(0))
    even = VectorSequenceModel(3, 2, CFG, read_at="even", seed=0)
    last = VectorSequenceModel(3, 2, CFG, read_at="last", seed=0)  # same weights: only the read-out moves
    with torch.no_grad():
        out_even, out_last = even(seq), last(seq)
        resid = even.transformer.forward_embeds(even.read_in(seq))
    assert out_even.shape == (4, 5, 2) and out_last.shape == (4, 2)
    assert torch.allclose(out_even, even.read_out(resid[:, 0::2]))
    assert torch.allclose(out_last, out_even[:, -1])  # T = 9: the last position is an even one
    with pytest.raises(ValueError, match="read_at"):
        VectorSequenceModel(3, 2, CFG, read_at="middle")


def test_seeded_init_is_the_transformer_then_normal_read_in_and_out_from_seed_plus_one():
    """Stored runs' numbers depend on this order of random draws."""
    model = VectorSequenceModel(3, 2, CFG, seed=7)
    ref = Transformer(CFG, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(model.transformer.state_dict().values(),
                                                 ref.state_dict().values(), strict=True))
    g = torch.Generator().manual_seed(8)
    w_in = torch.empty(16, 3).normal_(0.0, 1 / 3**0.5, generator=g)
    w_out = torch.empty(2, 16).normal_(0.0, 1 / 16**0.5, generator=g)
    assert torch.equal(model.read_in.weight, w_in) and torch.equal(model.read_out.weight, w_out)
    assert not model.read_in.bias.any() and not model.read_out.bias.any()


def test_checkpoint_names_and_hook_names():
    model = VectorSequenceModel(3, 1, CFG, seed=0)
    tops = {name.split(".")[0] for name in model.state_dict()}
    assert tops == {"read_in", "transformer", "read_out"}
    assert "transformer.blocks.1.attn.hook_pattern" in model.hook_names()
    assert model.cfg is model.transformer.cfg and CFG.d_vocab == 1 and CFG.tie_embeddings
