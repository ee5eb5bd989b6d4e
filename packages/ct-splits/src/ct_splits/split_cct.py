"""Per-split CCT files (``train_cct.json``, ``val_cct.json``, ``test_cct.json``): the
animl-ml notebook ``create_separate_cct_for_splits`` as a function."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from ct_io.cct import CocoCameraTraps, write_cct
from ct_io.errors import CamtrapError
from ct_io.tables import SPLIT_NAMES, Splits
from ct_splits.dataset import PseudoMode, cct_image_table

log = logging.getLogger(__name__)


def image_splits(
    ds: CocoCameraTraps,
    dataset: str,
    splits: Splits,
    table: pd.DataFrame | None = None,
    *,
    pseudo: PseudoMode = "sequence",
) -> pd.Series:
    """Split name of each CCT image (NaN when its location is in no split).

    An image found in the dataset table (column ``image``) takes the split of its crops'
    location, so pseudo-locations match exactly; other images use their own location.
    """
    images = cct_image_table(ds, dataset, pseudo=pseudo)
    lookup = {loc: name for (d, loc), name in splits.split_of().items() if d == dataset}
    split = images["location"].map(lookup)
    if table is not None and "image" in table.columns and len(table):
        rows = table[table["dataset"].astype(str) == dataset]
        by_image = rows.drop_duplicates("image").set_index("image")["location"].map(lookup)
        from_table = images["image"].map(by_image)
        split = from_table.where(from_table.notna(), split)
    return pd.Series(split.to_numpy(), index=ds.images.index, name="split")


def table_dataset(table: pd.DataFrame, dataset: str | None = None) -> str:
    """``dataset``, or the table's only dataset (a CCT file is one dataset of the table)."""
    names = sorted(table["dataset"].astype(str).unique())
    if dataset is None and len(names) != 1:
        raise CamtrapError(
            f"the table holds {len(names)} datasets; say which one --cct is with --cct-dataset"
        )
    return dataset or names[0]


def write_split_ccts(
    ds: CocoCameraTraps,
    dataset: str,
    splits: Splits,
    out_dir: str | os.PathLike[str],
    table: pd.DataFrame | None = None,
    *,
    pseudo: PseudoMode = "sequence",
) -> dict[str, int]:
    """Write ``<split>_cct.json`` under ``out_dir``; returns images per split (and ``none``)."""
    split = image_splits(ds, dataset, splits, table, pseudo=pseudo)
    out = Path(out_dir)
    counts: dict[str, int] = {}
    for name in SPLIT_NAMES:
        mask = (split == name).to_numpy()
        images = ds.images[mask].reset_index(drop=True)
        annotations = ds.annotations[ds.annotations["image_id"].isin(images["id"])].reset_index(
            drop=True
        )
        write_cct(
            CocoCameraTraps(
                images=images,
                annotations=annotations,
                categories=ds.categories,
                info=ds.info,
                extra=ds.extra,
            ),
            out / f"{name}_cct.json",
        )
        counts[name] = int(mask.sum())
    counts["none"] = int(split.isna().sum())
    if counts["none"]:
        log.warning(
            "%d CCT images are at locations in no split (e.g. labels dropped by --min-locs); left out",
            counts["none"],
        )
    return counts
