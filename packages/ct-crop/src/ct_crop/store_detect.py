"""Running a detector plugin on images in an object store (``s3://``, ``az://``...).

Detector plugins read files from a folder (``Detector.detect(images_dir, files)``), so
photos are staged in small batches: each batch's bytes are written to a temporary folder
under their relative names, detected, and deleted before the next batch — never a copy
of the whole set. A clip is copied alone, detected frame by frame
(:func:`ct_crop.video_detect.detect_clip`), and deleted. An object that cannot be read
is an entry with ``failure`` set, as a bad local file is.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ct_crop.video_detect import DEFAULT_SAMPLING, detect_clip
from ct_io.errors import UnsafePathError
from ct_io.md import MDImage
from ct_io.video import Sampling, is_video_file

if TYPE_CHECKING:
    from ct_io.hookspecs import Detector
    from ct_io.storage import ImageStore

#: Photos staged on local disk at a time.
BATCH = 64


def detect_store(
    detector: Detector,
    store: ImageStore,
    files: Sequence[str],
    sampling: Sampling = DEFAULT_SAMPLING,
    *,
    batch: int = BATCH,
) -> Iterator[MDImage]:
    """One entry per file, as :func:`ct_crop.video_detect.detect_media` gives for a folder."""
    photos = [f for f in files if not is_video_file(f)]
    for start in range(0, len(photos), batch):
        yield from _detect_batch(detector, store, photos[start : start + batch])
    for clip in files:
        if is_video_file(clip):
            with tempfile.TemporaryDirectory(prefix="ct-crop-store-") as tmp:
                failed = _stage(store, clip, Path(tmp))
                yield failed or detect_clip(detector, Path(tmp), clip, sampling)


def _detect_batch(detector: Detector, store: ImageStore, files: Sequence[str]) -> Iterator[MDImage]:
    with tempfile.TemporaryDirectory(prefix="ct-crop-store-") as tmp:
        staged = []
        for rel in files:
            failed = _stage(store, rel, Path(tmp))
            if failed is not None:
                yield failed
            else:
                staged.append(rel)
        if staged:
            yield from detector.detect(Path(tmp), staged)


def _stage(store: ImageStore, rel: str, tmp: Path) -> MDImage | None:
    """Copy one object to ``tmp/rel``; a failed entry when it cannot be read."""
    try:
        data = store.read_bytes(rel)
    except (OSError, UnsafePathError) as exc:
        return MDImage(rel, None, failure=_reason(exc))
    target = tmp.joinpath(*rel.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "File not found"
    return f"cannot read: {exc}"
