"""Which engine runs a bundle's network: PyTorch eager, or ONNX Runtime on a cached export.

On CPUs ONNX Runtime runs the same network faster than PyTorch eager (its fused,
pre-packed kernels; EfficientNet-B0 most of all), so ``--runtime auto`` picks it for a
bundle on a CPU in fp32 when ``onnxruntime`` and ``onnx`` are installed (``ct-infer[onnx]``)
and PyTorch everywhere else (CUDA, MPS, bf16/fp16, ``--compile``). The bundle is exported
once to ONNX and kept in a cache keyed by the bundle file's SHA-256 (see
:func:`onnx_cache_dir`), so later runs start from the cached file. The export computes raw
logits; the bundle's temperature is applied outside, as for the bundle itself, so
``--no-calibration`` means the same on both runtimes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from attrs import frozen

from ct_infer.bundle import SUFFIX
from ct_io.errors import CamtrapError

log = logging.getLogger(__name__)

#: Bumped when the cached export changes meaning (part of the cache file name).
CACHE_VERSION = 1
#: Largest |logit difference| allowed between a fresh export and the bundle.
EXPORT_TOLERANCE = 1e-3
MISSING_EXTRA = "--runtime onnxruntime needs onnxruntime and onnx: pip install 'ct-infer[onnx]'"


class Runtime(StrEnum):
    """``--runtime``: ``auto``, or the engine that runs a bundle."""

    AUTO = "auto"
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"


@frozen
class RuntimeChoice:
    """The runtime a run uses, and why (for the run's summary line)."""

    runtime: Runtime
    reason: str

    def describe(self) -> str:
        """e.g. ``onnxruntime: a bundle on a CPU in fp32``."""
        return f"{self.runtime.value}: {self.reason}"


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` (the ``ct-infer[onnx]`` extra) are importable."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def require_onnxruntime() -> None:
    """A one-line error naming the extra when ONNX Runtime is not installed."""
    if not onnxruntime_available():
        raise CamtrapError(MISSING_EXTRA)


def model_kind(path: str | os.PathLike[str]) -> Literal["bundle", "torchscript", "onnx"]:
    """What a model file is, by its name (as :func:`ct_infer.predictor.load_classifier`)."""
    name = Path(path).name
    if name.endswith(SUFFIX):
        return "bundle"
    return "onnx" if name.lower().endswith(".onnx") else "torchscript"


def choose_runtime(
    setting: Runtime | str,
    *,
    kind: Literal["bundle", "torchscript", "onnx"],
    device_type: str,
    fp32: bool,
    compile_model: bool,
    available: bool | None = None,
) -> RuntimeChoice:
    """The runtime ``setting`` means for a model of ``kind`` on ``device_type``.

    ``available`` (whether ONNX Runtime is installed) is probed when not given.
    """
    setting = Runtime(setting)
    if kind != "bundle":
        fixed = Runtime.ONNXRUNTIME if kind == "onnx" else Runtime.TORCH
        if setting not in (Runtime.AUTO, fixed):
            raise CamtrapError(
                f"--runtime {setting.value} cannot run a {kind} model: it runs on "
                f"{fixed.value} (bundles run on either)"
            )
        return RuntimeChoice(fixed, f"an {kind} export" if kind == "onnx" else f"a {kind} model")
    if setting is Runtime.TORCH:
        return RuntimeChoice(Runtime.TORCH, "as asked")
    if setting is Runtime.ONNXRUNTIME:
        if device_type != "cpu":
            raise CamtrapError(
                f"--runtime onnxruntime runs on the CPU, not {device_type}: "
                "use --device cpu, or --runtime torch"
            )
        require_onnxruntime()
        return RuntimeChoice(Runtime.ONNXRUNTIME, "as asked")
    if device_type != "cpu":
        return RuntimeChoice(Runtime.TORCH, f"a {device_type} device")
    if not fp32:
        return RuntimeChoice(Runtime.TORCH, "reduced precision runs on torch")
    if compile_model:
        return RuntimeChoice(Runtime.TORCH, "--compile asked")
    if not (onnxruntime_available() if available is None else available):
        return RuntimeChoice(Runtime.TORCH, "onnxruntime is not installed (ct-infer[onnx])")
    return RuntimeChoice(Runtime.ONNXRUNTIME, "a bundle on a CPU in fp32")


def onnx_cache_dir() -> Path:
    """Where exports are cached: ``$CT_INFER_CACHE``, else ``$XDG_CACHE_HOME/camtrap/onnx``,
    else ``~/.cache/camtrap/onnx``."""
    if explicit := os.environ.get("CT_INFER_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "camtrap" / "onnx"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cached_onnx(bundle_path: str | os.PathLike[str], cache_dir: Path | None = None) -> Path:
    """The bundle's ONNX export (raw logits), exported on first use and cached by content.

    The file is written atomically, so concurrent runs (several workers) never read a
    half-written export; a fresh export is checked against the bundle before it is kept.
    """
    from ct_infer.bundle import load_bundle
    from ct_infer.export import ONNX_OPSET, export_onnx, max_abs_difference

    src = Path(bundle_path)
    if not src.name.endswith(SUFFIX):
        raise CamtrapError(f"{src}: only bundles ({SUFFIX}) are exported for onnxruntime")
    folder = cache_dir or onnx_cache_dir()
    target = folder / f"{file_sha256(src)[:40]}-opset{ONNX_OPSET}-v{CACHE_VERSION}.onnx"
    if target.is_file():
        return target
    require_onnxruntime()
    bundle = load_bundle(src).with_meta(temperature=1.0)  # temperature applied outside
    try:
        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(bundle, target)
    except OSError as exc:
        raise CamtrapError(
            f"cannot write the ONNX cache in {folder} ({exc}); set CT_INFER_CACHE to a "
            "writable folder, or use --runtime torch"
        ) from None
    if (diff := max_abs_difference(bundle, target)) > EXPORT_TOLERANCE:
        target.unlink(missing_ok=True)
        raise CamtrapError(
            f"{src}: the ONNX export differs from the bundle by {diff:g} in logits; "
            "use --runtime torch"
        )
    log.info("exported %s to %s for onnxruntime", src, target)
    return target
