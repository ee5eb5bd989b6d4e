"""Which boxes to crop: ground-truth boxes from a CCT, detector boxes from MD JSON.

The result is one :class:`ImageJob` per image with every box to crop, each already
named. Naming follows ``specs/formats.md``: ground-truth box k of ``a/b.jpg`` →
``a/b.jpg___crop{k:02d}.jpg``; detector box k → ``a/b.jpg___crop{k:02d}_{detector}.jpg``,
where k is the box's index in the image's list (a detection's index in the MD
``detections`` list; a ground-truth box's index among the image's annotations that have
a bbox, in file order). Boxes that are skipped still use up their index, so a crop's
name maps back to exactly one box.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from attrs import field, frozen

from ct_io.paths import unsafe_reason

if TYPE_CHECKING:
    from ct_io.cct import CocoCameraTraps
    from ct_io.md import MDResults

GT = "gt"
DETECTOR = "detector"
_UNSAFE_VERSION = re.compile(r"[^A-Za-z0-9._-]+")


class BoxChoice(enum.StrEnum):
    """Which boxes an image gets when both a CCT and detections are given."""

    AUTO = "auto"  # ground truth where the image has any, detector boxes otherwise
    GT = "gt"
    DETECTOR = "detector"
    BOTH = "both"


def _names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(n) for n in names)


@frozen(kw_only=True)
class BoxSelection:
    """Which boxes of a CCT (ground truth) and an MD JSON (detector) to crop."""

    threshold: float = field(
        default=0.2, metadata={"help": "Crop detector boxes with confidence >= this."}
    )
    categories: tuple[str, ...] = field(
        default=("animal",),
        converter=_names,
        metadata={"help": "Detection category (name or id) to crop; repeatable. Default: animal."},
    )
    detector_version: str | None = field(
        default=None,
        metadata={"help": "Version in detector crop names (default: the MD file's info.detector)."},
    )
    choice: BoxChoice = field(
        default=BoxChoice.AUTO,
        metadata={
            "help": "auto: ground truth where an image has any, else detector boxes; gt; "
            "detector; both."
        },
    )


@frozen
class BoxSpec:
    """One box to crop. ``bbox`` is normalized when ``normalized`` else in pixels of ``ref_size``."""

    index: int
    source: str
    bbox: tuple[float, float, float, float]
    normalized: bool
    category: str
    confidence: float
    crop_name: str
    detector: str = ""


@frozen
class ImageJob:
    """One image and all of its boxes to crop (decoded once for all of them)."""

    file: str
    boxes: tuple[BoxSpec, ...]
    #: ``(width, height)`` the ground-truth pixel boxes refer to (from the CCT), if known.
    ref_size: tuple[int, int] | None = None


@frozen
class Skipped:
    """An image or box left out before cropping, with the reason (goes to the failure log)."""

    image: str
    box_index: int | None
    kind: str
    reason: str


def crop_name(file: str, index: int, detector: str | None = None) -> str:
    """The crop's path relative to the crops folder (see the module docstring)."""
    suffix = f"_{detector}" if detector else ""
    return f"{file}___crop{index:02d}{suffix}.jpg"


def safe_detector_version(version: str) -> str:
    """A detector version usable in a file name (``/`` and spaces become ``_``)."""
    cleaned = _UNSAFE_VERSION.sub("_", version.strip()).strip("._")
    return cleaned or "unknown"


def detector_version_of(md: MDResults, override: str | None = None) -> str:
    """The version string in crop names: ``override``, else ``info.detector``, else ``unknown``."""
    return safe_detector_version(override or md.info.detector or "unknown")


def detector_boxes(
    md: MDResults, *, threshold: float, categories: Collection[str], version: str
) -> tuple[dict[str, list[BoxSpec]], list[Skipped]]:
    """Per image file, the detections at or above ``threshold`` whose category name is kept.

    ``categories`` are names (``animal``) or ids (``1``). Images MD could not process
    (``failure`` set) are reported as skipped.
    """
    keep_ids = {
        cid
        for cid, name in md.detection_categories.items()
        if name in categories or cid in categories
    }
    out: dict[str, list[BoxSpec]] = {}
    skipped: list[Skipped] = []
    for im in md.images:
        if im.detections is None:
            skipped.append(
                Skipped(im.file, None, "detector_failure", im.failure or "no detections (null)")
            )
            continue
        if im.file in out:
            skipped.append(
                Skipped(
                    im.file,
                    None,
                    "duplicate",
                    "listed twice in the MD file; the first entry is used",
                )
            )
            continue
        specs = out.setdefault(im.file, [])
        for k, det in enumerate(im.detections):
            if det.category not in keep_ids or det.conf < threshold or det.bbox is None:
                continue
            name = md.detection_categories.get(det.category, det.category)
            x, y, w, h = (float(v) for v in det.bbox)
            specs.append(
                BoxSpec(
                    k,
                    DETECTOR,
                    (x, y, w, h),
                    True,
                    name,
                    float(det.conf),
                    crop_name(im.file, k, version),
                    version,
                )
            )
    return out, skipped


def gt_boxes(
    cct: CocoCameraTraps,
) -> tuple[dict[str, list[BoxSpec]], dict[str, tuple[int, int] | None]]:
    """Per image file, its ground-truth boxes (pixels), and the image size the CCT states."""
    images = cct.images
    ann = cct.annotations
    names = cct.category_names
    sizes: dict[str, tuple[int, int] | None] = {}
    id_to_file: dict[object, str] = {}
    has_size = "width" in images.columns and "height" in images.columns
    widths = images["width"].tolist() if has_size else [None] * len(images)
    heights = images["height"].tolist() if has_size else [None] * len(images)
    for image_id, file, w, h in zip(
        images["id"].tolist(), images["file_name"].tolist(), widths, heights, strict=True
    ):
        id_to_file[image_id] = file
        sizes[file] = (int(w), int(h)) if _positive(w) and _positive(h) else None
    out: dict[str, list[BoxSpec]] = {}
    if len(ann) == 0 or "bbox_x" not in ann.columns:
        return out, sizes
    with_box = ann.dropna(subset=["bbox_x", "bbox_y", "bbox_w", "bbox_h"])
    counters: dict[str, int] = {}
    for image_id, cat, x, y, w, h in zip(
        with_box["image_id"].tolist(),
        with_box["category_id"].tolist(),
        with_box["bbox_x"].tolist(),
        with_box["bbox_y"].tolist(),
        with_box["bbox_w"].tolist(),
        with_box["bbox_h"].tolist(),
        strict=True,
    ):
        file = id_to_file.get(image_id)
        if file is None:
            continue
        k = counters.get(file, 0)
        counters[file] = k + 1
        label = names.get(cat, str(cat))
        out.setdefault(file, []).append(
            BoxSpec(
                k,
                GT,
                (float(x), float(y), float(w), float(h)),
                False,
                str(label),
                1.0,
                crop_name(file, k),
            )
        )
    return out, sizes


def _positive(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def build_jobs(
    *,
    cct: CocoCameraTraps | None = None,
    md: MDResults | None = None,
    threshold: float = 0.2,
    categories: Collection[str] = ("animal",),
    detector_version: str | None = None,
    choice: BoxChoice = BoxChoice.AUTO,
) -> tuple[list[ImageJob], list[Skipped]]:
    """One job per image with boxes to crop, sorted by file; plus what was left out and why.

    With a CCT, only its images are considered; detector boxes fill in for images
    without ground-truth boxes (``BoxChoice.AUTO``).
    """
    if cct is None and md is None:
        raise ValueError("give a CCT (ground-truth boxes), MD JSON (detector boxes), or both")
    skipped: list[Skipped] = []
    det: dict[str, list[BoxSpec]] = {}
    if md is not None and choice is not BoxChoice.GT:
        version = detector_version_of(md, detector_version)
        det, det_skipped = detector_boxes(
            md, threshold=threshold, categories=categories, version=version
        )
        skipped.extend(det_skipped)
    gt: dict[str, list[BoxSpec]] = {}
    sizes: dict[str, tuple[int, int] | None] = {}
    if cct is not None:
        gt, sizes = gt_boxes(cct)
        if choice is BoxChoice.DETECTOR:
            gt = {}
        files: Iterable[str] = sizes
    else:
        files = det
    jobs: list[ImageJob] = []
    for file in sorted(set(files)):
        reason = unsafe_reason(file)
        if reason:
            skipped.append(Skipped(file, None, "unsafe_path", f"refusing path: {reason}"))
            continue
        boxes = list(gt.get(file, ()))
        if choice is BoxChoice.BOTH or not boxes:
            boxes += det.get(file, ())
        if boxes:
            jobs.append(ImageJob(file, tuple(boxes), sizes.get(file)))
    return jobs, skipped
