"""Network inputs for photos and video frames alike, one dataset item per photo or clip.

A clip's item decodes only the frames that have boxes (:mod:`ct_io.video`) and yields
one :class:`~ct_infer.image_crops.ImageCrops` per frame, named like MegaDetector's frames
(``clip.mp4/frame000120.jpg``), each box cut and resized exactly as for a photo. A clip
that cannot be read is one failure naming the clip. Frames already extracted to files
(``clip.mp4`` is a folder) are read as photos.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from ct_crop.geometry import CropRegion, UnusableBoxError, crop_region, normalized_to_pixels
from ct_crop.render import render_crop
from ct_infer.backbones import Preprocessing
from ct_infer.data import to_network_input
from ct_infer.image_crops import BoxJob, CropPolicy, ImageCrops, ImageCropsDataset
from ct_io.errors import UnsafePathError
from ct_io.paths import safe_join
from ct_io.storage import split_root
from ct_io.video import Sampling, VideoError, parse_frame_file, probe, read_frames

if TYPE_CHECKING:
    from ct_io.storage import ImageStore


@frozen
class ClipJob:
    """A clip and, per frame number, its frame's name and boxes."""

    file: str
    frames: tuple[tuple[int, str, tuple[BoxJob, ...]], ...]


class MediaCropsDataset:
    """Per photo or clip, the list of its images' crops (a clip: one entry per frame)."""

    def __init__(
        self,
        images_dir: str | os.PathLike[str] | ImageStore,
        jobs: Sequence[tuple[str, list[BoxJob]]],
        prep: Preprocessing,
        policy: CropPolicy,
    ) -> None:
        self.images_dir, self.store = split_root(images_dir)
        self.prep = prep
        self.policy = policy
        photos: list[tuple[str, list[BoxJob]]] = []
        clips: dict[str, list[tuple[int, str, tuple[BoxJob, ...]]]] = {}
        self.items: list[int | str] = []  # a photo's index in ``photos``, or a clip's name
        for file, boxes in jobs:
            ref = parse_frame_file(file)
            if ref is None or (self.store is None and (self.images_dir / ref[0]).is_dir()):
                self.items.append(len(photos))
                photos.append((file, boxes))
                continue
            if ref[0] not in clips:
                clips[ref[0]] = []
                self.items.append(ref[0])
            clips[ref[0]].append((ref[1], file, tuple(boxes)))
        self.photos = ImageCropsDataset(self.store or self.images_dir, photos, prep, policy)
        self.clips = {c: ClipJob(c, tuple(sorted(f))) for c, f in clips.items()}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> list[ImageCrops]:
        item = self.items[i]
        if isinstance(item, int):
            return [self.photos[item]]
        return self.clip_crops(self.clips[item])

    def clip_crops(self, job: ClipJob) -> list[ImageCrops]:
        """Each frame's network inputs; a clip that cannot be read is one failure."""
        if self.store is None:
            return self._clip_crops(job, None)
        try:
            with self.store.local_copy(job.file) as path:  # decoders seek: a temporary copy
                return self._clip_crops(job, path)
        except UnsafePathError as exc:
            return [ImageCrops(job.file, [], [], [(None, str(exc))])]
        except OSError as exc:
            return [ImageCrops(job.file, [], [], [(None, f"cannot read: {exc}")])]

    def _clip_crops(self, job: ClipJob, local: Path | None) -> list[ImageCrops]:
        try:
            path = local or safe_join(self.images_dir, job.file)
            info = probe(path)
        except UnsafePathError as exc:
            return [ImageCrops(job.file, [], [], [(None, str(exc))])]
        except VideoError as exc:
            return [ImageCrops(job.file, [], [], [(None, exc.reason)])]
        size = (info.width, info.height)
        plans: dict[
            int, tuple[str, list[tuple[int, CropRegion]], list[tuple[int | None, str]]]
        ] = {}
        for number, name, boxes in job.frames:
            regions: list[tuple[int, CropRegion]] = []
            failures: list[tuple[int | None, str]] = []
            for box in boxes:
                try:
                    region = crop_region(
                        normalized_to_pixels(box.bbox, size),
                        size,
                        self.policy.strategy,
                        margin=self.policy.margin,
                    )
                except UnusableBoxError as exc:
                    failures.append((box.index, str(exc)))
                    continue
                regions.append((box.index, region))
            plans[number] = (name, regions, failures)
        out: list[ImageCrops] = []
        wanted = {n for n, (_, regions, _) in plans.items() if regions}
        try:
            for frame in read_frames(path, Sampling(frames=wanted)):
                name, regions, failures = plans.pop(frame.index)
                pixels = [
                    to_network_input(
                        render_crop(frame.image, region, size=self.prep.input_size),
                        self.prep,
                    )
                    for _, region in regions
                ]
                out.append(ImageCrops(name, [k for k, _ in regions], pixels, failures))
        except VideoError as exc:  # frames read before the fault keep their crops
            return [*out, ImageCrops(job.file, [], [], [(None, exc.reason)])]
        for number, (name, regions, failures) in sorted(plans.items()):
            missing = [(None, f"the clip has no frame {number}")] if regions else []
            out.append(ImageCrops(name, [], [], [*failures, *missing]))
        return out
