"""The three dataset files → one table of examples with split, label index and weight."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from attrs import frozen

from ct_io.errors import CamtrapError
from ct_io.paths import unsafe_mask, unsafe_reason
from ct_io.tables import SPLIT_NAMES, Splits, read_classification_ds, read_label_index, read_splits
from ct_train.config import DataConfig, SamplingConfig

log = logging.getLogger(__name__)


@frozen
class DatasetTables:
    """Every usable crop: ``path``, ``label``, ``target`` (label index; multi-label: the
    first label's), ``targets`` (multi-label: every label's index), ``split``, ``weight``."""

    frame: pd.DataFrame
    labels: list[str]
    splits: Splits
    multilabel: bool = False

    def split(self, name: str) -> pd.DataFrame:
        """The rows of split ``name``, renumbered from 0."""
        return self.frame[self.frame["split"] == name].reset_index(drop=True)

    def class_counts(self, split: str = "train") -> list[int]:
        """Crops per label (in target order) in ``split``: what class-balanced losses use
        (multi-label: the crops carrying each label)."""
        rows = self.split(split)
        if self.multilabel:
            return target_matrix(rows, len(self.labels)).sum(axis=0).astype(int).tolist()
        counts = rows["target"].value_counts()
        return [int(counts.get(i, 0)) for i in range(len(self.labels))]


def target_matrix(frame: pd.DataFrame, num_classes: int) -> np.ndarray:
    """(rows, labels) 0/1 float32 matrix of a multi-label split's ``targets``."""
    out = np.zeros((len(frame), num_classes), np.float32)
    for row, targets in enumerate(frame["targets"]):
        out[row, list(targets)] = 1.0
    return out


def load_tables(
    data: DataConfig, sampling: SamplingConfig | None = None, *, multilabel: bool = False
) -> DatasetTables:
    """Read ``classification_ds.csv``, ``label_index.json``, ``splits.json`` from ``data.dir``.

    A row with several labels (``deer,fox``) needs ``multilabel``."""
    from ct_infer.multilabel import split_labels

    frame = read_classification_ds(data.dir / data.dataset_csv)
    labels = read_label_index(data.dir / data.label_index)
    splits = read_splits(data.dir / data.splits)

    parts = frame["label"].map(split_labels)
    multi = (parts.map(len) > 1).to_numpy()
    if multi.any() and not multilabel:
        raise CamtrapError(
            f"{data.dataset_csv}: row {int(multi.argmax()) + 2} has several labels "
            f"({frame['label'][multi].iloc[0]!r}); train a multi-label classifier with "
            "train.multilabel: true (ct-train train --multilabel)"
        )
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({x for p in parts for x in p} - set(index))
    if unknown:
        raise CamtrapError(
            f"{data.dataset_csv}: label(s) {', '.join(map(repr, unknown[:5]))} are not in "
            f"{data.label_index} — regenerate both files together (ct-splits)"
        )
    bad = [p for p in frame["path"][unsafe_mask(frame["path"])] if unsafe_reason(p)]
    if bad:
        raise CamtrapError(
            f"{data.dataset_csv}: unsafe crop path {bad[0]!r} ({unsafe_reason(bad[0])})"
        )

    where = splits.split_of()
    keys = list(zip(frame["dataset"], frame["location"], strict=True))
    frame = frame.assign(
        target=parts.map(lambda p: index[p[0]]).astype(np.int64),
        split=[where.get(k, "") for k in keys],
    )
    if multilabel:
        frame["targets"] = parts.map(lambda p: tuple(index[x] for x in p))
    unassigned = int((frame["split"] == "").sum())
    if unassigned:
        log.warning("%d crop(s) are at locations in no split; they are left out", unassigned)
        frame = frame[frame["split"] != ""].reset_index(drop=True)
    if not (frame["split"] == "train").any():
        raise CamtrapError(f"{data.splits}: the train split has no crops")

    frame["weight"] = detection_weights(frame, sampling)
    return DatasetTables(frame=frame, labels=labels, splits=splits, multilabel=multilabel)


def detection_weights(frame: pd.DataFrame, sampling: SamplingConfig | None) -> np.ndarray:
    """Per-example weight from detection confidence (train rows only, as the reference); 1 elsewhere."""
    weights = np.ones(len(frame), dtype=np.float64)
    option = sampling.weight_by_detection_conf if sampling else False
    if option is False:
        return weights
    train = (frame["split"] == "train").to_numpy()
    conf = frame["confidence"].to_numpy(dtype=np.float64)
    if isinstance(option, Path):
        conf = calibrate(conf, option)
    weights[train] = conf[train]
    if (weights <= 0).any():
        raise CamtrapError(
            "weight_by_detection_conf: some crops have confidence <= 0; drop them or raise the crop threshold"
        )
    return weights


def calibrate(conf: np.ndarray, npz_path: Path) -> np.ndarray:
    """Isotonic-regression calibration: linear interpolation on the ``x``/``y`` arrays of a ``.npz``."""
    if not npz_path.is_file():
        raise CamtrapError(f"{npz_path}: calibration file not found")
    try:
        with np.load(npz_path) as npz:
            x, y = np.asarray(npz["x"], dtype=np.float64), np.asarray(npz["y"], dtype=np.float64)
    except (KeyError, ValueError, OSError) as exc:
        raise CamtrapError(
            f"{npz_path}: not an isotonic calibration .npz with arrays x and y ({exc})"
        ) from None
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2 or np.any(np.diff(x) < 0):
        raise CamtrapError(f"{npz_path}: x and y must be 1-D, the same length, and x increasing")
    return np.interp(conf, x, y)


def split_names(tables: DatasetTables, wanted: Sequence[str] = SPLIT_NAMES) -> list[str]:
    """The wanted splits that have at least one crop."""
    present = set(tables.frame["split"])
    return [s for s in wanted if s in present]
