import pytest
import torch

from emergelab.errors import StoreError, TrainingDiverged
from emergelab.models.transformer import Transformer, TransformerConfig
from emergelab.train import Callback, TrainConfig, load_checkpoint, load_model, save_model, train
from emergelab.train.checkpoint import list_checkpoints
from emergelab.train.schedule import lr_at


def tiny_model(seed=0):
    return Transformer(TransformerConfig(n_layers=1, d_model=16, n_heads=2, n_ctx=12, d_vocab=11), seed=seed)


def batch_fn(step, g):
    """Counting sequences mod 11 from a random start: learnable, so the loss can fall."""
    start = torch.randint(0, 11, (8, 1), generator=g)
    return (start + torch.arange(12)) % 11


def loss_fn(model, batch):
    return model.loss(batch)


class Recorder(Callback):
    def __init__(self):
        self.logs = []

    def on_log(self, state):
        self.logs.append((state.step, state.window_loss, state.lr))


def test_same_seed_same_metrics_bitwise_and_loss_falls():
    cfg = TrainConfig(steps=60, lr=3e-3, warmup_steps=5, log_every=20, checkpoint_every=20)
    runs = []
    for _ in range(2):
        rec = Recorder()
        train(tiny_model(), loss_fn, batch_fn, cfg, seed=1, callbacks=[rec])
        runs.append(rec.logs)
    assert runs[0] == runs[1]
    assert runs[0][0][0] == 0 and [s for s, _, _ in runs[0]] == [0, 20, 40, 60]
    assert runs[0][-1][1] < runs[0][1][1]


def test_resume_from_a_checkpoint_ends_bitwise_identical(tmp_path):
    cfg = TrainConfig(steps=60, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=20, keep_checkpoints=5)
    full = Recorder()
    m_full = tiny_model()
    train(m_full, loss_fn, batch_fn, cfg, seed=2, callbacks=[full], checkpoint_dir=tmp_path / "a")

    # stop at step 50 (last checkpoint: 40) by raising from a callback, as an interrupt would
    class Stop(Callback):
        def on_log(self, state):
            if state.step == 50:
                raise KeyboardInterrupt

    part = Recorder()
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), loss_fn, batch_fn, cfg, seed=2, callbacks=[part, Stop()], checkpoint_dir=tmp_path / "b")
    assert [s for s, _ in list_checkpoints(tmp_path / "b")] == [20, 40]
    rest = Recorder()
    m_resumed = tiny_model(seed=99)  # weights come from the checkpoint
    state = train(m_resumed, loss_fn, batch_fn, cfg, seed=2, callbacks=[rest], checkpoint_dir=tmp_path / "b",
                  resume=True)
    assert state.resumed_from == 40
    assert rest.logs == full.logs[-2:]  # steps 50, 60: identical floats
    for (k, a), b in zip(m_full.state_dict().items(), m_resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_nan_loss_stops_with_a_clear_error_and_keeps_checkpoints(tmp_path):
    def exploding(model, batch):
        loss = model.loss(batch)
        return loss * float("nan") if exploding.calls >= 25 else loss

    exploding.calls = 0

    def counting(model, batch):
        exploding.calls += 1
        return exploding(model, batch)

    cfg = TrainConfig(steps=100, log_every=10, checkpoint_every=10)
    with pytest.raises(TrainingDiverged, match=r"Loss became nan at step 25 \(2L\)"):
        train(tiny_model(), counting, batch_fn, cfg, checkpoint_dir=tmp_path, label="2L")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 20]


def test_checkpoint_round_trip_and_corrupt_file(tmp_path):
    model = tiny_model(seed=5)
    path = save_model(tmp_path / "m.safetensors", model, extra={"note": "hi"})
    other = load_model(path, tiny_model(seed=6))
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
    assert load_checkpoint(path).extra == {"note": "hi"}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(StoreError, match="corrupt"):
        load_checkpoint(bad)
    wrong = Transformer(TransformerConfig(n_layers=2, d_model=16, n_heads=2, n_ctx=12, d_vocab=11))
    with pytest.raises(StoreError, match="does not fit"):
        load_model(path, wrong)


def test_schedules():
    kw = dict(lr=1.0, warmup_steps=10, total_steps=110)
    assert lr_at(0, schedule="constant", **kw) == 0.1
    assert lr_at(9, schedule="constant", **kw) == 1.0 and lr_at(100, schedule="constant", **kw) == 1.0
    assert lr_at(10, schedule="cosine", **kw) == 1.0
    assert abs(lr_at(110, schedule="cosine", min_lr_ratio=0.1, **kw) - 0.1) < 1e-9
