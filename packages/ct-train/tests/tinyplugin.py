"""A throwaway plugin for the tests: a tiny CNN backbone and a third-party loss.

Registered through the same hooks as any installed plugin (``pm.register_plugin``), so the
engine under test cannot tell it from a real one.
"""

from __future__ import annotations

import time

import torch
from attrs import define
from torch import nn

from ct_infer.backbones import BuiltBackbone, Preprocessing
from ct_io import hookimpl


@define
class TinyOptions:
    width: int = 8
    sleep_s: float = 0.0  # slows each forward pass (the kill-and-resume test needs time to aim)


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, width: int, sleep_s: float) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.1),
        )
        self.fc = nn.Linear(width, num_classes)
        self.sleep_s = sleep_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self.fc(self.features(x))


def make_tiny(num_classes: int, pretrained: object, options: TinyOptions) -> BuiltBackbone:
    net = TinyNet(num_classes, options.width, options.sleep_s)
    return BuiltBackbone(net, Preprocessing(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))


@define
class DoubledOptions:
    factor: float = 2.0


class DoubledCrossEntropy(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.factor * nn.functional.cross_entropy(logits, targets, reduction="none")


def make_doubled(num_classes: int, class_counts: list[int], options: DoubledOptions) -> nn.Module:
    return DoubledCrossEntropy(options.factor)


# ---- broken on purpose: the preflight checks must name them before the first epoch


class ScalarCrossEntropy(nn.Module):
    """Breaks the loss contract: one mean instead of per-example values."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets)


class NanLoss(nn.Module):
    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits[:, 0] * float("nan")


def make_wide(num_classes: int, pretrained: object, options: TinyOptions) -> BuiltBackbone:
    """Breaks the backbone contract: one logit too many."""
    return make_tiny(num_classes + 1, pretrained, options)


class HalfLogger:
    """Breaks the logger contract: no log_figure."""

    def log_metrics(self, metrics: dict[str, float], step: int, *, prefix: str = "") -> None:
        pass

    def close(self) -> None:
        pass


@hookimpl
def ct_register_backbones(register):  # type: ignore[no-untyped-def]
    register("tiny", make_tiny, options=TinyOptions, description="tiny CNN for tests")
    register("wide", make_wide, options=TinyOptions, description="one logit too many")


@hookimpl
def ct_register_loggers(register):  # type: ignore[no-untyped-def]
    register("half", lambda run_dir, config: HalfLogger(), description="no log_figure")


@hookimpl
def ct_register_losses(register):  # type: ignore[no-untyped-def]
    register(
        "doubled_ce",
        make_doubled,
        options=DoubledOptions,
        description="2 × cross-entropy (third-party)",
    )
    register("scalar_ce", lambda n, counts: ScalarCrossEntropy(), description="returns a mean")
    register("nan_loss", lambda n, counts: NanLoss(), description="returns NaN")


def plugin_manager():  # type: ignore[no-untyped-def]
    """A fresh manager with the installed plugins plus this one."""
    import sys

    from ct_io.plugins import make_plugin_manager

    pm = make_plugin_manager()
    pm.register_plugin(sys.modules[__name__], "tinyplugin", distribution="tests")
    return pm
