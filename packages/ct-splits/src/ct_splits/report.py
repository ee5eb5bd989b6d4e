"""The dataset report: how each label is spread over the splits, and what looks wrong.

Per split and label: crops, locations, the fraction of the label's crops and locations
in that split, and the label's share of the split (its class distribution). A row is
flagged when the label is missing from a split that should hold some of it, or a
fraction is further from the target than ``tolerance``. The report also checks the
splits themselves: crops at locations in no split, and sequences that straddle splits.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from attrs import define, field

from ct_io.errors import CamtrapError
from ct_io.tables import SPLIT_NAMES, Splits
from ct_splits.counts import split_labels
from ct_splits.grouping import KEY_COLUMNS
from ct_splits.scoring import Targets
from ct_splits.splitting import split_of_rows

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.1
REPORT_COLUMNS = (
    "label",
    "split",
    "crops",
    "locations",
    "crop_frac",
    "loc_frac",
    "target",
    "share_of_split",
    "overall_share",
    "flags",
)


@define
class Report:
    """Report tables and the problems found."""

    per_label: pd.DataFrame  # one row per (label, split), REPORT_COLUMNS
    per_split: pd.DataFrame  # one row per split: crops, locations, labels, target, crop_frac
    targets: Targets
    tolerance: float
    unassigned_crops: int = 0
    straddling_sequences: int = 0
    problems: list[str] = field(factory=list)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.per_label[self.per_label["flags"] != ""]


def observed_targets(per_split_crops: pd.Series) -> Targets:
    """Each split's share of all crops, used as targets when none are given."""
    total = float(per_split_crops.sum()) or 1.0
    val, test = per_split_crops.get("val", 0) / total, per_split_crops.get("test", 0) / total
    return Targets(train=max(0.0, 1.0 - val - test), val=val, test=test)


def build_report(
    frame: pd.DataFrame,
    splits: Splits,
    *,
    targets: Targets | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Report:
    """Compute the report of a dataset table split by ``splits``."""
    if frame.empty:
        raise CamtrapError("the dataset table has no rows — nothing to report")
    frame = frame.reset_index(drop=True)
    split = split_of_rows(frame, splits)
    unassigned = int(split.isna().sum())
    problems: list[str] = []
    if unassigned:
        problems.append(
            f"{unassigned:,} crops are at locations in no split (is splits.json from this table?)"
        )
    rows = frame.assign(
        split=split.to_numpy(),
        loc=(frame["dataset"].astype(str) + "\x1f" + frame["location"].astype(str)).to_numpy(),
    )
    rows = rows[rows["split"].notna()]
    straddling = _straddling_sequences(rows)
    if straddling:
        problems.append(
            f"{straddling:,} sequences have frames in more than one split (split with --group-by sequence)"
        )
    per_label_rows = rows.loc[:, ["split", "loc"]].join(split_labels(rows["label"]).rename("lbl"))
    crops = (
        per_label_rows.groupby(["lbl", "split"])
        .size()
        .unstack("split")
        .reindex(columns=list(SPLIT_NAMES))
        .fillna(0)
        .astype(int)
    )
    locs = (
        per_label_rows.groupby(["lbl", "split"])["loc"]
        .nunique()
        .unstack("split")
        .reindex(columns=list(SPLIT_NAMES))
        .fillna(0)
        .astype(int)
    )
    label_locs = per_label_rows.groupby("lbl")["loc"].nunique()
    split_crops = rows.groupby("split").size().reindex(list(SPLIT_NAMES)).fillna(0).astype(int)
    targets = targets or observed_targets(split_crops)
    target = dict(zip(SPLIT_NAMES, targets.as_array(), strict=True))
    overall_share = crops.sum(axis=1) / crops.to_numpy().sum()
    records = []
    for label in crops.index:
        n_crops, n_locs = crops.loc[label].sum(), label_locs.loc[label]
        for s in SPLIT_NAMES:
            c, k = int(crops.at[label, s]), int(locs.at[label, s])
            cf, lf = c / n_crops, k / n_locs
            flags = []
            if c == 0 and target[s] > 0:
                flags.append("missing")
            else:
                if abs(cf - target[s]) > tolerance:
                    flags.append("crops off target")
                if abs(lf - target[s]) > tolerance:
                    flags.append("locations off target")
            size = int(split_crops[s])
            records.append(
                (
                    label,
                    s,
                    c,
                    k,
                    cf,
                    lf,
                    float(target[s]),
                    c / size if size else 0.0,
                    float(overall_share[label]),
                    "; ".join(flags),
                )
            )
    per_label = pd.DataFrame.from_records(records, columns=list(REPORT_COLUMNS))
    split_locs = (
        rows.groupby("split")["loc"].nunique().reindex(list(SPLIT_NAMES)).fillna(0).astype(int)
    )
    split_labels_n = (crops > 0).sum(axis=0).reindex(list(SPLIT_NAMES))
    per_split = pd.DataFrame(
        {
            "split": list(SPLIT_NAMES),
            "crops": split_crops.to_numpy(),
            "locations": split_locs.to_numpy(),
            "labels": split_labels_n.to_numpy(),
            "target": targets.as_array(),
            "crop_frac": split_crops.to_numpy() / max(1, int(split_crops.sum())),
        }
    )
    missing = per_label[per_label["flags"].str.contains("missing")]
    if len(missing):
        problems.append(
            f"{missing['label'].nunique()} label(s) are missing from a split: {', '.join(sorted(missing['label'].unique())[:10])}"
        )
    return Report(
        per_label=per_label,
        per_split=per_split,
        targets=targets,
        tolerance=tolerance,
        unassigned_crops=unassigned,
        straddling_sequences=straddling,
        problems=problems,
    )


def _straddling_sequences(rows: pd.DataFrame) -> int:
    col = next((c for c in KEY_COLUMNS["sequence"] if c in rows.columns), None)
    if col is None:
        return 0
    seq = rows[rows[col].notna()]
    if seq.empty:
        return 0
    n = seq.groupby([seq["dataset"].astype(str), seq[col].astype(str)])["split"].nunique()
    return int((n > 1).sum())


def sample_crops(frame: pd.DataFrame, per_label: int, seed: int = 0) -> dict[str, list[str]]:
    """Up to ``per_label`` crop paths per label, drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    labels = split_labels(frame["label"])
    paths = frame["path"].astype(str)
    for label, idx in labels.groupby(labels).groups.items():
        chosen = np.asarray(idx)
        if len(chosen) > per_label:
            chosen = np.sort(rng.choice(chosen, per_label, replace=False))
        out[str(label)] = paths.loc[chosen].tolist()
    return out
