"""What a report says before its numbers: which model, which data, when.

The model comes from its bundle (backbone, input size, labels, calibration); the data
from the dataset table (``classification_ds.csv``: each crop's dataset and location),
matched to the crops of each split's outputs.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from attrs import frozen

from ct_infer.bundle import BundleMeta, read_bundle_meta
from ct_io.tables import read_csv

#: Labels named in full in the header; more are counted.
MAX_LABELS_NAMED = 40


@frozen
class SplitData:
    """One split's crops, datasets and camera locations."""

    split: str
    crops: int
    datasets: tuple[str, ...]
    locations: int | None  # None: no dataset table to count them from


def read_model(path: str | os.PathLike[str] | None) -> BundleMeta | None:
    """The bundle's metadata, or None when no bundle is given."""
    return read_bundle_meta(path) if path is not None else None


def split_data(
    split_frames: Mapping[str, pd.DataFrame], dataset_csv: str | os.PathLike[str] | None
) -> list[SplitData]:
    """Per split: crops, and (with the dataset table) datasets and locations among them."""
    table = None
    if dataset_csv is not None and Path(dataset_csv).is_file():
        table = read_csv(dataset_csv, dtype=str)
        if not {"path", "dataset", "location"} <= set(table.columns):
            table = None
        else:
            table = table.drop_duplicates("path").set_index("path")[["dataset", "location"]]
    out = []
    for split, frame in split_frames.items():
        if table is None:
            out.append(SplitData(split, len(frame), (), None))
            continue
        rows = table.reindex(frame["path"].astype(str)).dropna()
        keys = set(zip(rows["dataset"], rows["location"], strict=True))
        out.append(SplitData(split, len(frame), tuple(sorted(set(rows["dataset"]))), len(keys)))
    return out


def _calibration(meta: BundleMeta) -> str:
    cal = meta.extra.get("calibration") if isinstance(meta.extra, dict) else None
    if meta.temperature == 1.0:
        return "none (temperature 1)"
    text = f"temperature {meta.temperature:.3g}"
    if isinstance(cal, dict):
        split = cal.get("split", "val")
        before, after = cal.get("ece_before"), cal.get("ece_after")
        text += f", fitted on {split}"
        if isinstance(before, int | float) and isinstance(after, int | float):
            text += f" (ECE {before:.3f} → {after:.3f})"
    return text


def header_html(
    *,
    source: Path,
    model_path: Path | None,
    meta: BundleMeta | None,
    data: list[SplitData],
    made: dt.datetime | None = None,
) -> str:
    """The report's first lines: model, data, date."""
    made = made or dt.datetime.now(dt.UTC)
    rows: list[tuple[str, str]] = []
    if meta is not None:
        name = meta.name or (model_path.stem if model_path else "")
        rows.append(("model", f"{name} ({model_path.name})" if model_path else name))
        rows.append(("backbone", meta.backbone))
        rows.append(("input size", f"{meta.preprocessing.input_size} px"))
        named = ", ".join(meta.labels[:MAX_LABELS_NAMED])
        more = len(meta.labels) - MAX_LABELS_NAMED
        rows.append(
            ("labels", f"{len(meta.labels)}: {named}" + (f" and {more} more" if more > 0 else ""))
        )
        rows.append(("calibration", _calibration(meta)))
        rows.append(("model made", meta.created))
    else:
        rows.append(("model", "not given (ct-infer report --model BUNDLE names it here)"))
    datasets = sorted({d for s in data for d in s.datasets})
    if datasets:
        rows.append(("datasets", ", ".join(datasets)))
    rows.append(("evaluation", str(source)))
    rows.append(("report made", made.strftime("%Y-%m-%d %H:%M UTC")))
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    split_rows = "".join(
        "<tr>"
        f"<td>{html.escape(s.split)}</td><td>{s.crops:,}</td>"
        f"<td>{'' if s.locations is None else f'{s.locations:,}'}</td>"
        f"<td>{html.escape(', '.join(s.datasets))}</td></tr>"
        for s in data
    )
    note = (
        ""
        if any(s.locations is not None for s in data)
        else "<p class='lead'>Locations are counted from the dataset table "
        "(classification_ds.csv; give --dataset-csv).</p>"
    )
    return (
        f"<table class='kv'>{cells}</table>"
        "<table class='t'><tr><th>split</th><th>crops</th><th>locations</th><th>datasets</th></tr>"
        f"{split_rows}</table>{note}"
    )
