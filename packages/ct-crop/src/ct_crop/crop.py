"""The batch cropper: every box of every image, in parallel, resumable, atomic.

Per image (in a worker process): read the header, plan every crop
(:mod:`ct_crop.geometry`), skip crops whose file exists, decode the image once — at
reduced size when every remaining crop allows it — and write each crop through a
temporary file renamed into place. The main process gathers one manifest row per crop
(made now or earlier: rows depend only on the inputs and the image header) and writes
``crops.csv`` and ``crop_failures.csv`` at the end, sorted. A run killed at any point
leaves only whole crops plus temporaries in ``.ct-crop-tmp/``, which the next run
deletes; rerunning the same command then gives exactly the files and manifest of an
uninterrupted run.

Frames of video clips (jobs named ``clip.mp4/frame000120.jpg``) are cropped per clip,
each clip decoded once for all of its frames (:mod:`ct_crop.video_crop`).

``crop_settings.json`` records the settings that change pixels (strategy, margin, size,
quality...); a rerun with other settings into the same folder is refused (use
``overwrite``), so a folder never mixes crops made two ways.
"""

from __future__ import annotations

import functools
import io
import math
import multiprocessing
import os
import shutil
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define, field, frozen

from ct_crop.boxes import BoxSelection, BoxSpec, ImageJob, Skipped, build_jobs
from ct_crop.geometry import (
    CropRegion,
    UnusableBoxError,
    crop_region,
    decode_scale,
    normalized_to_pixels,
    output_size,
)
from ct_crop.images import FailureKind, ImageLoadError, decode_image, open_image, read_image
from ct_crop.settings import CropSettings, RunOptions
from ct_crop.video_crop import VideoJob, group_video_jobs
from ct_io.errors import CamtrapError, UnsafePathError
from ct_io.paths import safe_join, unsafe_reason
from ct_io.video import Sampling, VideoError, probe, read_frames, source_file

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.cct import CocoCameraTraps
    from ct_io.engines import EngineChoice
    from ct_io.md import MDResults
    from ct_io.storage import ImageStore

TMP_DIR_NAME = ".ct-crop-tmp"
SETTINGS_NAME = "crop_settings.json"
FULL_IMAGES_DIR = "full_images"


@define
class CropSummary:
    """What a run did."""

    images: int = 0
    crops_made: int = 0
    crops_existing: int = 0
    boxes_skipped: int = 0
    images_failed: int = 0
    rows: list[dict[str, Any]] = field(factory=list)
    failures: list[dict[str, Any]] = field(factory=list)

    @property
    def crops(self) -> int:
        return self.crops_made + self.crops_existing


@frozen
class ImageResult:
    rows: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    made: int
    existing: int
    images: int = 1  #: a clip's result covers each of its frames


@frozen
class _Context:
    images_dir: Path
    out_dir: Path
    tmp_dir: Path
    settings: CropSettings
    options: RunOptions
    store: ImageStore | None = None  #: a remote image root (None: ``images_dir``)


# --------------------------------------------------------------------------- per image


def crop_image(job: ImageJob, ctx: _Context) -> ImageResult:
    """Make every crop of one image that does not exist yet; never raises for bad data."""
    failures: list[dict[str, Any]] = []
    source: Path | bytes
    try:
        path = input_path(ctx.images_dir, job.file)
        if ctx.store is None:
            source = path
            im, header = open_image(path, ctx.settings.exif)
        else:
            source = read_image(ctx.store, job.file)
            im, header = open_image(path, ctx.settings.exif, data=source)
    except UnsafePathError as exc:
        return ImageResult([], [_failure(job.file, None, "unsafe_path", str(exc))], 0, 0)
    except ImageLoadError as exc:
        return ImageResult([], [_failure(job.file, None, exc.kind.value, exc.reason)], 0, 0)
    with im:
        planned: list[tuple[BoxSpec, CropRegion, Path]] = []
        for spec in job.boxes:
            try:
                region = crop_region(
                    _box_pixels(spec, header.size, job.ref_size),
                    header.size,
                    ctx.settings.strategy,
                    margin=ctx.settings.margin,
                    min_size=ctx.settings.min_size,
                )
                target = output_path(ctx.out_dir, spec.crop_name)
            except UnusableBoxError as exc:
                failures.append(_failure(job.file, spec.index, "unusable_box", str(exc)))
                continue
            except UnsafePathError as exc:
                failures.append(_failure(job.file, spec.index, "unsafe_path", str(exc)))
                continue
            planned.append((spec, region, target))
        todo = [(s, r, t) for s, r, t in planned if ctx.options.overwrite or not _exists(t)]
        try:
            full_target = _full_image_target(job, ctx)
        except UnsafePathError as exc:  # a symlink out of full_images/: the crops still get made
            failures.append(_failure(job.file, None, "unsafe_path", str(exc)))
            full_target = None
        if not todo and full_target is None:
            rows = [_row(job.file, s, r, header.size, ctx.settings) for s, r, _ in planned]
            return ImageResult(rows, failures, 0, len(rows))
        # From every planned crop, not only those still to make, and never when full images
        # are saved: a resumed run must decode exactly as an uninterrupted one did.
        reduce = (
            1
            if ctx.options.save_full_images
            else decode_scale([max(r.canvas) for _, r, _ in planned], ctx.settings.size)
        )
        needed_rows = (
            None
            if full_target is not None
            else max(_rows_needed(r, ctx.settings, reduce) for _, r, _ in todo)
        )
        try:
            image = decode_image(
                im,
                header,
                reduce=reduce,
                allow_truncated=ctx.options.allow_truncated,
                path=source,
                rows=needed_rows,
            )
        except ImageLoadError as exc:
            return ImageResult(
                [], [*failures, _failure(job.file, None, exc.kind.value, exc.reason)], 0, 0
            )
    from ct_crop.render import render_crop

    scale = (image.width / header.size[0], image.height / header.size[1])
    for _, region, target in todo:
        crop = render_crop(
            image,
            region,
            size=ctx.settings.size,
            upscale=ctx.settings.upscale,
            fill=ctx.settings.fill,
            scale=scale,
        )
        _save_jpeg(crop, target, ctx)
    if full_target is not None:
        _save_jpeg(image, full_target, ctx)
    rows = [_row(job.file, s, r, header.size, ctx.settings) for s, r, _ in planned]
    return ImageResult(rows, failures, len(todo), len(planned) - len(todo))


def crop_video(job: VideoJob, ctx: _Context) -> ImageResult:
    """Make every missing crop of one clip's frames; never raises for bad data."""
    n = len(job.frames)
    try:
        path = input_path(ctx.images_dir, job.file)
        if ctx.store is not None:
            path = _fetch_clip(ctx.store, job.file, ctx.tmp_dir)
        info = probe(path)
    except UnsafePathError as exc:
        return ImageResult([], [_failure(job.file, None, "unsafe_path", str(exc))], 0, 0, n)
    except VideoError as exc:
        return ImageResult([], [_failure(job.file, None, exc.kind, exc.reason)], 0, 0, n)
    except OSError as exc:  # the clip could not be read from the store
        kind = "nonexistent" if isinstance(exc, FileNotFoundError) else FailureKind.BAD.value
        return ImageResult([], [_failure(job.file, None, kind, f"cannot read: {exc}")], 0, 0, n)
    try:
        return _crop_clip(job, ctx, path, info)
    finally:
        if ctx.store is not None:
            path.unlink(missing_ok=True)


def _fetch_clip(store: ImageStore, rel: str, tmp_dir: Path) -> Path:
    """A remote clip copied into the run's temp folder (video decoders seek in a file)."""
    target = tmp_dir / f"{os.getpid()}-clip{Path(rel).suffix}"
    target.write_bytes(store.read_bytes(rel))
    return target


def _crop_clip(job: VideoJob, ctx: _Context, path: Path, info: Any) -> ImageResult:
    from ct_crop.render import render_crop

    n = len(job.frames)
    size = (info.width, info.height)
    failures: list[dict[str, Any]] = []
    planned: dict[int, list[tuple[BoxSpec, CropRegion, Path]]] = {}
    frame_jobs = dict(job.frames)
    for number, frame_job in job.frames:
        planned[number] = []
        for spec in frame_job.boxes:
            try:
                region = crop_region(
                    _box_pixels(spec, size, None),
                    size,
                    ctx.settings.strategy,
                    margin=ctx.settings.margin,
                    min_size=ctx.settings.min_size,
                )
                target = output_path(ctx.out_dir, spec.crop_name)
            except (UnusableBoxError, UnsafePathError) as exc:
                kind = "unusable_box" if isinstance(exc, UnusableBoxError) else "unsafe_path"
                failures.append(_failure(frame_job.file, spec.index, kind, str(exc)))
                continue
            planned[number].append((spec, region, target))
    full = {k: _full_image_target(j, ctx) for k, j in frame_jobs.items()}
    todo = {
        k
        for k, crops in planned.items()
        if full[k] is not None or any(ctx.options.overwrite or not _exists(t) for *_, t in crops)
    }
    done = set(planned) - todo
    made = 0
    if todo:
        try:
            for frame in read_frames(path, Sampling(frames=todo)):
                for _, region, target in planned[frame.index]:
                    if ctx.options.overwrite or not _exists(target):
                        crop = render_crop(
                            frame.image,
                            region,
                            size=ctx.settings.size,
                            upscale=ctx.settings.upscale,
                            fill=ctx.settings.fill,
                        )
                        _save_jpeg(crop, target, ctx)
                        made += 1
                full_target = full[frame.index]
                if full_target is not None:
                    _save_jpeg(frame.image, full_target, ctx)
                done.add(frame.index)
        except VideoError as exc:  # frames read before the fault keep their crops
            failures.append(_failure(job.file, None, exc.kind, exc.reason))
        else:
            failures.extend(
                _failure(frame_jobs[k].file, None, "bad", f"the clip has no frame {k}")
                for k in sorted(todo - done)
            )
    rows = [
        _row(frame_jobs[k].file, spec, region, size, ctx.settings)
        for k in sorted(done)
        for spec, region, _ in planned[k]
    ]
    return ImageResult(rows, failures, made, len(rows) - made, n)


def _rows_needed(region: CropRegion, settings: CropSettings, reduce: int) -> int:
    """Image rows (full resolution) a crop reads, plus the reach of the resampling filter."""
    out = output_size(region.canvas, settings.size, upscale=settings.upscale)
    if out == region.canvas and reduce == 1:
        return region.source.bottom
    ratio = region.canvas[1] / out[1]
    return region.source.bottom + 3 * math.ceil(max(ratio, 1.0)) + 2 * reduce + 8


def output_path(out_dir: Path, relative: str) -> Path:
    """A crop's path: names come from validated image paths, checked again here (no ``..``).

    A lexical check, not ``safe_join``'s resolve(): that costs a system call per path
    component per crop, and a symlink inside the user's own output folder is theirs.
    """
    reason = unsafe_reason(relative)
    if reason:
        raise UnsafePathError(f"refusing crop path {relative!r}: {reason}")
    return out_dir.joinpath(*relative.replace("\\", "/").split("/"))


def input_path(images_dir: Path, relative: str) -> Path:
    """An image's path: refuses absolute paths and ``..`` (symlinks are followed: reading is safe)."""
    reason = unsafe_reason(relative)
    if reason:
        raise UnsafePathError(
            f"refusing path {relative!r}: {reason} — image paths must be relative to the images folder"
        )
    return images_dir.joinpath(*relative.replace("\\", "/").split("/"))


def _box_pixels(
    spec: BoxSpec, size: tuple[int, int], ref: tuple[int, int] | None
) -> tuple[float, float, float, float]:
    if spec.normalized:
        return normalized_to_pixels(spec.bbox, size)
    x, y, w, h = spec.bbox
    if ref is None or ref in (size, (size[1], size[0])):  # same size, or stored unrotated
        return (x, y, w, h)
    sx, sy = size[0] / ref[0], size[1] / ref[1]  # the CCT's size differs from the file's: rescale
    return (x * sx, y * sy, w * sx, h * sy)


def _exists(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _full_image_target(job: ImageJob, ctx: _Context) -> Path | None:
    if not ctx.options.save_full_images:
        return None
    target = safe_join(ctx.out_dir / FULL_IMAGES_DIR, job.file)
    target = (
        target.with_name(target.name + ".jpg")
        if target.suffix.lower() not in (".jpg", ".jpeg")
        else target
    )
    return None if _exists(target) and not ctx.options.overwrite else target


def _row(
    file: str,
    spec: BoxSpec,
    region: CropRegion,
    image_size: tuple[int, int],
    settings: CropSettings,
) -> dict[str, Any]:
    out_w, out_h = output_size(region.canvas, settings.size, upscale=settings.upscale)
    bx, by, bw, bh = region.box.xywh
    sx, sy, sw, sh = region.source.xywh
    return {
        "crop": spec.crop_name,
        "image": file,
        "box_index": spec.index,
        "source": spec.source,
        "detector": spec.detector,
        "category": spec.category,
        "confidence": spec.confidence,
        "box_x": bx,
        "box_y": by,
        "box_w": bw,
        "box_h": bh,
        "crop_x": sx,
        "crop_y": sy,
        "crop_w": sw,
        "crop_h": sh,
        "width": out_w,
        "height": out_h,
        "image_width": image_size[0],
        "image_height": image_size[1],
    }


def _failure(image: str, box_index: int | None, kind: str, reason: str) -> dict[str, Any]:
    return {"image": image, "box_index": box_index, "kind": kind, "reason": reason}


_made_dirs: set[Path] = set()


def _save_jpeg(image: Any, target: Path, ctx: _Context) -> None:
    """Encode to JPEG and move into place atomically (temp file in the run's temp folder)."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=ctx.settings.quality)
    parent = target.parent
    if parent not in _made_dirs:
        parent.mkdir(parents=True, exist_ok=True)
        _made_dirs.add(parent)
    tmp = ctx.tmp_dir / f"{os.getpid()}-{target.name}"
    with tmp.open("wb") as fh:
        fh.write(buf.getbuffer())
        if ctx.options.fsync:
            fh.flush()
            os.fsync(fh.fileno())
    tmp.replace(target)


# --------------------------------------------------------------------------- the run


_CTX: _Context | None = None


def _init_worker(ctx: _Context) -> None:
    global _CTX
    _CTX = ctx
    _made_dirs.clear()


def _work(job: ImageJob | VideoJob) -> ImageResult:
    assert _CTX is not None
    try:
        if isinstance(job, VideoJob):
            return crop_video(job, _CTX)
        return crop_image(job, _CTX)
    except Exception as exc:  # a bug or an OS error (disk full...) must name the image
        return ImageResult(
            [],
            [
                _failure(
                    job.file, None, FailureKind.BAD.value, f"unexpected {type(exc).__name__}: {exc}"
                )
            ],
            0,
            0,
        )


def run_crop(
    jobs: Sequence[ImageJob],
    images_dir: Path | str | ImageStore,
    out_dir: Path,
    settings: CropSettings | None = None,
    options: RunOptions | None = None,
    *,
    skipped: Sequence[Skipped] = (),
    progress: Progress | None = None,
    engine: EngineChoice | None = None,
) -> CropSummary:
    """Crop every job's boxes into ``out_dir``; write ``crops.csv`` and ``crop_failures.csv``.

    ``images_dir``: a folder, or an object-store root (a URL or an
    :class:`~ct_io.storage.ImageStore`) the images are read from without a local copy.
    ``progress`` gets a task counting images, its description counting crops. ``engine``
    picks who crops (default: this machine's processes); a distributed engine writes one
    shard file of manifest rows per group of images under ``OUT_DIR/.ct-crop-shards/``,
    merged here (and removed) at the end; a rerun after a killed run skips finished shards.
    """
    from ct_crop.manifest import FAILURES_NAME, MANIFEST_NAME, write_failures, write_manifest
    from ct_io.engines import EngineChoice, JobSteps, read_shards

    settings = settings or CropSettings()
    options = options or RunOptions()
    engine = engine or EngineChoice()
    from ct_io.storage import split_root

    images_dir, store = split_root(images_dir)
    if store is None and not images_dir.is_dir():
        raise CamtrapError(f"images folder {images_dir} does not exist")
    if store is not None:
        store.filesystem()  # missing credentials or back-end: one clear error, before any work
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir, settings, overwrite=options.overwrite)
    tmp_dir = out_dir / TMP_DIR_NAME
    shutil.rmtree(tmp_dir, ignore_errors=True)  # leftovers of a killed run
    tmp_dir.mkdir()
    ctx = _Context(images_dir, out_dir, tmp_dir, settings, options, store)
    summary = CropSummary()
    summary.failures.extend(_failure(s.image, s.box_index, s.kind, s.reason) for s in skipped)
    work = group_video_jobs(
        jobs, images_dir, remote=store is not None
    )  # a clip's frames: one job, decoded once
    steps = JobSteps(
        "crop",
        out_dir / SHARDS_DIR_NAME,
        CropShard(ctx),
        local=functools.partial(_crop_here, work, ctx, summary),
    )
    shards = engine.shards(work, SHARD_IMAGES, salt="crop") if engine.engine != "local" else []
    report = engine.build(options.workers).run(steps, shards, progress)
    if not report.ran_local:
        for _, results in read_shards(steps, shards):
            for result in results:
                _add(summary, result)
        shutil.rmtree(steps.shard_dir, ignore_errors=True)
    write_manifest(summary.rows, out_dir / MANIFEST_NAME)
    write_failures(summary.failures, out_dir / FAILURES_NAME)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    return summary


#: Images per shard with a distributed engine (``--shard-size`` changes it).
SHARD_IMAGES = 64
SHARDS_DIR_NAME = ".ct-crop-shards"


@frozen
class CropShard:
    """A distributed engine's ``prepare`` step: crop a shard's images, return their results."""

    ctx: _Context

    def __call__(self, jobs: Sequence[ImageJob | VideoJob]) -> list[ImageResult]:
        _init_worker(self.ctx)
        return [_work(job) for job in jobs]


def _add(summary: CropSummary, result: ImageResult) -> None:
    summary.images += result.images
    summary.crops_made += result.made
    summary.crops_existing += result.existing
    summary.rows.extend(result.rows)
    summary.failures.extend(result.failures)
    summary.boxes_skipped += sum(1 for f in result.failures if f["box_index"] is not None)
    summary.images_failed += any(f["box_index"] is None for f in result.failures)


def _crop_here(
    work: Sequence[ImageJob | VideoJob],
    ctx: _Context,
    summary: CropSummary,
    progress: Progress | None,
) -> CropSummary:
    """The local engine: this machine's worker processes."""
    task = progress.add_task("cropping", total=len(work)) if progress is not None else None
    for result in _results(work, ctx, ctx.options.processes):
        _add(summary, result)
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=f"cropping: {summary.crops} crops")
    return summary


def crop_boxes(
    images_dir: Path | str | ImageStore,
    out_dir: Path,
    *,
    cct: CocoCameraTraps | None = None,
    md: MDResults | None = None,
    boxes: BoxSelection | None = None,
    settings: CropSettings | None = None,
    options: RunOptions | None = None,
    images: Collection[str] | None = None,
    progress: Progress | None = None,
    engine: EngineChoice | None = None,
) -> CropSummary:
    """Crop the ground-truth boxes of ``cct`` and/or the detector boxes of ``md`` (as
    ``boxes`` selects; only the files in ``images``, when given): what ``ct-crop crop`` and
    the training pipeline's crop stage both run."""
    if cct is None and md is None:
        raise CamtrapError(
            "nothing to crop: give --cct (ground-truth boxes) and/or --detections (MegaDetector JSON)"
        )
    boxes = boxes or BoxSelection()
    jobs, skipped = build_jobs(
        cct=cct,
        md=md,
        threshold=boxes.threshold,
        categories=boxes.categories,
        detector_version=boxes.detector_version,
        choice=boxes.choice,
    )
    if images is not None:  # a video frame is kept when its clip is
        jobs = [j for j in jobs if source_file(j.file) in images]
        skipped = [s for s in skipped if source_file(s.image) in images]
    return run_crop(
        jobs,
        images_dir,
        out_dir,
        settings,
        options,
        skipped=skipped,
        progress=progress,
        engine=engine,
    )


def _results(
    jobs: Sequence[ImageJob | VideoJob], ctx: _Context, workers: int
) -> Iterator[ImageResult]:
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        _init_worker(ctx)
        for job in jobs:
            yield _work(job)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    mp = multiprocessing.get_context(method)
    chunk = max(1, min(16, len(jobs) // (workers * 8)))
    with mp.Pool(workers, initializer=_init_worker, initargs=(ctx,)) as pool:
        yield from pool.imap_unordered(_work, jobs, chunksize=chunk)


def settings_changed(out_dir: Path, settings: CropSettings) -> bool:
    """Whether ``out_dir`` holds crops made with other settings (or unreadable ones)."""
    from ct_io.jsonio import read_json

    path = out_dir / SETTINGS_NAME
    if not path.exists():
        return False
    try:
        return bool(read_json(path) != settings.to_json())
    except CamtrapError:
        return True


def check_settings(out_dir: Path, settings: CropSettings, *, overwrite: bool) -> None:
    """Refuse to mix crops made with other settings in ``out_dir``; record ours."""
    from ct_io.jsonio import read_json, write_json

    path = out_dir / SETTINGS_NAME
    wanted = settings.to_json()
    if path.exists() and not overwrite:
        try:
            found = read_json(path)
        except CamtrapError:
            found = None
        if found != wanted:
            diff = (
                ", ".join(
                    f"{k}: {found.get(k)!r} → {v!r}"
                    for k, v in wanted.items()
                    if not isinstance(found, dict) or found.get(k) != v
                )
                if isinstance(found, dict)
                else "unreadable settings file"
            )
            raise CamtrapError(
                f"{out_dir} holds crops made with other settings ({diff}) — use another output folder, "
                "or --overwrite to remake every crop"
            )
        return
    write_json(path, wanted)
