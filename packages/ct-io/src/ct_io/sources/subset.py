"""Choosing part of a CCT before downloading it: by label, by location, capped per label
and per location (seeded, so a rerun picks the same images)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from ct_io.cct import CocoCameraTraps
from ct_io.sources.common import keep_images
from ct_io.tables import UNKNOWN_LOCATION

NO_LABEL = "(no annotation)"


def image_label_table(ds: CocoCameraTraps) -> pd.DataFrame:
    """One row per (image position, lower-case label); unannotated images get ``NO_LABEL``."""
    names = {k: str(v).strip().lower() for k, v in ds.category_names.items()}
    pos = pd.Series(np.arange(len(ds.images)), index=ds.images["id"])
    pos = pos[~pos.index.duplicated()]
    an = ds.annotations[["image_id", "category_id"]]
    table = pd.DataFrame(
        {"pos": an["image_id"].map(pos), "label": an["category_id"].map(names)}
    ).dropna()
    table = table.astype({"pos": "int64"}).drop_duplicates()
    missing = np.setdiff1d(np.arange(len(ds.images)), table["pos"].to_numpy())
    if len(missing):
        table = pd.concat(
            [table, pd.DataFrame({"pos": missing, "label": NO_LABEL})], ignore_index=True
        )
    return table.fillna({"label": NO_LABEL})


def image_location_strings(ds: CocoCameraTraps) -> pd.Series:
    """Each image's location, ``unknown_location`` where absent."""
    return (
        ds.images["location"]
        .astype(object)
        .where(ds.images["location"].notna(), UNKNOWN_LOCATION)
        .astype(str)
    )


def subset_cct(
    ds: CocoCameraTraps,
    *,
    labels: Collection[str] | None = None,
    locations: Collection[str] | None = None,
    max_per_label: int | None = None,
    max_per_location: int | None = None,
    seed: int = 0,
) -> CocoCameraTraps:
    """Images with any of ``labels`` (case-insensitive) at any of ``locations``, then at most
    ``max_per_label`` images per label and ``max_per_location`` per location.

    ``None`` means no filter / no cap. Caps draw at random with ``seed``.
    """
    keep = np.ones(len(ds.images), dtype=bool)
    table = image_label_table(ds)
    if labels is not None:
        wanted = {str(x).strip().lower() for x in labels}
        hit = np.zeros(len(ds.images), dtype=bool)
        hit[table.loc[table["label"].isin(wanted), "pos"].to_numpy()] = True
        keep &= hit
    locs = image_location_strings(ds)
    if locations is not None:
        keep &= locs.isin({str(x) for x in locations}).to_numpy()
    rng = np.random.default_rng(seed)
    if max_per_label is not None:
        chosen = np.zeros(len(ds.images), dtype=bool)
        kept = table[keep[table["pos"].to_numpy()]]
        for _, group in kept.groupby("label", sort=True):
            chosen[_sample(group["pos"].to_numpy(), max_per_label, rng)] = True
        keep &= chosen
    if max_per_location is not None:
        chosen = np.zeros(len(ds.images), dtype=bool)
        positions = np.flatnonzero(keep)
        for _, group in pd.Series(positions).groupby(locs.to_numpy()[positions], sort=True):
            chosen[_sample(group.to_numpy(), max_per_location, rng)] = True
        keep &= chosen
    return keep_images(ds, pd.Series(keep))


def _sample(positions: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    positions = np.unique(positions)
    if len(positions) <= n:
        return positions
    return np.sort(rng.choice(positions, size=n, replace=False))
