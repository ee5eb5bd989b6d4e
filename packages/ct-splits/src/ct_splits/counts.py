"""The units × labels count matrices every split method works on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from attrs import define

from ct_io.errors import CamtrapError
from ct_splits.grouping import DEFAULT_GROUP_BY, Units, location_pairs, make_units


@define(frozen=True)
class UnitCounts:
    """Crops and locations per (unit, label).

    ``crops[u, l]`` counts crops of label ``l`` in unit ``u``; ``locs[u, l]`` counts the
    unit's locations holding label ``l`` (so with one location per unit, ``locs`` is
    ``crops > 0``, the reference tools' matrix).
    """

    units: Units
    labels: list[str]
    crops: np.ndarray  # (U, L) int64
    locs: np.ndarray  # (U, L) int64

    @property
    def n_units(self) -> int:
        return self.crops.shape[0]

    def subset(self, keep: np.ndarray) -> UnitCounts:
        """The counts of the units where ``keep`` is True (labels kept as they are)."""
        idx = np.flatnonzero(keep)
        units = Units(
            row_unit=np.full(0, -1),
            keys=[self.units.keys[i] for i in idx],
            locations=[self.units.locations[i] for i in idx],
            location_unit={loc: j for j, i in enumerate(idx) for loc in self.units.locations[i]},
        )
        return UnitCounts(
            units=units, labels=self.labels, crops=self.crops[idx], locs=self.locs[idx]
        )


def split_labels(labels: pd.Series) -> pd.Series:
    """One entry per (row, label): the ``label`` column is a comma-separated list."""
    text = labels.astype(str)
    if not text.str.contains(",", regex=False).any():
        return text
    return text.str.split(",").explode().str.strip()


def count_units(
    frame: pd.DataFrame,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    *,
    site_separator: str = "/",
    units: Units | None = None,
) -> UnitCounts:
    """Build the count matrices of a dataset table (columns dataset, location, label)."""
    missing = [c for c in ("dataset", "location", "label") if c not in frame.columns]
    if missing:
        raise CamtrapError(f"the dataset table lacks column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    units = units or make_units(frame, group_by, site_separator=site_separator)
    per_label = split_labels(frame["label"])
    positions = per_label.index.to_numpy()
    label_codes, labels = pd.factorize(per_label.to_numpy(), sort=True)
    n_units, n_labels = len(units), len(labels)
    unit_of = units.row_unit[positions]
    crops = np.bincount(unit_of * n_labels + label_codes, minlength=n_units * n_labels).reshape(
        n_units, n_labels
    )
    loc_codes = pd.factorize(location_pairs(frame).to_numpy()[positions])[0]
    pair_keys = np.unique(loc_codes.astype(np.int64) * n_labels + label_codes)
    pair_locs, pair_labels = np.divmod(pair_keys, n_labels)
    loc_unit = np.zeros(int(loc_codes.max()) + 1, dtype=np.int64)
    loc_unit[loc_codes] = unit_of
    locs = np.bincount(
        loc_unit[pair_locs] * n_labels + pair_labels, minlength=n_units * n_labels
    ).reshape(n_units, n_labels)
    return UnitCounts(
        units=units,
        labels=[str(x) for x in labels],
        crops=crops.astype(np.int64),
        locs=locs.astype(np.int64),
    )
