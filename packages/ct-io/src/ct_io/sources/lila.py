"""The ``lila`` data source: one LILA dataset (or part of it), images downloaded anonymously.

Reads the datasets index and the dataset's zipped CCT (URLs or local copies), optionally
keeps only some taxa / labels / locations and caps images per label and per location,
then downloads the images from Azure (Blob SDK or HTTPS), GCP or AWS (HTTPS) into
``<out>/<short_name>/`` with ``<short_name>_cct.json`` beside them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ct_io.errors import CamtrapError
from ct_io.hookspecs import FetchedDataset
from ct_io.source_options import LilaOptions
from ct_io.sources.common import download_dataset
from ct_io.sources.lila_meta import (
    find_dataset,
    folder_name,
    image_base_url,
    labels_for_taxa,
    read_dataset_cct,
    read_index,
    read_taxonomy,
)
from ct_io.sources.subset import image_label_table, image_location_strings, subset_cct

if TYPE_CHECKING:
    from rich.progress import Progress

    from ct_io.cct import CocoCameraTraps
    from ct_io.sources.download import DownloadReport, Transport

log = logging.getLogger(__name__)


class LilaSource:
    """Fetches one LILA dataset (optionally a subset) into ``<out>/<short_name>/``."""

    def __init__(self, options: LilaOptions) -> None:
        self.options = options
        self.report: DownloadReport | None = None
        self.selected: int | None = None

    def fetch(self, out_dir: Path, progress: Progress | None = None) -> FetchedDataset:
        opts = self.options
        out_dir = Path(out_dir)
        cache = Path(opts.metadata_dir) if opts.metadata_dir else out_dir / "_lila_metadata"
        index = read_index(opts.index, cache, refresh=opts.refresh_metadata)
        row = find_dataset(index, opts.dataset)
        name = folder_name(row)
        ds = read_dataset_cct(
            row, opts.cloud, cache, refresh=opts.refresh_metadata, location=opts.metadata
        )
        ds = self.select(ds, str(row["name"]), cache)
        ds.info["lila_dataset"] = str(
            row["name"]
        )  # lets `ct-io combine --taxonomy` find its labels
        self.selected = len(ds.images)
        log.info("%s: %d images selected", row["name"], len(ds.images))
        fetched, self.report = download_dataset(
            ds,
            ds.images["file_name"],
            name=name,
            dataset_dir=out_dir / name,
            transport=make_transport(
                image_base_url(row, opts.cloud), opts.cloud, opts.azure_transport, opts.threads
            ),
            threads=opts.threads,
            retries=opts.retries,
            progress=progress,
            keep_missing=opts.keep_missing,
        )
        return fetched

    def select(self, ds: CocoCameraTraps, dataset_name: str, cache: Path) -> CocoCameraTraps:
        """Apply the taxa / labels / locations filters and the caps."""
        opts = self.options
        labels: set[str] | None = {x.strip().lower() for x in opts.labels} if opts.labels else None
        locations: set[str] | None = set(opts.locations) if opts.locations else None
        if opts.taxa:
            taxon_labels = labels_for_taxa(
                read_taxonomy(opts.taxonomy, cache, refresh=opts.refresh_metadata),
                dataset_name,
                opts.taxa,
            )
            if not taxon_labels:
                log.warning(
                    "%s: no label maps to %s in the taxonomy mapping",
                    dataset_name,
                    ", ".join(opts.taxa),
                )
            if opts.locations_of_taxa:
                table = image_label_table(ds)
                positions = table.loc[table["label"].isin(taxon_labels), "pos"].to_numpy()
                holding = set(image_location_strings(ds).iloc[positions])
                locations = holding if locations is None else locations & holding
            else:
                labels = taxon_labels if labels is None else labels | taxon_labels
        elif opts.locations_of_taxa:
            raise CamtrapError("locations_of_taxa needs taxa (e.g. -o taxa=rattus)")
        return subset_cct(
            ds,
            labels=labels,
            locations=locations,
            max_per_label=opts.max_per_label,
            max_per_location=opts.max_per_location,
            seed=opts.seed,
        )


def make_transport(base_url: str, cloud: str, azure_transport: str, threads: int) -> Transport:
    """The transport for a dataset's image base URL on ``cloud``."""
    from ct_io.sources.transports import AzureBlobTransport, HttpTransport

    if cloud == "azure" and azure_transport == "sdk":
        return AzureBlobTransport(base_url, max_connections=threads)
    return HttpTransport(base_url, max_connections=threads)
