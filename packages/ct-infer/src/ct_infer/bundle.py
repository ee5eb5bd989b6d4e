"""Model bundles: one ``.safetensors`` file with the weights and everything needed to use them.

This module is the file format only; ``ct_infer.backbones.model_from_bundle`` builds the
network a bundle describes.

The safetensors header carries the metadata as JSON (backbone and options, labels,
preprocessing, the crop strategy of the training crops, each label's taxonomy, the
training-config digest, calibration temperature, versions) and a SHA-256 of the weights.
Loading never unpickles anything; a foreign, truncated or tampered file is refused with
one line that says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import asdict, evolve, field, frozen

from ct_infer import __version__
from ct_infer.preprocessing import Preprocessing
from ct_io.atomic import write_bytes_atomic
from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    import torch

BUNDLE_FORMAT = "camtrap-bundle"
BUNDLE_VERSION = 1
META_KEY = "camtrap"
SUFFIX = ".safetensors"
#: where an export carries the bundle metadata: TorchScript extra file, ONNX model property
TORCHSCRIPT_META = "camtrap.json"
ONNX_META = "camtrap"


class BundleError(CamtrapError):
    """A file that is not a usable bundle."""


@frozen
class BundleMeta:
    """Everything about a classifier except its weights."""

    backbone: str
    labels: list[str]
    preprocessing: Preprocessing
    backbone_options: dict[str, Any] = field(factory=dict)
    #: How the training crops were made (e.g. ``{"square": true, "padding": 0}``), so
    #: inference crops the same way.
    crop: dict[str, Any] = field(factory=lambda: {"square": True})
    #: Label → taxonomy string (``animalia;chordata;...;felidae``) where known.
    taxonomy: dict[str, str] = field(factory=dict)
    #: SHA-256 of the training config that produced the weights (reproducibility).
    config_digest: str | None = None
    #: Softmax temperature fitted on val (1.0 = uncalibrated); see ``ct_infer.calibration``.
    temperature: float = 1.0
    #: Several labels per crop: a sigmoid per label instead of one softmax, so every label
    #: above a threshold is kept (``ct_infer.multilabel``).
    multilabel: bool = False
    name: str | None = None
    created: str = field(factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    producer: str = f"ct-infer {__version__}"
    #: Free-form extras (training metrics, notes); JSON values only.
    extra: dict[str, Any] = field(factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self, recurse=False)
        out["preprocessing"] = self.preprocessing.as_dict()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "bundle") -> BundleMeta:
        try:
            raw = dict(data)
            raw["preprocessing"] = Preprocessing.from_dict(raw["preprocessing"])
            labels = raw["labels"]
            if (
                not isinstance(labels, list)
                or not labels
                or not all(isinstance(v, str) for v in labels)
            ):
                raise ValueError("labels must be a non-empty list of strings")
            return cls(**raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"{source}: bundle metadata is invalid ({exc}) — was it written by ct-infer?"
            ) from None


@frozen
class Bundle:
    """A loaded bundle: metadata plus CPU tensors."""

    meta: BundleMeta
    state_dict: dict[str, torch.Tensor]
    path: Path | None = None

    def with_meta(self, **changes: Any) -> Bundle:
        return evolve(self, meta=evolve(self.meta, **changes))


def weights_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over tensor names, dtypes, shapes and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_bundle(path: str | os.PathLike[str], module: torch.nn.Module, meta: BundleMeta) -> Path:
    """Write ``module``'s weights and ``meta`` to ``path`` atomically; returns the path."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    return save_tensors(path, tensors, meta)


def save_tensors(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: BundleMeta
) -> Path:
    """Write already-extracted CPU tensors and ``meta`` as a bundle (atomic)."""
    from safetensors.torch import save

    header = {
        "format": BUNDLE_FORMAT,
        "format_version": str(BUNDLE_VERSION),
        META_KEY: json.dumps(meta.to_json(), sort_keys=True),
        "weights_sha256": weights_digest(tensors),
    }
    target = Path(path)
    write_bytes_atomic(target, save(tensors, metadata=header))
    return target


def read_bundle_meta(path: str | os.PathLike[str]) -> BundleMeta:
    """Only the metadata (reads the header, not the weights)."""
    header = _read_header(Path(path))
    return _meta_from_header(header, str(path))


def load_bundle(path: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
    """Load a bundle, checking format, version and (``verify``) the weights digest."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    p = Path(path)
    header = _read_header(p)
    meta = _meta_from_header(header, str(p))
    try:
        tensors = load(p.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise BundleError(
            f"{p}: cannot read bundle weights ({exc}) — the file is damaged"
        ) from None
    if verify and header.get("weights_sha256") != weights_digest(tensors):
        raise BundleError(
            f"{p}: weights do not match their recorded digest — the file was modified or damaged"
        )
    return Bundle(meta, tensors, p)


def _read_header(p: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    if not p.is_file():
        raise BundleError(f"{p}: bundle file not found")
    try:
        with safe_open(str(p), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(
            f"{p}: not a camtrap bundle (not a readable safetensors file: {exc}); "
            "TorchScript/ONNX exports are used with --model, pickled checkpoints are never loaded"
        ) from None
    if header.get("format") != BUNDLE_FORMAT or META_KEY not in header:
        raise BundleError(
            f"{p}: a safetensors file but not a camtrap bundle (no {BUNDLE_FORMAT} metadata)"
        )
    try:
        version = int(header.get("format_version", "0"))
    except ValueError:
        version = -1
    if version != BUNDLE_VERSION:
        raise BundleError(
            f"{p}: bundle format version {header.get('format_version')!r}; this ct-infer reads {BUNDLE_VERSION}"
        )
    return header


def _meta_from_header(header: Mapping[str, str], source: str) -> BundleMeta:
    try:
        data = json.loads(header[META_KEY])
    except json.JSONDecodeError as exc:
        raise BundleError(f"{source}: bundle metadata is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{source}: bundle metadata must be a JSON object")
    return BundleMeta.from_json(data, source)


def load_weights_into(
    module: torch.nn.Module, path: str | os.PathLike[str], *, expect_backbone: str | None = None
) -> list[str]:
    """Start ``module`` from a bundle's weights (fine-tuning); returns the keys left fresh.

    Tensors whose shape differs (the classification head when the label set changed) keep
    their fresh initialisation; any other mismatch is an error.
    """
    bundle = load_bundle(path)
    if expect_backbone and bundle.meta.backbone != expect_backbone:
        raise BundleError(
            f"{path}: bundle holds a {bundle.meta.backbone}, cannot start a {expect_backbone} from it"
        )
    own = module.state_dict()
    usable = {k: v for k, v in bundle.state_dict.items() if k in own and own[k].shape == v.shape}
    fresh = sorted(set(own) - set(usable))
    if len(fresh) > 4:  # more than a head (weight, bias, maybe dropout-wrapped)
        raise BundleError(
            f"{path}: {len(fresh)} tensors do not fit (e.g. {fresh[0]}) — different architecture options?"
        )
    module.load_state_dict(usable, strict=False)
    return fresh


def make_meta(
    backbone: str,
    labels: Sequence[str],
    preprocessing: Preprocessing,
    backbone_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> BundleMeta:
    """Convenience constructor with plain arguments."""
    return BundleMeta(
        backbone=backbone,
        labels=list(labels),
        preprocessing=preprocessing,
        backbone_options=dict(backbone_options or {}),
        **kwargs,
    )
