import math

import numpy as np
import torch

from emergelab.devices import to_device
from emergelab.emergence.phase import detect_phase_change
from emergelab.tasks.induction import BOS, InductionTask, InductionTaskConfig


def test_sequences_repeat_their_segment_at_varying_offsets():
    cfg = InductionTaskConfig(vocab_size=50, seq_len=40, segment_min=3, segment_max=8, n_repeats=3)
    batch = InductionTask(cfg).sample(256, torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (256, 40) and batch.repeated.shape == (256, 39)
    assert torch.all(batch.tokens[:, 0] == BOS) and torch.all(batch.tokens[:, 1:] >= 1)
    assert torch.all(batch.tokens <= 50)
    for b in range(256):
        s, L = int(batch.start[b]), int(batch.segment_len[b])
        seg = batch.tokens[b, s: s + L]
        for c in range(1, 3):
            assert torch.equal(batch.tokens[b, s + c * L: s + (c + 1) * L], seg)
        # repeated targets: positions s+L+1 .. s+3L-1
        expected = torch.zeros(39, dtype=torch.bool)
        expected[s + L: s + 3 * L - 1] = True
        assert torch.equal(batch.repeated[b], expected)
    assert len(set(batch.start.tolist())) > 5 and len(set(batch.segment_len.tolist())) == 6


def test_sampling_is_a_function_of_the_generator():
    task = InductionTask(InductionTaskConfig())
    a = task.sample(8, torch.Generator().manual_seed(3))
    b = task.sample(8, torch.Generator().manual_seed(3))
    c = task.sample(8, torch.Generator().manual_seed(4))
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)


def test_a_batch_says_where_it_repeats_and_moves_whole():
    batch = InductionTask(InductionTaskConfig()).sample(8, torch.Generator().manual_seed(5))
    assert batch.repeat_of(3) == {"start": int(batch.start[3]), "segment_len": int(batch.segment_len[3]),
                                  "n_repeats": 3}
    # repeated targets are exactly the later-copy positions whose predecessor is in a later copy too
    later = batch.in_later_copy()
    assert torch.equal(batch.repeated, later[:, 1:] & later[:, :-1])
    moved = to_device(batch, torch.device("cpu"))
    assert moved.n_repeats == 3 and torch.equal(moved.tokens, batch.tokens)
    assert torch.equal(moved.relative_positions(), batch.relative_positions())


def sigmoid_curve(steps, center, width, hi=4.8, lo=0.3):
    return lo + (hi - lo) / (1 + np.exp((steps - center) / width))


def test_sudden_drop_is_detected_with_its_window():
    steps = np.arange(0, 3001, 50)
    values = sigmoid_curve(steps, 1500, 60)
    pc = detect_phase_change(steps, values)
    assert pc["detected"]
    assert 1200 <= pc["start_step"] < pc["steepest_step"] < pc["end_step"] <= 1800
    assert abs(pc["steepest_step"] - 1500) <= 50


def test_small_or_slow_drops_are_not_phase_changes():
    steps = np.arange(0, 3001, 50)
    small = sigmoid_curve(steps, 300, 60, hi=4.85, lo=3.8)  # a 1-layer model's copying: ~20%
    assert not detect_phase_change(steps, small)["detected"]
    linear = np.linspace(4.8, 0.5, len(steps))  # large but spread over all of training
    pc = detect_phase_change(steps, linear)
    assert not pc["detected"] and "window" in pc["reason"]
    flat = np.full(len(steps), math.log(128))
    assert not detect_phase_change(steps, flat)["detected"]
