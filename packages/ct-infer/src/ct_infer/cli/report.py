"""``ct-infer report``: evaluation outputs → one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import console


def report_cmd(
    eval_dir: Annotated[
        Path, typer.Argument(help="Folder with outputs_{split}.csv.gz (from evaluate).")
    ],
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Where report.html and PNGs go (default: EVAL_DIR/report)."
        ),
    ] = None,
    crops_dir: Annotated[
        Path | None, typer.Option(help="Crops folder, for the image grid.")
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(help="Show crops of this label grouped by predicted class."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split for the image grid (default test).")
    ] = None,
    per_class: Annotated[int, typer.Option(help="Crops shown per predicted class.")] = 16,
) -> None:
    """One self-contained HTML page: confusion matrices, precision/recall, calibration, top confusions, image grid."""
    from ct_infer.report import build_report

    page = build_report(
        eval_dir,
        output_dir or eval_dir / "report",
        crops_dir=crops_dir,
        grid_label=label,
        grid_split=split,
        per_class=per_class,
    )
    console.print(f"wrote {page}")
