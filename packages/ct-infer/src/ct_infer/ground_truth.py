"""Ground-truth boxes as MegaDetector detections, so crops of them can be merged too.

Training crops of ground-truth boxes are named without a detector suffix
(``a/b.jpg___crop01.jpg``: the image's second annotation with a box, in the CCT's
order — ct-crop's rule). To put their classifications in an MD JSON for Timelapse (the
seed's step 9), each such box becomes a detection (category ``animal``, conf 1.0) added
after the detector's own detections of that image.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ct_crop.boxes import gt_boxes
from ct_io.cct import CocoCameraTraps
from ct_io.errors import CamtrapError
from ct_io.md import MDDetection, MDImage, MDResults
from ct_io.paths import safe_join

GT_CATEGORY = "1"


def add_ground_truth(
    md: MDResults | None, cct: CocoCameraTraps, images_dir: str | os.PathLike[str] | None = None
) -> tuple[MDResults, dict[tuple[str, int], int]]:
    """A copy of ``md`` (or a new MD JSON) with the CCT's boxes added as detections.

    Returns the document and ``(file, ground-truth box index) → detection index``. Box
    sizes are normalized with the CCT's width/height, else the image header (needs
    ``images_dir``).
    """
    result = copy.deepcopy(md) if md is not None else MDResults(images=[])
    boxes, sizes = gt_boxes(cct)
    by_file = {im.file: im for im in result.images}
    index: dict[tuple[str, int], int] = {}
    for file, specs in boxes.items():
        size = sizes.get(file) or _header_size(file, images_dir)
        im = by_file.get(file)
        if im is None:
            im = MDImage(file=file, detections=[])
            result.images.append(im)
            by_file[file] = im
        if im.detections is None:
            im.detections, im.failure = [], None
        for spec in specs:
            x, y, w, h = spec.bbox
            width, height = size
            bbox = [
                round(x / width, 4),
                round(y / height, 4),
                round(w / width, 4),
                round(h / height, 4),
            ]
            index[(file, spec.index)] = len(im.detections)
            im.detections.append(MDDetection(category=GT_CATEGORY, conf=1.0, bbox=bbox))
    result.images.sort(key=lambda im: im.file)
    return result, index


def crop_boxes_of(
    md: MDResults | None, cct: CocoCameraTraps | None, images_dir: str | os.PathLike[str] | None
) -> tuple[MDResults, dict[tuple[str, int], int] | None] | None:
    """The boxes crops were cut from: the detector's (``md``), the CCT's ground-truth boxes
    (added as detections, with their index), both, or None when neither is given."""
    if cct is None:
        return None if md is None else (md, None)
    return add_ground_truth(md, cct, images_dir)


def _header_size(file: str, images_dir: str | os.PathLike[str] | None) -> tuple[int, int]:
    if images_dir is None:
        raise CamtrapError(
            f"the CCT gives no width/height for {file}; pass --images-dir to read it from the image"
        )
    from PIL import Image

    path = safe_join(Path(images_dir), file)
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as exc:
        raise CamtrapError(f"{path}: cannot read image size ({exc})") from None
