"""Mislabel review: find crops whose prediction beats their label, and save what a
person confirmed in Timelapse as the known-mislabeled list ct-taxonomy applies.

A candidate is a crop predicted as another label than its own, with
``p(predicted) - p(true label) >= margin``. Lists are written per split and dataset
(``mislabeled_candidates_{split}_{dataset}.txt``, one image per line), the seed's
format; the dataset is a crop path's first folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ct_infer.crops import parse_crop_name
from ct_io.atomic import write_text_atomic
from ct_io.errors import CamtrapError
from ct_io.tables import read_csv, write_csv

log = logging.getLogger(__name__)

TRUE_VALUES = {"true", "1", "yes", "y", "x", "checked"}


def find_candidates(outputs: pd.DataFrame, labels: Sequence[str], margin: float) -> pd.DataFrame:
    """Rows of ``outputs`` (path, label, probabilities) whose prediction beats the label by ``margin``."""
    probs = outputs[list(labels)].to_numpy(np.float64)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(outputs["label"]) - set(index))
    if unknown:
        raise CamtrapError(
            f"true label(s) not among the outputs' label columns: {', '.join(unknown[:5])}"
        )
    true_idx = outputs["label"].map(index).to_numpy()
    rows = np.arange(len(outputs))
    predicted = probs.argmax(axis=1)
    margins = probs[rows, predicted] - probs[rows, true_idx]
    keep = (predicted != true_idx) & (margins >= margin)
    out = outputs.loc[keep, ["path", "label"]].copy()
    out["predicted"] = [labels[i] for i in predicted[keep]]
    out["margin"] = margins[keep]
    out["image"] = [_image_of(p) for p in out["path"]]
    out["dataset"] = [
        PurePosixPath(p).parts[0] if len(PurePosixPath(p).parts) > 1 else "" for p in out["image"]
    ]
    return out.sort_values("margin", ascending=False, kind="stable").reset_index(drop=True)


def _image_of(path: str) -> str:
    ref = parse_crop_name(path)
    return ref.file if ref else path


def write_candidate_lists(
    candidates: pd.DataFrame, split: str, out_dir: Path, *, include_dataset: bool = False
) -> list[Path]:
    """One ``mislabeled_candidates_{split}_{dataset}.txt`` per dataset; returns the files."""
    written = []
    for dataset, group in candidates.groupby("dataset", sort=True):
        images = sorted(set(group["image"]))
        if not include_dataset and dataset:
            images = [str(PurePosixPath(*PurePosixPath(i).parts[1:])) for i in images]
        name = f"mislabeled_candidates_{split}_{dataset or 'all'}.txt"
        write_text_atomic(out_dir / name, "".join(f"{i}\n" for i in images))
        written.append(out_dir / name)
    return written


def read_timelapse_export(
    path: str | os.PathLike[str], flag: str = "mislabeled", note: str = "correct_class"
) -> pd.DataFrame:
    """Rows a reviewer flagged in a Timelapse CSV export: ``file`` (relative path) and ``correct_class``."""
    frame = read_csv(path)
    frame = frame.astype(object).where(frame.notna(), "").astype(str)
    columns = {c.lower(): c for c in frame.columns}
    if "file" not in columns or flag.lower() not in columns:
        raise CamtrapError(
            f"{path}: a Timelapse export needs columns File and {flag} (found: {', '.join(frame.columns)})"
        )
    flagged = frame[frame[columns[flag.lower()]].str.strip().str.lower().isin(TRUE_VALUES)]
    rel = (
        flagged[columns["relativepath"]].fillna("")
        if "relativepath" in columns
        else pd.Series("", index=flagged.index)
    )
    files = [
        str(PurePosixPath(r.replace("\\", "/")) / f) if r else f
        for r, f in zip(rel, flagged[columns["file"]], strict=True)
    ]
    correct = (
        flagged[columns[note.lower()]].fillna("").str.strip().str.lower()
        if note.lower() in columns
        else pd.Series("", index=flagged.index)
    )
    return pd.DataFrame({"file": files, "correct_class": correct.to_numpy()})


def save_mislabeled(
    reviewed: pd.DataFrame, mislabeled_dir: str | os.PathLike[str], dataset: str | None = None
) -> dict[str, int]:
    """Add reviewed rows to ``<mislabeled_dir>/<dataset>.csv`` (``file, correct_class``); returns rows per dataset.

    Without ``dataset`` each file's first folder names its dataset (and is removed from it).
    A file already listed is updated (the latest review wins).
    """
    folder = Path(mislabeled_dir)
    if dataset:
        groups = {dataset: reviewed}
    else:
        parts = reviewed["file"].str.split("/", n=1)
        if (parts.str.len() < 2).any():
            raise CamtrapError("file paths carry no dataset folder; give --dataset NAME")
        reviewed = reviewed.assign(dataset=parts.str[0], file=parts.str[1])
        groups = {str(k): g.drop(columns="dataset") for k, g in reviewed.groupby("dataset")}
    counts = {}
    for name, rows in groups.items():
        from ct_io.paths import safe_join

        target = safe_join(folder, f"{name}.csv")
        old = (
            read_csv(target, dtype={"file": str, "correct_class": str})
            if target.is_file()
            else pd.DataFrame(columns=["file", "correct_class"])
        )
        merged = pd.concat(
            [old[["file", "correct_class"]], rows[["file", "correct_class"]]], ignore_index=True
        )
        merged = merged.drop_duplicates("file", keep="last").sort_values("file", kind="stable")
        write_csv(merged.fillna(""), target)
        counts[name] = len(rows)
    return counts
