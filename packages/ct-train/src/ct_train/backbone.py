"""The model: a backbone from the backbone hook (ct-infer's registry), plus its preprocessing.

``build_model`` is the one place that knows how backbones are made: it asks ct-infer's
backbone registry (torchvision ResNets, EfficientNets, EfficientNet-Lite0 with offline
ImageNet weights, any timm model; third-party plugins add more through the same hook).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from attrs import define
from torch import nn

from ct_io.errors import CamtrapError
from ct_io.plugins import CamtrapPluginManager
from ct_train.config import PRETRAINED_KEYWORDS, ModelConfig

log = logging.getLogger(__name__)


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
    """The configured backbone with a ``num_classes`` head and its starting weights.

    ``cfg.pretrained`` is ``none``, ``imagenet``, ``offline-imagenet`` (ct-infer's
    ``PretrainedSource`` keywords), a ct-infer bundle (``.safetensors``), or one of our
    checkpoints (``best.pt``: every tensor that fits is loaded, a head of another size
    stays fresh).
    """
    from ct_infer.backbones import build_backbone

    from_checkpoint = cfg.pretrained not in PRETRAINED_KEYWORDS and not cfg.pretrained.endswith(
        ".safetensors"
    )
    try:
        built = build_backbone(
            cfg.backbone,
            num_classes,
            "none" if from_checkpoint else cfg.pretrained,
            cfg.options,
            pm,
        )
    except (OSError, RuntimeError) as exc:  # a failed download (URLError is an OSError)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CamtrapError(
            f"model.pretrained: cannot get {cfg.pretrained} weights for {cfg.backbone} ({first}); "
            "offline, use pretrained: offline-imagenet with efficientnet-lite0, or none"
        ) from None
    prep = built.preprocessing
    model = Model(built.module, prep.input_size, prep.mean, prep.std)
    if from_checkpoint:
        load_matching_weights(model.module, Path(cfg.pretrained))
    return model


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


def load_matching_weights(model: nn.Module, path: Path) -> None:
    """Start from an earlier checkpoint of ours (e.g. MegaClassifier), skipping a head of another size."""
    if not path.is_file():
        raise CamtrapError(
            f"model.pretrained: {path} not found (use imagenet, offline-imagenet, none, or a checkpoint path)"
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
