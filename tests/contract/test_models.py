"""Every registered model gets these tests by registering: it provides `tiny(seed)`,
`example_batch(batch_size, generator)` and `loss(batch)`; a model whose batch holds more than its inputs
(a classifier's labels) also provides `inputs(batch)`, the arguments of its forward."""

import importlib
import pkgutil

import pytest
import torch

import emergelab.models
from emergelab.registry import models
from emergelab.train import TrainConfig, load_model, save_model, train

for _m in pkgutil.iter_modules(emergelab.models.__path__):  # each model module registers its family on import
    importlib.import_module(f"emergelab.models.{_m.name}")

NAMES = models.names()


def forward(model, batch):
    """model(batch), or model(*model.inputs(batch)) for models whose batch also holds targets."""
    return model(*model.inputs(batch)) if hasattr(model, "inputs") else model(batch)


def test_the_zoo_is_not_empty():
    assert "transformer" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_different_seed_differs(name):
    cls = models.get(name)
    batch = cls.tiny(0).example_batch(4, torch.Generator().manual_seed(0))
    a, b, c = cls.tiny(0), cls.tiny(0), cls.tiny(1)
    with torch.no_grad():
        out_a, out_b, out_c = forward(a, batch), forward(b, batch), forward(c, batch)
    assert torch.equal(out_a, out_b)
    assert not torch.allclose(out_a, out_c)
    assert out_a.shape[0] == 4 and torch.isfinite(out_a).all()


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip(name, tmp_path):
    cls = models.get(name)
    model = cls.tiny(3)
    batch = model.example_batch(2, torch.Generator().manual_seed(1))
    path = save_model(tmp_path / "w.safetensors", model)
    other = load_model(path, cls.tiny(4))
    with torch.no_grad():
        assert torch.equal(forward(model, batch), forward(other, batch))


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_after_a_few_steps(name):
    cls = models.get(name)
    model = cls.tiny(0)
    probe = model.example_batch(16, torch.Generator().manual_seed(123))
    with torch.no_grad():
        before = model.loss(probe).item()
    cfg = TrainConfig(steps=30, lr=1e-2, warmup_steps=0, log_every=10, checkpoint_every=10)
    train(model, lambda m, b: m.loss(b), lambda s, g: model.example_batch(16, g), cfg, seed=0)
    with torch.no_grad():
        after = model.loss(probe).item()
    assert after < 0.7 * before
