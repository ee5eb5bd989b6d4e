"""``ct-infer merge``: classifier CSV → MegaDetector JSON with classifications."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_infer.cli.common import rollup_settings
from ct_infer.cli.options import (
    ImagesDirOpt,
    RollupOpt,
    RollupSpecOpt,
    SmoothingOpt,
    TargetMappingOpt,
    TaxonomyOpt,
    TopKOpt,
    TrueLabelAt,
    threshold_option,
)
from ct_io.clitools import console

DEFAULT_CLASSIFIER_NAME = "classifier"
DEFAULT_THRESHOLD = 0.1  # ct_infer.merge.DEFAULT_THRESHOLD (not imported: --help stays light)


def merge_cmd(
    classifier_csv: Annotated[
        Path,
        typer.Argument(
            help="Classifier output CSV(.gz): path + one column per label (classify or evaluate output)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Merged MD JSON to write.")],
    detections: Annotated[
        Path | None,
        typer.Option(
            "--detections", "-d", help="MegaDetector JSON the detector crops were cut from."
        ),
    ] = None,
    cct: Annotated[
        Path | None,
        typer.Option(
            help="COCO Camera Traps JSON whose boxes the ground-truth crops were cut from."
        ),
    ] = None,
    images_dir: ImagesDirOpt = None,
    label_index: Annotated[
        Path | None,
        typer.Option(help="label_index.json giving category ids (default: CSV column order)."),
    ] = None,
    classifier_name: Annotated[
        str, typer.Option(help="Written to info.classifier.")
    ] = DEFAULT_CLASSIFIER_NAME,
    threshold: Annotated[
        float,
        threshold_option("Leave out classes below this confidence (margin with --relative-conf)."),
    ] = DEFAULT_THRESHOLD,
    typical_confidence_threshold: Annotated[
        float | None,
        typer.Option(
            "--typical-confidence-threshold",
            help="A suggested cut-off for readers (Timelapse), written to classifier_metadata; filters nothing.",
        ),
    ] = None,
    top_k: TopKOpt = None,
    relative_conf: Annotated[
        bool,
        typer.Option(
            "--relative-conf",
            help="Write each class's margin over the true label (mislabel review).",
        ),
    ] = False,
    label: Annotated[
        TrueLabelAt | None,
        typer.Option(help="Add the true label as a 'label: <name>' class, first or last."),
    ] = None,
    strip_prefix: Annotated[
        str,
        typer.Option(help="Leading folder of crop paths not present in the MD JSON's file names."),
    ] = "",
    sequences: Annotated[
        Path | None,
        typer.Option(help="Smooth over sequences: CCT JSON with seq_id, or CSV file,seq_id."),
    ] = None,
    smoothing: SmoothingOpt = 0.5,
    target_mapping: TargetMappingOpt = None,
    rollup: RollupOpt = None,
    taxonomy: TaxonomyOpt = None,
    rollup_spec: RollupSpecOpt = None,
    bundle: Annotated[
        Path | None,
        typer.Option(help="Bundle that made the CSV: its label taxonomy (for --rollup) and name."),
    ] = None,
    datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--datasets",
            help="Only crops and images of these datasets (repeat, or comma-separated).",
        ),
    ] = None,
    samples_per_label: Annotated[
        int | None,
        typer.Option(
            "--samples-per-label",
            help="Review subset: up to N random crops per label (true, else predicted) and only their images.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of --samples-per-label.")] = 123,
) -> None:
    """Merge classifier output into a MegaDetector JSON (classification_categories + per-detection classifications) for Timelapse."""
    from ct_infer.ground_truth import crop_boxes_of
    from ct_infer.mapping import read_target_mapping
    from ct_infer.merge import MergeOptions, merge_classifications, read_classifier_csv
    from ct_infer.review_subset import ReviewSubset
    from ct_infer.rollup import map_targets
    from ct_infer.smoothing import read_sequences
    from ct_io.cct import read_cct
    from ct_io.errors import CamtrapError
    from ct_io.md import read_md, write_md
    from ct_io.tables import read_label_index

    frame, labels = read_classifier_csv(
        str(classifier_csv), read_label_index(label_index) if label_index else None
    )
    meta = None
    if bundle is not None:
        from ct_infer.bundle import read_bundle_meta

        meta = read_bundle_meta(bundle)
        if classifier_name == DEFAULT_CLASSIFIER_NAME:  # not given: name it after the bundle
            classifier_name = meta.name or bundle.name.removesuffix(".safetensors")
    mapping = read_target_mapping(target_mapping) if target_mapping else None
    rollup_fields = rollup_settings(
        rollup, labels, meta.taxonomy if meta else None, taxonomy, rollup_spec, mapping
    )
    if mapping is not None:
        frame, labels = map_targets(frame, labels, mapping)
    options = MergeOptions(
        classifier_name=classifier_name,
        threshold=threshold,
        typical_threshold=typical_confidence_threshold,
        top_k=top_k,
        relative_conf=relative_conf,
        label=label.value if label else None,
        strip_prefix=strip_prefix,
        sequences=read_sequences(sequences) if sequences else None,
        smoothing=smoothing,
        subset=ReviewSubset(
            tuple(d.strip() for spec in datasets or [] for d in spec.split(",") if d.strip()),
            samples_per_label,
            seed,
        ),
        **rollup_fields,  # type: ignore[arg-type]
    )
    boxes = crop_boxes_of(
        read_md(detections) if detections else None, read_cct(cct) if cct else None, images_dir
    )
    if boxes is None:
        raise CamtrapError("give --detections (MD JSON), --cct (ground-truth boxes), or both")
    md, gt_index = boxes
    merged, report = merge_classifications(md, frame, labels, options, gt_index=gt_index)
    write_md(merged, output)
    rolled = f" ({report.rolled_up} named at a taxon above the labels)" if rollup else ""
    what = "true labels of " if report.labels_only else ""
    console.print(
        f"{what}{report.matched} of {report.rows} crops merged into {output}{rolled}",
        highlight=False,
    )
