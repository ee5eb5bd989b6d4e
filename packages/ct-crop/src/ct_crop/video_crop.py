"""Video clips in the batch cropper: every frame job of one clip gathered into one job.

:func:`ct_crop.boxes.build_jobs` makes one job per sampled frame (``clip.mp4/frame000120.jpg``);
:func:`group_video_jobs` gathers a clip's frame jobs into one :class:`VideoJob`, which
``ct_crop.crop.crop_video`` decodes in one pass, only the frames that still miss a crop
(seeking, see :mod:`ct_io.video`), writing each crop exactly as a photo's. A clip that
cannot be read is one failure row naming the clip; crops of frames decoded before a
fault are kept.

Frame jobs whose clip is a folder (frames MegaDetector's ``video_folder_to_frames``
already extracted as ``clip.mp4/frame000120.jpg`` files) stay ordinary image jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from ct_crop.boxes import ImageJob
from ct_io.video import parse_frame_file


@frozen
class VideoJob:
    """One clip and the jobs of its frames (frame number, the frame's job)."""

    file: str
    frames: tuple[tuple[int, ImageJob], ...]


def group_video_jobs(
    jobs: Sequence[ImageJob], images_dir: Path, *, remote: bool = False
) -> list[ImageJob | VideoJob]:
    """Frame jobs of each clip file gathered into one ``VideoJob`` (at the first frame's place).

    ``remote``: the images live in an object store, where a clip is always a file."""
    out: list[ImageJob | VideoJob] = []
    frames: dict[str, list[tuple[int, ImageJob]]] = {}
    is_clip: dict[str, bool] = {}
    for job in jobs:
        ref = parse_frame_file(job.file)
        if ref is not None and ref[0] not in is_clip:
            is_clip[ref[0]] = remote or not (images_dir / ref[0]).is_dir()
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
