"""Running a detector plugin on video clips: sampled frames in, one per-video entry out.

Photos go to the detector as they always did. For a clip, the sampled frames (every
10th by default, MegaDetector's usual ``frame_sample``) are named like MegaDetector's
extracted frames (``clip.mp4/frame000120.jpg``) and handed to the detector's optional
``detect_frames(frames)`` (an iterable of ``(name, PIL image)``), or — for a detector
that only reads files — written as JPEGs into a temporary folder and passed to its
``detect``. The frame entries become MegaDetector's per-video entry (``frame_rate``,
``frames_processed``, ``frame_number`` per detection), the form Timelapse imports. A
clip that cannot be read is an entry with ``failure`` set (frame rate -1, as
MegaDetector writes it), never an exception.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ct_io.md import MDImage, MDResults
from ct_io.md_video import FRAME_RATE, FRAMES_PROCESSED, to_video_level
from ct_io.paths import safe_join
from ct_io.video import Sampling, VideoError, frame_file, is_video_file, probe, read_frames

if TYPE_CHECKING:
    from PIL import Image

    from ct_io.hookspecs import Detector

#: MegaDetector's typical sampling for 30 fps clips (about 3 frames a second).
DEFAULT_SAMPLING = Sampling(every_n=10)
FRAME_JPEG_QUALITY = 95


def sampling_from_options(every_n: int | None, per_second: float | None) -> Sampling:
    """The sampling ``--every-n-frames`` / ``--frames-per-second`` ask for (default every 10th)."""
    if every_n is None and per_second is None:
        return DEFAULT_SAMPLING
    return Sampling(every_n=every_n, per_second=per_second)


def detect_media(
    detector: Detector,
    images_dir: Path,
    files: Sequence[str],
    sampling: Sampling = DEFAULT_SAMPLING,
) -> Iterator[MDImage]:
    """One entry per file: photos through ``detector.detect``, clips frame by frame."""
    photos = [f for f in files if not is_video_file(f)]
    if photos:
        yield from detector.detect(images_dir, photos)
    for clip in files:
        if is_video_file(clip):
            yield detect_clip(detector, images_dir, clip, sampling)


def detect_clip(detector: Detector, images_dir: Path, clip: str, sampling: Sampling) -> MDImage:
    """The clip's per-video entry (or a failed entry saying why)."""
    try:
        path = safe_join(images_dir, clip)
        info = probe(path)
        frames = ((frame_file(clip, f.index), f.image) for f in read_frames(path, sampling))
        entries = list(detect_frames(detector, frames))
    except VideoError as exc:
        return MDImage(
            clip, None, failure=exc.reason, extra={FRAME_RATE: -1.0, FRAMES_PROCESSED: []}
        )
    if not entries:
        return MDImage(
            clip,
            None,
            failure=f"no frame sampled ({sampling.describe()})",
            extra={FRAME_RATE: info.frame_rate, FRAMES_PROCESSED: []},
        )
    merged = to_video_level(MDResults(images=entries), frame_rates={clip: info.frame_rate})
    return merged.images[0]


def detect_frames(
    detector: Detector, frames: Iterable[tuple[str, Image.Image]]
) -> Iterator[MDImage]:
    """Frame entries from the detector: in memory when it can, through JPEG files otherwise."""
    in_memory = getattr(detector, "detect_frames", None)
    if callable(in_memory):
        yield from in_memory(frames)
        return
    with tempfile.TemporaryDirectory(prefix="ct-crop-frames-") as tmp:
        names = []
        for name, image in frames:
            target = Path(tmp, *name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, "JPEG", quality=FRAME_JPEG_QUALITY)
            names.append(name)
        if names:
            yield from detector.detect(Path(tmp), names)
