"""The model: a backbone from the backbone hook (ct-infer's registry), plus its preprocessing.

``build_model`` is the one place that knows how backbones are made. It asks the plugin
registry first (ct-infer registers torchvision ResNets, EfficientNets and timm models;
third-party plugins add more). Until ct-infer's registry is merged, names the registry
does not know fall back to torchvision's model builders (``_torchvision_backbone``) —
that adapter is temporary and isolated here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from attrs import define
from torch import nn

from ct_io.errors import CamtrapError, PluginError
from ct_io.options import build_options
from ct_io.plugins import CamtrapPluginManager
from ct_io.registry import PluginKind, collect
from ct_train.config import ModelConfig

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@define
class Model:
    """A classifier and the preprocessing its weights expect."""

    module: nn.Module
    input_size: int
    mean: Sequence[float]
    std: Sequence[float]


def build_model(
    cfg: ModelConfig, num_classes: int, pm: CamtrapPluginManager | None = None
) -> Model:
    """The configured backbone with a ``num_classes`` head and its starting weights."""
    registry = collect(PluginKind.BACKBONE, pm)
    pretrained: Any = cfg.pretrained
    from_checkpoint = pretrained not in ("imagenet", "none")
    if cfg.backbone in registry:
        reg = registry.get(cfg.backbone)
        opts = build_options(reg, cfg.options)
        built = reg.factory(num_classes, "none" if from_checkpoint else pretrained, opts)
        model = _adapt(built)
    elif len(registry) == 0 or _torchvision_name(cfg.backbone):
        if cfg.options:
            raise CamtrapError(
                f"model.options: the torchvision fallback for {cfg.backbone!r} takes no options"
            )
        model = _torchvision_backbone(cfg.backbone, num_classes, imagenet=pretrained == "imagenet")
    else:
        registry.get(cfg.backbone)  # raises with close matches
        raise PluginError(f"unknown backbone {cfg.backbone!r}")
    if from_checkpoint:
        load_matching_weights(model.module, Path(pretrained))
    return model


def _adapt(built: Any) -> Model:
    """Accept ct-infer's ``BuiltBackbone`` (module + preprocessing) or a bare module."""
    if isinstance(built, nn.Module):
        return Model(built, int(getattr(built, "input_size", 224)), IMAGENET_MEAN, IMAGENET_STD)
    module = getattr(built, "model", None) or getattr(built, "module", None)
    if not isinstance(module, nn.Module):
        raise PluginError(
            f"backbone factory returned {type(built).__name__} without a torch module"
        )
    size = getattr(built, "input_size", 224)
    size = size[-1] if isinstance(size, Sequence) else size
    return Model(
        module,
        int(size),
        tuple(getattr(built, "mean", IMAGENET_MEAN)),
        tuple(getattr(built, "std", IMAGENET_STD)),
    )


def _torchvision_name(name: str) -> str | None:
    import torchvision.models as tvm

    candidate = name.replace("-", "_").lower()
    return candidate if candidate in tvm.list_models(module=tvm) else None


def _torchvision_backbone(name: str, num_classes: int, *, imagenet: bool) -> Model:
    """Temporary adapter: a torchvision classifier by name, head resized to ``num_classes``."""
    import torchvision.models as tvm

    tv_name = _torchvision_name(name)
    if tv_name is None:
        raise PluginError(
            f"unknown backbone {name!r} (no backbone plugins loaded and torchvision has no such model)"
        )
    weights = tvm.get_model_weights(tv_name).DEFAULT
    try:
        module = tvm.get_model(tv_name, weights=weights if imagenet else None)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise CamtrapError(
            f"cannot get ImageNet weights for {name} ({exc}); use pretrained: none offline"
        ) from None
    replace_head(module, num_classes)
    crop = getattr(weights.transforms(), "crop_size", [224])
    return Model(module, int(crop[0]), IMAGENET_MEAN, IMAGENET_STD)


def classifier_head(model: nn.Module) -> nn.Module:
    """The final classification layer (what ``finetune`` trains alone)."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        head = getter()
        if isinstance(head, nn.Module):
            return head
    for attr in ("fc", "classifier", "_fc", "head"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Module):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise CamtrapError(f"{type(model).__name__}: cannot find the classifier head to fine-tune")
    return linears[-1]


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the last Linear layer of the head for one with ``num_classes`` outputs."""
    head = classifier_head(model)
    if isinstance(head, nn.Linear):
        parent, attr = _parent_of(model, head)
        setattr(parent, attr, nn.Linear(head.in_features, num_classes))
        return
    linears = [(n, m) for n, m in head.named_modules() if isinstance(m, nn.Linear)]
    _, last = linears[-1]
    parent, attr = _parent_of(head, last)
    setattr(parent, attr, nn.Linear(last.in_features, num_classes))


def _parent_of(root: nn.Module, child: nn.Module) -> tuple[nn.Module, str]:
    for module in root.modules():
        for attr, sub in module.named_children():
            if sub is child:
                return module, attr
    raise CamtrapError("classifier head is not a child module")


def load_matching_weights(model: nn.Module, path: Path) -> None:
    """Start from an earlier checkpoint of ours (e.g. MegaClassifier), skipping a head of another size."""
    if not path.is_file():
        raise CamtrapError(
            f"model.pretrained: {path} not found (use imagenet, none, or a checkpoint path)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CamtrapError(
            f"model.pretrained: {path} is not a checkpoint this tool can read safely ({exc})"
        ) from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CamtrapError(f"model.pretrained: {path} holds no model weights")
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(usable))
    if len(usable) < len(own) // 2:
        raise CamtrapError(
            f"model.pretrained: {path} matches only {len(usable)}/{len(own)} tensors — another backbone?"
        )
    model.load_state_dict(usable, strict=False)
    log.info(
        "started from %s (%d tensors; %d left initialised: %s)",
        path,
        len(usable),
        len(skipped),
        ", ".join(skipped[:4]),
    )
