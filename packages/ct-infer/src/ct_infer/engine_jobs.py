"""``classify`` and ``run`` as engine jobs (see :mod:`ct_io.engines`): what a shard is,
how it is prepared on a CPU, and the classifier applied to it once per worker.

A classify shard is a group of crop paths, prepared into uint8 network inputs; a run shard
is a group of images (or clips) with their boxes, cropped in memory exactly as the local
engine does. The classifier turns a prepared shard into ``(names, probabilities,
failures)``; the command merges the shards into its usual CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import field, frozen

from ct_infer.image_crops import BoxJob, CropPolicy
from ct_infer.preprocessing import Preprocessing

if TYPE_CHECKING:
    import pandas as pd

    from ct_infer.predictor import Predictor
    from ct_io.storage import ImageStore

#: Crops per shard (classify) and images per shard (run); ``--shard-size`` changes them.
CLASSIFY_SHARD_CROPS = 256
RUN_SHARD_IMAGES = 64


@frozen
class Prepared:
    """A prepared shard: crop names, their network inputs, and what failed (name → reason)."""

    names: list[str]
    pixels: np.ndarray  # (N, size, size, 3) uint8
    failures: list[tuple[str, int | None, str]]


@frozen
class Classified:
    """A classified shard, as written to its shard file."""

    names: list[str]
    probs: np.ndarray  # (N, labels) float32
    failures: list[tuple[str, int | None, str]]


def _stack(pixels: Sequence[np.ndarray], size: int) -> np.ndarray:
    return np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)


@frozen
class PrepareCropFiles:
    """Read and resize crop files (relative to ``root``, a folder or an object store), as
    ``ct-infer classify`` does."""

    root: Path | ImageStore
    prep: Preprocessing

    def __call__(self, paths: Sequence[str]) -> Prepared:
        from ct_infer.data import CropFilesDataset

        dataset = CropFilesDataset(self.root, paths, self.prep)
        names: list[str] = []
        pixels: list[np.ndarray] = []
        failures: list[tuple[str, int | None, str]] = []
        for i, path in enumerate(paths):
            item = dataset[i]
            if item.error is None:
                names.append(path)
                pixels.append(item.pixels)
            else:
                failures.append((path, None, item.error))
        return Prepared(names, _stack(pixels, self.prep.input_size), failures)


@frozen
class PrepareImageCrops:
    """Crop images' boxes in memory, as ``ct-infer run`` does (named like crop files)."""

    images_dir: Path | ImageStore
    prep: Preprocessing
    policy: CropPolicy
    version: str

    def __call__(self, jobs: Sequence[tuple[str, list[BoxJob]]]) -> Prepared:
        from ct_infer.crops import crop_name
        from ct_infer.video_crops import MediaCropsDataset

        dataset = MediaCropsDataset(self.images_dir, list(jobs), self.prep, self.policy)
        names: list[str] = []
        pixels: list[np.ndarray] = []
        failures: list[tuple[str, int | None, str]] = []
        for i in range(len(dataset)):
            for item in dataset[i]:
                failures.extend((item.file, k, reason) for k, reason in item.failures)
                names.extend(crop_name(item.file, k, self.version) for k in item.indices)
                pixels.extend(item.pixels)
        return Prepared(names, _stack(pixels, self.prep.input_size), failures)


@frozen
class ClassifierModel:
    """The engine's ``model`` step: ``load()`` builds the predictor once per worker."""

    load: Callable[[], Predictor]
    batch_size: int | None = None
    #: Batch size by device type when ``batch_size`` is None (``classify.DEFAULT_BATCH_SIZES``).
    defaults: Mapping[str, int] = field(factory=dict)

    def __call__(self) -> Callable[[Prepared], Classified]:
        predictor = self.load()
        batch = self.batch_size or self.defaults.get(predictor.device.type, 32)

        def apply(prepared: Prepared) -> Classified:
            import torch

            n = len(prepared.names)
            parts = [
                predictor.probabilities(torch.from_numpy(prepared.pixels[i : i + batch]))
                for i in range(0, n, batch)
            ]
            width = len(predictor.classifier.labels)
            probs = np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
            return Classified(prepared.names, probs.astype(np.float32), prepared.failures)

        return apply


def shard_frames(
    results: Iterable[tuple[Any, Classified]], labels: Sequence[str]
) -> Iterator[tuple[pd.DataFrame, list[tuple[str, int | None, str]]]]:
    """(shard, Classified) pairs → per shard, a ``path`` + label columns frame and failures."""
    import pandas as pd

    for _, done in results:
        frame = pd.DataFrame(done.probs, columns=list(labels))
        frame.insert(0, "path", done.names)
        yield frame, done.failures


def predictor_loader(
    model: Path,
    label_index: Path | None,
    image_size: int | None,
    device: str,
    precision: Any,
    compile_model: bool,
    calibrate: bool = True,
    runtime: str = "torch",
) -> Predictor:
    """Load the predictor as the CLIs do (a module-level function, so it pickles); on a
    worker, ``device="auto"`` picks that worker's GPU when it has one.

    ``runtime`` (:class:`ct_infer.runtime.Runtime`) decides whether a bundle runs on torch
    or on ONNX Runtime from its cached export."""
    from ct_infer.precision import resolve_precision
    from ct_infer.predictor import Predictor, load_bundle_onnx, load_classifier, pick_device
    from ct_infer.runtime import Runtime, choose_runtime, model_kind
    from ct_io.tables import read_label_index

    asked_ort = Runtime(runtime) is Runtime.ONNXRUNTIME
    device_type = "cpu" if asked_ort and device == "auto" else pick_device(device).type
    choice = choose_runtime(
        runtime,
        kind=model_kind(model),
        device_type=device_type,
        fp32=not resolve_precision(precision, device_type).autocast,
        compile_model=compile_model,
    )
    if choice.runtime is Runtime.ONNXRUNTIME and model_kind(model) == "bundle":
        classifier = load_bundle_onnx(model)
    else:
        labels = read_label_index(label_index) if label_index else None
        classifier = load_classifier(model, labels=labels, input_size=image_size)
    return Predictor(
        classifier,
        device=device,
        precision=precision,
        compile=compile_model,
        calibrate=calibrate,
        runtime=choice,
    )
