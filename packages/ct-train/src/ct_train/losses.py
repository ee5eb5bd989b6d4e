"""Built-in training losses and the accessor over the loss hook.

Every loss returns per-example values (``reduction="none"``); the trainer averages them.
A third-party loss registers exactly like these (see ``builtin_plugins.py``)::

    @hookimpl
    def ct_register_losses(register):
        register("poly1", make_poly1, options=Poly1Options, description="Poly-1 loss")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the PyTorch convention)

from ct_io.plugins import CamtrapPluginManager, Registration, collect
from ct_train.loss_options import (
    ClassBalancedOptions,
    CrossEntropyOptions,
    FocalOptions,
    LabelSmoothingOptions,
)


class CrossEntropy(nn.Module):
    """Per-example cross-entropy, optionally label-smoothed and class-weighted."""

    weight: torch.Tensor | None

    def __init__(self, label_smoothing: float = 0.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-example losses of ``logits`` (computed in float32) against ``targets``."""
        return F.cross_entropy(
            logits.float(),
            targets,
            weight=self.weight,
            reduction="none",
            label_smoothing=self.label_smoothing,
        )


class FocalLoss(nn.Module):
    """Lin et al. 2017: cross-entropy scaled by (1 - p_true)^gamma."""

    weight: torch.Tensor | None

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-example losses of ``logits`` (computed in float32) against ``targets``."""
        logp = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.weight is not None:
            loss = loss * self.weight[targets]
        return loss


def make_cross_entropy(
    num_classes: int, class_counts: Sequence[int], options: CrossEntropyOptions
) -> nn.Module:
    return CrossEntropy(options.label_smoothing)


def make_label_smoothing(
    num_classes: int, class_counts: Sequence[int], options: LabelSmoothingOptions
) -> nn.Module:
    return CrossEntropy(options.label_smoothing)


def make_focal(num_classes: int, class_counts: Sequence[int], options: FocalOptions) -> nn.Module:
    alpha = None
    if options.alpha is not None:
        if len(options.alpha) != num_classes:
            from ct_io.options import ConfigError

            raise ConfigError(
                "loss 'focal' options",
                [f"$.alpha: needs {num_classes} values (one per label), got {len(options.alpha)}"],
            )
        alpha = torch.tensor(options.alpha, dtype=torch.float32)
    return FocalLoss(options.gamma, alpha)


def class_balanced_weights(class_counts: Sequence[int], beta: float) -> torch.Tensor:
    """Per-class weights from the effective number of samples, normalised to sum to C."""
    counts = torch.tensor(class_counts, dtype=torch.float64).clamp(min=1)
    weights = (1 - beta) / (1 - beta**counts)
    return (weights / weights.sum() * len(class_counts)).float()


def make_class_balanced(
    num_classes: int, class_counts: Sequence[int], options: ClassBalancedOptions
) -> nn.Module:
    weights = class_balanced_weights(class_counts, options.beta)
    if options.base == "focal":
        return FocalLoss(options.gamma, weights)
    return CrossEntropy(0.0, weights)


def list_losses(pm: CamtrapPluginManager | None = None) -> list[Registration]:
    """Every registered loss (built-in and third-party)."""
    return list(collect("loss", pm))


def get_loss(name: str, pm: CamtrapPluginManager | None = None) -> Registration:
    """The loss registered as ``name`` (unknown names suggest close matches)."""
    return collect("loss", pm).get(name)


def build_loss(
    name: str,
    options: Mapping[str, Any],
    num_classes: int,
    class_counts: Sequence[int],
    pm: CamtrapPluginManager | None = None,
) -> nn.Module:
    """Make the loss module, its options validated against the class its plugin registered."""
    loss = get_loss(name, pm).create(num_classes, list(class_counts), options=options)
    if not isinstance(loss, nn.Module):
        raise TypeError(
            f"loss {name!r} factory returned {type(loss).__name__}, not a torch.nn.Module"
        )
    return loss
