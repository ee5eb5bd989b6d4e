"""Sequence smoothing: combine predictions over the frames of one camera-trap sequence.

A burst of 3–10 frames usually shows the same animal; a single blurry frame should not
overrule the rest. Each detection's probabilities are blended with the sequence's
confidence-weighted mean: ``p' = (1 - strength) * p + strength * mean_sequence``.
``strength=1`` gives every detection of a sequence the same prediction.

Sequences come from a CCT file's ``seq_id``, a CSV with ``file, seq_id`` columns, or are
inferred from capture times (EXIF) of images in the same folder.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ct_io.errors import CamtrapError

DEFAULT_GAP_SECONDS = 30.0
_DATETIME_ORIGINAL = 0x9003
_EXIF_IFD = 0x8769
_DATETIME = 0x0132


def smooth(
    probs: np.ndarray,
    groups: Sequence[object],
    weights: np.ndarray | None = None,
    strength: float = 0.5,
) -> np.ndarray:
    """Blend each row with the weighted mean of its group's rows (``None`` group: unchanged)."""
    if not 0.0 <= strength <= 1.0:
        raise CamtrapError(f"smoothing strength must be between 0 and 1, got {strength}")
    probs = np.asarray(probs, np.float64)
    out = probs.copy()
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, np.float64)
    keys = pd.Series(list(groups), dtype=object)
    for _, idx in keys[keys.notna()].groupby(keys[keys.notna()], sort=False).groups.items():
        rows = np.asarray(idx)
        if len(rows) < 2:
            continue
        ww = w[rows] if w[rows].sum() > 0 else np.ones(len(rows))
        mean = (probs[rows] * ww[:, None]).sum(axis=0) / ww.sum()
        out[rows] = (1 - strength) * probs[rows] + strength * mean
    return out


def read_sequences(path: str | os.PathLike[str]) -> dict[str, str]:
    """Image file → sequence id, from a CCT JSON (``file_name``, ``seq_id``) or a CSV (``file``, ``seq_id``)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        from ct_io.cct import read_cct

        images = read_cct(p).images
        if "seq_id" not in images.columns:
            raise CamtrapError(
                f"{p}: images have no seq_id; use --sequence-gap to infer sequences from capture times"
            )
        images = images[images["seq_id"].notna()]
        return dict(zip(images["file_name"].astype(str), images["seq_id"].astype(str), strict=True))
    from ct_io.tables import read_csv

    frame = read_csv(p, required=["file", "seq_id"], dtype={"file": str, "seq_id": str})
    frame = frame[frame["seq_id"].notna()]
    return dict(zip(frame["file"], frame["seq_id"], strict=True))


def capture_time(path: str | os.PathLike[str]) -> dt.datetime | None:
    """EXIF DateTimeOriginal (or DateTime) of an image, or None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            exif = im.getexif()
            raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except (OSError, ValueError, SyntaxError):
        return None
    if not isinstance(raw, str):
        return None
    try:
        return dt.datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def sequences_from_times(
    times: Mapping[str, dt.datetime | None], gap_seconds: float = DEFAULT_GAP_SECONDS
) -> dict[str, str]:
    """Group files of one folder whose capture times are at most ``gap_seconds`` apart."""
    frame = pd.DataFrame({"file": list(times), "time": list(times.values())}).dropna()
    if frame.empty:
        return {}
    frame["folder"] = [str(PurePosixPath(f).parent) for f in frame["file"]]
    frame = frame.sort_values(["folder", "time", "file"], kind="stable")
    out: dict[str, str] = {}
    for folder, group in frame.groupby("folder", sort=False):
        gaps = group["time"].diff().dt.total_seconds().fillna(np.inf).to_numpy()
        seq = np.cumsum(gaps > gap_seconds)
        for file, s in zip(group["file"], seq, strict=True):
            out[file] = f"{folder}#{s}"
    return out
