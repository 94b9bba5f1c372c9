import dataclasses

import pytest
import torch

from emergelab.devices import resolve_device
from emergelab.errors import ConfigError, StoreError, TrainingDiverged
from emergelab.models.transformer import Transformer, TransformerConfig
from emergelab.tensorfile import CorruptFileError, read_safetensors
from emergelab.train import Callback, TrainConfig, load_checkpoint, load_model, save_model, train
from emergelab.train.checkpoint import checkpoint_problem, list_checkpoints
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


# --- the device key -----------------------------------------------------------------------------------
def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_device_cpu_given_explicitly_is_bitwise_the_default(tmp_path):
    cfg = TrainConfig(steps=40, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=20)
    logs, finals = [], []
    for i, kw in enumerate([{}, {"device": "cpu"}, {"device": torch.device("cpu")}, {"device": " CPU "}]):
        rec, model = Recorder(), tiny_model()
        train(model, loss_fn, batch_fn, cfg, seed=4, callbacks=[rec], checkpoint_dir=tmp_path / str(i), **kw)
        logs.append(rec.logs)
        finals.append(weights(model))
    assert all(log == logs[0] for log in logs)
    for w in finals[1:]:
        assert all(torch.equal(w[k], finals[0][k]) for k in w)


def test_checkpoint_saved_on_cpu_loads_with_device_auto(tmp_path):
    """Saved with device 'cpu', loaded with 'auto' (the CPU here, CUDA/MPS where there is one): same outputs."""
    cfg = TrainConfig(steps=20, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=10, keep_checkpoints=5)
    model = tiny_model()
    train(model, loss_fn, batch_fn, cfg, seed=5, checkpoint_dir=tmp_path / "ckpt", device="cpu")
    path = save_model(tmp_path / "m.safetensors", model)
    tokens = batch_fn(0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(tokens)
        loaded = load_model(path, tiny_model(seed=7), device="auto")
        got = loaded(tokens.to(next(loaded.parameters()).device)).cpu()
    assert torch.allclose(got, expected, atol=1e-5) if got.device.type != "cpu" else torch.equal(got, expected)
    ckpt = load_checkpoint(list_checkpoints(tmp_path / "ckpt")[-1][1], device="auto")
    auto = resolve_device("auto")
    assert all(t.device.type == auto.type for t in ckpt.model.values())
    assert ckpt.rng.device.type == "cpu" and ckpt.device_rng == {}  # a CPU run saves no GPU generator state


def test_resume_across_the_device_key_is_bitwise_on_the_cpu(tmp_path):
    """Interrupted with device 'cpu', resumed with device 'auto' (the CPU here): ends as the uninterrupted run."""
    cfg = TrainConfig(steps=40, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=20)
    full, m_full = Recorder(), tiny_model()
    train(m_full, loss_fn, batch_fn, cfg, seed=6, callbacks=[full], checkpoint_dir=tmp_path / "a")

    class Stop(Callback):
        def on_log(self, state):
            if state.step == 30:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), loss_fn, batch_fn, cfg, seed=6, callbacks=[Stop()], checkpoint_dir=tmp_path / "b",
              device="cpu")
    rest, m_resumed = Recorder(), tiny_model(seed=99)
    state = train(m_resumed, loss_fn, batch_fn, cfg, seed=6, callbacks=[rest], checkpoint_dir=tmp_path / "b",
                  resume=True, device="auto")
    assert state.resumed_from == 20
    if resolve_device("auto").type == "cpu":
        assert rest.logs == full.logs[-2:]
        assert all(torch.equal(a, b) for a, b in zip(m_full.state_dict().values(), m_resumed.state_dict().values(),
                                                       strict=True))


def test_batches_in_containers_are_moved_and_bad_devices_stop_before_training():
    @dataclasses.dataclass
    class Batch:
        tokens: torch.Tensor

    seen = []

    def dc_loss(model, batch):
        seen.append(type(batch))
        return model.loss(batch.tokens)

    cfg = TrainConfig(steps=3, log_every=1, checkpoint_every=1)
    train(tiny_model(), dc_loss, lambda s, g: Batch(batch_fn(s, g)), cfg, device="auto")
    assert seen == [Batch] * 3
    with pytest.raises(ConfigError, match="is not a device"):
        train(tiny_model(), loss_fn, batch_fn, cfg, device="gpu0")


# --- corrupt checkpoints ------------------------------------------------------------------------------------------
def _overwrite_middle(path, n=64):
    """Random bytes over the middle of the file: the header still parses, only the tensor data are wrong."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
                                      ).numpy().tobytes()
    assert bytes(data) != path.read_bytes()
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "random bytes in the tensor data": _overwrite_middle,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size * 2 // 3]),
    "bytes appended": lambda p: p.write_bytes(p.read_bytes() + b"\0" * 16),
    "random header": lambda p: p.write_bytes(bytes(range(200, 256)) + p.read_bytes()[56:]),
    "all random": lambda p: p.write_bytes(torch.randint(0, 256, (p.stat().st_size,), dtype=torch.uint8).numpy()
                                          .tobytes()),
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_every_kind_of_corrupt_checkpoint_is_a_corrupt_file_error(tmp_path, how):
    path = save_model(tmp_path / "m.safetensors", tiny_model())
    load_checkpoint(path)
    CORRUPTIONS[how](path)
    with pytest.raises(CorruptFileError, match=r"^Checkpoint '.*m\.safetensors' is corrupt") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and isinstance(info.value, StoreError)


def test_a_file_without_a_checksum_still_loads(tmp_path):
    """Files written before checksums existed, or by other tools, are read unchecked."""
    from safetensors.torch import save_file

    save_file({"w": torch.arange(4.0)}, str(tmp_path / "plain.safetensors"), metadata={"a": "b"})
    tensors, meta = read_safetensors(tmp_path / "plain.safetensors")
    assert torch.equal(tensors["w"], torch.arange(4.0)) and meta == {"a": "b"}


def _stopped_run(folder, cfg, stop_at):
    class Stop(Callback):
        def on_log(self, state):
            if state.step == stop_at:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_model(), loss_fn, batch_fn, cfg, seed=2, callbacks=[Stop()], checkpoint_dir=folder)


def test_a_corrupt_newest_checkpoint_resumes_from_the_previous_one_bitwise(tmp_path):
    cfg = TrainConfig(steps=60, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=20, keep_checkpoints=2)
    full, m_full = Recorder(), tiny_model()
    train(m_full, loss_fn, batch_fn, cfg, seed=2, callbacks=[full], checkpoint_dir=tmp_path / "a")
    folder = tmp_path / "b"
    _stopped_run(folder, cfg, stop_at=50)
    assert [s for s, _ in list_checkpoints(folder)] == [20, 40]
    _overwrite_middle(folder / "step_00000040.safetensors")

    rest, warnings, m_resumed = Recorder(), [], tiny_model(seed=99)
    state = train(m_resumed, loss_fn, batch_fn, cfg, seed=2, callbacks=[rest], checkpoint_dir=folder, resume=True,
                  label="1L", warn=warnings.append)
    assert state.resumed_from == 20
    assert warnings == ["Warning: checkpoint step_00000040.safetensors of 1L is corrupt (its tensor data do not "
                        "match the checksum saved with them); moved aside to step_00000040.safetensors.corrupt; "
                        "resuming from step 20."]
    assert rest.logs == full.logs[-4:]  # steps 30..60, identical floats
    for (k, a), b in zip(m_full.state_dict().items(), m_resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert [s for s, _ in list_checkpoints(folder)] == [40, 60]  # the bad one was rewritten by the replay
    assert (folder / "step_00000040.safetensors.corrupt").is_file()
    load_checkpoint(folder / "step_00000040.safetensors")


def test_when_the_only_checkpoint_is_corrupt_training_starts_again_with_the_same_numbers(tmp_path, capsys):
    cfg = TrainConfig(steps=40, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=20, keep_checkpoints=1)
    full, m_full = Recorder(), tiny_model()
    train(m_full, loss_fn, batch_fn, cfg, seed=2, callbacks=[full])
    folder = tmp_path / "b"
    _stopped_run(folder, cfg, stop_at=30)
    (only,) = [p for _, p in list_checkpoints(folder)]
    CORRUPTIONS["truncated"](only)

    again, m_again = Recorder(), tiny_model()
    state = train(m_again, loss_fn, batch_fn, cfg, seed=2, callbacks=[again], checkpoint_dir=folder, resume=True)
    assert state.resumed_from is None and again.logs == full.logs  # from step 0, bitwise the uninterrupted run
    for a, b in zip(m_full.parameters(), m_again.parameters(), strict=True):
        assert torch.equal(a, b)
    err = capsys.readouterr().err  # no `warn`: the line goes to stderr
    assert err.startswith("Warning: checkpoint step_00000020.safetensors is corrupt (")
    assert "no intact checkpoint is left, so training starts again from step 0" in err


def test_checkpoint_problem_says_what_is_wrong(tmp_path):
    path = save_model(tmp_path / "m.safetensors", tiny_model())
    assert checkpoint_problem(path) is None
    assert checkpoint_problem(tmp_path / "nope.safetensors") == "missing"
    _overwrite_middle(path)
    assert checkpoint_problem(path) == "its tensor data do not match the checksum saved with them"
