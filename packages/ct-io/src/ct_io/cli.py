"""``ct-io``: validate and summarize files, list plugins, fetch datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ct_io.clitools import EXIT_PROBLEMS, console, make_app, run_cli

app = make_app("Formats, data sources and plugins of the camtrap classifier toolkit.")


@app.command()
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="CCT or MD JSON files (kind detected from content).", exists=False),
    ],
    images_dir: Annotated[
        Path | None, typer.Option(help="Also check that every image exists under this folder.")
    ] = None,
    max_problems: Annotated[
        int, typer.Option(help="Print at most this many problems per file.")
    ] = 50,
) -> None:
    """Check files against their format; print every problem with its JSON path.

    Exits 1 when any file has an error (warnings alone pass).
    """
    from ct_io.validation import validate_file

    bad = False
    for path in files:
        kind, problems = validate_file(path, images_dir=images_dir)
        errors = [p for p in problems if p.is_error]
        warnings = [p for p in problems if not p.is_error]
        status = "[red]INVALID[/]" if errors else "[green]ok[/]"
        console.print(
            f"{escape(str(path))}: {kind} {status} ({len(errors)} errors, {len(warnings)} warnings)",
            soft_wrap=True,
        )
        for p in problems[:max_problems]:
            colour = "red" if p.is_error else "yellow"
            console.print(
                f"  [{colour}]{p.severity}[/] {escape(str(p))}", highlight=False, soft_wrap=True
            )
        if len(problems) > max_problems:
            console.print(f"  … {len(problems) - max_problems} more")
        bad |= bool(errors)
    if bad:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command()
def info(file: Annotated[Path, typer.Argument(help="A CCT or MD JSON file.")]) -> None:
    """Summarize a file: images, annotations per category, locations, sequences, confidences."""
    from ct_io.md import MDResults
    from ct_io.summary import cct_summary, md_summary
    from ct_io.validation import load_any

    obj = load_any(file)
    console.print(
        md_summary(obj, str(file)) if isinstance(obj, MDResults) else cct_summary(obj, str(file))
    )


@app.command()
def plugins(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one object per registration).")
    ] = False,
) -> None:
    """List every registered data source, detector, backbone, loss and logger.

    Each row names the plugin and the distribution (installed package) that provided it.
    """
    from ct_io.plugin_listing import plugin_rows, render_plugins

    rows = plugin_rows()
    if as_json:
        import json

        typer.echo(json.dumps(rows, indent=1))
        return
    for block in render_plugins(rows):
        console.print(block, highlight=False)


@app.command()
def fetch(
    source: Annotated[str, typer.Argument(help="Data source name (see `ct-io plugins`).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the dataset into.")],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Source option KEY=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Fetch a dataset with a data source into OUT_DIR (images + CCT file)."""
    from rich.progress import Progress

    from ct_io.options import parse_key_values
    from ct_io.sources import fetch as do_fetch

    with Progress(console=console, transient=True) as progress:
        result = do_fetch(source, out_dir, parse_key_values(option or []), progress=progress)
    console.print(
        f"[green]fetched[/] {escape(result.name)}: {escape(str(result.cct_path))} "
        f"(images in {escape(str(result.images_dir))})",
        soft_wrap=True,
    )
    if result.detections_path:
        console.print(f"detections: {escape(str(result.detections_path))}", soft_wrap=True)


def _attach_source_commands() -> None:
    from ct_io.cli_lists import attach as attach_lists
    from ct_io.cli_sources import attach

    attach(app)
    attach_lists(app)


_attach_source_commands()


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
