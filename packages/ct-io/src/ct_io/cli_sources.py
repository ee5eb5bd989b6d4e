"""``ct-io lila ...``, ``ct-io animl download``, ``ct-io folder`` and ``ct-io combine``.

Attached to ``ct_io.cli.app``; heavy libraries (boto3, the Azure SDK) load only when a
command runs.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ct_io.cli_fields import options_from
from ct_io.clitools import EXIT_PROBLEMS, console, make_app
from ct_io.source_options import (
    ALL_IMAGES_URL,
    INDEX_URL,
    AnimlOptions,
    FolderOptions,
    LilaOptions,
)

if TYPE_CHECKING:
    from ct_io.sources.animl import AnimlSource
    from ct_io.sources.lila import LilaSource

lila_app = make_app(
    "LILA (lila.science): list datasets, find the locations holding a taxon, download subsets.",
    root=False,
)
animl_app = make_app(
    "Animl (animl.camera): download the images of a COCO Camera Traps export from S3.",
    root=False,
)

MetadataDirOpt = Annotated[
    Path | None,
    typer.Option(help="Cache for downloaded metadata (default ~/.cache/camtrap/lila)."),
]


class Cloud(StrEnum):
    """LILA's clouds (``LilaOptions.cloud``): the same files on each."""

    azure = "azure"
    gcp = "gcp"
    aws = "aws"


class Dedupe(StrEnum):
    """What makes two images of ``combine``'s inputs one (``ct_io.combine.combine``)."""

    path = "path"
    hash = "hash"
    none = "none"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "camtrap" / "lila"


def _download(source: AnimlSource | LilaSource, out_dir: Path) -> tuple[Path, bool]:
    """Fetch with a progress bar, print the download report; the CCT and whether all came."""
    from ct_io.sources.download import make_progress

    with make_progress() as progress:
        fetched = source.fetch(out_dir, progress)
    if source.report is not None:
        console.print(source.report.summary_table(title=f"{fetched.name}: download"))
    console.print(f"[green]wrote[/] {fetched.cct_path} (images in {fetched.images_dir})")
    return fetched.cct_path, source.report is None or source.report.ok


# ---------------------------------------------------------------------- lila


@lila_app.command("datasets")
def lila_datasets(
    index: Annotated[str, typer.Option(help="LILA datasets index: URL or local CSV.")] = INDEX_URL,
    metadata_dir: MetadataDirOpt = None,
    cloud: Annotated[Cloud, typer.Option(help="Show image URLs on this cloud.")] = Cloud.azure,
) -> None:
    """List the datasets of the LILA index (name, short name, country, image URL)."""
    from rich.table import Table

    from ct_io.sources.lila_meta import read_index

    frame = read_index(index, metadata_dir or _default_cache())
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
    ] = ALL_IMAGES_URL,
    metadata_dir: MetadataDirOpt = None,
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
    from ct_io.sources.lila_locations import find_locations, locations_table, write_locations
    from ct_io.sources.lila_meta import local_copy

    with console.status("reading LILA's all-images table…"):
        frame = find_locations(
            local_copy(all_images, metadata_dir or _default_cache()), taxon, datasets=dataset
        )
    if output is not None:
        write_locations(frame, output)
    console.print(locations_table(frame, taxon, top))
    if len(frame) > top:
        console.print(
            f"… {len(frame) - top} more"
            + (f" (all in {output})" if output else " (write them all with -o FILE.csv)")
        )
    elif output is not None:
        console.print(f"[green]wrote[/] {output}")


@lila_app.command("download")
@options_from(
    LilaOptions,
    into="options",
    skip=("dataset", "metadata"),  # --dataset is repeatable here; a CCT is one dataset's
    flags={
        "taxa": ("--taxon", "-t"),
        "labels": ("--label",),
        "locations": ("--location",),
        "locations_of_taxa": ("--at-locations",),
    },
)
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
    from_locations: Annotated[
        Path | None,
        typer.Option(
            help="Keep images at the (dataset, location) rows of this CSV (from `lila locations -o`)."
        ),
    ] = None,
    all_images: Annotated[
        str,
        typer.Option(
            help="All-images table (finds the datasets of --taxon when no --dataset): URL or file."
        ),
    ] = ALL_IMAGES_URL,
    *,
    options: dict[str, Any],
) -> None:
    """Download LILA datasets or subsets, resumably (rerun the same command to resume).

    Datasets come from --dataset, from --from-locations, or (with only --taxon) from the
    all-images table. Exits 1 when any image failed (see download_failures.jsonl).
    """
    from ct_io.options import structure
    from ct_io.sources.lila import LilaSource
    from ct_io.sources.lila_locations import download_options

    options["metadata_dir"] = options.get("metadata_dir") or out_dir / "_lila_metadata"
    wanted = download_options(
        options, datasets=dataset or [], from_locations=from_locations, all_images=all_images
    )
    done = [
        _download(LilaSource(structure(raw, LilaOptions, where="lila download")), out_dir)
        for raw in wanted
    ]
    if len(done) > 1:
        files = " ".join(str(cct) for cct, _ in done)
        console.print(f"merge them with: ct-io combine {files} -o {out_dir / 'combined_cct.json'}")
    if not all(ok for _, ok in done):
        raise typer.Exit(EXIT_PROBLEMS)


# ---------------------------------------------------------------------- animl


@animl_app.command("download")
@options_from(AnimlOptions, into="options", skip=("cct",))
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
    *,
    options: dict[str, Any],
) -> None:
    """Download every image of an Animl export from S3, resumably; write the dataset's CCT.

    Exits 1 when any image failed (listed in OUT_DIR/<dataset>/download_failures.jsonl).
    """
    from ct_io.options import structure
    from ct_io.sources.animl import AnimlSource

    raw = {"cct": export, **options}
    _, ok = _download(AnimlSource(structure(raw, AnimlOptions, where="animl download")), out_dir)
    if not ok:
        raise typer.Exit(EXIT_PROBLEMS)


# ---------------------------------------------------------------------- folder


@options_from(FolderOptions, into="options", skip=("root",), flags={"extensions": ("--extension",)})
def folder(
    root: Annotated[Path, typer.Argument(help="Folder holding the images.")],
    out_dir: Annotated[
        Path,
        typer.Argument(help="Where to write <dataset>/<dataset>_cct.json (images are not copied)."),
    ],
    *,
    options: dict[str, Any],
) -> None:
    """Make a CCT for a local folder: from a CCT file, or from label-named sub-folders.

    Example (root/<site>/<label>/*.jpg): ct-io folder photos data --location-component 0
    """
    from rich.progress import Progress

    from ct_io.options import structure
    from ct_io.sources.folder import FolderSource

    source = FolderSource(structure({"root": root, **options}, FolderOptions, where="folder"))
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
        Dedupe,
        typer.Option(help="Duplicate images: same file (path), same content (hash), or none."),
    ] = Dedupe.path,
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
    from ct_io.cct import write_cct
    from ct_io.combine import combine as do_combine
    from ct_io.combine import parse_inputs, read_label_mapping, taxonomy_label_mapping

    parsed = parse_inputs(inputs, images_dir or [])
    table: dict[tuple[str | None, str], str] = {}
    if taxonomy is not None:
        table.update(taxonomy_label_mapping(taxonomy, field_name=taxonomy_field))
    if mapping is not None:
        table.update(read_label_mapping(mapping))
    with console.status("combining…"):
        ds, report = do_combine(parsed, mapping=table, dedupe=dedupe.value, check_files=check_files)
    write_cct(ds, output)
    log_path = dropped_log or output.with_name(output.name.removesuffix(".json") + ".dropped.jsonl")
    report.write_dropped(log_path)
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
