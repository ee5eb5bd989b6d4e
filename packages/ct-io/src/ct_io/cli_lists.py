"""``ct-io urls`` and ``ct-io download``: image lists for external copy tools, and back.

Attached to ``ct_io.cli.app``; the logic lives in :mod:`ct_io.url_lists`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import EXIT_PROBLEMS, console


def urls(
    selection: Annotated[
        Path,
        typer.Argument(help="queried_images.json (ct-taxonomy select) or a CCT file."),
    ],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the <dataset>_images.txt lists.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="urls: full URLs (gsutil -I, wget -i); paths: relative to the dataset's "
            "image folder (azcopy --list-of-files, rclone --files-from).",
        ),
    ] = "urls",
    cloud: Annotated[str, typer.Option(help="LILA image URLs on azure, gcp or aws.")] = "gcp",
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=URL: the image folder of dataset NAME (not on LILA, or another copy)."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="The dataset of a single-dataset CCT (default: its LILA name)."),
    ] = None,
    index: Annotated[str, typer.Option(help="LILA datasets index: URL or local CSV.")] = "",
    metadata_dir: Annotated[
        Path | None, typer.Option(help="Where the LILA index is cached (default OUT_DIR).")
    ] = None,
) -> None:
    """Write the image list of a selection, one file per dataset, for external copy tools.

    The seed's json_to_azcopy_list.py, for any cloud. A query string on a base URL (a SAS
    token) is never written; give it again to `ct-io download --base-url`.
    """
    from ct_io.errors import CamtrapError
    from ct_io.source_options import INDEX_URL
    from ct_io.url_lists import dataset_lists, lila_base_urls, selection_files, write_lists

    if fmt not in ("urls", "paths"):
        raise CamtrapError(f"--format {fmt!r}: use urls or paths")
    if cloud not in ("azure", "gcp", "aws"):
        raise CamtrapError(f"--cloud {cloud!r}: use azure, gcp or aws")
    files = selection_files(selection, dataset)
    given = {}
    for spec in base_url or []:
        name, sep, url = spec.partition("=")
        if not sep or not url:
            raise CamtrapError(f"--base-url {spec!r} is not NAME=URL")
        given[name] = url
    rest = [name for name in files if name not in given]
    bases = {**lila_base_urls(rest, cloud, index or INDEX_URL, metadata_dir or out_dir), **given}
    written = write_lists(dataset_lists(files, bases), out_dir, fmt)  # type: ignore[arg-type]
    for path, (name, names) in zip(written, files.items(), strict=True):
        base = bases[name].partition("?")[0]
        console.print(
            f"{name}: {len(set(names)):,} images → {path} (under {base})", highlight=False
        )


def download(
    image_list: Annotated[
        Path, typer.Argument(help="A list of image URLs or paths, one per line (# comments).")
    ],
    out_dir: Annotated[Path, typer.Argument(help="Folder the images are written under.")],
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Folder URL the entries are under (needed for paths; for URLs, what to keep "
            "as folders on disk). http(s)://, gs:// or s3://; a SAS query is sent, never logged."
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="Concurrent downloads.")] = 16,
    retries: Annotated[int, typer.Option(help="Extra attempts after a transient error.")] = 4,
) -> None:
    """Download the files of an image list (from `ct-io urls` or any copy tool's list), resumably.

    Each file lands at its path under the base URL; rerun to resume. Exits 1 when any file
    failed (see download_failures.jsonl).
    """
    from ct_io.sources.download import (
        DownloadItem,
        RetryPolicy,
        download_all,
        make_progress,
    )
    from ct_io.url_lists import list_transport, plan_list_download, read_list

    plan = plan_list_download(read_list(image_list), base_url)
    transport, keys = list_transport(plan, threads)
    items = [DownloadItem(key=k, dest=d) for k, d in zip(keys, plan.dests, strict=True)]
    with make_progress() as progress:
        report = download_all(
            items,
            out_dir,
            transport,
            threads=threads,
            retry=RetryPolicy(attempts=max(1, retries + 1)),
            progress=progress,
            description=f"{image_list.name}: downloading",
        )
    console.print(report.summary_table(title=f"{image_list.name}: download"))
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


def attach(app: typer.Typer) -> None:
    """Add these commands to the ``ct-io`` app."""
    app.command("urls")(urls)
    app.command("download")(download)
