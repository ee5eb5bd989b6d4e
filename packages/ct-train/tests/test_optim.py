from __future__ import annotations

import pytest
import torch

from ct_train.config import OptimConfig
from ct_train.optim import build_optimizer, build_scheduler, lr_factor


@pytest.mark.parametrize(
    ("name", "cls"),
    [("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop)],
)
def test_optimizers(name: str, cls: type) -> None:
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], OptimConfig(optimizer=name, lr=0.1))  # type: ignore[arg-type]
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.1


def test_warmup_then_cosine_to_min() -> None:
    cfg = OptimConfig(
        schedule="cosine", warmup_epochs=1, warmup_start_factor=0.1, min_lr_factor=0.01
    )
    assert lr_factor(0, cfg, 10, 100) == pytest.approx(0.1)
    assert lr_factor(5, cfg, 10, 100) == pytest.approx(0.55)
    assert lr_factor(10, cfg, 10, 100) == pytest.approx(1.0)
    assert lr_factor(100, cfg, 10, 100) == pytest.approx(0.01)
    values = [lr_factor(s, cfg, 10, 100) for s in range(10, 101)]
    assert values == sorted(values, reverse=True)


def test_megaclassifier_step_schedule_decays_every_2_4_epochs() -> None:
    cfg = OptimConfig(schedule="step", step_size=2.4, gamma=0.97)
    assert lr_factor(23, cfg, 10, 500) == 1.0
    assert lr_factor(24, cfg, 10, 500) == pytest.approx(0.97)
    assert lr_factor(48, cfg, 10, 500) == pytest.approx(0.97**2)


def test_scheduler_steps_per_batch_and_resumes() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    cfg = OptimConfig(lr=1.0, schedule="cosine")
    opt = build_optimizer([p], cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5, epochs=2)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2 = build_optimizer([p], cfg)
    sched2 = build_scheduler(opt2, cfg, steps_per_epoch=5, epochs=2)
    sched2.load_state_dict(state)
    opt.step(), sched.step(), opt2.step(), sched2.step()
    assert sched.get_last_lr() == sched2.get_last_lr()
