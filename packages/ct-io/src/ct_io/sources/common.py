"""Steps every downloading source shares: list a CCT's files, download them, write the CCT
of what landed on disk."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ct_io.cct import CocoCameraTraps, write_cct
from ct_io.hookspecs import FetchedDataset
from ct_io.sources.download import (
    DownloadItem,
    DownloadReport,
    RetryPolicy,
    Transport,
    download_all,
)

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_dataset_name(name: str) -> str:
    """A dataset name becomes a folder name: letters, digits, ``.``, ``_``, ``-`` only."""
    from ct_io.errors import CamtrapError

    if not _NAME_OK.match(name) or name in (".", ".."):
        raise CamtrapError(
            f"dataset name {name!r} must be letters, digits, '.', '_' or '-' (it becomes a folder name)"
        )
    return name


def dataset_name_from_file(path: Path) -> str:
    """``animl_cct.json`` → ``animl``; ``kenya_coco.json`` → ``kenya``."""
    stem = path.name
    for suffix in (".json.zip", ".zip", ".json"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = re.sub(r"[_-](cct|coco)$", "", stem, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "dataset"


def keep_images(ds: CocoCameraTraps, keep: pd.Series) -> CocoCameraTraps:
    """The dataset restricted to images where ``keep`` is true (annotations follow)."""
    images = ds.images[keep.to_numpy()].reset_index(drop=True)
    annotations = ds.annotations[ds.annotations["image_id"].isin(images["id"])].reset_index(
        drop=True
    )
    return CocoCameraTraps(
        images=images,
        annotations=annotations,
        categories=ds.categories,
        info=dict(ds.info),
        extra=dict(ds.extra),
    )


def download_dataset(
    ds: CocoCameraTraps,
    keys: pd.Series,
    *,
    name: str,
    dataset_dir: Path,
    transport: Transport,
    threads: int,
    retries: int,
    progress: Progress | None,
    keep_missing: bool = False,
    detections_path: Path | None = None,
) -> tuple[FetchedDataset, DownloadReport]:
    """Download every image of ``ds`` (``keys[i]`` fetches image i to its ``file_name``) and
    write ``<dataset_dir>/<name>_cct.json`` listing the images now on disk.

    Images that failed (logged in ``download_failures.jsonl``) are left out of the CCT
    unless ``keep_missing``.
    """
    files = ds.images["file_name"].astype(str).tolist()
    items = [DownloadItem(key=str(k), dest=f) for k, f in zip(keys.tolist(), files, strict=True)]
    report = download_all(
        items,
        dataset_dir,
        transport,
        threads=threads,
        retry=RetryPolicy(attempts=max(1, retries + 1)),
        progress=progress,
        description=f"{name}: downloading",
    )
    failed = report.failed_dests()
    if failed and not keep_missing:
        ds = keep_images(ds, ~ds.images["file_name"].astype(str).isin(failed))
        log.warning(
            "%s: %d of %d images failed (see %s); left out of the CCT",
            name,
            len(failed),
            report.total,
            report.failure_log,
        )
    cct_path = dataset_dir / f"{name}_cct.json"
    write_cct(ds, cct_path)
    log.info(
        "%s: %d downloaded, %d already present, %d failed → %s",
        name,
        report.downloaded,
        report.skipped,
        report.failed,
        cct_path,
    )
    return FetchedDataset(
        name=name, cct_path=cct_path, images_dir=dataset_dir, detections_path=detections_path
    ), report


def read_text_csv(path: str | os.PathLike[str], *, required: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV with every column as text (empty cells → NaN); one-line errors."""
    from ct_io.tables import read_csv

    return read_csv(path, required=required, dtype=str)
