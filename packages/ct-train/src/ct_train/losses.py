"""Built-in training losses and the accessor over the loss hook.

Every loss returns per-example values (``reduction="none"``); the trainer averages them.
Single-label losses take class indices; multi-label losses (``bce``, ``sigmoid_focal``,
``class_balanced`` with base ``bce``/``sigmoid_focal``) take 0/1 targets of shape
(batch, labels) and say so with a class attribute ``multilabel = True``, which the
trainer checks against ``train.multilabel`` before the first epoch.
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
    BCEOptions,
    ClassBalancedOptions,
    CrossEntropyOptions,
    FocalOptions,
    LabelSmoothingOptions,
    SigmoidFocalOptions,
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


class BinaryCrossEntropy(nn.Module):
    """Multi-label: a sigmoid per label, binary cross-entropy averaged over labels."""

    multilabel = True
    weight: torch.Tensor | None

    def __init__(self, label_smoothing: float = 0.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = targets.float()
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / 2
        loss = F.binary_cross_entropy_with_logits(logits.float(), t, reduction="none")
        if self.weight is not None:
            loss = loss * self.weight
        return loss.mean(dim=1)


class SigmoidFocalLoss(nn.Module):
    """Multi-label focal loss (Lin et al. 2017, torchvision's ``sigmoid_focal_loss``),
    averaged over labels."""

    multilabel = True
    weight: torch.Tensor | None

    def __init__(
        self, gamma: float = 2.0, alpha: float | None = 0.25, weight: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.gamma, self.alpha = gamma, alpha
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import sigmoid_focal_loss

        loss = sigmoid_focal_loss(
            logits.float(),
            targets.float(),
            alpha=-1 if self.alpha is None else self.alpha,
            gamma=self.gamma,
            reduction="none",
        )
        if self.weight is not None:
            loss = loss * self.weight
        return loss.mean(dim=1)


def make_bce(num_classes: int, class_counts: Sequence[int], options: BCEOptions) -> nn.Module:
    """``bce`` (multi-label)."""
    return BinaryCrossEntropy(options.label_smoothing)


def make_sigmoid_focal(
    num_classes: int, class_counts: Sequence[int], options: SigmoidFocalOptions
) -> nn.Module:
    """``sigmoid_focal`` (multi-label)."""
    return SigmoidFocalLoss(options.gamma, options.alpha)


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
    if options.base == "bce":
        return BinaryCrossEntropy(0.0, weights)
    if options.base == "sigmoid_focal":
        return SigmoidFocalLoss(options.gamma, None, weights)
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
