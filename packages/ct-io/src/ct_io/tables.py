"""The training pipeline's own files: ``classification_ds.csv``, ``label_index.json``,
``splits.json`` and ``queried_images.json`` — typed readers and atomic writers."""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from attrs import define, field

from ct_io.atomic import atomic_open
from ct_io.errors import CamtrapError, FormatError
from ct_io.jsonio import read_json, write_json
from ct_io.problems import Problem

CLASSIFICATION_DS_COLUMNS = ("path", "dataset", "location", "dataset_class", "confidence", "label")
UNKNOWN_LOCATION = "unknown_location"
SPLIT_NAMES = ("train", "val", "test")


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a CSV atomically; a ``.gz`` suffix gzips it (deterministic: no timestamp)."""
    with atomic_open(path, "wb") as fh:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(frame.to_csv(index=False).encode("utf-8"))
        else:
            fh.write(frame.to_csv(index=False).encode("utf-8"))


def read_csv(
    path: str | os.PathLike[str],
    *,
    required: Sequence[str] = (),
    dtype: Mapping[str, Any] | type[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV (gzipped or not); missing required columns raise a one-line error.

    ``dtype`` maps columns to types, or is ``str`` to read every column as text.
    """
    p = Path(path)
    if not p.is_file():
        raise CamtrapError(f"{p}: file not found")
    types: Any = str if dtype is str else dict(dtype or {})  # type: ignore[arg-type]
    try:
        frame = pd.read_csv(p, dtype=types, keep_default_na=False, na_values=[""])
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        EOFError,
        OSError,
    ) as exc:
        raise CamtrapError(f"{p}: cannot read CSV ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CamtrapError(
            f"{p}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, frame.columns))})"
        )
    return frame


# ---------------------------------------------------------------- classification_ds.csv


def read_classification_ds(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per crop: path, dataset, location (string), dataset_class, confidence, label."""
    frame = read_csv(
        path,
        required=CLASSIFICATION_DS_COLUMNS,
        dtype={"path": str, "dataset": str, "location": str, "dataset_class": str, "label": str},
    )
    frame["location"] = frame["location"].fillna(UNKNOWN_LOCATION)
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    if frame["confidence"].isna().any():
        row = int(frame["confidence"].isna().to_numpy().argmax())
        raise CamtrapError(f"{path}: row {row + 2}: confidence is not a number")
    return frame


def write_classification_ds(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the dataset table (required columns first, extra columns kept)."""
    missing = [c for c in CLASSIFICATION_DS_COLUMNS if c not in frame.columns]
    if missing:
        raise CamtrapError(f"classification dataset lacks column(s): {', '.join(missing)}")
    cols = list(CLASSIFICATION_DS_COLUMNS) + [
        c for c in frame.columns if c not in CLASSIFICATION_DS_COLUMNS
    ]
    write_csv(frame[cols], path)


# ---------------------------------------------------------------- label_index.json


def read_label_index(path: str | os.PathLike[str]) -> list[str]:
    """Labels in index order, from ``{"0": "bear", "1": "bobcat", ...}``."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise FormatError(str(path), [Problem("$", "expected a non-empty object of index → label")])
    try:
        pairs = sorted((int(k), v) for k, v in data.items())
    except ValueError:
        raise FormatError(str(path), [Problem("$", "keys must be integers 0..n-1")]) from None
    if [k for k, _ in pairs] != list(range(len(pairs))):
        raise FormatError(str(path), [Problem("$", "indices must be contiguous from 0")])
    labels = [v for _, v in pairs]
    if any(not isinstance(v, str) or not v for v in labels):
        raise FormatError(str(path), [Problem("$", "every label must be a non-empty string")])
    if len(set(labels)) != len(labels):
        raise FormatError(str(path), [Problem("$", "duplicate label names")])
    return labels


def write_label_index(labels: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Write labels in the given order as ``{"0": label0, ...}``."""
    write_json(path, {str(i): label for i, label in enumerate(labels)})


# ---------------------------------------------------------------- splits.json


@define
class Splits:
    """Locations per split; each location is a ``(dataset, location)`` pair."""

    train: list[tuple[str, str]] = field(factory=list)
    val: list[tuple[str, str]] = field(factory=list)
    test: list[tuple[str, str]] = field(factory=list)

    def as_dict(self) -> dict[str, list[tuple[str, str]]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def split_of(self) -> dict[tuple[str, str], str]:
        """Location → split name."""
        return {loc: name for name, locs in self.as_dict().items() for loc in locs}


def read_splits(path: str | os.PathLike[str]) -> Splits:
    """Read ``splits.json``; overlapping splits are an error."""
    data = read_json(path)
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise FormatError(str(path), [Problem("$", "expected an object with train, val, test")])
    out: dict[str, list[tuple[str, str]]] = {}
    for name in SPLIT_NAMES:
        locs = data.get(name, [])
        if not isinstance(locs, list):
            problems.append(Problem(name, "must be a list of [dataset, location]"))
            continue
        pairs = []
        for i, loc in enumerate(locs):
            if isinstance(loc, list | tuple) and len(loc) == 2:
                pairs.append((str(loc[0]), str(loc[1])))
            else:
                problems.append(Problem(f"{name}[{i}]", f"{loc!r} is not [dataset, location]"))
        out[name] = pairs
    if problems:
        raise FormatError(str(path), problems)
    splits = Splits(**out)
    check_disjoint(splits, str(path))
    return splits


def check_disjoint(splits: Splits, source: str = "splits") -> None:
    """Raise ``FormatError`` when a location is in two splits."""
    seen: dict[tuple[str, str], str] = {}
    problems = []
    for name, locs in splits.as_dict().items():
        for loc in locs:
            if loc in seen and seen[loc] != name:
                problems.append(
                    Problem(
                        name,
                        f"location {loc} is also in {seen[loc]}",
                        "each location belongs to exactly one split",
                    )
                )
            seen[loc] = name
    if problems:
        raise FormatError(source, problems)


def write_splits(splits: Splits, path: str | os.PathLike[str]) -> None:
    """Write ``splits.json`` (locations sorted within each split)."""
    check_disjoint(splits)
    write_json(path, {k: [list(loc) for loc in sorted(v)] for k, v in splits.as_dict().items()})


# ---------------------------------------------------------------- queried_images.json


@define
class QueriedBox:
    """A ground-truth box, normalized ``[x, y, w, h]``."""

    bbox: list[float]
    category: str = "animal"


@define
class QueriedImage:
    """One selected image: where it is from and the label(s) it was given."""

    dataset: str
    location: str
    dataset_class: str
    label: list[str]
    bbox: list[QueriedBox] | None = None


def read_queried_images(path: str | os.PathLike[str]) -> dict[str, QueriedImage]:
    """``"<dataset>/<file>"`` → selected image."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(
            str(path), [Problem("$", "expected an object of '<dataset>/<file>' → image")]
        )
    out: dict[str, QueriedImage] = {}
    problems: list[Problem] = []
    for key, rec in data.items():
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("dataset"), str)
            or not isinstance(rec.get("label"), list)
        ):
            problems.append(Problem(key, "needs dataset (string) and label (list)"))
            continue
        boxes = rec.get("bbox")
        out[key] = QueriedImage(
            dataset=rec["dataset"],
            location=str(rec.get("location", UNKNOWN_LOCATION)),
            dataset_class=str(rec.get("class", "")),
            label=[str(v) for v in rec["label"]],
            bbox=[
                QueriedBox(
                    bbox=[float(v) for v in b["bbox"]], category=str(b.get("category", "animal"))
                )
                for b in boxes
            ]
            if isinstance(boxes, list)
            else None,
        )
    if problems:
        raise FormatError(str(path), problems)
    return out


def write_queried_images(images: Mapping[str, QueriedImage], path: str | os.PathLike[str]) -> None:
    """Write ``queried_images.json`` (keys sorted)."""
    out: dict[str, Any] = {}
    for key in sorted(images):
        im = images[key]
        rec: dict[str, Any] = {
            "dataset": im.dataset,
            "location": im.location,
            "class": im.dataset_class,
            "label": im.label,
        }
        if im.bbox is not None:
            rec["bbox"] = [{"category": b.category, "bbox": b.bbox} for b in im.bbox]
        out[key] = rec
    write_json(path, out)
