"""Fast crop loading: reduced-size JPEG decoding, resize, uint8 batches, worker processes.

A crop that cannot be read (missing, truncated, not an image) becomes a zero image with
``ok=False`` and its reason, so a batch never fails as a whole; callers count and log them.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from attrs import frozen
from PIL import Image, ImageOps

from ct_infer.preprocessing import Preprocessing
from ct_io.paths import safe_join
from ct_io.storage import StoreCredentialsError, split_root

if TYPE_CHECKING:
    import torch

    from ct_io.storage import ImageStore

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_EXIF_ORIENTATION = 0x0112


def _resample(name: str) -> Image.Resampling:
    return Image.Resampling.BICUBIC if name == "bicubic" else Image.Resampling.BILINEAR


def to_network_input(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """Resize an RGB image as ``prep`` says; returns uint8 (size, size, 3)."""
    size = prep.input_size
    resample = _resample(prep.interpolation)
    if prep.resize == "center-crop":
        w, h = image.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((nw, nh), resample)
        left, top = (nw - size) // 2, (nh - size) // 2
        image = image.crop((left, top, left + size, top + size))
    elif image.size != (size, size):
        image = image.resize((size, size), resample)
    return np.asarray(image, dtype=np.uint8)


def load_crop(path: str | os.PathLike[str] | IO[bytes], prep: Preprocessing) -> np.ndarray:
    """Decode one crop (a file, or its bytes as a file object) at reduced size when possible
    (JPEG draft mode) and resize it."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            # decode at 1/2, 1/4 or 1/8 scale while both sides stay >= the input size
            im.draft("RGB", (prep.input_size, prep.input_size))
        if im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            rgb = ImageOps.exif_transpose(im).convert("RGB")
        else:
            rgb = im.convert("RGB")
    return to_network_input(rgb, prep)


@frozen
class CropItem:
    """What the dataset yields per crop."""

    index: int
    pixels: np.ndarray
    error: str | None


class CropFilesDataset:
    """Crop files under ``root`` (relative paths), yielding uint8 (size, size, 3) arrays.

    ``root`` is a folder, or an object store (:func:`ct_io.storage.open_store`) whose crops
    are read into memory, never copied to disk.
    """

    def __init__(
        self, root: str | os.PathLike[str] | ImageStore, paths: Sequence[str], prep: Preprocessing
    ) -> None:
        self.root, self.store = split_root(root)
        self.paths = list(paths)
        self.prep = prep

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> CropItem:
        rel = self.paths[index]
        try:
            if self.store is None:
                pixels = load_crop(safe_join(self.root, rel), self.prep)
            else:
                pixels = load_crop(io.BytesIO(self.store.read_bytes(rel)), self.prep)
            return CropItem(index, pixels, None)
        except StoreCredentialsError:
            raise  # no credentials at all: the run stops with one clear error
        except Exception as exc:  # every decode problem is a per-crop failure, never a crash
            size = self.prep.input_size
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            return CropItem(index, np.zeros((size, size, 3), np.uint8), reason)


@frozen
class Batch:
    """A collated batch: positions in the dataset, pixels (N, H, W, 3) uint8, errors."""

    indices: list[int]
    pixels: torch.Tensor
    errors: list[str | None]


def collate_crops(items: Sequence[CropItem]) -> Batch:
    """Stack crops into one uint8 tensor (kept uint8 until it reaches the device)."""
    import torch

    pixels = torch.from_numpy(np.stack([it.pixels for it in items]))
    return Batch([it.index for it in items], pixels, [it.error for it in items])


def default_workers() -> int:
    """Worker processes for decoding: the CPU count, capped at 8."""
    return max(
        1,
        min(
            8,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1),
        ),
    )


def iterate_batches(
    dataset: Any,
    *,
    batch_size: int,
    workers: int,
    pin_memory: bool = False,
    collate: Any = collate_crops,
) -> Iterator[Any]:
    """Batches in dataset order, decoded by ``workers`` processes (0 = in this process)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=False,
    )
    yield from loader


def list_image_files(folder: str | os.PathLike[str], *, videos: bool = False) -> list[str]:
    """Relative POSIX paths of every image (and with ``videos``, every clip) under ``folder``
    (recursive, sorted)."""
    from ct_io.video import VIDEO_EXTENSIONS

    suffixes = IMAGE_SUFFIXES + (VIDEO_EXTENSIONS if videos else ())
    root = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.lower().endswith(suffixes) and not name.startswith("."):
                out.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(out)
