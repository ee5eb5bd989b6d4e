""" "Which locations hold rats?": every (dataset, location) holding a taxon, from LILA's
all-images table, with the other labels seen at those locations; and which datasets and
locations ``ct-io lila download`` fetches.

The table (``lila_image_urls_and_labels.csv.zip``, one row per annotation of every LILA
image) is streamed in chunks, so memory stays small however large it is.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ct_io.errors import CamtrapError
from ct_io.source_options import ALL_IMAGES_URL
from ct_io.sources.lila_meta import RANKS, local_copy, split_location_id
from ct_io.tables import UNKNOWN_LOCATION, read_csv, write_csv

LOCATION_COLUMNS = (
    "dataset",
    "location",
    "taxon_images",
    "total_images",
    "taxon_labels",
    "other_labels",
)
_NAME_COLUMNS = ("original_label", "scientific_name", "common_name")

if TYPE_CHECKING:
    from rich.table import Table

log = logging.getLogger(__name__)


def _chunks(path: Path, chunksize: int) -> Iterator[pd.DataFrame]:
    wanted = {"dataset_name", "image_id", "location_id", *_NAME_COLUMNS, *RANKS}
    with ExitStack() as stack:
        if zipfile.is_zipfile(path):
            zf = stack.enter_context(zipfile.ZipFile(path))
            members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise CamtrapError(f"{path}: expected one .csv inside, found {len(members)}")
            fh = stack.enter_context(zf.open(members[0]))
        else:
            fh = stack.enter_context(path.open("rb"))
        try:
            reader = pd.read_csv(
                fh,
                usecols=lambda c: c in wanted,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                chunksize=chunksize,
            )
            first = True
            for chunk in reader:
                if first:
                    missing = {"dataset_name", "image_id", "original_label"} - set(chunk.columns)
                    if missing:
                        raise CamtrapError(
                            f"{path}: missing column(s) {', '.join(sorted(missing))} — is this LILA's all-images table?"
                        )
                    first = False
                yield chunk
        except (pd.errors.ParserError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
            raise CamtrapError(f"{path}: cannot read ({exc})") from None


def _matches(chunk: pd.DataFrame, wanted: set[str]) -> pd.Series:
    hit = pd.Series(False, index=chunk.index)
    for col in (*_NAME_COLUMNS, *RANKS):
        if col in chunk.columns:
            hit |= chunk[col].fillna("").str.strip().str.lower().isin(wanted)
    return hit


def find_locations(
    all_images: str | os.PathLike[str],
    taxa: Iterable[str],
    *,
    datasets: Iterable[str] | None = None,
    chunksize: int = 200_000,
) -> pd.DataFrame:
    """Every (dataset, location) holding any of ``taxa`` (a scientific or common name at any
    rank, or an original label; case-insensitive), most taxon images first.

    Columns: ``dataset`` (LILA's full name), ``location`` (as in the dataset's CCT),
    ``taxon_images``, ``total_images``, ``taxon_labels`` and ``other_labels``
    (``"label:count; ..."``, most common first).
    """
    wanted = {t.strip().lower() for t in taxa if t.strip()}
    if not wanted:
        raise CamtrapError("give at least one taxon (e.g. --taxon rattus)")
    only = {d.strip().lower() for d in datasets} if datasets else None
    per_label: list[pd.DataFrame] = []
    per_location: list[pd.DataFrame] = []
    for chunk in _chunks(Path(all_images), chunksize):
        if only is not None:
            chunk = chunk[chunk["dataset_name"].str.lower().isin(only)]
        if "location_id" not in chunk.columns:
            chunk = chunk.assign(location_id=None)
        chunk = chunk.assign(
            location_id=chunk["location_id"].fillna(UNKNOWN_LOCATION),
            original_label=chunk["original_label"].fillna("").str.strip().str.lower(),
            match=_matches(chunk, wanted),
        )
        labelled = chunk.drop_duplicates(["dataset_name", "image_id", "original_label"])
        per_label.append(
            labelled.groupby(["dataset_name", "location_id", "original_label"], sort=False).agg(
                images=("image_id", "size"), match=("match", "max")
            )
        )
        images = chunk.drop_duplicates(["dataset_name", "image_id"])
        per_location.append(
            images.groupby(["dataset_name", "location_id"], sort=False)
            .size()
            .rename("total_images")
            .to_frame()
        )
    if not per_label:
        return pd.DataFrame(columns=list(LOCATION_COLUMNS))
    labels = (
        pd.concat(per_label)
        .groupby(level=[0, 1, 2])
        .agg(images=("images", "sum"), match=("match", "max"))
        .reset_index()
    )
    totals = pd.concat(per_location).groupby(level=[0, 1])["total_images"].sum()
    holding = labels[labels["match"]].groupby(["dataset_name", "location_id"])["images"].sum()
    if holding.empty:
        return pd.DataFrame(columns=list(LOCATION_COLUMNS))
    rows = []
    at = labels.set_index(["dataset_name", "location_id"]).sort_index()
    for (dataset, location_id), n in holding.items():
        here = at.loc[[(dataset, location_id)]].sort_values(
            ["images", "original_label"], ascending=[False, True]
        )
        rows.append(
            {
                "dataset": dataset,
                "location": split_location_id(str(location_id), str(dataset)),
                "taxon_images": int(n),
                "total_images": int(totals.get((dataset, location_id), n)),
                "taxon_labels": _fmt(here[here["match"]]),
                "other_labels": _fmt(here[~here["match"]]),
            }
        )
    out = pd.DataFrame(rows, columns=list(LOCATION_COLUMNS))
    return out.sort_values(
        ["taxon_images", "dataset", "location"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)


def _fmt(frame: pd.DataFrame) -> str:
    return "; ".join(
        f"{label or '(none)'}:{int(n)}"
        for label, n in zip(frame["original_label"], frame["images"], strict=True)
    )


def write_locations(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a locations table (CSV; the input of ``ct-io lila download --from-locations``)."""
    write_csv(frame, path)


def read_locations(path: str | os.PathLike[str]) -> dict[str, set[str]]:
    """Dataset name → its locations, from a CSV with ``dataset`` and ``location`` columns."""
    frame = read_csv(
        path, required=("dataset", "location"), dtype={"dataset": str, "location": str}
    )
    out: dict[str, set[str]] = {}
    for dataset, location in zip(
        frame["dataset"], frame["location"].fillna(UNKNOWN_LOCATION), strict=True
    ):
        out.setdefault(str(dataset), set()).add(str(location))
    return out


def locations_table(frame: pd.DataFrame, taxa: Sequence[str], top: int) -> Table:
    """The first ``top`` rows of :func:`find_locations`' table, for the terminal."""
    from rich.table import Table

    images = int(frame["taxon_images"].sum()) if len(frame) else 0
    table = Table(title=f"{len(frame)} locations hold {', '.join(taxa)} ({images} images)")
    for col in LOCATION_COLUMNS:
        name = col.replace("total_", "all_").replace("_", " ")
        table.add_column(name, justify="right" if "images" in col else "left", overflow="fold")
    for row in frame.head(top).itertuples(index=False):
        cells = [str(getattr(row, col)) for col in LOCATION_COLUMNS]
        other = cells[-1]
        table.add_row(*cells[:-1], other if len(other) <= 80 else other[:79] + "…")
    return table


def download_options(
    options: Mapping[str, Any],
    *,
    datasets: Sequence[str] = (),
    from_locations: str | os.PathLike[str] | None = None,
    all_images: str = ALL_IMAGES_URL,
) -> list[dict[str, Any]]:
    """``lila`` source options (``options`` plus dataset and locations) per dataset to fetch.

    The datasets are those named, those of a ``lila locations`` CSV (only its locations;
    only named datasets when any are named), or — with ``taxa`` alone — every dataset
    holding them, from the all-images table. ``locations_of_taxa`` keeps every image at
    the locations holding the taxa. ``options["metadata_dir"]`` caches the metadata.
    """
    taxa, at_locations = list(options.get("taxa", [])), bool(options.get("locations_of_taxa"))
    wanted: dict[str, set[str] | None] = dict.fromkeys(datasets)
    if from_locations is not None:
        for name, found in read_locations(from_locations).items():
            if not datasets or name in wanted:
                wanted[name] = found
    if not wanted and taxa:
        table = local_copy(all_images, Path(options["metadata_dir"]))
        for name, group in find_locations(table, taxa).groupby("dataset"):
            wanted[str(name)] = set(group["location"]) if at_locations else None
        log.info("%s: found in %d datasets", ", ".join(taxa), len(wanted))
    if not wanted:
        raise CamtrapError(
            "say what to download: --dataset NAME, --from-locations FILE.csv, or --taxon NAME"
        )
    out = []
    for name, locations in wanted.items():
        raw = {
            **options,
            "dataset": name,
            "locations": sorted(set(options.get("locations", [])) | (locations or set())),
            "locations_of_taxa": at_locations and locations is None,
        }
        if locations is not None and at_locations:
            raw["taxa"] = []  # the locations already say where the taxa are: keep all there
        out.append(raw)
    return out
