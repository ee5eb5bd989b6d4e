"""Optimizers (AdamW, SGD, RMSprop) and per-step learning-rate schedules with warm-up.

The schedule is a ``LambdaLR`` stepped once per optimizer step, so resuming mid-epoch
continues the exact curve. ``step``: lr × gamma every ``step_size`` epochs (fractional
allowed: the MegaClassifier recipe decays 0.97 every 2.4 epochs). ``cosine``: from lr to
lr × ``min_lr_factor`` over the run after warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from ct_train.config import OptimConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig
) -> torch.optim.Optimizer:
    """AdamW, SGD (Nesterov when momentum > 0) or RMSprop over ``params``, as ``cfg`` says."""
    params = list(params)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.momentum > 0,
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, alpha=cfg.alpha, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def lr_factor(step: int, cfg: OptimConfig, steps_per_epoch: int, total_steps: int) -> float:
    """The lr multiplier after ``step`` optimizer steps."""
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * step / warmup
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** math.floor(step / (cfg.step_size * steps_per_epoch))
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_factor` over ``epochs`` epochs."""
    total = steps_per_epoch * epochs
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch, total)
    )
