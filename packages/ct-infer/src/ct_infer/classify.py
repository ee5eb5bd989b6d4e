"""``ct-infer classify``: crop files → CSV of per-label probabilities, resumable.

The output has a ``path`` column (relative to the crops folder) and one probability column
per label, in the model's label order — the format of the seed's ``run_classifier.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from attrs import define, field

from ct_infer.chunked import ChunkedCsv
from ct_infer.data import (
    IMAGE_SUFFIXES,
    CropFilesDataset,
    default_workers,
    iterate_batches,
    list_image_files,
)
from ct_infer.precision import Precision
from ct_infer.runtime import Runtime
from ct_io.errors import CamtrapError
from ct_io.paths import unsafe_reason
from ct_io.tables import read_csv

if TYPE_CHECKING:
    from ct_infer.predictor import Predictor
    from ct_io.engines import EngineChoice
    from ct_io.md import MDResults
    from ct_io.storage import ImageStore

log = logging.getLogger(__name__)

#: Rows per atomic chunk of the output (a crash loses at most this much work).
CHUNK_ROWS = 4096


#: Default crops per batch by device type. On CPUs, batches past ~32 crops no longer fit
#: the caches and run slower per crop (EfficientNet-B0 in bf16 on 2 cores: 58 crops/s at
#: 32, 40 at 64); accelerators want large batches.
DEFAULT_BATCH_SIZES = {"cpu": 32, "cuda": 128, "mps": 64}


@define
class RunSettings:
    """How to run the network over many crops."""

    #: None: :data:`DEFAULT_BATCH_SIZES` for the device the predictor runs on.
    batch_size: int | None = None
    workers: int = field(factory=default_workers)
    device: str = "auto"
    precision: Precision = Precision.AUTO
    compile: bool = False
    #: torch or ONNX Runtime for a bundle (:class:`ct_infer.runtime.Runtime`)
    runtime: Runtime = Runtime.TORCH

    def batch_for(self, device_type: str) -> int:
        """The batch size to use on a device of this type (``cpu``, ``cuda``, ``mps``)."""
        return self.batch_size or DEFAULT_BATCH_SIZES.get(device_type, 32)


@define
class ClassifyReport:
    """What a classify run did."""

    total: int = 0
    skipped_done: int = 0
    classified: int = 0
    failed: dict[str, str] = field(factory=dict)
    seconds: float = 0.0

    @property
    def crops_per_second(self) -> float:
        return self.classified / self.seconds if self.seconds else 0.0


def crops_from_source(
    source: str | os.PathLike[str],
    crops_dir: str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Path | ImageStore, list[str]]:
    """The crops root and relative crop paths from a folder or a crops manifest CSV.

    A manifest is any CSV with a ``path`` column (``classification_ds.csv``, ct-crop's
    manifest); its paths are relative to ``crops_dir`` (default: the manifest's folder).
    The folder (``source`` or ``crops_dir``) may be an object-store URL (``s3://``,
    ``gs://``, ``az://``, an Azure container URL with a SAS token, or an ``https://`` base
    URL with a local manifest): the crops are then read from it without a local copy.
    """
    from ct_io.storage import is_remote, open_store

    if is_remote(source):
        if crops_dir is not None:
            raise CamtrapError(
                "give either a crops folder or a manifest with --crops-dir, not both"
            )
        store = open_store(source, storage_options=storage_options)
        if store.root.lower().endswith((".csv", ".csv.gz")):
            raise CamtrapError(
                f"{store.display()}: a manifest must be a local file — give the crops folder's "
                "URL, or a local manifest with --crops-dir URL"
            )
        paths = store.list_files(IMAGE_SUFFIXES)
        if not paths:
            raise CamtrapError(
                f"{store.display()}: no image files found (looked for .jpg, .png, ...)"
            )
        return store, paths
    if storage_options and not (crops_dir is not None and is_remote(crops_dir)):
        raise CamtrapError("--storage-option applies only to crops in object storage (a URL)")
    p = Path(source)
    if p.is_dir():
        if crops_dir is not None and Path(crops_dir) != p:
            raise CamtrapError(
                "give either a crops folder or a manifest with --crops-dir, not both"
            )
        paths = list_image_files(p)
        if not paths:
            raise CamtrapError(f"{p}: no image files found (looked for .jpg, .jpeg, .png, ...)")
        return p, paths
    if not p.is_file():
        raise CamtrapError(f"{p}: no such folder or manifest file")
    frame = read_csv(p, required=["path"], dtype={"path": str})
    root: Path | ImageStore = p.parent
    if crops_dir is not None:
        root = (
            open_store(crops_dir, storage_options=storage_options)
            if is_remote(crops_dir)
            else Path(crops_dir)
        )
    paths = list(dict.fromkeys(frame["path"].dropna().tolist()))
    bad = [(x, r) for x in paths if (r := unsafe_reason(x))]
    if bad:
        raise CamtrapError(
            f"{p}: {len(bad)} unsafe crop path(s), e.g. {bad[0][0]!r} ({bad[0][1]}) — paths must be relative to the crops folder"
        )
    return root, paths


def filter_by_detections(paths: Sequence[str], md: MDResults, threshold: float) -> list[str]:
    """Crops whose detection (named by the crop file) has at least ``threshold`` confidence."""
    from ct_infer.crops import parse_crop_name

    by_file = md.by_file()
    kept = []
    for path in paths:
        ref = parse_crop_name(path)
        im = by_file.get(ref.file) if ref else None
        dets = im.detections if im is not None else None
        if ref and dets and ref.index < len(dets) and dets[ref.index].conf >= threshold:
            kept.append(path)
    return kept


def predict_files(
    predictor: Predictor,
    root: Path | ImageStore,
    paths: Sequence[str],
    settings: RunSettings,
) -> Iterator[tuple[list[str], np.ndarray, dict[str, str]]]:
    """Yield (paths, probabilities, failures) per batch, in order."""
    dataset = CropFilesDataset(root, paths, predictor.classifier.preprocessing)
    pin = predictor.device.type == "cuda"
    for batch in iterate_batches(
        dataset,
        batch_size=settings.batch_for(predictor.device.type),
        workers=settings.workers,
        pin_memory=pin,
    ):
        ok = [i for i, e in enumerate(batch.errors) if e is None]
        failures = {
            paths[batch.indices[i]]: str(e) for i, e in enumerate(batch.errors) if e is not None
        }
        probs = (
            predictor.probabilities(
                batch.pixels[ok] if len(ok) < len(batch.indices) else batch.pixels
            )
            if ok
            else np.zeros((0, len(predictor.classifier.labels)), np.float32)
        )
        yield [paths[batch.indices[i]] for i in ok], probs, failures


def classify_crops(
    predictor: Predictor,
    root: Path | ImageStore,
    paths: Sequence[str],
    output: str | os.PathLike[str],
    settings: RunSettings,
    *,
    overwrite: bool = False,
    progress: bool = True,
    engine: EngineChoice | None = None,
    loader: Callable[[], Predictor] | None = None,
) -> ClassifyReport:
    """Classify every crop not already in ``output``; writes the CSV (or CSV.gz) atomically.

    With a distributed ``engine`` (``ray``), ``loader`` builds the predictor on each worker
    (:func:`ct_infer.engine_jobs.predictor_loader`); ``predictor`` gives the labels.
    """
    labels = predictor.classifier.labels
    out = ChunkedCsv(Path(output), ["path", *labels], overwrite=overwrite)
    todo = [x for x in paths if x not in out.done]
    report = ClassifyReport(total=len(paths), skipped_done=len(paths) - len(todo))
    if report.skipped_done:
        log.info(
            "resuming: %d of %d crops already classified in %s",
            report.skipped_done,
            len(paths),
            output,
        )
    if engine is not None and engine.engine != "local":
        if loader is None:
            raise CamtrapError(f"--engine {engine.engine} needs a predictor loader")
        return _classify_sharded(
            predictor, root, todo, out, settings, report, engine, loader, progress
        )
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    start = time.perf_counter()
    with progress_bar(progress, len(todo)) as advance:
        for batch_paths, probs, failures in predict_files(predictor, root, todo, settings):
            report.failed.update(failures)
            report.classified += len(batch_paths)
            if batch_paths:
                frame = pd.DataFrame(probs, columns=labels)
                frame.insert(0, "path", batch_paths)
                pending.append(frame)
                pending_rows += len(frame)
            if pending_rows >= CHUNK_ROWS:
                out.write(pd.concat(pending, ignore_index=True))
                pending, pending_rows = [], 0
            advance(len(batch_paths) + len(failures))
        if pending:
            out.write(pd.concat(pending, ignore_index=True))
    report.seconds = time.perf_counter() - start
    out.finish()
    for path, reason in list(report.failed.items())[:10]:
        log.warning("could not read crop %s: %s", path, reason)
    if len(report.failed) > 10:
        log.warning("... and %d more unreadable crops", len(report.failed) - 10)
    return report


def _classify_sharded(
    predictor: Predictor,
    root: Path | ImageStore,
    todo: Sequence[str],
    out: ChunkedCsv,
    settings: RunSettings,
    report: ClassifyReport,
    engine: EngineChoice,
    loader: Callable[[], Predictor],
    progress: bool,
) -> ClassifyReport:
    """Classify ``todo`` on a distributed engine: shards of crops beside the output, merged
    into it at the end (a rerun after a killed run skips the finished shards)."""
    import shutil

    from ct_infer.engine_jobs import (
        CLASSIFY_SHARD_CROPS,
        ClassifierModel,
        PrepareCropFiles,
        shard_frames,
    )
    from ct_io.clitools import progress_bar as rich_progress
    from ct_io.engines import JobSteps, read_shards

    steps = JobSteps(
        "classifying",
        out.output.with_name(out.output.name + ".shards"),
        PrepareCropFiles(root, predictor.classifier.preprocessing),
        model=ClassifierModel(loader, settings.batch_size, DEFAULT_BATCH_SIZES),
        unit="crops",
    )
    shards = engine.shards(todo, CLASSIFY_SHARD_CROPS, salt="classify")
    start = time.perf_counter()
    runner = engine.build(settings.workers)
    bar = rich_progress() if progress else None
    with bar if bar is not None else contextlib.nullcontext():
        runner.run(steps, shards, bar)
    for frame, failures in shard_frames(read_shards(steps, shards), predictor.classifier.labels):
        out.write(frame)
        report.classified += len(frame)
        report.failed.update({path: reason for path, _, reason in failures})
    report.seconds = time.perf_counter() - start
    out.finish()
    shutil.rmtree(steps.shard_dir, ignore_errors=True)
    return report


@contextlib.contextmanager
def progress_bar(
    enabled: bool, total: int, description: str = "classifying"
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (or nothing) giving an ``advance(n)`` function."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ct_io.clitools import err_console

    with Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def write_failures(report: ClassifyReport, output: str | os.PathLike[str]) -> Path | None:
    """List unreadable crops beside the output (``<output>.failed.csv``); None when none."""
    from ct_io.tables import write_csv

    target = Path(str(output) + ".failed.csv")
    if not report.failed:
        target.unlink(missing_ok=True)
        return None
    write_csv(
        pd.DataFrame({"path": list(report.failed), "reason": list(report.failed.values())}), target
    )
    return target
