"""``ct-infer`` console script.

Heavy libraries (torch, timm, matplotlib) are imported inside the commands, so ``--help``
stays fast and never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ct_io.clitools import console, run_cli, setup_logging

if TYPE_CHECKING:
    from ct_infer.classify import RunSettings
    from ct_infer.predictor import Predictor

app = typer.Typer(
    help="ct-infer: run camera-trap classifiers — bundles, classification, evaluation, "
    "merging into MegaDetector JSON for Timelapse, mislabel review, reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelArg = Annotated[
    Path,
    typer.Argument(help="Model: a bundle (.safetensors), or a TorchScript (.pt) / ONNX export."),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Crops per batch.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", "-j", help="Decoding processes (default: CPU count, at most 8; 0 = none)."
    ),
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
]
Bf16Opt = Annotated[
    bool,
    typer.Option("--bf16", help="Run under bfloat16 autocast (faster on recent GPUs and CPUs)."),
]
CompileOpt = Annotated[
    bool,
    typer.Option("--compile", help="torch.compile the network (slow start, faster on long runs)."),
]
LabelIndexOpt = Annotated[
    Path | None,
    typer.Option("--label-index", help="label_index.json, for a foreign model without metadata."),
]
ImageSizeOpt = Annotated[
    int | None,
    typer.Option("--image-size", help="Input size, for a foreign model without metadata."),
]


TargetMappingOpt = Annotated[
    Path | None,
    typer.Option(
        "--target-mapping",
        help="JSON target → classifier labels (ct-taxonomy map): report your own categories.",
    ),
]
RollupOpt = Annotated[
    float | None,
    typer.Option(
        "--rollup",
        min=0.0,
        max=1.0,
        help="When no label reaches this probability, name the lowest taxon that does.",
    ),
]
TaxonomyOpt = Annotated[
    Path | None,
    typer.Option(
        "--taxonomy",
        help="Taxonomy CSV (ct-taxonomy) giving the labels' lineages for --rollup "
        "(default: the bundle's own taxonomy).",
    ),
]
RollupSpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--rollup-spec",
        help="With --taxonomy: label spec of the output labels (default: labels are taxon names).",
    ),
]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


def _settings(
    batch_size: int, workers: int | None, device: str, bf16: bool, compile_model: bool
) -> RunSettings:
    from ct_infer.classify import RunSettings

    settings = RunSettings(batch_size=batch_size, device=device, bf16=bf16, compile=compile_model)
    if workers is not None:
        settings.workers = workers
    return settings


def _rollup_settings(
    threshold: float | None,
    labels: list[str],
    bundle_taxonomy: dict[str, str] | None,
    taxonomy: Path | None,
    rollup_spec: Path | None,
    mapping: dict[str, list[str]] | None,
) -> dict[str, object]:
    """``MergeOptions`` fields for --rollup (empty without it); errors say what to pass."""
    if threshold is None:
        if taxonomy is not None or rollup_spec is not None:
            console.print("[yellow]--taxonomy/--rollup-spec have no effect without --rollup[/]")
        return {}
    from ct_infer.rollup import rollup_lineages

    lineages = rollup_lineages(
        labels,
        bundle_taxonomy=bundle_taxonomy,
        taxonomy_csv=taxonomy,
        rollup_spec=rollup_spec,
        target_mapping=mapping,
    )
    return {"rollup_threshold": threshold, "lineages": lineages}


def _predictor(
    model: Path,
    label_index: Path | None,
    image_size: int | None,
    settings: RunSettings,
    calibrate: bool = True,
) -> Predictor:
    from ct_infer.predictor import Predictor, load_classifier
    from ct_io.tables import read_label_index

    labels = read_label_index(label_index) if label_index else None
    classifier = load_classifier(model, labels=labels, input_size=image_size)
    return Predictor(
        classifier,
        device=settings.device,
        bf16=settings.bf16,
        compile=settings.compile,
        calibrate=calibrate,
    )


@app.command("backbones")
def backbones_cmd() -> None:
    """List the registered backbones (built-ins and plugins)."""
    from ct_infer.backbones import backbone_registry

    for reg in backbone_registry():
        console.print(
            f"[bold]{reg.name}[/]  {reg.description}  [dim]({reg.distribution})[/]", highlight=False
        )


@app.command("info")
def info_cmd(model: ModelArg) -> None:
    """Show what a bundle or export holds: backbone, labels, preprocessing, calibration."""
    import json

    from ct_infer.predictor import load_classifier

    loaded = load_classifier(model)
    meta = loaded.meta.to_json() if loaded.meta else {"labels": loaded.labels}
    console.print_json(json.dumps({"kind": loaded.kind, **meta}))


@app.command("export")
def export_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle (.safetensors) to export.")],
    output: Annotated[
        Path, typer.Argument(help="Output file (.pt for TorchScript, .onnx for ONNX).")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="torchscript or onnx (default: from the suffix).")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Compare the export's outputs with the bundle's.")
    ] = True,
) -> None:
    """Export a bundle as a self-contained TorchScript or ONNX model (runs without camtrap)."""
    from ct_infer.bundle import load_bundle
    from ct_infer.export import export_bundle, max_abs_difference
    from ct_io.errors import CamtrapError

    kind = fmt or ("onnx" if output.suffix.lower() == ".onnx" else "torchscript")
    loaded = load_bundle(bundle)
    export_bundle(loaded, output, kind)  # type: ignore[arg-type]
    console.print(f"wrote {kind} model {output}")
    if check:
        diff = max_abs_difference(loaded, output)
        if diff > 1e-3:
            raise CamtrapError(f"{output}: export differs from the bundle by {diff:.3g} in logits")
        console.print(f"checked: largest logit difference {diff:.2g}")


@app.command("classify")
def classify_cmd(
    model: ModelArg,
    crops: Annotated[
        Path, typer.Argument(help="Crops folder, or a CSV manifest with a 'path' column.")
    ],
    output: Annotated[
        Path,
        typer.Argument(
            help="Output CSV (.csv or .csv.gz): path + one probability column per label."
        ),
    ],
    crops_dir: Annotated[
        Path | None,
        typer.Option(
            "--crops-dir",
            help="Folder the manifest's paths are relative to (default: the manifest's folder).",
        ),
    ] = None,
    batch_size: BatchOpt = 64,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    label_index: LabelIndexOpt = None,
    image_size: ImageSizeOpt = None,
    no_calibration: Annotated[
        bool, typer.Option("--no-calibration", help="Ignore the bundle's fitted temperature.")
    ] = False,
    detections: Annotated[
        Path | None,
        typer.Option("--detections", help="MD JSON: classify only crops of its detections."),
    ] = None,
    detection_threshold: Annotated[
        float, typer.Option("--detection-threshold", help="With --detections: minimum confidence.")
    ] = 0.0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start over instead of resuming.")
    ] = False,
) -> None:
    """Classify crops into a probability CSV. Rerunning resumes after the rows already written."""
    from ct_infer.classify import classify_crops, crops_from_source, write_failures

    settings = _settings(batch_size, workers, device, bf16, compile_model)
    root, paths = crops_from_source(crops, crops_dir)
    if detections is not None:
        from ct_infer.classify import filter_by_detections
        from ct_io.md import read_md

        paths = filter_by_detections(paths, read_md(detections), detection_threshold)
    predictor = _predictor(model, label_index, image_size, settings, calibrate=not no_calibration)
    report = classify_crops(predictor, root, paths, output, settings, overwrite=overwrite)
    failed = write_failures(report, output)
    console.print(
        f"{report.classified} crops classified ({report.crops_per_second:.0f}/s on {predictor.device}), "
        f"{report.skipped_done} already done, {len(report.failed)} unreadable → {output}",
        highlight=False,
    )
    if failed:
        console.print(f"unreadable crops listed in {failed}")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="Model (bundle .safetensors, TorchScript .pt or ONNX), or a training run "
            "folder (default with --run: the run's bundle).",
            show_default=False,
        ),
    ] = None,
    dataset_dir: Annotated[
        Path | None,
        typer.Argument(
            help="Folder with classification_ds.csv, label_index.json and splits.json "
            "(default with --run: the run's).",
            show_default=False,
        ),
    ] = None,
    crops_dir: Annotated[
        Path | None,
        typer.Argument(
            help="Folder the dataset's crop paths are relative to (default with --run: the run's).",
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            "--run",
            "--params",
            help="Training run: a ct-train run folder (resolved_config.yml) or the seed's "
            "params.json; its settings are the defaults, arguments and options override them.",
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Where outputs and metrics go (default: RUN/evaluation, else ./evaluation).",
        ),
    ] = None,
    splits: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help="Split(s) to evaluate (repeat; default: the run's, else train, val, test).",
        ),
    ] = None,
    dataset_csv: Annotated[
        Path | None,
        typer.Option("--dataset-csv", help="Override DATASET_DIR/classification_ds.csv."),
    ] = None,
    splits_json: Annotated[
        Path | None,
        typer.Option(
            "--splits-json", help="Override DATASET_DIR/splits.json (absent: one split 'all')."
        ),
    ] = None,
    target_mapping: Annotated[
        Path | None,
        typer.Option(
            "--target-mapping",
            help="JSON target label → classifier labels: score against other labels.",
        ),
    ] = None,
    weights: Annotated[
        str,
        typer.Option(
            "--weights",
            help="auto (a 'weight' column if present), none, column, or label (inverse label frequency).",
        ),
    ] = "auto",
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", "-b", help="Crops per batch (default: the run's, else 64)."),
    ] = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    label_index: LabelIndexOpt = None,
    image_size: ImageSizeOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Recompute outputs instead of resuming.")
    ] = False,
) -> None:
    """Evaluate a model on dataset splits: outputs_{split}.csv.gz, overall_metrics.csv, confusion_matrices.npz, label_stats.csv."""
    from ct_infer.evaluate import evaluate
    from ct_infer.mapping import read_target_mapping
    from ct_infer.training_run import read_training_run
    from ct_io.errors import CamtrapError
    from ct_io.tables import read_label_index

    if weights not in ("auto", "none", "column", "label"):
        raise CamtrapError(f"--weights {weights!r}: use auto, none, column or label")
    if model is not None and model.is_dir():
        if run is not None:
            raise CamtrapError(f"{model}: MODEL is a folder; give a model file with --run")
        run, model = model, None
    training = read_training_run(run) if run is not None else None
    if model is None:
        if training is None:
            raise CamtrapError(
                "give MODEL DATASET_DIR CROPS_DIR, or a training run (--run RUN_DIR)"
            )
        model = training.require_model()
    from_run = dataset_dir is None and training is not None
    if dataset_dir is None:
        dataset_dir = training.dataset_dir if training else None
    if crops_dir is None:
        crops_dir = training.crops_dir if training else None
    if dataset_dir is None or crops_dir is None:
        missing = "DATASET_DIR" if dataset_dir is None else "CROPS_DIR"
        where = f" ({training.source} does not say)" if training else ""
        raise CamtrapError(f"give {missing}{where}")
    if training is not None:
        console.print(
            f"from {training.source}: model {model}, dataset {dataset_dir}, crops {crops_dir}",
            highlight=False,
        )
    if from_run and training is not None:
        csv = dataset_csv or training.dataset_csv or dataset_dir / "classification_ds.csv"
        split_file = splits_json or training.splits_json
        labels_file = training.label_index
    else:
        csv = dataset_csv or dataset_dir / "classification_ds.csv"
        split_file = splits_json or dataset_dir / "splits.json"
        labels_file = dataset_dir / "label_index.json"
    if splits_json is None and split_file is not None and not split_file.is_file():
        split_file = None
    mapping = read_target_mapping(target_mapping) if target_mapping else None
    if label_index is None and training is not None and mapping is None:
        label_index = labels_file if labels_file and labels_file.is_file() else None
    if image_size is None and training is not None:
        image_size = training.image_size
    if batch_size is None:
        batch_size = (training.batch_size if training else None) or 64
    if workers is None and training is not None:
        workers = training.workers
    settings = _settings(batch_size, workers, device, bf16, compile_model)
    predictor = _predictor(model, label_index, image_size, settings)
    targets = None
    if mapping is not None and labels_file is not None and labels_file.is_file():
        targets = read_label_index(labels_file)
    output_dir = output_dir or (training.output_dir if training else None) or Path("evaluation")
    results = evaluate(
        predictor,
        csv,
        crops_dir,
        output_dir,
        settings,
        splits_json=split_file,
        split_names=splits or (training.splits if training else None) or ("train", "val", "test"),
        target_mapping=mapping,
        target_labels=targets,
        weights=weights,  # type: ignore[arg-type]
        overwrite=overwrite,
    )
    from rich.table import Table

    table = Table("split", "crops", "loss", "top-1", "top-3", "macro recall")
    for split, r in results.items():
        o = r.overall
        table.add_row(
            split,
            f"{o['count']:.0f}",
            f"{o['loss']:.3f}",
            f"{o['acc_top1']:.3f}",
            f"{o['acc_top3']:.3f}",
            f"{o['macro_recall']:.3f}",
        )
    console.print(table)
    console.print(
        f"wrote {output_dir}/overall_metrics.csv, label_stats.csv, confusion_matrices.npz, outputs_*.csv.gz"
    )


@app.command("merge")
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
            "--cct", help="COCO Camera Traps JSON whose boxes the ground-truth crops were cut from."
        ),
    ] = None,
    images_dir: Annotated[
        Path | None,
        typer.Option(
            "--images-dir", help="With --cct lacking width/height: read image sizes here."
        ),
    ] = None,
    label_index: Annotated[
        Path | None,
        typer.Option(
            "--label-index",
            help="label_index.json giving category ids (default: CSV column order).",
        ),
    ] = None,
    classifier_name: Annotated[
        str, typer.Option("--classifier-name", help="Written to info.classifier.")
    ] = "classifier",
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            help="Leave out classes below this confidence (margin with --relative-conf).",
        ),
    ] = 0.0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Keep at most this many classes per detection.")
    ] = None,
    relative_conf: Annotated[
        bool,
        typer.Option(
            "--relative-conf",
            help="Write each class's margin over the true label (mislabel review).",
        ),
    ] = False,
    label: Annotated[
        str | None,
        typer.Option(
            "--label", help="Add the true label as a 'label: <name>' class, first or last."
        ),
    ] = None,
    strip_prefix: Annotated[
        str,
        typer.Option(
            "--strip-prefix",
            help="Leading folder of crop paths not present in the MD JSON's file names.",
        ),
    ] = "",
    sequences: Annotated[
        Path | None,
        typer.Option(
            "--sequences", help="Smooth over sequences: CCT JSON with seq_id, or CSV file,seq_id."
        ),
    ] = None,
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="Sequence smoothing strength 0..1.")
    ] = 0.5,
    target_mapping: TargetMappingOpt = None,
    rollup: RollupOpt = None,
    taxonomy: TaxonomyOpt = None,
    rollup_spec: RollupSpecOpt = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Bundle that made the CSV: its label taxonomy (for --rollup) and name.",
        ),
    ] = None,
) -> None:
    """Merge classifier output into a MegaDetector JSON (classification_categories + per-detection classifications) for Timelapse."""
    from ct_infer.mapping import read_target_mapping
    from ct_infer.merge import MergeOptions, merge_classifications, read_classifier_csv
    from ct_infer.rollup import map_targets
    from ct_infer.smoothing import read_sequences
    from ct_io.errors import CamtrapError
    from ct_io.md import read_md, write_md
    from ct_io.tables import read_label_index

    if label not in (None, "first", "last"):
        raise CamtrapError(f"--label {label!r}: use first or last")
    frame, labels = read_classifier_csv(
        str(classifier_csv), read_label_index(label_index) if label_index else None
    )
    meta = None
    if bundle is not None:
        from ct_infer.bundle import read_bundle_meta

        meta = read_bundle_meta(bundle)
        if classifier_name == "classifier":  # the default: name it after the bundle
            classifier_name = meta.name or bundle.name.removesuffix(".safetensors")
    mapping = read_target_mapping(target_mapping) if target_mapping else None
    rollup_settings = _rollup_settings(
        rollup, labels, meta.taxonomy if meta else None, taxonomy, rollup_spec, mapping
    )
    if mapping is not None:
        frame, labels = map_targets(frame, labels, mapping)
    options = MergeOptions(
        classifier_name=classifier_name,
        threshold=threshold,
        top_k=top_k,
        relative_conf=relative_conf,
        label=label,  # type: ignore[arg-type]
        strip_prefix=strip_prefix,
        sequences=read_sequences(sequences) if sequences else None,
        smoothing=smoothing,
        **rollup_settings,  # type: ignore[arg-type]
    )
    if detections is None and cct is None:
        raise CamtrapError("give --detections (MD JSON), --cct (ground-truth boxes), or both")
    md = read_md(detections) if detections else None
    gt_index = None
    if cct is not None:
        from ct_infer.ground_truth import add_ground_truth
        from ct_io.cct import read_cct

        md, gt_index = add_ground_truth(md, read_cct(cct), images_dir)
    assert md is not None
    merged, report = merge_classifications(md, frame, labels, options, gt_index=gt_index)
    write_md(merged, output)
    rolled = f" ({report.rolled_up} named at a taxon above the labels)" if rollup else ""
    console.print(
        f"{report.matched} of {report.rows} crops merged into {output}{rolled}", highlight=False
    )


@app.command("run")
def run_cmd(
    images_dir: Annotated[Path, typer.Argument(help="Folder of camera-trap photos.")],
    model: ModelArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="MD JSON with classifications to write (open it in Timelapse)."
        ),
    ],
    detections: Annotated[
        Path | None,
        typer.Option(
            "--detections",
            "-d",
            help="MegaDetector JSON for these images (file paths relative to IMAGES_DIR).",
        ),
    ] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector", help="Detector plugin to run instead of --detections (see ct-crop)."
        ),
    ] = None,
    detector_option: Annotated[
        list[str] | None,
        typer.Option("--detector-option", help="KEY=VALUE option of the detector (repeat)."),
    ] = None,
    detection_threshold: Annotated[
        float,
        typer.Option(
            "--detection-threshold", help="Classify detections with at least this confidence."
        ),
    ] = 0.2,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="Detection categories to classify (default animal)."),
    ] = None,
    target_mapping: TargetMappingOpt = None,
    rollup: RollupOpt = None,
    taxonomy: TaxonomyOpt = None,
    rollup_spec: RollupSpecOpt = None,
    sequence_gap: Annotated[
        float | None,
        typer.Option(
            "--sequence-gap",
            help="Smooth over sequences: frames of a folder at most this many seconds apart (EXIF time).",
        ),
    ] = None,
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="Sequence smoothing strength 0..1.")
    ] = 0.5,
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Leave out classes below this confidence in the JSON."),
    ] = 0.0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Keep at most this many classes per detection.")
    ] = 5,
    classifier_name: Annotated[
        str | None,
        typer.Option(
            "--classifier-name", help="Written to info.classifier (default: the bundle's name)."
        ),
    ] = None,
    batch_size: BatchOpt = 64,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Reclassify everything instead of resuming.")
    ] = False,
) -> None:
    """Photos → crops in memory → classify → MD JSON for Timelapse, plus a per-class summary."""
    from ct_infer.mapping import read_target_mapping
    from ct_infer.merge import MergeOptions
    from ct_infer.run import (
        RunOptions,
        check_images_dir,
        default_paths,
        detect_images,
        run_pipeline,
    )
    from ct_io.errors import CamtrapError
    from ct_io.md import read_md
    from ct_io.options import parse_key_values

    images = check_images_dir(images_dir)
    if (detections is None) == (detector is None):
        raise CamtrapError(
            "give exactly one of --detections (an MD JSON) or --detector (a detector plugin)"
        )
    settings = _settings(batch_size, workers, device, bf16, compile_model)
    predictor = _predictor(model, None, None, settings)
    classifier = predictor.classifier
    mapping = read_target_mapping(target_mapping) if target_mapping else None
    rollup_settings = _rollup_settings(  # checked before the long part
        rollup,
        classifier.labels,
        classifier.meta.taxonomy if classifier.meta else None,
        taxonomy,
        rollup_spec,
        mapping,
    )
    md = (
        read_md(detections)
        if detections
        else detect_images(
            str(detector),
            parse_key_values(detector_option or []),
            images,
            default_paths(output)["detections"],
        )
    )
    options = RunOptions(
        detection_threshold=detection_threshold,
        categories=tuple(category or ["animal"]),
        merge=MergeOptions(
            classifier_name=classifier_name or classifier.name,
            threshold=threshold,
            top_k=top_k,
            smoothing=smoothing,
            **rollup_settings,  # type: ignore[arg-type]
        ),
        target_mapping=mapping,
        sequence_gap=sequence_gap,
        overwrite=overwrite,
    )
    report = run_pipeline(predictor, images, md, output, settings, options)
    from rich.table import Table

    table = Table("predicted class", "detections", title=f"{output}")
    assert report.summary is not None
    for row in report.summary.itertuples(index=False):
        table.add_row(str(row[0]), str(row[1]))
    console.print(table)
    rolled = (
        f", {report.merge.rolled_up} named at a taxon above the labels"
        if rollup is not None and report.merge is not None
        else ""
    )
    console.print(
        f"{report.images} images, {report.boxes} detections: {report.classified} classified, "
        f"{report.resumed} from an earlier run, {len(report.failures)} failures{rolled}",
        highlight=False,
    )
    for file, k, reason in report.failures[:10]:
        console.print(
            f"[yellow]failed[/] {file}" + (f" box {k}" if k is not None else "") + f": {reason}",
            highlight=False,
        )


@app.command("calibrate")
def calibrate_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle whose outputs were evaluated.")],
    val_outputs: Annotated[
        Path, typer.Argument(help="outputs_val.csv.gz from `ct-infer evaluate` with this bundle.")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Calibrated bundle to write (may be BUNDLE itself)."),
    ],
) -> None:
    """Fit temperature scaling on validation outputs and store it in the bundle."""
    from ct_infer.bundle import load_bundle, save_tensors
    from ct_infer.calibration import fit_temperature
    from ct_infer.evaluate import read_outputs
    from ct_infer.metrics import label_indices
    from ct_io.errors import CamtrapError

    loaded = load_bundle(bundle)
    frame, labels = read_outputs(val_outputs)
    if labels != loaded.meta.labels:
        raise CamtrapError(
            f"{val_outputs}: label columns differ from the bundle's labels — outputs of another model?"
        )
    fit = fit_temperature(frame[labels].to_numpy(), label_indices(frame["label"].tolist(), labels))
    temperature = (
        loaded.meta.temperature * fit.temperature
    )  # outputs were already at the old temperature
    save_tensors(output, loaded.state_dict, loaded.with_meta(temperature=temperature).meta)
    console.print(
        f"temperature {temperature:.3f} on {fit.count} crops: NLL {fit.nll_before:.4f} → {fit.nll_after:.4f}, "
        f"ECE {fit.ece_before:.4f} → {fit.ece_after:.4f}; wrote {output}",
        highlight=False,
    )


@app.command("mislabeled")
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
    images_dir: Annotated[
        Path | None,
        typer.Option(
            "--images-dir", help="With --cct lacking width/height: read image sizes here."
        ),
    ] = None,
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
    from ct_infer.merge import MergeOptions, merge_classifications, read_classifier_csv
    from ct_infer.mislabeled import (
        datasets_from_table,
        find_candidates,
        review_documents,
        with_cct_labels,
        write_candidate_lists,
    )
    from ct_io.errors import CamtrapError
    from ct_io.md import read_md, write_md
    from ct_io.tables import write_csv

    if outputs.is_dir():
        wanted = {
            f.name[len("outputs_") : -len(".csv.gz")]: f
            for f in sorted(outputs.glob("outputs_*.csv.gz"))
        }
        folder = outputs
    elif outputs.is_file():
        wanted, folder = {"all": outputs}, outputs.parent
    else:
        raise CamtrapError(f"{outputs}: no such folder or file")
    if splits:
        missing = [s for s in splits if s not in wanted]
        if missing:
            raise CamtrapError(f"no outputs_{missing[0]}.csv.gz in {outputs}")
        wanted = {s: wanted[s] for s in splits}
    if not wanted:
        raise CamtrapError(f"{outputs}: no outputs_<split>.csv.gz — run `ct-infer evaluate` first")
    out_dir = output_dir or folder
    out_dir.mkdir(parents=True, exist_ok=True)
    if (
        dataset_csv is None
        and dataset is None
        and (folder.parent / "classification_ds.csv").is_file()
    ):
        dataset_csv = folder.parent / "classification_ds.csv"
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
        if base_md is None:
            continue
        subset = frame[frame["path"].isin(set(candidates["path"]))]
        merged, report = merge_classifications(
            base_md,
            subset,
            labels,
            MergeOptions(
                classifier_name="mislabel-review",
                relative_conf=True,
                label="last",
                strip_prefix=strip_prefix,
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
            write_md(doc, out_dir / f"mislabeled_candidates_{split}_{name}.json")


@app.command("save-mislabeled")
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


@app.command("report")
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
        Path | None, typer.Option("--crops-dir", help="Crops folder, for the image grid.")
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Show crops of this label grouped by predicted class."),
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="Split for the image grid (default test).")
    ] = None,
    per_class: Annotated[
        int, typer.Option("--per-class", help="Crops shown per predicted class.")
    ] = 16,
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


def main() -> None:
    """Console-script entry point."""
    run_cli(app)


if __name__ == "__main__":
    main()
