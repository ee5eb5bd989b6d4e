"""LILA's metadata files: the datasets index, per-dataset CCT zips, the taxonomy mapping.

Every file can be a URL (downloaded once into a cache folder) or a local copy.
"""

from __future__ import annotations

import ast
import difflib
import functools
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd

from ct_io.atomic import atomic_open, write_bytes_atomic
from ct_io.cct import CocoCameraTraps, read_cct
from ct_io.errors import CamtrapError
from ct_io.source_options import TAXONOMY_URL as TAXONOMY_URL  # where it used to live
from ct_io.sources.common import read_text_csv

#: Image base URLs per cloud (anonymous HTTPS; file names are the same on every cloud).
CLOUD_BASE_URLS = {
    "azure": "https://lilawildlife.blob.core.windows.net/lila-wildlife/",
    "gcp": "https://storage.googleapis.com/public-datasets-lila/",
    "aws": "http://us-west-2.opendata.source.coop.s3.amazonaws.com/agentmorris/lila-wildlife/",
}
CLOUDS: tuple[str, ...] = ("azure", "gcp", "aws")
#: Rank columns of the all-images table, most general first.
RANKS = (
    "kingdom",
    "phylum",
    "subphylum",
    "superclass",
    "class",
    "subclass",
    "infraclass",
    "superorder",
    "order",
    "suborder",
    "infraorder",
    "superfamily",
    "family",
    "subfamily",
    "tribe",
    "genus",
    "subgenus",
    "species",
    "subspecies",
    "variety",
)


def is_url(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.split("://", 1)[0].lower() in ("http", "https")


def local_copy(location: str | os.PathLike[str], cache_dir: Path, *, refresh: bool = False) -> Path:
    """A local path for ``location``: a URL is downloaded into ``cache_dir`` (once)."""
    if not is_url(location):
        path = Path(location)
        if not path.is_file():
            raise CamtrapError(f"{path}: file not found")
        return path
    from ct_io.sources.transports import fetch_bytes

    name = unquote(Path(urlsplit(str(location)).path).name) or "download"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "download"
    target = cache_dir / name
    if refresh or not target.is_file():
        write_bytes_atomic(target, fetch_bytes(str(location)))
    return target


# ---------------------------------------------------------------------- index


def read_index(
    location: str | os.PathLike[str], cache_dir: Path, *, refresh: bool = False
) -> pd.DataFrame:
    """The LILA datasets index: one row per dataset (rows without a name are dropped)."""
    frame = read_text_csv(local_copy(location, cache_dir, refresh=refresh), required=("name",))
    frame = frame[frame["name"].notna() & (frame["name"].str.strip() != "")].reset_index(drop=True)
    if "short_name" not in frame.columns:
        frame["short_name"] = frame["name"]
    frame["short_name"] = frame["short_name"].fillna(frame["name"])
    return frame


def find_dataset(index: pd.DataFrame, name: str) -> pd.Series:
    """The index row of dataset ``name`` (full or short name, any case)."""
    key = name.strip().lower()
    hit = index[(index["name"].str.lower() == key) | (index["short_name"].str.lower() == key)]
    if len(hit):
        return hit.iloc[0]
    names = index["name"].tolist() + index["short_name"].tolist()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = (
        f" — did you mean {', '.join(map(repr, close))}?"
        if close
        else " — `ct-io lila datasets` lists them"
    )
    raise CamtrapError(f"no LILA dataset called {name!r}{hint}")


def folder_name(row: pd.Series) -> str:
    """The local folder of a dataset: its short name, made safe for a path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(row["short_name"])).strip("._-") or "dataset"


def cloud_url(row: pd.Series, column: str, cloud: str) -> str:
    """``row[<column>_<cloud>]``, or the relative URL joined to the cloud's base URL."""
    value = row.get(f"{column}_{cloud}")
    if isinstance(value, str) and value.strip():
        return value.strip()
    rel = row.get(f"{column}_relative")
    if isinstance(rel, str) and rel.strip():
        return CLOUD_BASE_URLS[cloud] + rel.strip().lstrip("/")
    raise CamtrapError(
        f"LILA dataset {row['name']!r} has no {column}_{cloud} in the index — try another cloud"
    )


def image_base_url(row: pd.Series, cloud: str) -> str:
    """The folder URL the dataset's file names are joined to (a SAS query string is kept)."""
    url, sep, query = cloud_url(row, "image_base_url", cloud).partition("?")
    return (url if url.endswith("/") else url + "/") + sep + query


def read_dataset_cct(
    row: pd.Series,
    cloud: str,
    cache_dir: Path,
    *,
    refresh: bool = False,
    location: str | None = None,
) -> CocoCameraTraps:
    """The dataset's CCT metadata (downloaded and unzipped into ``cache_dir`` once).

    ``location`` (a URL or a local ``.json``/``.zip``) replaces the index's metadata URL.
    """
    path = local_copy(location or cloud_url(row, "metadata_url", cloud), cache_dir, refresh=refresh)
    if zipfile.is_zipfile(path):
        path = _unzip_json(path, cache_dir, refresh=refresh)
    return read_cct(path)


def _unzip_json(zip_path: Path, cache_dir: Path, *, refresh: bool) -> Path:
    """Extract the one ``.json`` member of a zip (under a name we choose, never the member's path)."""
    target = cache_dir / (
        zip_path.name[:-4] if zip_path.name.lower().endswith(".zip") else zip_path.name + ".json"
    )
    if not target.name.lower().endswith(".json"):
        target = target.with_name(target.name + ".json")
    if target.is_file() and not refresh:
        return target
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [
                m for m in zf.infolist() if m.filename.lower().endswith(".json") and not m.is_dir()
            ]
            if len(members) != 1:
                raise CamtrapError(
                    f"{zip_path}: expected one .json file inside, found {len(members)}"
                )
            with zf.open(members[0]) as src, atomic_open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CamtrapError(
            f"{zip_path}: broken zip ({exc}) — delete it and rerun to download it again"
        ) from None
    return target


# ---------------------------------------------------------------------- taxonomy


def read_taxonomy(
    location: str | os.PathLike[str], cache_dir: Path, *, refresh: bool = False
) -> pd.DataFrame:
    """LILA's taxonomy mapping: ``dataset_name, query, scientific_name, common_name, taxonomy_level, taxonomy_string``."""
    frame = read_text_csv(
        local_copy(location, cache_dir, refresh=refresh), required=("dataset_name", "query")
    )
    for col in ("scientific_name", "common_name", "taxonomy_level", "taxonomy_string"):
        if col not in frame.columns:
            frame[col] = None
    return frame


@functools.lru_cache(maxsize=65536)
def taxon_names(taxonomy_string: str) -> frozenset[str]:
    """Every name (scientific and common) in a LILA taxonomy string, lower case.

    The string looks like ``[(7, 'genus', 'rattus', ['rats']), (5, 'family', 'muridae', [...])]``.
    """
    try:
        value = ast.literal_eval(taxonomy_string)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return frozenset()
    names: set[str] = set()

    def walk(v: object) -> None:
        if isinstance(v, str):
            names.add(v.strip().lower())
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(value)
    return frozenset(names)


def mapping_matches(taxonomy: pd.DataFrame, taxa: Iterable[str]) -> pd.Series:
    """True for taxonomy-mapping rows whose taxon is, or lies under, any of ``taxa``."""
    wanted = {t.strip().lower() for t in taxa if t.strip()}
    sci = taxonomy["scientific_name"].fillna("").str.lower().str.strip()
    common = taxonomy["common_name"].fillna("").str.lower().str.strip()
    hit = sci.isin(wanted) | common.isin(wanted)
    strings = taxonomy["taxonomy_string"].fillna("")
    hit |= strings.map(lambda s: bool(s) and not wanted.isdisjoint(taxon_names(s)))
    return hit


def labels_for_taxa(taxonomy: pd.DataFrame, dataset_name: str, taxa: Iterable[str]) -> set[str]:
    """The original labels (lower case) of ``dataset_name`` that mean one of ``taxa``."""
    rows = taxonomy[taxonomy["dataset_name"].str.lower() == dataset_name.lower()]
    return set(rows.loc[mapping_matches(rows, taxa), "query"].str.lower().str.strip())


def split_location_id(location_id: str, dataset_name: str) -> str:
    """``"Caltech Camera Traps : 38"`` → ``"38"`` (the all-images table's location form)."""
    prefix = f"{dataset_name} : "
    return location_id[len(prefix) :] if location_id.startswith(prefix) else location_id
