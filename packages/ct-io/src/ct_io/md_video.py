"""MegaDetector's two forms of video results, read, converted and written.

- **frame-level**: one entry per sampled frame, named ``clip.mp4/frame000120.jpg``
  (MegaDetector run on a folder of extracted frames, ``video_folder_to_frames``);
- **per-video**: one entry per clip (``file: clip.mp4``) with ``frame_rate``,
  ``frames_processed`` (the sampled frame numbers) and every detection of every frame,
  each carrying its ``frame_number`` (``process_video``; the form Timelapse imports).

Every step of the toolkit works on the frame-level form, where a frame is an image named
``clip.mp4/frame000120.jpg``; :func:`to_frame_level` turns per-video entries into it, and
:func:`to_video_level` writes them back (keeping each clip's other keys). Detection ``k``
of a frame is the ``k``-th detection of that frame in the per-video list, so crop names
(``clip.mp4/frame000120.jpg___crop00_<detector>.jpg``) mean the same box in both forms.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attrs import evolve

from ct_io.md import MDDetection, MDImage, MDResults
from ct_io.md_video_checks import FRAME_NUMBER, FRAME_RATE, FRAMES_PROCESSED
from ct_io.video import frame_file, is_video_file, parse_frame_file

#: A clip's roll-up over its frames (written by ``ct-infer``): ``[[class_id, conf], ...]``.
CLIP_CLASSIFICATIONS = "clip_classifications"


def is_video_entry(im: MDImage) -> bool:
    """A per-video entry: its ``file`` is a clip."""
    return is_video_file(im.file)


def has_video_entries(md: MDResults) -> bool:
    """Whether ``md`` holds per-video entries."""
    return any(is_video_entry(im) for im in md.images)


def videos_of(md: MDResults) -> list[str]:
    """Every clip ``md`` names (per-video entries and frame entries), in first-seen order."""
    out: dict[str, None] = {}
    for im in md.images:
        if is_video_entry(im):
            out[im.file] = None
        elif (ref := parse_frame_file(im.file)) is not None:
            out[ref[0]] = None
    return list(out)


def frame_number_of(det: MDDetection) -> int | None:
    """A per-video detection's frame number, or None when it has none (or a bad one)."""
    value = det.extra.get(FRAME_NUMBER)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 and value == int(value) else None


def frames_processed_of(im: MDImage) -> list[int]:
    """The sampled frame numbers a per-video entry lists (with those its detections name)."""
    listed = im.extra.get(FRAMES_PROCESSED)
    frames = {int(n) for n in listed if isinstance(n, int)} if isinstance(listed, list) else set()
    frames.update(n for d in im.detections or [] if (n := frame_number_of(d)) is not None)
    return sorted(frames)


def to_frame_level(md: MDResults) -> tuple[MDResults, dict[str, MDImage]]:
    """``md`` with each per-video entry replaced by one entry per sampled frame.

    Returns the frame-level results and the per-video entries they came from (by clip,
    without detections), which :func:`to_video_level` uses to write them back. Photos,
    frame entries and failed clips pass through unchanged; a detection without a frame
    number is dropped (``ct-io validate`` reports it).
    """
    images: list[MDImage] = []
    videos: dict[str, MDImage] = {}
    for im in md.images:
        if not is_video_entry(im):
            images.append(im)
            continue
        videos[im.file] = evolve(im, detections=None, extra=dict(im.extra))
        if im.detections is None:
            images.append(im)
            continue
        per_frame: dict[int, list[MDDetection]] = {n: [] for n in frames_processed_of(im)}
        for det in im.detections:
            n = frame_number_of(det)
            if n is not None:
                extra = {k: v for k, v in det.extra.items() if k != FRAME_NUMBER}
                per_frame[n].append(evolve(det, extra=extra))
        images.extend(MDImage(frame_file(im.file, n), per_frame[n]) for n in sorted(per_frame))
    return evolve(md, images=images), videos


def to_video_level(
    md: MDResults,
    videos: Mapping[str, MDImage] | None = None,
    frame_rates: Mapping[str, float] | None = None,
    *,
    frame_extra: Callable[[str, list[MDImage]], dict[str, Any]] | None = None,
) -> MDResults:
    """``md`` with each clip's frame entries gathered into one per-video entry.

    The entry takes its keys from ``videos`` (the originals, see :func:`to_frame_level`)
    and its ``frame_rate`` from ``frame_rates`` (else the original's); a clip with neither
    keeps its frame entries, since MegaDetector's validator requires a clip's frame rate. ``frame_extra(video, frames)`` may
    add keys (e.g. a roll-up). A frame entry that failed is left out of
    ``frames_processed``, as MegaDetector does; a clip whose frames all failed keeps the
    failure. Photos and per-video entries pass through; the clip takes the place of its
    first frame.
    """
    videos = videos or {}
    frames_of: dict[str, list[tuple[int, MDImage]]] = {}
    order: list[str | MDImage] = []
    for im in md.images:
        ref = parse_frame_file(im.file)
        if ref is None:
            order.append(im)
            continue
        if ref[0] not in frames_of:
            frames_of[ref[0]] = []
            order.append(ref[0])
        frames_of[ref[0]].append((ref[1], im))
    images: list[MDImage] = []
    for item in order:
        if isinstance(item, MDImage):
            images.append(item)
        elif item not in videos and (frame_rates is None or item not in frame_rates):
            images.extend(im for _, im in frames_of[item])  # no frame rate: stays frame-level
        else:
            images.append(
                _video_entry(item, frames_of[item], videos.get(item), frame_rates, frame_extra)
            )
    return evolve(md, images=images)


def _video_entry(
    video: str,
    frames: list[tuple[int, MDImage]],
    original: MDImage | None,
    frame_rates: Mapping[str, float] | None,
    frame_extra: Callable[[str, list[MDImage]], dict[str, Any]] | None,
) -> MDImage:
    frames = sorted(frames, key=lambda t: t[0])
    extra = copy.deepcopy(original.extra) if original is not None else {}
    if frame_rates is not None and video in frame_rates:
        extra[FRAME_RATE] = float(frame_rates[video])
    ok = [(n, im) for n, im in frames if im.detections is not None]
    extra[FRAMES_PROCESSED] = [n for n, _ in ok]
    if frame_extra is not None:
        extra.update(frame_extra(video, [im for _, im in frames]))
    if not ok:
        failures = sorted({im.failure or "failed" for _, im in frames})
        return MDImage(video, None, failure="; ".join(failures), extra=extra)
    detections = [
        evolve(det, extra={**det.extra, FRAME_NUMBER: n})
        for n, im in ok
        for det in im.detections or []
    ]
    return MDImage(video, detections, extra=extra)


def frame_entries(md: MDResults) -> Iterable[tuple[str, int, MDImage]]:
    """``(clip, frame number, entry)`` for each frame entry of frame-level results."""
    for im in md.images:
        ref = parse_frame_file(im.file)
        if ref is not None:
            yield ref[0], ref[1], im
