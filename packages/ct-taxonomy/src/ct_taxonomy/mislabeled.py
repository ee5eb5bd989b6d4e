"""Known mislabeled images: one CSV per dataset (``<folder>/<dataset>.csv``).

Each CSV has a ``file`` column (the image's ``file_name`` in the dataset's CCT) and a
``correct_class`` column (``class`` and ``label`` are accepted too): the class the image
really shows, or empty when the image should be dropped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ct_io.errors import CamtrapError

log = logging.getLogger(__name__)

CLASS_COLUMNS = ("correct_class", "class", "label")

#: file name → corrected class (lower-case), or None to drop the image.
Corrections = dict[str, str | None]


def read_mislabeled_csv(path: str | os.PathLike[str]) -> Corrections:
    """Read one dataset's list of mislabeled images."""
    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CamtrapError(f"{p}: cannot read CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    column = next((c for c in CLASS_COLUMNS if c in frame.columns), None)
    if "file" not in frame.columns or column is None:
        raise CamtrapError(
            f"{p}: needs columns 'file' and 'correct_class' (found: {', '.join(frame.columns)})"
        )
    out: Corrections = {}
    for i, (file, cls) in enumerate(
        zip(frame["file"].tolist(), frame[column].tolist(), strict=True)
    ):
        file = file.strip()
        if not file:
            raise CamtrapError(f"{p} line {i + 2}: empty file name")
        if file in out and out[file] != (cls.strip().lower() or None):
            raise CamtrapError(f"{p} line {i + 2}: {file!r} is listed twice with different classes")
        out[file] = cls.strip().lower() or None
    return out


def read_mislabeled_dir(
    folder: str | os.PathLike[str], datasets: Iterable[str]
) -> dict[str, Corrections]:
    """Dataset name → corrections, for every dataset that has ``<folder>/<name>.csv``.

    The file name is matched case-insensitively; CSVs of other datasets are ignored.
    """
    root = Path(folder)
    if not root.is_dir():
        raise CamtrapError(
            f"{root}: not a folder — --mislabeled takes a folder of <dataset>.csv files"
        )
    files = {p.stem.lower(): p for p in root.glob("*.csv")}
    out: dict[str, Corrections] = {}
    for name in datasets:
        p = files.pop(name.lower(), None)
        if p is not None:
            out[name] = read_mislabeled_csv(p)
    if files:
        log.info(
            "mislabeled lists for datasets not selected from, ignored: %s", ", ".join(sorted(files))
        )
    return out
