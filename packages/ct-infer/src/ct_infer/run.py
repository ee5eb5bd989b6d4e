"""``ct-infer run``: the field user's one command, photos → MD JSON with species for Timelapse.

Video clips are served too: their sampled frames' detections are classified like photos,
smoothed within the clip and rolled up per clip (:mod:`ct_infer.video_merge`), and the
output holds MegaDetector's per-video entries (the form Timelapse imports).

images folder + MegaDetector JSON (or a detector plugin to make one) + bundle →
crops in memory → classify → optional target mapping, taxonomic rollup and sequence
smoothing → merged MD JSON, plus a summary of detections per predicted class.

Probabilities are kept beside the output (``<output>.classifications.csv.gz``) in
resumable chunks, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from attrs import define, evolve, field

from ct_infer.chunked import ChunkedCsv
from ct_infer.classify import RunSettings, progress_bar
from ct_infer.crops import crop_name
from ct_infer.image_crops import BoxJob, CropPolicy, ImageCrops
from ct_infer.merge import MergeOptions, MergeReport
from ct_infer.rollup import map_targets
from ct_infer.video_crops import MediaCropsDataset
from ct_infer.video_merge import merge_media
from ct_io.errors import CamtrapError
from ct_io.md import MDResults
from ct_io.video import Sampling, is_video_file

if TYPE_CHECKING:
    from ct_infer.predictor import Predictor
    from ct_io.engines import EngineChoice
    from ct_io.plugins import CamtrapPluginManager
    from ct_io.storage import ImageStore

log = logging.getLogger(__name__)

CHUNK_ROWS = 4096


@define
class RunOptions:
    """What ``run`` does beyond classifying."""

    detection_threshold: float = 0.2
    categories: tuple[str, ...] = ("animal",)
    merge: MergeOptions = field(factory=MergeOptions)
    #: Target → classifier labels: report these categories instead (probabilities summed).
    target_mapping: Mapping[str, Sequence[str]] | None = None
    # rollup: ``merge.rollup_threshold`` and ``merge.lineages`` (see ct_infer.rollup)
    sequence_gap: float | None = None
    overwrite: bool = False


@define
class RunReport:
    """What a run did."""

    images: int = 0
    boxes: int = 0
    classified: int = 0
    resumed: int = 0
    failures: list[tuple[str, int | None, str]] = field(factory=list)
    merge: MergeReport | None = None
    summary: pd.DataFrame | None = None
    seconds: float = 0.0


def box_jobs(
    md: MDResults, threshold: float, categories: Sequence[str]
) -> list[tuple[str, list[BoxJob]]]:
    """Per image (a clip: per sampled frame), the detections to classify (category kept,
    conf >= threshold, has a box)."""
    from ct_io.md_video import to_frame_level

    md = to_frame_level(md)[0]
    keep = {
        cid
        for cid, name in md.detection_categories.items()
        if name in categories or cid in categories
    }
    if not keep:
        raise CamtrapError(
            f"no detection category matches {', '.join(categories)} (known: {', '.join(md.detection_categories.values())})"
        )
    jobs = []
    for im in md.images:
        boxes = [
            BoxJob(k, tuple(float(v) for v in det.bbox))  # type: ignore[arg-type]
            for k, det in enumerate(im.detections or [])
            if det.category in keep and det.conf >= threshold and det.bbox is not None
        ]
        if boxes:
            jobs.append((im.file, boxes))
    return jobs


def _identity(item: Any) -> Any:
    """No collation (module level, so spawned workers on macOS/Windows can pickle it)."""
    return item


def _crop_batches(dataset: MediaCropsDataset, settings: RunSettings) -> Iterator[list[ImageCrops]]:
    from torch.utils.data import DataLoader

    loader: Any = DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=None,
        shuffle=False,
        num_workers=settings.workers,
        prefetch_factor=8 if settings.workers else None,
        collate_fn=_identity,
    )
    yield from loader


def classify_images(
    predictor: Predictor,
    images_dir: Path | ImageStore,
    md: MDResults,
    output_csv: Path,
    settings: RunSettings,
    options: RunOptions,
    *,
    version: str = "det",
    progress: bool = True,
    engine: EngineChoice | None = None,
    loader: Callable[[], Predictor] | None = None,
) -> tuple[pd.DataFrame, RunReport]:
    """Classify every kept detection; returns the probabilities table (``path`` = crop name).

    With a distributed ``engine``, ``loader`` builds the predictor on each worker."""
    labels = predictor.classifier.labels
    meta_crop = predictor.classifier.meta.crop if predictor.classifier.meta else {"square": True}
    policy = CropPolicy.from_meta(meta_crop)
    jobs = box_jobs(md, options.detection_threshold, options.categories)
    out = ChunkedCsv(output_csv, ["path", *labels], overwrite=options.overwrite)
    report = RunReport(images=len(jobs), boxes=sum(len(b) for _, b in jobs))
    todo = []
    for file, boxes in jobs:
        left = [b for b in boxes if crop_name(file, b.index, version) not in out.done]
        report.resumed += len(boxes) - len(left)
        if left:
            todo.append((file, left))
    if engine is not None and engine.engine != "local":
        if loader is None:
            raise CamtrapError(f"--engine {engine.engine} needs a predictor loader")
        _classify_sharded(
            predictor,
            images_dir,
            todo,
            out,
            settings,
            policy,
            version,
            engine,
            loader,
            report,
            progress,
        )
        return out.finish(), report
    dataset = MediaCropsDataset(images_dir, todo, predictor.classifier.preprocessing, policy)
    names: list[str] = []
    pixels: list[np.ndarray] = []
    pending: list[pd.DataFrame] = []

    batch_size = settings.batch_for(predictor.device.type)

    def flush(final: bool = False) -> None:
        import torch

        while len(names) >= batch_size or (final and names):
            n = min(batch_size, len(names))
            probs = predictor.probabilities(torch.from_numpy(np.stack(pixels[:n])))
            frame = pd.DataFrame(probs, columns=labels)
            frame.insert(0, "path", names[:n])
            pending.append(frame)
            del names[:n], pixels[:n]
            report.classified += n
        if pending and (final or sum(len(f) for f in pending) >= CHUNK_ROWS):
            out.write(pd.concat(pending, ignore_index=True))
            pending.clear()

    start = time.perf_counter()
    with progress_bar(progress, len(dataset)) as advance:
        for items in _crop_batches(dataset, settings):
            for item in items:
                report.failures.extend((item.file, k, reason) for k, reason in item.failures)
                names.extend(crop_name(item.file, k, version) for k in item.indices)
                pixels.extend(item.pixels)
                flush()
            advance(1)
        flush(final=True)
    report.seconds = time.perf_counter() - start
    return out.finish(), report


def _classify_sharded(
    predictor: Predictor,
    images_dir: Path | ImageStore,
    todo: list[tuple[str, list[BoxJob]]],
    out: ChunkedCsv,
    settings: RunSettings,
    policy: CropPolicy,
    version: str,
    engine: EngineChoice,
    loader: Callable[[], Predictor],
    report: RunReport,
    progress: bool,
) -> None:
    """``classify_images`` on a distributed engine: shards of images beside the output CSV,
    merged into it at the end (a rerun after a killed run skips the finished shards)."""
    import contextlib
    import shutil

    from ct_infer.classify import DEFAULT_BATCH_SIZES
    from ct_infer.engine_jobs import (
        RUN_SHARD_IMAGES,
        ClassifierModel,
        PrepareImageCrops,
        shard_frames,
    )
    from ct_io.clitools import progress_bar as rich_progress
    from ct_io.engines import JobSteps, read_shards

    steps = JobSteps(
        "classifying",
        out.output.with_name(out.output.name + ".shards"),
        PrepareImageCrops(images_dir, predictor.classifier.preprocessing, policy, version),
        model=ClassifierModel(loader, settings.batch_size, DEFAULT_BATCH_SIZES),
    )
    shards = engine.shards(todo, RUN_SHARD_IMAGES, salt="run")
    start = time.perf_counter()
    bar = rich_progress() if progress else None
    with bar if bar is not None else contextlib.nullcontext():
        engine.build(settings.workers).run(steps, shards, bar)
    for frame, failures in shard_frames(read_shards(steps, shards), predictor.classifier.labels):
        out.write(frame)
        report.classified += len(frame)
        report.failures.extend(failures)
    report.seconds = time.perf_counter() - start
    shutil.rmtree(steps.shard_dir, ignore_errors=True)


def summarize(result: MDResults) -> pd.DataFrame:
    """Detections per top predicted class, and video clips per top class of their roll-up."""
    from ct_io.md_video import CLIP_CLASSIFICATIONS

    cats = result.classification_categories or {}
    tops = [
        cats.get(d.classifications[0][0], "?")
        for _, _, d in result.iter_detections()
        if d.classifications
    ]
    clip_tops = [
        cats.get(rolled[0][0], "?")
        for im in result.images
        if (rolled := im.extra.get(CLIP_CLASSIFICATIONS))
    ]
    detections = pd.Series(tops, dtype=object).value_counts()
    clips = pd.Series(clip_tops, dtype=object).value_counts()
    frame = pd.DataFrame({"detections": detections, "clips": clips}).fillna(0).astype("int64")
    frame = frame.sort_values(["detections", "clips"], ascending=False, kind="stable")
    return frame.rename_axis("class").reset_index().astype({"class": str})


def sequences_for(
    images_dir: Path | ImageStore, files: Sequence[str], gap: float
) -> dict[str, str]:
    """Sequences from EXIF capture times of images in the same folder."""
    from ct_infer.smoothing import capture_time, sequences_from_times
    from ct_io.paths import safe_join
    from ct_io.storage import split_root

    folder, store = split_root(images_dir)
    if store is None:
        times = {f: capture_time(safe_join(folder, f)) for f in files}
    else:
        import io

        times = {}
        for f in files:
            try:
                times[f] = capture_time(io.BytesIO(store.read_bytes(f)))  # type: ignore[arg-type]
            except OSError:  # counted already as a failed image
                times[f] = None
    return sequences_from_times(times, gap)


def run_pipeline(
    predictor: Predictor,
    images_dir: Path | ImageStore,
    md: MDResults,
    output: Path,
    settings: RunSettings,
    options: RunOptions,
    *,
    progress: bool = True,
    engine: EngineChoice | None = None,
    loader: Callable[[], Predictor] | None = None,
) -> RunReport:
    """Everything after detection; writes ``output`` (MD JSON) and returns the report."""
    from ct_io.md import write_md

    csv = output.with_name(output.name + ".classifications.csv.gz")
    frame, report = classify_images(
        predictor,
        images_dir,
        md,
        csv,
        settings,
        options,
        progress=progress,
        engine=engine,
        loader=loader,
    )
    labels = list(predictor.classifier.labels)
    if options.target_mapping is not None:
        frame, labels = map_targets(frame, labels, options.target_mapping)
    merge_opts = options.merge
    if options.sequence_gap is not None:
        photos = [im.file for im in md.images if im.detections and not is_video_file(im.file)]
        seqs = sequences_for(images_dir, photos, options.sequence_gap)
        merge_opts = evolve(merge_opts, sequences=seqs)
    result, report.merge = merge_media(
        md, frame, labels, merge_opts, frame_rates=frame_rates(images_dir, md)
    )
    write_md(result, output)
    report.summary = summarize(result)
    from ct_io.tables import write_csv

    write_csv(report.summary, output.with_name(output.stem + ".summary.csv"))
    return report


def frame_rates(images_dir: Path | ImageStore, md: MDResults) -> dict[str, float] | None:
    """Frame rates of the clips ``md`` has frame-level entries for (read from the clips),
    so the output can be MegaDetector's per-video form; None when there are none."""
    from ct_io.md_video import frame_entries
    from ct_io.paths import safe_join
    from ct_io.storage import split_root
    from ct_io.video import VideoError, probe

    clips = {clip for clip, _, _ in frame_entries(md)}
    rates = {}
    images_dir, store = split_root(images_dir)
    for clip in sorted(clips):
        if store is not None:
            try:
                with store.local_copy(clip) as local:
                    rates[clip] = probe(local).frame_rate
            except (CamtrapError, VideoError, OSError):
                continue
            continue
        try:
            path = safe_join(images_dir, clip)
            if not path.is_dir():  # a folder: frames extracted to files, rate unknown
                rates[clip] = probe(path).frame_rate
        except (CamtrapError, VideoError):
            continue
    return rates or None


def detect_images(
    detector_name: str,
    detector_options: Mapping[str, object],
    images_dir: Path | ImageStore,
    cache: Path,
    pm: CamtrapPluginManager | None = None,
    sampling: Sampling | None = None,
) -> MDResults:
    """Run a detector plugin over every image and clip of ``images_dir`` (clips on their
    ``sampling`` frames, see :mod:`ct_crop.video_detect`); cached in ``cache`` (MD JSON)."""
    from ct_crop.detectors import detection_categories, get_detector
    from ct_crop.video_detect import DEFAULT_SAMPLING, detect_media
    from ct_infer.data import list_image_files
    from ct_io.md import MDInfo, read_md, write_md
    from ct_io.storage import split_root

    if cache.is_file():
        log.info("using detections cached in %s", cache)
        return read_md(cache)
    detector = get_detector(detector_name, detector_options, pm)
    folder, store = split_root(images_dir)
    if store is None:
        files = list_image_files(folder, videos=True)
        media = detect_media(detector, folder, files, sampling or DEFAULT_SAMPLING)
    else:
        from ct_crop.store_detect import detect_store
        from ct_infer.data import IMAGE_SUFFIXES
        from ct_io.video import VIDEO_EXTENSIONS

        files = store.list_files((*IMAGE_SUFFIXES, *VIDEO_EXTENSIONS))
        media = detect_store(detector, store, files, sampling or DEFAULT_SAMPLING)
    if not files:
        where = folder if store is None else store.display()
        raise CamtrapError(f"{where}: no images or video clips found")
    entries = sorted(media, key=lambda e: e.file)
    md = MDResults(
        info=MDInfo(detector=getattr(detector, "version", detector_name)),
        detection_categories=detection_categories(detector),
        images=entries,
    )
    write_md(md, cache)
    return md


def default_paths(output: Path) -> dict[str, Path]:
    """The files ``run`` writes next to ``output``."""
    return {
        "classifications": output.with_name(output.name + ".classifications.csv.gz"),
        "summary": output.with_name(output.stem + ".summary.csv"),
        "detections": output.with_name(output.stem + ".detections.json"),
    }


def check_images_dir(
    images_dir: str | os.PathLike[str] | ImageStore,
) -> Path | ImageStore:
    """The image root: a folder that must exist, or an object store (checked when read)."""
    from ct_io.storage import ImageStore

    if isinstance(images_dir, ImageStore):
        if not images_dir.is_local:
            images_dir.filesystem()  # missing credentials or back-end: one clear error now
            return images_dir
        images_dir = images_dir.root
    p = Path(images_dir)
    if not p.is_dir():
        raise CamtrapError(f"{p}: images folder not found")
    return p
