"""Turn a bundle or an exported model into a fast batch predictor.

The predictor takes batches of uint8 crops (N, H, W, 3) straight from the data loader,
normalizes them on the device, runs the network in channels-last layout (under bf16/fp16
autocast where :mod:`ct_infer.precision` picks it, optionally ``torch.compile``) and returns
class probabilities.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from attrs import define, field

from ct_infer.backbones import model_from_bundle
from ct_infer.bundle import ONNX_META, SUFFIX, TORCHSCRIPT_META, BundleMeta, load_bundle
from ct_infer.precision import Precision, Resolved, resolve_precision
from ct_infer.preprocessing import Preprocessing
from ct_infer.runtime import Runtime, RuntimeChoice
from ct_io.errors import CamtrapError

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"] | str


@define
class LoadedClassifier:
    """A classifier ready to run: a logits function plus what it needs around it."""

    labels: list[str]
    preprocessing: Preprocessing
    kind: Literal["bundle", "torchscript", "onnx"]
    name: str
    module: Any  # torch.nn.Module / ScriptModule, or an onnxruntime session
    temperature: float = 1.0
    meta: BundleMeta | None = None
    #: Whether ``module`` already divides its logits by ``temperature`` (exports do).
    calibrated_inside: bool = False
    extra: dict[str, Any] = field(factory=dict)

    @property
    def multilabel(self) -> bool:
        """A sigmoid per label (several labels per crop) instead of one softmax."""
        return bool(self.meta is not None and self.meta.multilabel)


def pick_device(choice: DeviceChoice = "auto") -> torch.device:
    """``auto`` → CUDA if present, else Apple MPS, else CPU; otherwise what was asked."""
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise CamtrapError(
            f"unknown device {choice!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CamtrapError(
            f"device {choice!r} asked for but CUDA is not available; use --device cpu"
        )
    return device


def load_classifier(
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    input_size: int | None = None,
) -> LoadedClassifier:
    """Load a bundle (``.safetensors``), a TorchScript export (``.pt``) or an ONNX export.

    Exports made by ``ct-infer export`` carry their labels and preprocessing; a foreign
    TorchScript model (such as MegaClassifier's compiled file) needs ``labels`` (its label
    index) and ``input_size``, and is assumed to expect ImageNet normalization.
    """
    p = Path(path)
    if not p.is_file():
        raise CamtrapError(f"{p}: model file not found")
    if p.name.endswith(SUFFIX):
        bundle = load_bundle(p)
        meta = bundle.meta
        return LoadedClassifier(
            list(meta.labels),
            meta.preprocessing,
            "bundle",
            meta.name or p.stem,
            model_from_bundle(bundle),
            temperature=meta.temperature,
            meta=meta,
        )
    if p.suffix.lower() == ".onnx":
        return _load_onnx(p, labels, input_size)
    return _load_torchscript(p, labels, input_size)


def _meta_or_args(
    meta_json: str | None, p: Path, labels: Sequence[str] | None, input_size: int | None
) -> tuple[list[str], Preprocessing, float, BundleMeta | None]:
    if meta_json:
        meta = BundleMeta.from_json(json.loads(meta_json), str(p))
        return list(meta.labels), meta.preprocessing, meta.temperature, meta
    if not labels or not input_size:
        raise CamtrapError(
            f"{p}: a model without camtrap metadata needs --label-index and --image-size"
        )
    return list(labels), Preprocessing(int(input_size)), 1.0, None


def _load_torchscript(
    p: Path, labels: Sequence[str] | None, input_size: int | None
) -> LoadedClassifier:
    import torch

    extra = {TORCHSCRIPT_META: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CamtrapError(
            f"{p}: not a TorchScript model ({first}); bundles end in {SUFFIX}"
        ) from None
    lab, prep, temp, meta = _meta_or_args(extra[TORCHSCRIPT_META] or None, p, labels, input_size)
    return LoadedClassifier(
        lab,
        prep,
        "torchscript",
        p.stem,
        module.eval(),
        temperature=temp,
        meta=meta,
        calibrated_inside=meta is not None,
    )


def _load_onnx(p: Path, labels: Sequence[str] | None, input_size: int | None) -> LoadedClassifier:
    session = onnx_session(p)
    meta_json = session.get_modelmeta().custom_metadata_map.get(ONNX_META)
    lab, prep, temp, meta = _meta_or_args(meta_json, p, labels, input_size)
    return LoadedClassifier(
        lab,
        prep,
        "onnx",
        p.stem,
        session,
        temperature=temp,
        meta=meta,
        calibrated_inside=meta is not None,
    )


def load_bundle_onnx(path: str | os.PathLike[str]) -> LoadedClassifier:
    """A bundle run by ONNX Runtime, from its cached export (made on first use; see
    :mod:`ct_infer.runtime`). The temperature is applied outside, as for the bundle."""
    from ct_infer.bundle import read_bundle_meta
    from ct_infer.runtime import cached_onnx

    p = Path(path)
    meta = read_bundle_meta(p)
    return LoadedClassifier(
        list(meta.labels),
        meta.preprocessing,
        "onnx",
        meta.name or p.name.removesuffix(SUFFIX),
        onnx_session(cached_onnx(p)),
        temperature=meta.temperature,
        meta=meta,
    )


def onnx_session(p: Path) -> Any:
    """An ONNX Runtime session tuned for batch throughput: every graph optimization, one
    operator at a time over as many threads as torch uses (the machine's cores)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CamtrapError("ONNX models need onnxruntime: pip install 'ct-infer[onnx]'") from None
    import torch

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: no per-session warnings
    providers = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
    try:
        return ort.InferenceSession(str(p), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception classes
        raise CamtrapError(f"{p}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from None


class Predictor:
    """Batches of uint8 HWC crops in, probabilities out (on the chosen device)."""

    def __init__(
        self,
        classifier: LoadedClassifier,
        *,
        device: DeviceChoice = "auto",
        precision: Precision | str = Precision.AUTO,
        compile: bool = False,
        calibrate: bool = True,
        runtime: RuntimeChoice | None = None,
    ) -> None:
        import torch

        self.classifier = classifier
        #: the engine running the network, and why
        self.runtime = runtime or RuntimeChoice(
            Runtime.ONNXRUNTIME if classifier.kind == "onnx" else Runtime.TORCH,
            f"a {classifier.kind} model",
        )
        self.device = pick_device(device) if classifier.kind != "onnx" else torch.device("cpu")
        #: the precision this predictor runs in, and why
        self.precision = (
            Resolved(Precision.FP32, "onnxruntime runs in fp32")
            if classifier.kind == "onnx"
            else resolve_precision(precision, self.device.type)
        )
        self._autocast_dtype = self.precision.dtype()
        prep = classifier.preprocessing
        self._mean = torch.tensor(prep.mean, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(prep.std, device=self.device).view(1, 3, 1, 1) * 255
        apply_t = calibrate and not classifier.calibrated_inside and classifier.temperature != 1.0
        self.temperature = classifier.temperature if apply_t else 1.0
        self._forward = self._make_forward(compile)

    def _make_forward(self, compile_model: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        import torch

        c = self.classifier
        if c.kind == "onnx":
            session = c.module
            input_name = session.get_inputs()[0].name

            def run_onnx(x: torch.Tensor) -> torch.Tensor:
                out = session.run(None, {input_name: x.float().contiguous().numpy()})[0]
                return torch.from_numpy(out)

            return run_onnx
        module = c.module.to(self.device)
        if c.kind == "bundle":
            module = module.to(memory_format=torch.channels_last)
            if compile_model:
                module = torch.compile(module)
        return module

    def normalize(self, batch_hwc: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) → normalized float (N, 3, H, W), channels-last in memory."""
        import torch

        x = batch_hwc.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last)

    def logits(self, batch_hwc: torch.Tensor) -> torch.Tensor:
        """Raw (temperature-scaled where calibrated) logits as float32 on the CPU."""
        import torch

        x = self.normalize(batch_hwc)
        with torch.inference_mode():
            if self._autocast_dtype is not None:
                with torch.autocast(self.device.type, dtype=self._autocast_dtype):
                    out = self._forward(x)
            else:
                out = self._forward(x)
            out = out.float()
            if self.temperature != 1.0:
                out = out / self.temperature
        return out.cpu()

    def probabilities(self, batch_hwc: torch.Tensor) -> np.ndarray:
        """Softmax probabilities (N, num_labels) as a float32 array; for a multi-label
        classifier, each label's own sigmoid."""
        logits = self.logits(batch_hwc)
        if self.classifier.multilabel:
            return logits.sigmoid().numpy()
        return logits.softmax(dim=1).numpy()
