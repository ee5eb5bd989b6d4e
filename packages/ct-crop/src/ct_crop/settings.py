"""What a crop run is told: the settings that decide a crop's pixels, and how to run.

Only attrs and enums here, so ``ct-crop --help`` builds its options from these classes
(``ct_io.cli_fields``; each field's help is in its metadata) without importing Pillow.
"""

from __future__ import annotations

import enum
import os
from typing import Any

from attrs import asdict, define, field, frozen

from ct_crop.geometry import Strategy
from ct_io.errors import CamtrapError


class ExifMode(enum.StrEnum):
    """Which EXIF orientations to apply (see ``ct_crop.images``)."""

    MEGADETECTOR = "megadetector"
    FULL = "full"
    NONE = "none"


@frozen
class CropSettings:
    """Settings that decide a crop's pixels (recorded in ``crop_settings.json``)."""

    strategy: Strategy = field(
        default=Strategy.SQUARE,
        metadata={
            "help": "square (tightest square, kept inside the image), pad (box on a square of "
            "--fill), tight (box as is), center (square centred on the box, outside filled)."
        },
    )
    margin: float = field(
        default=0.0,
        metadata={
            "help": "Context around the box, as a fraction of its size on each side (0.1 = 10 %)."
        },
    )
    min_size: int = field(
        default=0, metadata={"help": "Skip boxes narrower or shorter than this many pixels."}
    )
    size: int | None = field(
        default=None,
        metadata={
            "help": "Shrink crops so the longest side is at most this many pixels (Lanczos; "
            "JPEG decoded at reduced size when every crop allows). Default: full resolution."
        },
    )
    upscale: bool = field(
        default=False,
        metadata={
            "help": "With --size, also enlarge smaller crops so every crop's longest side is "
            "exactly the size."
        },
    )
    fill: tuple[int, int, int] = field(
        default=(0, 0, 0),
        metadata={"help": "Fill colour R,G,B (or one grey value) for pad/center."},
    )
    quality: int = field(default=95, metadata={"help": "JPEG quality of the crops (1-100)."})
    exif: ExifMode = field(
        default=ExifMode.MEGADETECTOR,
        metadata={
            "help": "EXIF orientation: megadetector (as MegaDetector saw the image), full, none."
        },
    )

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.margin < 100:
            raise CamtrapError(
                f"--margin must be a fraction of the box size between 0 and 100, got {self.margin}"
            )
        if self.min_size < 0:
            raise CamtrapError(f"--min-size must be >= 0, got {self.min_size}")
        if self.size is not None and self.size <= 0:
            raise CamtrapError(f"--size must be a positive number of pixels, got {self.size}")
        if not 1 <= self.quality <= 100:
            raise CamtrapError(f"--quality must be 1..100, got {self.quality}")
        if len(self.fill) != 3 or not all(0 <= c <= 255 for c in self.fill):
            raise CamtrapError(f"--fill must be three values 0..255, got {self.fill}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["strategy"] = self.strategy.value
        data["exif"] = self.exif.value
        data["fill"] = list(self.fill)
        return data


@define
class RunOptions:
    """How to run (does not change pixels)."""

    workers: int = field(default=0, metadata={"help": "Worker processes (0 = CPU count)."})
    allow_truncated: bool = field(
        default=False,
        metadata={
            "help": "Crop what is there in truncated images instead of recording them as failures."
        },
    )
    save_full_images: bool = field(
        default=False,
        metadata={
            "help": "Also save each full image as decoded (oriented RGB JPEG) under "
            "OUT_DIR/full_images/."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Remake crops that already exist (needed to change settings in a used folder)."
        },
    )
    fsync: bool = field(
        default=False,
        metadata={
            "help": "fsync every crop (slow: ms per file). Without it a crop still appears only "
            "whole, and an empty file left by a power cut is remade on resume."
        },
    )

    @property
    def processes(self) -> int:
        """How many worker processes ``workers`` asks for."""
        return self.workers or os.cpu_count() or 1
