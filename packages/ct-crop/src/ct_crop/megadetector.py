"""The built-in ``megadetector`` detector: MegaDetector through the ``megadetector`` package.

Needs ``pip install megadetector`` (and its PyTorch stack) plus a model file the user
downloaded (``-o model_file=md_v5a.0.0.pt``). It never downloads weights: a model name
such as ``MDV5A`` instead of an existing file is refused with a hint.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from attrs import define

from ct_io.errors import PluginError
from ct_io.md import MDDetection, MDImage


@define
class MegaDetectorOptions:
    """Options of the ``megadetector`` detector."""

    #: Path of a MegaDetector model file (``.pt``; ``.pb`` for v4 with TensorFlow).
    model_file: Path
    #: Version string for crop names and the cache (default: the model file's name).
    version: str | None = None
    #: Keep detections at or above this confidence (MegaDetector's output default).
    threshold: float = 0.005
    force_cpu: bool = False
    #: Inference size (long side); None uses the model's default.
    image_size: int | None = None


class MegaDetector:
    """Runs a MegaDetector model file on images, yielding MD JSON entries."""

    def __init__(self, options: MegaDetectorOptions) -> None:
        if importlib.util.find_spec("megadetector") is None:
            raise PluginError(
                "detector 'megadetector' needs the megadetector package — pip install megadetector"
            )
        model = Path(options.model_file)
        if not model.is_file():
            raise PluginError(
                f"MegaDetector model file {model} not found — download it (e.g. md_v5a.0.0.pt from the MegaDetector "
                "releases) and pass -o model_file=PATH; ct-crop never downloads weights"
            )
        self.options = options
        self.model_file = model
        self.version = options.version or model.stem
        self._model: Any = None
        self.detection_categories = {"1": "animal", "2": "person", "3": "vehicle"}

    def _load(self) -> Any:
        if self._model is None:
            from megadetector.detection import run_detector

            self._model = run_detector.load_detector(
                str(self.model_file), force_cpu=self.options.force_cpu
            )
            self.detection_categories = dict(
                getattr(run_detector, "DEFAULT_DETECTOR_LABEL_MAP", self.detection_categories)
            )
        return self._model

    def detect(self, images_dir: Path, files: Sequence[str]) -> Iterator[MDImage]:
        """One entry per file; unreadable images get ``failure`` set instead of raising."""
        from megadetector.visualization import visualization_utils as vis

        model = self._load()
        for file in files:
            try:
                image = vis.load_image(str(Path(images_dir) / file))
                result = model.generate_detections_one_image(
                    image,
                    file,
                    detection_threshold=self.options.threshold,
                    image_size=self.options.image_size,
                )
            except Exception as exc:  # one bad image must not stop the batch
                yield MDImage(file=file, detections=None, failure=f"{type(exc).__name__}: {exc}")
                continue
            yield md_image_from_dict(file, result)

    def detect_frames(self, frames: Iterable[tuple[str, Any]]) -> Iterator[MDImage]:
        """One entry per in-memory video frame ``(name, PIL image)`` (no JPEG round trip)."""
        model = self._load()
        for name, image in frames:
            try:
                result = model.generate_detections_one_image(
                    image,
                    name,
                    detection_threshold=self.options.threshold,
                    image_size=self.options.image_size,
                )
            except Exception as exc:  # one bad frame must not stop the clip
                yield MDImage(file=name, detections=None, failure=f"{type(exc).__name__}: {exc}")
                continue
            yield md_image_from_dict(name, result)


def md_image_from_dict(file: str, result: dict[str, Any]) -> MDImage:
    """MegaDetector's per-image result dict → ``MDImage``."""
    if result.get("failure"):
        return MDImage(file=file, detections=None, failure=str(result["failure"]))
    dets = [
        MDDetection(
            category=str(d["category"]), conf=float(d["conf"]), bbox=[float(v) for v in d["bbox"]]
        )
        for d in result.get("detections") or []
    ]
    return MDImage(file=file, detections=dets)
