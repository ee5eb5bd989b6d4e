"""Mislabel review: ``mislabeled`` finds candidates, ``save-mislabeled`` keeps what a
person confirmed in Timelapse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_infer.cli.options import ImagesDirOpt
from ct_io.clitools import console


def mislabeled_cmd(
    outputs: Annotated[
        Path,
        typer.Argument(
            help="Folder with outputs_{split}.csv.gz (from evaluate), or one classifier CSV "
            "(split 'all'; true labels from its label column or --cct)."
        ),
    ],
    margin: Annotated[
        float,
        typer.Option(help="Minimum p(predicted) - p(label); 0.95 keeps the most likely mistakes."),
    ] = 0.95,
    splits: Annotated[
        list[str] | None,
        typer.Option("--split", help="Split(s) to scan (repeat; default all found)."),
    ] = None,
    include_dataset: Annotated[
        bool,
        typer.Option(
            "--include-dataset-in-filename", help="Keep the dataset folder in listed file names."
        ),
    ] = False,
    detections: Annotated[
        Path | None,
        typer.Option(
            help="MD JSON of the images: crops of its detections go into the Timelapse review files."
        ),
    ] = None,
    cct: Annotated[
        Path | None,
        typer.Option(
            help="COCO Camera Traps JSON: its boxes go into the review files (ground-truth crops), "
            "and it gives true labels where the outputs have none."
        ),
    ] = None,
    images_dir: ImagesDirOpt = None,
    dataset_csv: Annotated[
        Path | None,
        typer.Option(
            help="classification_ds.csv giving each crop's dataset (default: one beside OUTPUTS' folder, if any)."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="Every crop belongs to this dataset (instead of --dataset-csv)."),
    ] = None,
    strip_prefix: Annotated[
        str,
        typer.Option(
            help="Leading folder of crop paths absent from the MD JSON's / CCT's file names."
        ),
    ] = "",
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="Where the lists go (default: OUTPUTS' folder)."),
    ] = None,
) -> None:
    """List likely mislabeled crops per split and dataset, with Timelapse review files.

    Writes mislabeled_candidates_{split}.csv, and per dataset mislabeled_candidates_{split}_{dataset}.txt
    (images to fetch) and, with --detections and/or --cct, mislabeled_candidates_{split}_{dataset}.json.
    """
    from ct_infer.ground_truth import crop_boxes_of
    from ct_infer.mislabeled import datasets_from_table, review_split, split_outputs
    from ct_io.cct import read_cct
    from ct_io.md import read_md

    wanted, folder = split_outputs(outputs, splits)
    out_dir = output_dir or folder
    out_dir.mkdir(parents=True, exist_ok=True)
    beside = folder.parent / "classification_ds.csv"
    if dataset_csv is None and dataset is None and beside.is_file():
        dataset_csv = beside
        console.print(f"datasets of crops from {dataset_csv}", highlight=False)
    by_path = datasets_from_table(dataset_csv) if dataset_csv else None
    truth = read_cct(cct) if cct is not None else None
    md = read_md(detections) if detections is not None else None
    boxes = crop_boxes_of(md, truth, images_dir)
    for split, path in wanted.items():
        found = review_split(
            split,
            path,
            out_dir,
            margin=margin,
            datasets=dataset if dataset is not None else by_path,
            truth=truth,
            boxes=boxes,
            strip_prefix=strip_prefix,
            include_dataset=include_dataset,
        )
        console.print(
            f"{split}: {found.candidates} of {found.crops} crops are candidates (margin ≥ {margin}); "
            f"{found.lists} list file(s) in {out_dir}",
            highlight=False,
        )


def save_mislabeled_cmd(
    timelapse_csv: Annotated[
        Path, typer.Argument(help="CSV exported from Timelapse after review.")
    ],
    mislabeled_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of known-mislabeled lists (<dataset>.csv), read by ct-taxonomy."
        ),
    ],
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset of every row (default: each file's first folder)."),
    ] = None,
    flag: Annotated[
        str, typer.Option(help="Timelapse flag column marking a mislabeled image.")
    ] = "mislabeled",
    note: Annotated[
        str, typer.Option(help="Timelapse note column with the correct class.")
    ] = "correct_class",
) -> None:
    """Add images flagged in a Timelapse review to the known-mislabeled lists."""
    from ct_infer.mislabeled import read_timelapse_export, save_mislabeled

    reviewed = read_timelapse_export(timelapse_csv, flag, note)
    counts = save_mislabeled(reviewed, mislabeled_dir, dataset)
    for name, n in counts.items():
        console.print(
            f"{name}: {n} reviewed image(s) saved to {mislabeled_dir / (name + '.csv')}",
            highlight=False,
        )
    if not counts:
        console.print("no image was flagged as mislabeled")
