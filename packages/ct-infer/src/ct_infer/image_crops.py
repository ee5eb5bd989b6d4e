"""Crops made in memory from whole camera-trap images (no crop files).

Each image is decoded once — at reduced JPEG scale when every crop of it stays at least
the network's input size — and each of its boxes is cut and resized with ct-crop's
geometry, exactly as ``ct-crop`` would have written it for training. Worker processes
decode images; a bad image or box is a reported failure, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import frozen

from ct_crop.geometry import (
    Strategy,
    UnusableBoxError,
    crop_region,
    decode_scale,
    normalized_to_pixels,
)
from ct_crop.images import ImageLoadError, decode_image, open_image, read_image
from ct_crop.render import render_crop
from ct_infer.data import to_network_input
from ct_infer.preprocessing import Preprocessing
from ct_io.errors import CamtrapError, UnsafePathError
from ct_io.paths import safe_join
from ct_io.storage import split_root

if TYPE_CHECKING:
    from ct_io.storage import ImageStore


@frozen
class CropPolicy:
    """How training crops were made (from a bundle's ``crop`` metadata)."""

    strategy: Strategy = Strategy.SQUARE
    margin: float = 0.0

    @classmethod
    def from_meta(cls, crop: Mapping[str, Any]) -> CropPolicy:
        """``{"square": true}`` or ``{"strategy": "pad", "margin": 0.1}``."""
        name = crop.get("strategy") or ("square" if crop.get("square", True) else "tight")
        try:
            return cls(Strategy(name), float(crop.get("margin", 0.0)))
        except ValueError:
            raise CamtrapError(
                f"bundle crop strategy {name!r} is unknown; known: {', '.join(s.value for s in Strategy)}"
            ) from None


@frozen
class BoxJob:
    """One box to classify: its detection index and normalized bbox."""

    index: int
    bbox: tuple[float, float, float, float]


@frozen
class ImageCrops:
    """What the dataset yields per image."""

    file: str
    indices: list[int]
    pixels: list[np.ndarray]
    failures: list[tuple[int | None, str]]  # (box index or None for the image, reason)


class ImageCropsDataset:
    """Per image, the network inputs of its boxes (read from a folder or an object store)."""

    def __init__(
        self,
        images_dir: str | os.PathLike[str] | ImageStore,
        jobs: Sequence[tuple[str, list[BoxJob]]],
        prep: Preprocessing,
        policy: CropPolicy,
    ) -> None:
        self.images_dir, self.store = split_root(images_dir)
        self.jobs = list(jobs)
        self.prep = prep
        self.policy = policy

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> ImageCrops:
        file, boxes = self.jobs[i]
        source: Path | bytes
        try:
            if self.store is None:
                path = source = safe_join(self.images_dir, file)
                im, header = open_image(path)
            else:
                source = read_image(self.store, file)
                im, header = open_image(Path(file), data=source)
        except (UnsafePathError, ImageLoadError) as exc:
            return ImageCrops(file, [], [], [(None, str(exc))])
        failures: list[tuple[int | None, str]] = []
        regions = []
        with im:
            for box in boxes:
                try:
                    region = crop_region(
                        normalized_to_pixels(box.bbox, header.size),
                        header.size,
                        self.policy.strategy,
                        margin=self.policy.margin,
                    )
                except UnusableBoxError as exc:
                    failures.append((box.index, str(exc)))
                    continue
                regions.append((box.index, region))
            if not regions:
                return ImageCrops(file, [], [], failures)
            reduce = decode_scale([max(r.canvas) for _, r in regions], self.prep.input_size)
            try:
                image = decode_image(im, header, reduce=reduce, path=source)
            except ImageLoadError as exc:
                return ImageCrops(file, [], [], [*failures, (None, str(exc))])
        scale = (image.width / header.size[0], image.height / header.size[1])
        pixels = []
        for _, region in regions:
            crop = render_crop(image, region, size=self.prep.input_size, scale=scale)
            pixels.append(to_network_input(crop, self.prep))
        return ImageCrops(file, [k for k, _ in regions], pixels, failures)
