"""Checks before any work: every plugin a config names is found, its options valid and
its requirements met (:func:`resolve_plugins`), and, once built, each keeps its contract
on one tiny batch before the first epoch (:func:`check_model_and_loss`; a logger's methods
are checked when ``ct_train.loggers.make_loggers`` creates it). A broken plugin stops the run in seconds with one line naming the
plugin and its distribution, instead of after an epoch with a traceback.

A logger factory may carry a ``preflight(run_dir, options)`` attribute that raises
``CamtrapError`` when the logger cannot work (a missing package, a missing key): it is
called here, long before the factory itself (``ct-train run`` checks before fetching data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

from ct_io.errors import PluginError
from ct_io.plugins import CamtrapPluginManager, Registration, build_options

if TYPE_CHECKING:
    import torch

    from ct_train.config import ExperimentConfig
    from ct_train.session import Session

#: Examples in the tiny batch the contracts are checked on.
CHECK_BATCH = 2


@frozen
class ResolvedPlugins:
    """The registrations a config names, their options validated."""

    backbone: Registration
    loss: Registration
    loggers: tuple[Registration, ...]


def describe(reg: Registration) -> str:
    """``loss 'poly1' (plugin 'mylab', distribution camtrap-mylab)``."""
    return f"{reg.kind} {reg.name!r} (plugin {reg.plugin!r}, distribution {reg.distribution})"


def resolve_plugins(
    cfg: ExperimentConfig, pm: CamtrapPluginManager | None = None
) -> ResolvedPlugins:
    """Find the backbone, loss and loggers of ``cfg``, validate their options and run the
    loggers' preflight checks; raises a one-line error for the first problem."""
    from ct_infer.backbones import resolve_backbone
    from ct_train.losses import get_loss

    backbone, raw = resolve_backbone(cfg.model.backbone, cfg.model.options, pm)
    build_options(backbone, raw)
    loss = get_loss(cfg.loss.name, pm)
    build_options(loss, cfg.loss.options)
    loggers = []
    for spec in cfg.loggers:
        from ct_train.loggers import get_logger

        reg = get_logger(spec.name, pm)
        options = build_options(reg, spec.options)
        check = getattr(reg.factory, "preflight", None)
        if callable(check):
            check(cfg.run_dir, options)
        loggers.append(reg)
    return ResolvedPlugins(backbone, loss, tuple(loggers))


def example_targets(num_classes: int, multilabel: bool, n: int = CHECK_BATCH) -> torch.Tensor:
    """Targets of the tiny batch: class indices, or multi-label 0/1 rows."""
    import torch

    index = torch.arange(n) % num_classes
    if not multilabel:
        return index
    rows = torch.zeros(n, num_classes)
    rows[torch.arange(n), index] = 1.0
    rows[0, :] = 1.0  # a crop with every label
    return rows


def check_loss_kind(loss_fn: Any, reg: Registration, multilabel: bool) -> None:
    """A multi-label run needs a loss that says ``multilabel = True``, and the other way
    round (a softmax loss would train a multi-label model wrongly without failing)."""
    says = bool(getattr(loss_fn, "multilabel", False))
    if says and not multilabel:
        raise PluginError(
            f"{describe(reg)} is a multi-label loss (0/1 target rows): set train.multilabel: "
            "true (ct-train train --multilabel), or use cross_entropy, focal or class_balanced"
        )
    if multilabel and not says:
        raise PluginError(
            f"{describe(reg)} is a single-label loss (softmax over labels); with "
            "train.multilabel use bce, sigmoid_focal, or class_balanced with base: bce"
        )


def check_model_and_loss(s: Session, plugins: ResolvedPlugins) -> None:
    """The backbone gives (batch, classes) finite logits and the loss one finite,
    differentiable value per example, on a tiny batch. Runs the plain module in eval mode
    without gradients for the backbone (no BatchNorm statistics move, no RNG is drawn)."""
    import torch

    module, rt, n = s.model.module, s.rt, CHECK_BATCH
    size = s.cfg.data.image_size or s.model.input_size
    images = torch.zeros(n, 3, size, size)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), rt.autocast():
            logits = module(rt.to_device(images))
    except Exception as exc:  # a plugin's own bug: say whose
        raise PluginError(
            f"{describe(plugins.backbone)} failed on a batch of {n} images of {size}×{size}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from None
    finally:
        module.train(was_training)
    want = (n, len(s.labels))
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != want:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise PluginError(
            f"{describe(plugins.backbone)} returned {got} for a batch of {n}; "
            f"expected logits of shape {want} (batch, labels)"
        )
    multilabel = s.tables.multilabel
    check_loss_kind(s.loss_fn, plugins.loss, multilabel)
    leaf = logits.detach().float().requires_grad_(True)
    targets = example_targets(len(s.labels), multilabel).to(leaf.device)
    try:
        losses = s.loss_fn(leaf, targets)
    except Exception as exc:
        raise PluginError(
            f"{describe(plugins.loss)} failed on a batch of {n}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    _check_losses(losses, leaf, plugins.loss, n)


def _check_losses(losses: Any, leaf: torch.Tensor, reg: Registration, n: int) -> None:
    import torch

    rule = "a loss returns one value per example (reduction='none'); the trainer averages them"
    if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (n,):
        got = (
            f"shape {tuple(losses.shape)}"
            if isinstance(losses, torch.Tensor)
            else type(losses).__name__
        )
        raise PluginError(f"{describe(reg)} returned {got} for a batch of {n}: {rule}")
    if not bool(torch.isfinite(losses.detach()).all()):
        raise PluginError(
            f"{describe(reg)} returned non-finite values {losses.tolist()} on a tiny batch"
        )
    if not losses.requires_grad:
        raise PluginError(
            f"{describe(reg)} returned values detached from the logits: the model would not learn"
        )
    losses.sum().backward()
    if leaf.grad is None or not bool(torch.isfinite(leaf.grad).all()):
        raise PluginError(f"{describe(reg)} gives no finite gradient for the logits")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
