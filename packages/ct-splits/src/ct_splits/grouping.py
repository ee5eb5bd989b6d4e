"""Split units: locations joined by shared group keys, so nothing that belongs together
(frames of one sequence, cameras of one site) ever straddles two splits.

A location is a ``(dataset, location)`` pair. Each group key (``sequence``, ``camera``,
``site`` or any column of the dataset table) links every location that shares one of its
values inside a dataset; a unit is a connected component of those links. With only
``location`` a unit is exactly one location, as in the reference tools.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from attrs import define

from ct_io.errors import CamtrapError
from ct_io.tables import UNKNOWN_LOCATION

log = logging.getLogger(__name__)

#: Group keys with a meaning of their own, and the columns that may hold them.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "sequence": ("seq_id", "sequence", "seq"),
    "camera": ("camera", "camera_id"),
    "site": ("site", "site_id"),
}
DEFAULT_GROUP_BY: tuple[str, ...] = ("location", "sequence")


@define(frozen=True)
class Units:
    """Rows of a dataset table grouped into split units."""

    row_unit: np.ndarray  # (rows,) unit index of each row
    keys: list[str]  # unit key: its first "<dataset>/<location>" in sort order
    locations: list[list[tuple[str, str]]]  # the (dataset, location) pairs of each unit
    location_unit: dict[tuple[str, str], int]  # (dataset, location) → unit index

    def __len__(self) -> int:
        return len(self.keys)


def location_pairs(frame: pd.DataFrame) -> pd.Series:
    """``"<dataset>/<location>"`` per row, the reference tools' location key."""
    return frame["dataset"].astype(str) + "/" + frame["location"].astype(str)


def _key_values(frame: pd.DataFrame, key: str, site_separator: str) -> pd.Series | None:
    """The values (scoped by dataset) that link locations for ``key``; None when absent."""
    cols = KEY_COLUMNS.get(key, (key,))
    col = next((c for c in cols if c in frame.columns), None)
    if col is not None:
        values = frame[col]
    elif key == "site" and site_separator:
        loc = frame["location"].astype(str)
        pseudo = loc.str.startswith(UNKNOWN_LOCATION)
        values = loc.str.split(site_separator, n=1).str[0].where(~pseudo, None)
    else:
        return None
    values = values.astype(object).where(values.notna() & (values.astype(str).str.len() > 0), None)
    return (frame["dataset"].astype(str) + "\x1f" + values.astype(str)).where(values.notna(), None)


def _components(n: int, edges: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Connected components of ``n`` nodes linked through shared values; label = min node."""
    comp = np.arange(n)
    while True:
        before = comp.copy()
        for nodes, values in edges:
            low = np.full(int(values.max()) + 1, n, dtype=np.int64)
            np.minimum.at(low, values, comp[nodes])
            np.minimum.at(comp, nodes, low[values])
        while True:  # pointer jumping: follow labels to their root
            nxt = comp[comp]
            if np.array_equal(nxt, comp):
                break
            comp = nxt
        if np.array_equal(comp, before):
            return comp


def make_units(
    frame: pd.DataFrame, group_by: Sequence[str] = DEFAULT_GROUP_BY, *, site_separator: str = "/"
) -> Units:
    """Group the rows of a dataset table into split units.

    ``group_by`` names the keys: ``location`` (always implied), ``sequence``, ``camera``,
    ``site`` (a ``site`` column, else the part of the location before ``site_separator``)
    or any column. ``sequence`` is skipped quietly when the table has no sequence column
    (it is in the default); any other key that is missing is an error.
    """
    if frame.empty:
        raise CamtrapError("the dataset table has no rows — nothing to split")
    frame = frame.reset_index(drop=True)
    pair_key = location_pairs(frame)
    loc_codes, loc_uniques = pd.factorize(pair_key, sort=True)
    n = len(loc_uniques)
    edges = []
    for key in group_by:
        if key == "location":
            continue
        values = _key_values(frame, key, site_separator)
        if values is None:
            if key == "sequence":
                log.debug("no sequence column; grouping by location only")
                continue
            raise CamtrapError(
                f"group key {key!r}: no such column (expected one of {', '.join(KEY_COLUMNS.get(key, (key,)))}; "
                f"the table has {', '.join(map(str, frame.columns))})"
            )
        has = values.notna().to_numpy()
        if not has.any():
            continue
        val_codes, _ = pd.factorize(values[has])
        pairs = np.unique(np.stack([loc_codes[has], val_codes]), axis=1)
        edges.append((pairs[0], pairs[1]))
    comp = _components(n, edges) if edges else np.arange(n)
    unit_of_loc, roots = pd.factorize(comp, sort=True)
    first = frame.groupby(loc_codes, sort=True)[["dataset", "location"]].first()
    pairs_list = list(zip(first["dataset"].astype(str), first["location"].astype(str), strict=True))
    locations: list[list[tuple[str, str]]] = [[] for _ in range(len(roots))]
    for code, unit in enumerate(unit_of_loc):
        locations[unit].append(pairs_list[code])
    merged = sum(1 for locs in locations if len(locs) > 1)
    if merged:
        log.info(
            "group keys %s joined %d locations into %d units", ",".join(group_by), n, len(roots)
        )
    return Units(
        row_unit=unit_of_loc[loc_codes],
        keys=[str(loc_uniques[r]) for r in roots],
        locations=locations,
        location_unit={p: int(u) for p, u in zip(pairs_list, unit_of_loc, strict=True)},
    )
