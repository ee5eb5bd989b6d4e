"""Options of the built-in download sources: ``animl``, ``lila`` and ``folder``.

The same classes check ``ct-io fetch NAME -o KEY=VALUE`` and a run config's
``sources[].options``, and give ``ct-io animl download``, ``ct-io lila download`` and
``ct-io folder`` their options (``ct_io.cli_fields``): each field's help is in its
metadata. Only attrs here, so ``--help`` does not import pandas.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from attrs import define, field

#: LILA's published files (lila.science); every one can be replaced by a local copy.
INDEX_URL = "https://lila.science/wp-content/uploads/2023/06/lila_camera_trap_datasets.csv"
TAXONOMY_URL = "https://lila.science/public/lila-taxonomy-mapping_release.csv"
ALL_IMAGES_URL = "https://lila.science/public/lila_image_urls_and_labels.csv.zip"
Cloud = Literal["azure", "gcp", "aws"]

DEFAULT_BUCKET = "animl-images-archive-prod"
SERVING_BUCKET = "animl-images-serving-prod"
DEFAULT_PROFILE = "animl"
DEFAULT_REGION = "us-west-2"
DEFAULT_KEY_FIELD = "original_relative_path"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")

_THREADS = "Concurrent downloads."
_RETRIES = "Extra attempts after a transient error (5xx, throttling, reset connection)."
_KEEP_MISSING = "Keep images that failed to download in the CCT."


def _positive(_inst: object, attr: Any, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{getattr(attr, 'name', 'value')} must be at least 1, got {value}")


def _threads(_inst: object, _attr: object, value: int) -> None:
    if not 1 <= value <= 256:
        raise ValueError(f"threads must be between 1 and 256, got {value}")


def _regex(_inst: object, attr: Any, value: str | None) -> None:
    if value is None:
        return
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{attr.name}: not a valid regex ({exc})") from None


@define(kw_only=True)
class AnimlOptions:
    """Options of the ``animl`` source (``ct-io fetch animl OUT -o cct=export.json``)."""

    cct: Path = field(metadata={"help": "The COCO Camera Traps export from the Animl web app."})
    dataset: str | None = field(
        default=None,
        metadata={"help": "Dataset folder name (default: from the export's file name)."},
    )
    bucket: str = field(
        default=DEFAULT_BUCKET,
        metadata={"help": f"S3 bucket of the images ({SERVING_BUCKET} also works)."},
    )
    key_field: str = field(
        default=DEFAULT_KEY_FIELD,
        metadata={"help": "Image field holding the S3 key (falls back to file_name)."},
    )
    profile: str | None = field(
        default=DEFAULT_PROFILE,
        metadata={"help": "Named AWS profile ('' = boto3's default credential chain)."},
    )
    region: str = field(default=DEFAULT_REGION, metadata={"help": "AWS region."})
    endpoint_url: str | None = field(
        default=None, metadata={"help": "S3-compatible endpoint (MinIO, a test server)."}
    )
    threads: int = field(default=16, validator=_threads, metadata={"help": _THREADS})
    retries: int = field(default=4, metadata={"help": _RETRIES})
    keep_missing: bool = field(default=False, metadata={"help": _KEEP_MISSING})


@define(kw_only=True)
class LilaOptions:
    """Options of the ``lila`` source (``ct-io fetch lila OUT -o dataset=...``)."""

    dataset: str = field(
        metadata={"help": "Dataset name or short name (`ct-io lila datasets` lists them)."}
    )
    cloud: Cloud = field(default="azure", metadata={"help": "Where to download the images from."})
    azure_transport: Literal["sdk", "https"] = field(
        default="sdk", metadata={"help": "Azure only: the Blob SDK, or plain HTTPS GETs."}
    )
    index: str = field(
        default=INDEX_URL, metadata={"help": "LILA datasets index: URL or local CSV."}
    )
    taxonomy: str = field(
        default=TAXONOMY_URL,
        metadata={"help": "LILA taxonomy mapping (read for taxa): URL or local CSV."},
    )
    metadata_dir: Path | None = field(
        default=None, metadata={"help": "Metadata cache (default OUT_DIR/_lila_metadata)."}
    )
    refresh_metadata: bool = field(
        default=False, metadata={"help": "Download the metadata files again, even when cached."}
    )
    metadata: str | None = field(
        default=None,
        metadata={"help": "The dataset's CCT (URL, or local .json / .zip) instead of the index's."},
    )
    taxa: list[str] = field(
        factory=list,
        metadata={"help": "Keep images of this taxon: scientific or common name (repeatable)."},
    )
    labels: list[str] = field(
        factory=list, metadata={"help": "Keep images with this original label (repeatable)."}
    )
    locations: list[str] = field(
        factory=list, metadata={"help": "Keep images at this location (repeatable)."}
    )
    locations_of_taxa: bool = field(
        default=False,
        metadata={
            "help": "With a taxon filter: keep every image at the locations holding the taxon."
        },
    )
    max_per_label: int | None = field(
        default=None,
        validator=_positive,
        metadata={"help": "At most this many images per label (random, seeded)."},
    )
    max_per_location: int | None = field(
        default=None,
        validator=_positive,
        metadata={"help": "At most this many images per location (random, seeded)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random caps."})
    threads: int = field(default=16, validator=_positive, metadata={"help": _THREADS})
    retries: int = field(default=4, metadata={"help": _RETRIES})
    keep_missing: bool = field(default=False, metadata={"help": _KEEP_MISSING})


@define(kw_only=True)
class FolderOptions:
    """Options of the ``folder`` source (``ct-io fetch folder OUT -o root=photos``)."""

    root: Path = field(metadata={"help": "Folder holding the images."})
    cct: Path | None = field(
        default=None,
        metadata={"help": "A CCT file for these images (else labels come from sub-folder names)."},
    )
    dataset: str | None = field(
        default=None, metadata={"help": "Dataset name (default: the root folder's name)."}
    )
    label_component: int = field(
        default=-1,
        metadata={"help": "Which folder of an image's path is its label (-1 = parent)."},
    )
    label_regex: str | None = field(
        default=None,
        validator=_regex,
        metadata={"help": "Regex on the relative path; group 'label' is the label."},
    )
    location_component: int | None = field(
        default=None,
        metadata={"help": "Which folder of an image's path is its location (0 = top)."},
    )
    location_regex: str | None = field(
        default=None,
        validator=_regex,
        metadata={"help": "Regex on the relative path; group 'location' is the location."},
    )
    extensions: list[str] = field(
        factory=lambda: list(IMAGE_EXTENSIONS),
        metadata={
            "help": "File extension counted as an image, any case (repeatable; default: "
            + " ".join(IMAGE_EXTENSIONS)
            + ")."
        },
    )
    read_headers: bool = field(
        default=True,
        metadata={"help": "Read width/height/EXIF date; flag unreadable images corrupt."},
    )
    keep_missing: bool = field(
        default=False, metadata={"help": "With a CCT: keep images missing on disk."}
    )
    threads: int = field(default=8, metadata={"help": "Threads reading image headers."})
