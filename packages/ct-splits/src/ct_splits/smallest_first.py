"""The ``smallest_first`` method, as the reference intends it (its code iterates the wrong
list, so the reference does not actually do this).

Labels are taken from fewest to most crops. For each label, its units not yet assigned
are sorted from fewest to most crops of that label — units from the label's prioritized
datasets first, level by level — and each goes to test while the label's test crops are
below ``test_frac × its crops``, then to val while below ``val_frac × its crops``, else to
train. Assigning a unit adds its crops to every label it holds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from ct_io.errors import CamtrapError
from ct_io.jsonio import read_json
from ct_splits.counts import UnitCounts
from ct_splits.scoring import TEST, TRAIN, VAL, Targets

UNASSIGNED = -1
#: Levels of dataset names: ``[["idfg_2019"], ["idfg"]]``.
Levels: TypeAlias = Sequence[Sequence[str]]
#: Levels for every label, or label → levels.
Prioritize: TypeAlias = Levels | Mapping[str, Levels]


def _levels(value: Any, where: str) -> list[list[str]]:
    if not isinstance(value, list) or not all(
        isinstance(level, list) and all(isinstance(d, str) for d in level) for level in value
    ):
        raise CamtrapError(
            f'{where}: prioritize must be a list of lists of dataset names, e.g. [["ds1"], ["ds2", "ds3"]]'
        )
    return [list(level) for level in value]


def load_prioritize(path: str | os.PathLike[str]) -> Prioritize:
    """Read ``prioritize`` from a label-spec JSON (label → {prioritize: [[...]], ...}),
    a JSON object label → [[datasets]], or a JSON list of lists (for every label)."""
    data = read_json(path)
    where = str(Path(path))
    if isinstance(data, list):
        return _levels(data, where)
    if not isinstance(data, dict):
        raise CamtrapError(
            f"{where}: expected a label spec object or a list of lists of dataset names"
        )
    out: dict[str, list[list[str]]] = {}
    for label, spec in data.items():
        if isinstance(spec, dict):
            if "prioritize" in spec:
                out[label] = _levels(spec["prioritize"], f"{where}: {label}")
        else:
            out[label] = _levels(spec, f"{where}: {label}")
    return out


def read_prioritize(label_spec: Path | None, levels: Sequence[str] = ()) -> Prioritize | None:
    """``prioritize`` from a label spec (:func:`load_prioritize`), or from comma-separated
    dataset names, one priority level each (for every label); None when neither is given."""
    if label_spec is not None:
        return load_prioritize(label_spec)
    if not levels:
        return None
    return [[d.strip() for d in level.split(",") if d.strip()] for level in levels]


def _levels_for(prioritize: Prioritize | None, label: str) -> Levels:
    if prioritize is None:
        return []
    if isinstance(prioritize, Mapping):
        return prioritize.get(label, [])
    return prioritize


def unit_datasets(counts: UnitCounts) -> list[str]:
    """The dataset of each unit (units never span datasets)."""
    return [locs[0][0] for locs in counts.units.locations]


def smallest_first(
    counts: UnitCounts,
    targets: Targets,
    *,
    prioritize: Prioritize | None = None,
    assign: np.ndarray | None = None,
) -> np.ndarray:
    """Assign units to splits smallest label first; returns unit → 0/1/2.

    ``assign`` may pre-assign units (e.g. a matched test set, ``UNASSIGNED`` elsewhere);
    their crops count toward their split.
    """
    n_units, n_labels = counts.crops.shape
    out = (
        np.full(n_units, UNASSIGNED, dtype=np.int8)
        if assign is None
        else assign.astype(np.int8).copy()
    )
    split_crops = np.zeros((3, n_labels), dtype=np.int64)
    for s in (TRAIN, VAL, TEST):
        split_crops[s] = counts.crops[out == s].sum(axis=0)
    label_size = counts.crops.sum(axis=0)
    datasets = np.array(unit_datasets(counts), dtype=object)
    keys = np.array(counts.units.keys, dtype=object)
    # stable: ties in size keep label order (labels are sorted)
    for label in np.argsort(label_size, kind="stable"):
        held = np.flatnonzero((counts.crops[:, label] > 0) & (out == UNASSIGNED))
        if held.size == 0:
            continue
        levels = _levels_for(prioritize, counts.labels[label])
        rank = np.full(held.size, len(levels), dtype=np.int64)
        for i, level in reversed(list(enumerate(levels))):
            rank[np.isin(datasets[held], list(level))] = i
        # sort by (priority level, crops of this label, unit key)
        order = np.lexsort((keys[held], counts.crops[held, label], rank))
        test_thresh = targets.test * label_size[label]
        val_thresh = targets.val * label_size[label]
        for u in held[order]:
            if split_crops[TEST, label] < test_thresh:
                s = TEST
            elif split_crops[VAL, label] < val_thresh:
                s = VAL
            else:
                s = TRAIN
            out[u] = s
            split_crops[s] += counts.crops[u]
    return out
