"""The ``animl`` data source: images of an Animl COCO Camera Traps export, from S3.

Animl (animl.camera) exports a project's annotations as CCT JSON; the images live in
the deployment's private S3 buckets (region ``us-west-2``). Animl's own download script
reads ``animl-images-archive-prod`` with each image's ``original_relative_path`` as the
key; both are options here. Credentials come from the named AWS profile (``animl`` by
convention, ``aws configure --profile animl``) and are never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ct_io.cct import read_cct
from ct_io.errors import CamtrapError
from ct_io.hookspecs import FetchedDataset
from ct_io.source_options import AnimlOptions
from ct_io.sources.common import check_dataset_name, dataset_name_from_file, download_dataset

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.sources.download import DownloadReport


class AnimlSource:
    """Downloads an Animl export's images from S3 into ``<out>/<dataset>/`` plus its CCT."""

    def __init__(self, options: AnimlOptions) -> None:
        self.options = options
        self.report: DownloadReport | None = None

    def fetch(self, out_dir: Path, progress: Progress | None = None) -> FetchedDataset:
        from ct_io.sources.transports import S3Transport

        opts = self.options
        ds = read_cct(opts.cct)
        name = check_dataset_name(opts.dataset or dataset_name_from_file(Path(opts.cct)))
        files = ds.images["file_name"]
        keys = files
        if opts.key_field in ds.images.columns:
            keys = ds.images[opts.key_field].where(ds.images[opts.key_field].notna(), files)
        if keys.isna().any():
            row = int(keys.isna().to_numpy().argmax())
            raise CamtrapError(
                f"{opts.cct}: images[{row}] has neither {opts.key_field} nor file_name"
            )
        ds.images["file_name"] = keys.astype(str)  # the local copy keeps the S3 key's relative path
        if not files.astype(str).equals(keys.astype(str)):
            ds.images["animl_file_name"] = files
        transport = S3Transport(
            opts.bucket,
            profile=opts.profile,
            region=opts.region,
            endpoint_url=opts.endpoint_url,
            max_connections=opts.threads,
        )
        fetched, self.report = download_dataset(
            ds,
            keys,
            name=name,
            dataset_dir=Path(out_dir) / name,
            transport=transport,
            threads=opts.threads,
            retries=opts.retries,
            progress=progress,
            keep_missing=opts.keep_missing,
        )
        return fetched
