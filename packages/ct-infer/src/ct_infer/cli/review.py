"""Mislabel review: ``mislabeled`` finds candidates, ``save-mislabeled`` keeps what a
person confirmed in Timelapse."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ct_infer.cli.options import ImagesDirOpt
from ct_io.clitools import console

if TYPE_CHECKING:
    import pandas as pd

    from ct_io.md import MDResults


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
        typer.Option(
            "--margin", help="Minimum p(predicted) - p(label); 0.95 keeps the most likely mistakes."
        ),
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
            "--detections",
            help="MD JSON of the images: crops of its detections go into the Timelapse review files.",
        ),
    ] = None,
    cct: Annotated[
        Path | None,
        typer.Option(
            "--cct",
            help="COCO Camera Traps JSON: its boxes go into the review files (ground-truth crops), "
            "and it gives true labels where the outputs have none.",
        ),
    ] = None,
    images_dir: ImagesDirOpt = None,
    dataset_csv: Annotated[
        Path | None,
        typer.Option(
            "--dataset-csv",
            help="classification_ds.csv giving each crop's dataset (default: one beside OUTPUTS' folder, if any).",
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="Every crop belongs to this dataset (instead of --dataset-csv)."
        ),
    ] = None,
    strip_prefix: Annotated[
        str,
        typer.Option(
            "--strip-prefix",
            help="Leading folder of crop paths absent from the MD JSON's / CCT's file names.",
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
    from ct_infer.merge import read_classifier_csv
    from ct_infer.mislabeled import (
        datasets_from_table,
        find_candidates,
        split_outputs,
        with_cct_labels,
        write_candidate_lists,
    )
    from ct_io.errors import CamtrapError
    from ct_io.md import read_md
    from ct_io.tables import write_csv

    wanted, folder = split_outputs(outputs, splits)
    out_dir = output_dir or folder
    out_dir.mkdir(parents=True, exist_ok=True)
    beside = folder.parent / "classification_ds.csv"
    if dataset_csv is None and dataset is None and beside.is_file():
        dataset_csv = beside
        console.print(f"datasets of crops from {dataset_csv}", highlight=False)
    datasets = (
        dataset
        if dataset is not None
        else datasets_from_table(dataset_csv)
        if dataset_csv
        else None
    )
    truth = None
    if cct is not None:
        from ct_io.cct import read_cct

        truth = read_cct(cct)
    base_md = read_md(detections) if detections is not None else None
    gt_index = None
    if truth is not None:
        from ct_infer.ground_truth import add_ground_truth

        base_md, gt_index = add_ground_truth(base_md, truth, images_dir)
    for split, path in wanted.items():
        frame, labels = read_classifier_csv(str(path))
        if truth is not None and "label" not in frame.columns:
            frame, dropped = with_cct_labels(frame, labels, truth, strip_prefix)
            if dropped:
                console.print(
                    f"[yellow]{split}: {dropped} crop(s) left out: the CCT gives them no single "
                    "label that is one of the classifier's[/]",
                    highlight=False,
                )
        if "label" not in frame.columns:
            raise CamtrapError(
                f"{path}: no 'label' column — give --cct with the true labels, or use evaluate's outputs"
            )
        candidates = find_candidates(frame, labels, margin, datasets)
        lists = write_candidate_lists(candidates, split, out_dir, include_dataset=include_dataset)
        write_csv(candidates, out_dir / f"mislabeled_candidates_{split}.csv")
        console.print(
            f"{split}: {len(candidates)} of {len(frame)} crops are candidates (margin ≥ {margin}); "
            f"{len(lists)} list file(s) in {out_dir}",
            highlight=False,
        )
        if base_md is not None:
            _write_review_files(
                base_md,
                gt_index,
                frame[frame["path"].isin(set(candidates["path"]))],
                labels,
                candidates,
                out_dir / f"mislabeled_candidates_{split}",
                strip_prefix=strip_prefix,
                include_dataset=include_dataset,
            )


def _write_review_files(
    base_md: MDResults,
    gt_index: dict[tuple[str, int], int] | None,
    subset: pd.DataFrame,
    labels: list[str],
    candidates: pd.DataFrame,
    stem: Path,
    *,
    strip_prefix: str,
    include_dataset: bool,
) -> None:
    """One Timelapse review file per dataset, ``{stem}_{dataset}.json``: the candidates'
    boxes with each class's margin over the true label."""
    from ct_infer.merge import MergeOptions, merge_classifications
    from ct_infer.mislabeled import review_documents
    from ct_io.md import write_md

    merged, report = merge_classifications(
        base_md,
        subset,
        labels,
        MergeOptions(
            classifier_name="mislabel-review",
            threshold=0.0,
            relative_conf=True,
            label="last",
            strip_prefix=strip_prefix,
            allow_unmatched=True,  # warned about below; the candidate lists are written
        ),
        gt_index=gt_index,
    )
    if report.unmatched or report.unparsable:
        console.print(
            f"[yellow]{len(report.unmatched) + len(report.unparsable)} candidate crop(s) match no box "
            "of --detections/--cct; give the other one, or --strip-prefix[/]",
            highlight=False,
        )
    docs = review_documents(
        merged, candidates, strip_prefix=strip_prefix, include_dataset=include_dataset
    )
    for name, doc in docs.items():
        write_md(doc, stem.with_name(f"{stem.name}_{name}.json"))


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
        typer.Option("--dataset", help="Dataset of every row (default: each file's first folder)."),
    ] = None,
    flag: Annotated[
        str, typer.Option("--flag", help="Timelapse flag column marking a mislabeled image.")
    ] = "mislabeled",
    note: Annotated[
        str, typer.Option("--note", help="Timelapse note column with the correct class.")
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
