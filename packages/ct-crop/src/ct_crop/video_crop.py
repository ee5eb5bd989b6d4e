"""Cropping boxes from video frames: every frame job of one clip decoded in one pass.

:func:`ct_crop.boxes.build_jobs` makes one job per sampled frame (``clip.mp4/frame000120.jpg``);
:func:`group_video_jobs` gathers a clip's frame jobs into one :class:`VideoJob`, and
:func:`crop_video` decodes only the frames that still miss a crop (seeking, see
:mod:`ct_io.video`) and writes each crop exactly as a photo's. A clip that cannot be read
is one failure row naming the clip; crops of frames decoded before a fault are kept.

Frame jobs whose clip is a folder (frames MegaDetector's ``video_folder_to_frames``
already extracted as ``clip.mp4/frame000120.jpg`` files) stay ordinary image jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ct_crop.boxes import BoxSpec, ImageJob
from ct_crop.geometry import CropRegion, UnusableBoxError, crop_region
from ct_io.errors import UnsafePathError
from ct_io.video import Sampling, VideoError, parse_frame_file, probe, read_frames

if TYPE_CHECKING:
    from ct_crop.crop import ImageResult, _Context


@frozen
class VideoJob:
    """One clip and the jobs of its frames (frame number, the frame's job)."""

    file: str
    frames: tuple[tuple[int, ImageJob], ...]


def group_video_jobs(jobs: Sequence[ImageJob], images_dir: Path) -> list[ImageJob | VideoJob]:
    """Frame jobs of each clip file gathered into one ``VideoJob`` (at the first frame's place)."""
    out: list[ImageJob | VideoJob] = []
    frames: dict[str, list[tuple[int, ImageJob]]] = {}
    is_clip: dict[str, bool] = {}
    for job in jobs:
        ref = parse_frame_file(job.file)
        if ref is not None and ref[0] not in is_clip:
            is_clip[ref[0]] = not (images_dir / ref[0]).is_dir()
        if ref is None or not is_clip[ref[0]]:
            out.append(job)
            continue
        if ref[0] not in frames:
            frames[ref[0]] = []
            out.append(VideoJob(ref[0], ()))
        frames[ref[0]].append((ref[1], job))
    return [
        VideoJob(j.file, tuple(sorted(frames[j.file], key=lambda t: t[0])))
        if isinstance(j, VideoJob)
        else j
        for j in out
    ]


def crop_video(job: VideoJob, ctx: _Context) -> ImageResult:
    """Make every missing crop of one clip's frames; never raises for bad data."""
    from ct_crop.crop import (
        ImageResult,
        _box_pixels,
        _exists,
        _failure,
        _full_image_target,
        _row,
        _save_jpeg,
        input_path,
        output_path,
    )
    from ct_crop.render import render_crop

    n = len(job.frames)
    try:
        path = input_path(ctx.images_dir, job.file)
        info = probe(path)
    except UnsafePathError as exc:
        return ImageResult([], [_failure(job.file, None, "unsafe_path", str(exc))], 0, 0, n)
    except VideoError as exc:
        return ImageResult([], [_failure(job.file, None, exc.kind, exc.reason)], 0, 0, n)
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
