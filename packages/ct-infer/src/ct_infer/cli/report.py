"""``ct-infer report``: evaluation outputs → one HTML page with the crops behind its numbers."""

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
            "--output-dir",
            "-o",
            help="Where report.html, its PNGs and thumbs/ go (default: EVAL_DIR/report).",
        ),
    ] = None,
    crops_dir: Annotated[
        Path | None,
        typer.Option(
            "--crops-dir",
            help="Crops folder, for the example crops (default: the ct-train run's, when "
            "EVAL_DIR is a run's evaluation/).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", help="Model bundle named in the header (default: the ct-train run's)."
        ),
    ] = None,
    dataset_csv: Annotated[
        Path | None,
        typer.Option(
            "--dataset-csv",
            help="classification_ds.csv, for datasets and locations per split (default: the "
            "run's, or one beside EVAL_DIR).",
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Crop grids of only this label (default: every label)."),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split", help="Crop grids of only this split (repeat; default: every split)."
        ),
    ] = None,
    per_class: Annotated[
        int,
        typer.Option(
            "--per-class", min=1, help="Crops shown per predicted class and per confusion."
        ),
    ] = 8,
) -> None:
    """One HTML page: model and data, confusion matrices, precision/recall, top confusions
    with their crops, calibration, and every label's crops grouped by prediction."""
    from ct_infer.report import build_report, find_inputs

    found = find_inputs(eval_dir)
    page = build_report(
        eval_dir,
        output_dir or eval_dir / "report",
        crops_dir=crops_dir or found.crops_dir,
        model=model or found.model,
        dataset_csv=dataset_csv or found.dataset_csv,
        grid_label=label,
        grid_split=split or None,
        per_class=per_class,
    )
    console.print(f"wrote {page}")
