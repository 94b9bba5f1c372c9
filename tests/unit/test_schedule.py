"""The one-cycle schedule equals torch's OneCycleLR (cosine annealing, no momentum cycling) step by step."""

import pytest
import torch

from emergelab.train.loop import TrainConfig, train
from emergelab.train.schedule import lr_at


def torch_one_cycle(max_lr: float, total: int, pct_start: float) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=pct_start,
                                                cycle_momentum=False)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(("total", "pct_start"), [(2200, 0.3), (100, 0.25), (40, 0.5)])
def test_one_cycle_matches_torch(total, pct_start):
    expected = torch_one_cycle(3e-3, total, pct_start)
    warmup = round(pct_start * total)  # torch's phase boundary is pct_start * total - 1
    ours = [lr_at(s, lr=3e-3, warmup_steps=warmup, total_steps=total, schedule="one_cycle", min_lr_ratio=1 / 25)
            for s in range(total)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert max(ours) == pytest.approx(3e-3) and ours[-1] == pytest.approx(3e-3 / 25 / 1e4)


def test_one_cycle_without_warmup_starts_at_the_peak():
    lrs = [lr_at(s, lr=1.0, warmup_steps=0, total_steps=10, schedule="one_cycle", min_lr_ratio=0.04) for s in range(10)]
    assert lrs[0] == 1.0 and lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.04 / 1e4)


def test_the_trainer_runs_one_cycle():
    model = torch.nn.Linear(3, 1)
    cfg = TrainConfig(steps=20, lr=0.1, warmup_steps=5, schedule="one_cycle", min_lr_ratio=0.04, log_every=5,
                      checkpoint_every=5)
    seen = []
    train(model, lambda m, b: m(b).pow(2).mean(), lambda s, g: torch.randn(4, 3, generator=g), cfg,
          progress=lambda st: seen.append(st.lr))
    assert seen[0] == pytest.approx(0.004) and seen[4] == pytest.approx(0.1) and seen[-1] < 1e-5
