"""``ct-io lila ...``, ``ct-io animl download``, ``ct-io folder`` and ``ct-io combine``.

Attached to ``ct_io.cli.app``; heavy libraries (boto3, the Azure SDK) load only when a
command runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ct_io.clitools import EXIT_PROBLEMS, console

if TYPE_CHECKING:
    from ct_io.sources.base import FetchedDataset
    from ct_io.sources.download import DownloadReport

lila_app = typer.Typer(
    help="LILA (lila.science): list datasets, find the locations holding a taxon, download subsets.",
    no_args_is_help=True,
)
animl_app = typer.Typer(
    help="Animl (animl.camera): download the images of a COCO Camera Traps export from S3.",
    no_args_is_help=True,
)

_INDEX_HELP = "LILA datasets index: URL or local CSV."


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "camtrap" / "lila"


def _show(fetched: FetchedDataset, report: DownloadReport | None) -> bool:
    if report is not None:
        console.print(report.summary_table(title=f"{fetched.name}: download"))
    console.print(f"[green]wrote[/] {fetched.cct_path} (images in {fetched.images_dir})")
    return report is None or report.ok


# ---------------------------------------------------------------------- lila


@lila_app.command("datasets")
def lila_datasets(
    index: Annotated[str, typer.Option(help=_INDEX_HELP)] = "",
    metadata_dir: Annotated[
        Path | None,
        typer.Option(help="Cache for downloaded metadata (default ~/.cache/camtrap/lila)."),
    ] = None,
    cloud: Annotated[
        str, typer.Option(help="Show image URLs on this cloud: azure, gcp or aws.")
    ] = "azure",
) -> None:
    """List the datasets of the LILA index (name, short name, country, image URL)."""
    from rich.table import Table

    from ct_io.sources.lila_meta import INDEX_URL, read_index

    frame = read_index(index or INDEX_URL, metadata_dir or _default_cache())
    table = Table(title=f"LILA datasets ({len(frame)})")
    for col in ("name", "short name", "country", f"images ({cloud})"):
        table.add_column(col)
    for _, row in frame.iterrows():
        url = row.get(f"image_base_url_{cloud}")
        table.add_row(
            str(row["name"]),
            str(row["short_name"]),
            str(row.get("country") or ""),
            url if isinstance(url, str) else "",
        )
    console.print(table)


@lila_app.command("locations")
def lila_locations(
    taxon: Annotated[
        list[str],
        typer.Option(
            "--taxon",
            "-t",
            help="Taxon: scientific or common name at any rank, or an original label (repeatable).",
        ),
    ],
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Only these datasets (LILA full names; repeatable)."),
    ] = None,
    all_images: Annotated[
        str, typer.Option(help="LILA's all-images table (.csv.zip): URL or local file.")
    ] = "",
    metadata_dir: Annotated[
        Path | None,
        typer.Option(help="Cache for downloaded metadata (default ~/.cache/camtrap/lila)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the table as CSV (input of `lila download --from-locations`).",
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Show at most this many locations.")] = 30,
) -> None:
    """Find every (dataset, location) holding a taxon, with the other labels seen there.

    Example: ct-io lila locations --taxon rattus -o rat_locations.csv
    """
    from rich.table import Table

    from ct_io.sources.lila_locations import find_locations, write_locations
    from ct_io.sources.lila_meta import ALL_IMAGES_URL, local_copy

    cache = metadata_dir or _default_cache()
    with console.status("reading LILA's all-images table…"):
        frame = find_locations(
            local_copy(all_images or ALL_IMAGES_URL, cache), taxon, datasets=dataset
        )
    if output is not None:
        write_locations(frame, output)
    table = Table(
        title=f"{len(frame)} locations hold {', '.join(taxon)} ({int(frame['taxon_images'].sum()) if len(frame) else 0} images)"
    )
    for col in (
        "dataset",
        "location",
        "taxon images",
        "all images",
        "taxon labels",
        "other labels",
    ):
        table.add_column(col, justify="right" if "images" in col else "left", overflow="fold")
    for _, r in frame.head(top).iterrows():
        table.add_row(
            str(r["dataset"]),
            str(r["location"]),
            str(r["taxon_images"]),
            str(r["total_images"]),
            str(r["taxon_labels"]),
            _clip(str(r["other_labels"])),
        )
    console.print(table)
    if len(frame) > top:
        console.print(
            f"… {len(frame) - top} more"
            + (f" (all in {output})" if output else " (write them all with -o FILE.csv)")
        )
    elif output is not None:
        console.print(f"[green]wrote[/] {output}")


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@lila_app.command("download")
def lila_download(
    out_dir: Annotated[
        Path,
        typer.Argument(
            help="Output folder: one sub-folder per dataset (images + <short_name>_cct.json)."
        ),
    ],
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Dataset name or short name (repeatable)."),
    ] = None,
    taxon: Annotated[
        list[str] | None,
        typer.Option("--taxon", "-t", help="Keep images of this taxon (repeatable)."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Keep images with this original label (repeatable)."),
    ] = None,
    location: Annotated[
        list[str] | None,
        typer.Option("--location", help="Keep images at this location (repeatable)."),
    ] = None,
    from_locations: Annotated[
        Path | None,
        typer.Option(
            help="Keep images at the (dataset, location) rows of this CSV (from `lila locations -o`)."
        ),
    ] = None,
    at_locations: Annotated[
        bool,
        typer.Option(
            "--at-locations",
            help="With --taxon: keep every image at the locations holding it (not only the taxon's).",
        ),
    ] = False,
    max_per_label: Annotated[
        int | None, typer.Option(help="At most this many images per label (random, seeded).")
    ] = None,
    max_per_location: Annotated[
        int | None, typer.Option(help="At most this many images per location (random, seeded).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random caps.")] = 0,
    cloud: Annotated[str, typer.Option(help="azure, gcp or aws.")] = "azure",
    azure_transport: Annotated[
        str, typer.Option(help="Azure only: sdk (Blob SDK) or https.")
    ] = "sdk",
    index: Annotated[str, typer.Option(help=_INDEX_HELP)] = "",
    taxonomy: Annotated[str, typer.Option(help="LILA taxonomy mapping: URL or local CSV.")] = "",
    all_images: Annotated[
        str,
        typer.Option(
            help="All-images table (finds the datasets of --taxon when no --dataset): URL or file."
        ),
    ] = "",
    metadata_dir: Annotated[
        Path | None, typer.Option(help="Metadata cache (default OUT_DIR/_lila_metadata).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Concurrent downloads.")] = 16,
    retries: Annotated[int, typer.Option(help="Extra attempts after a transient error.")] = 4,
    keep_missing: Annotated[
        bool, typer.Option(help="Keep images that failed to download in the CCT.")
    ] = False,
) -> None:
    """Download LILA datasets or subsets, resumably (rerun the same command to resume).

    Datasets come from --dataset, from --from-locations, or (with only --taxon) from the
    all-images table. Exits 1 when any image failed (see download_failures.jsonl).
    """
    from ct_io.errors import CamtrapError
    from ct_io.options import structure
    from ct_io.sources.download import make_progress
    from ct_io.sources.lila import LilaOptions, LilaSource
    from ct_io.sources.lila_locations import find_locations, read_locations
    from ct_io.sources.lila_meta import ALL_IMAGES_URL, INDEX_URL, TAXONOMY_URL, local_copy

    cache = metadata_dir or out_dir / "_lila_metadata"
    per_dataset: dict[str, set[str] | None] = {d: None for d in dataset or []}
    if from_locations is not None:
        for name, found in read_locations(from_locations).items():
            if dataset and name not in per_dataset:
                continue
            per_dataset[name] = found
    if not per_dataset and taxon:
        frame = find_locations(local_copy(all_images or ALL_IMAGES_URL, cache), taxon)
        for name, group in frame.groupby("dataset"):
            per_dataset[str(name)] = set(group["location"]) if at_locations else None
        console.print(f"{', '.join(taxon)}: found in {len(per_dataset)} datasets")
    if not per_dataset:
        raise CamtrapError(
            "say what to download: --dataset NAME, --from-locations FILE.csv, or --taxon NAME"
        )
    ok = True
    fetched_all = []
    for name, locs in per_dataset.items():
        raw: dict[str, object] = {
            "dataset": name,
            "cloud": cloud,
            "azure_transport": azure_transport,
            "index": index or INDEX_URL,
            "taxonomy": taxonomy or TAXONOMY_URL,
            "metadata_dir": str(cache),
            "taxa": list(taxon or []),
            "labels": list(label or []),
            "locations": sorted(set(location or []) | (locs or set())),
            "locations_of_taxa": at_locations and locs is None,
            "max_per_label": max_per_label,
            "max_per_location": max_per_location,
            "seed": seed,
            "threads": threads,
            "retries": retries,
            "keep_missing": keep_missing,
        }
        if locs is not None and at_locations:
            raw["taxa"] = []  # the locations already say where the taxon is; keep every image there
        source = LilaSource(structure(raw, LilaOptions, where="lila download"))
        with make_progress() as progress:
            fetched = source.fetch(out_dir, progress)
        ok &= _show(fetched, source.report)
        fetched_all.append(fetched)
    if len(fetched_all) > 1:
        files = " ".join(str(f.cct_path) for f in fetched_all)
        console.print(f"merge them with: ct-io combine {files} -o {out_dir / 'combined_cct.json'}")
    if not ok:
        raise typer.Exit(EXIT_PROBLEMS)


# ---------------------------------------------------------------------- animl


@animl_app.command("download")
def animl_download(
    export: Annotated[
        Path, typer.Argument(help="The COCO Camera Traps export from the Animl web app.")
    ],
    out_dir: Annotated[
        Path,
        typer.Argument(
            help="Output folder; images go to OUT_DIR/<dataset>/ with <dataset>_cct.json."
        ),
    ],
    dataset: Annotated[
        str | None, typer.Option(help="Dataset folder name (default: from the export's file name).")
    ] = None,
    bucket: Annotated[
        str, typer.Option(help="S3 bucket of the images.")
    ] = "animl-images-archive-prod",
    key_field: Annotated[
        str, typer.Option(help="Image field holding the S3 key (falls back to file_name).")
    ] = "original_relative_path",
    profile: Annotated[
        str, typer.Option(help="Named AWS profile ('' = default credential chain).")
    ] = "animl",
    region: Annotated[str, typer.Option(help="AWS region.")] = "us-west-2",
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3-compatible endpoint (MinIO, a test server).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Concurrent downloads.")] = 16,
    retries: Annotated[int, typer.Option(help="Extra attempts after a transient error.")] = 4,
    keep_missing: Annotated[
        bool, typer.Option(help="Keep images that failed to download in the CCT.")
    ] = False,
) -> None:
    """Download every image of an Animl export from S3, resumably; write the dataset's CCT.

    Exits 1 when any image failed (listed in OUT_DIR/<dataset>/download_failures.jsonl).
    """
    from ct_io.options import structure
    from ct_io.sources.animl import AnimlOptions, AnimlSource
    from ct_io.sources.download import make_progress

    raw = {
        "cct": str(export),
        "dataset": dataset,
        "bucket": bucket,
        "key_field": key_field,
        "profile": profile or None,
        "region": region,
        "endpoint_url": endpoint_url,
        "threads": threads,
        "retries": retries,
        "keep_missing": keep_missing,
    }
    source = AnimlSource(structure(raw, AnimlOptions, where="animl download"))
    with make_progress() as progress:
        fetched = source.fetch(out_dir, progress)
    if not _show(fetched, source.report):
        raise typer.Exit(EXIT_PROBLEMS)


# ---------------------------------------------------------------------- folder


def folder(
    root: Annotated[Path, typer.Argument(help="Folder holding the images.")],
    out_dir: Annotated[
        Path,
        typer.Argument(help="Where to write <dataset>/<dataset>_cct.json (images are not copied)."),
    ],
    cct: Annotated[
        Path | None,
        typer.Option(help="A CCT file for these images (else labels come from sub-folder names)."),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name (default: ROOT's folder name).")
    ] = None,
    label_component: Annotated[
        int, typer.Option(help="Which folder of an image's path is its label (-1 = parent).")
    ] = -1,
    label_regex: Annotated[
        str | None, typer.Option(help="Regex on the relative path; group 'label' is the label.")
    ] = None,
    location_component: Annotated[
        int | None, typer.Option(help="Which folder of an image's path is its location (0 = top).")
    ] = None,
    location_regex: Annotated[
        str | None,
        typer.Option(help="Regex on the relative path; group 'location' is the location."),
    ] = None,
    read_headers: Annotated[
        bool, typer.Option(help="Read width/height/EXIF date; flag unreadable images corrupt.")
    ] = True,
    keep_missing: Annotated[
        bool, typer.Option(help="With --cct: keep images missing on disk.")
    ] = False,
) -> None:
    """Make a CCT for a local folder: from a CCT file, or from label-named sub-folders.

    Example (root/<site>/<label>/*.jpg): ct-io folder photos data --location-component 0
    """
    from rich.progress import Progress

    from ct_io.options import structure
    from ct_io.sources.folder import FolderOptions, FolderSource

    raw = {
        "root": str(root),
        "cct": str(cct) if cct else None,
        "dataset": dataset,
        "label_component": label_component,
        "label_regex": label_regex,
        "location_component": location_component,
        "location_regex": location_regex,
        "read_headers": read_headers,
        "keep_missing": keep_missing,
    }
    source = FolderSource(structure(raw, FolderOptions, where="folder"))
    with Progress(console=console, transient=True) as progress:
        fetched = source.fetch(out_dir, progress)
    for what, n in source.dropped.items():
        if n:
            console.print(f"[yellow]{n} images: {what}[/]")
    console.print(f"[green]wrote[/] {fetched.cct_path} (images in {fetched.images_dir})")


# ---------------------------------------------------------------------- combine


def combine(
    inputs: Annotated[
        list[str],
        typer.Argument(help="CCT files, each as PATH or NAME=PATH (name: from the file name)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The combined CCT file.")],
    images_dir: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=DIR: where NAME's images are (default: where its source put them: beside its CCT file, in images/ there, or the folder it records)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="Label mapping: CSV [dataset,]original_label,label or JSON {old: new}; empty label drops it."
        ),
    ] = None,
    taxonomy: Annotated[
        Path | None,
        typer.Option(help="LILA taxonomy mapping CSV: rename LILA labels to a taxonomy field."),
    ] = None,
    taxonomy_field: Annotated[
        str, typer.Option(help="Taxonomy column the labels become.")
    ] = "common_name",
    dedupe: Annotated[
        str, typer.Option(help="Duplicate images: path (same file), hash (same content) or none.")
    ] = "path",
    check_files: Annotated[bool, typer.Option(help="Drop images missing on disk.")] = True,
    dropped_log: Annotated[
        Path | None,
        typer.Option(help="JSONL of dropped images (default: OUTPUT with .dropped.jsonl)."),
    ] = None,
) -> None:
    """Merge CCT datasets into one: namespaced ids, harmonised labels, duplicates and broken images dropped.

    File names become NAME/<file_name>: put each dataset's images under ROOT/NAME/ and use
    ROOT as the images folder of the combined file.
    """
    from ct_io.atomic import atomic_open
    from ct_io.cct import write_cct
    from ct_io.combine import combine as do_combine
    from ct_io.combine import parse_input, read_label_mapping, taxonomy_label_mapping
    from ct_io.errors import CamtrapError
    from ct_io.jsonio import encode_json

    if dedupe not in ("path", "hash", "none"):
        raise CamtrapError(f"--dedupe must be path, hash or none, not {dedupe!r}")
    dirs = {}
    for spec in images_dir or []:
        name, sep, path = spec.partition("=")
        if not sep:
            raise CamtrapError(f"--images-dir {spec!r} is not NAME=DIR")
        dirs[name] = Path(path)
    parsed = [parse_input(s, dirs) for s in inputs]
    unknown = set(dirs) - {p.name for p in parsed}
    if unknown:
        raise CamtrapError(
            f"--images-dir names {', '.join(sorted(unknown))} match no input (inputs: {', '.join(p.name for p in parsed)})"
        )
    table: dict[tuple[str | None, str], str] = {}
    if taxonomy is not None:
        table.update(taxonomy_label_mapping(taxonomy, field_name=taxonomy_field))
    if mapping is not None:
        table.update(read_label_mapping(mapping))
    with console.status("combining…"):
        ds, report = do_combine(parsed, mapping=table, dedupe=dedupe, check_files=check_files)  # type: ignore[arg-type]
    write_cct(ds, output)
    log_path = dropped_log or output.with_name(output.name.removesuffix(".json") + ".dropped.jsonl")
    with atomic_open(log_path, "wb") as fh:
        for row in report.dropped:
            fh.write(encode_json(row, indent=None) + b"\n")
    console.print(report.table())
    for name, renamed in report.renamed.items():
        for old, new in sorted(renamed.items()):
            console.print(f"  {name}: {old} → {new}", highlight=False)
    console.print(
        f"[green]wrote[/] {output}: {len(ds.images)} images, {len(ds.annotations)} annotations, {len(ds.categories)} categories; dropped images listed in {log_path}"
    )


def attach(app: typer.Typer) -> None:
    """Add these commands to the ``ct-io`` app."""
    app.add_typer(lila_app, name="lila")
    app.add_typer(animl_app, name="animl")
    app.command("folder")(folder)
    app.command("combine")(combine)
