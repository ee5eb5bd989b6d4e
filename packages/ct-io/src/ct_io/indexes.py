"""Indexes over a CCT dataset: annotations by image, images by location, sequences."""

from __future__ import annotations

import logging
from typing import Literal

import pandas as pd

from ct_io.cct import CocoCameraTraps
from ct_io.tables import UNKNOWN_LOCATION

log = logging.getLogger(__name__)

PseudoLocation = Literal["dataset", "sequence", "image"]


def annotations_by_image(ds: CocoCameraTraps) -> dict[object, pd.DataFrame]:
    """Image id → its annotation rows."""
    return {k: g for k, g in ds.annotations.groupby("image_id", sort=False)}


def image_locations(ds: CocoCameraTraps, *, pseudo: PseudoLocation = "dataset") -> pd.Series:
    """Location of each image as a string; missing ones get an explicit pseudo-location.

    ``pseudo="dataset"`` puts them all in ``unknown_location``; ``"sequence"`` gives one
    pseudo-location per sequence (``unknown_location/seq:<seq_id>``), so frames of a
    sequence stay together; ``"image"`` one per image. A warning says how many.
    """
    loc = ds.images["location"].astype(object)
    missing = loc.isna()
    n = int(missing.sum())
    if n:
        log.warning(
            "%d of %d images have no location; using %s pseudo-locations", n, len(loc), pseudo
        )
        if pseudo == "dataset":
            fill = pd.Series(UNKNOWN_LOCATION, index=loc.index)
        elif pseudo == "sequence" and "seq_id" in ds.images.columns:
            seq = ds.images["seq_id"].astype(object)
            fill = (UNKNOWN_LOCATION + "/seq:" + seq.astype(str)).where(
                seq.notna(), UNKNOWN_LOCATION + "/img:" + ds.images["id"].astype(str)
            )
        else:
            fill = UNKNOWN_LOCATION + "/img:" + ds.images["id"].astype(str)
        loc = loc.where(~missing, fill)
    return loc.astype(str).rename("location")


def images_by_location(
    ds: CocoCameraTraps, *, pseudo: PseudoLocation = "dataset"
) -> dict[str, list[object]]:
    """Location → ids of its images."""
    locs = image_locations(ds, pseudo=pseudo)
    return {k: g.tolist() for k, g in ds.images["id"].groupby(locs.to_numpy(), sort=True)}


def sequences(ds: CocoCameraTraps) -> dict[object, list[object]]:
    """Sequence id → image ids ordered by ``frame_num`` (images without seq_id omitted)."""
    if "seq_id" not in ds.images.columns:
        return {}
    im = ds.images[ds.images["seq_id"].notna()]
    if "frame_num" in im.columns:
        im = im.assign(_f=pd.to_numeric(im["frame_num"], errors="coerce")).sort_values(
            ["seq_id", "_f"], kind="stable"
        )
    return {k: g.tolist() for k, g in im["id"].groupby(im["seq_id"].to_numpy(), sort=False)}


def image_labels(ds: CocoCameraTraps) -> pd.DataFrame:
    """One row per (image, category name) with the image's file and location."""
    names = ds.category_names
    an = ds.annotations[["image_id", "category_id"]].drop_duplicates()
    an = an.assign(category=an["category_id"].map(names))
    im = ds.images[["id", "file_name", "location"]].rename(columns={"id": "image_id"})
    return an.merge(im, on="image_id", how="left")
