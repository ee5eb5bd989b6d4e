"""ct-train's built-in plugins, registered through the ``camtrap.plugins`` entry point.

Registered exactly as a third-party plugin would; factories are imported lazily so that
listing plugins never imports torch.
"""

from __future__ import annotations

from typing import Any

from ct_io import hookimpl
from ct_io.hookspecs import Register


class _Lazy:
    """A factory that imports ``module.name`` on first call; its ``preflight`` (see
    ``ct_train.preflight``) is the target's, when it has one."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.__name__ = module, name

    def _target(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.__name__)

    def __call__(self, *args: Any) -> Any:
        return self._target()(*args)

    def preflight(self, *args: Any) -> None:
        check = getattr(self._target(), "preflight", None)
        if callable(check):
            check(*args)


def _lazy(module: str, name: str) -> Any:
    return _Lazy(module, name)


@hookimpl
def ct_register_losses(register: Register) -> None:
    from ct_train.loss_options import (
        BCEOptions,
        ClassBalancedOptions,
        CrossEntropyOptions,
        FocalOptions,
        LabelSmoothingOptions,
        SigmoidFocalOptions,
    )

    register(
        "cross_entropy",
        _lazy("ct_train.losses", "make_cross_entropy"),
        options=CrossEntropyOptions,
        description="Cross-entropy (optional label_smoothing)",
    )
    register(
        "label_smoothing",
        _lazy("ct_train.losses", "make_label_smoothing"),
        options=LabelSmoothingOptions,
        description="Cross-entropy with label smoothing (default 0.1)",
    )
    register(
        "focal",
        _lazy("ct_train.losses", "make_focal"),
        options=FocalOptions,
        description="Focal loss (gamma, optional per-label alpha)",
    )
    register(
        "class_balanced",
        _lazy("ct_train.losses", "make_class_balanced"),
        options=ClassBalancedOptions,
        description="Class-balanced loss by effective number of samples (Cui et al. 2019)",
    )
    register(
        "bce",
        _lazy("ct_train.losses", "make_bce"),
        options=BCEOptions,
        description="Multi-label: binary cross-entropy per label (optional label_smoothing)",
    )
    register(
        "sigmoid_focal",
        _lazy("ct_train.losses", "make_sigmoid_focal"),
        options=SigmoidFocalOptions,
        description="Multi-label: focal loss per label (gamma, alpha)",
    )


@hookimpl
def ct_register_loggers(register: Register) -> None:
    from ct_train.loggers import CometOptions, ConsoleOptions, TensorBoardOptions

    register(
        "console",
        _lazy("ct_train.loggers", "make_console"),
        options=ConsoleOptions,
        description="Rich progress bars and one line per evaluation",
    )
    register(
        "tensorboard",
        _lazy("ct_train.loggers", "make_tensorboard"),
        options=TensorBoardOptions,
        description="TensorBoard scalars, confusion matrices and example grids",
    )
    register(
        "comet",
        _lazy("ct_train.loggers", "make_comet"),
        options=CometOptions,
        description="comet.com experiment (COMET_API_KEY etc. from .env; needs comet_ml)",
    )
