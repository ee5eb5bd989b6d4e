"""Read the crops manifest ``crops.csv`` written by ``ct-crop`` — tolerantly, by column name.

Columns used (first name found wins; others are ignored):

- crop path relative to the crops folder: ``crop``, ``path``, ``crop_path`` (required)
- source image: ``image``, ``image_path``, ``file``, ``file_name`` (required); for
  ``queried_images.json`` this is ``<dataset>/<file>``, for a CCT the image's ``file_name``
- ``source``: ``gt`` / ``ground_truth`` or ``detector`` (default: ``detector`` when a
  confidence below 1 is given, else ``gt``)
- ``category``: the box's category name (``animal``, ``person``… for detector boxes, the
  species for ground-truth boxes); optional
- ``confidence`` / ``conf``: detector confidence, 1.0 for ground truth; optional
- ``box_index`` / ``box`` / ``index``: kept for reference; optional
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ct_io.errors import CamtrapError
from ct_io.tables import read_csv

ALIASES: dict[str, tuple[str, ...]] = {
    "crop": ("crop", "path", "crop_path", "crop_file"),
    "image": ("image", "image_path", "file", "file_name", "image_file"),
    "source": ("source", "box_source"),
    "category": ("category", "category_name", "detection_category"),
    "confidence": ("confidence", "conf"),
    "box_index": ("box_index", "box", "index", "bbox_index"),
}
GT_SOURCES = frozenset({"gt", "ground_truth", "groundtruth", "ground-truth", "annotation"})


def read_crops_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The manifest with canonical columns ``crop, image, source, category, confidence``."""
    if not Path(path).is_file():
        raise CamtrapError(
            f"{path}: file not found — write it with ct-crop, or point --manifest at it"
        )
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CamtrapError(f"{path}: cannot read CSV ({exc})") from None
    raw = read_csv(path, dtype=dict.fromkeys(header, str))
    cols = {
        name: next((c for c in aliases if c in raw.columns), None)
        for name, aliases in ALIASES.items()
    }
    for required in ("crop", "image"):
        if cols[required] is None:
            raise CamtrapError(
                f"{path}: no {required} column (looked for {', '.join(ALIASES[required])}; found {', '.join(map(str, raw.columns))})"
            )
    out = pd.DataFrame(
        {"crop": raw[cols["crop"]].astype(str), "image": raw[cols["image"]].astype(str)}
    )
    if cols["confidence"] is not None:
        conf = pd.to_numeric(raw[cols["confidence"]], errors="coerce")
        bad = conf.isna() & raw[cols["confidence"]].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise CamtrapError(
                f"{path}: row {row + 2}: confidence {raw[cols['confidence']].iloc[row]!r} is not a number"
            )
    else:
        conf = pd.Series(float("nan"), index=raw.index)
    if cols["source"] is not None:
        source = raw[cols["source"]].fillna("").str.strip().str.lower()
        is_gt = source.isin(GT_SOURCES)
    else:
        is_gt = conf.isna() | (conf >= 1.0)
    out["source"] = is_gt.map({True: "gt", False: "detector"})
    out["confidence"] = conf.where(~(is_gt & conf.isna()), 1.0)
    out["category"] = raw[cols["category"]].fillna("") if cols["category"] is not None else ""
    if cols["box_index"] is not None:
        out["box_index"] = raw[cols["box_index"]]
    return out
