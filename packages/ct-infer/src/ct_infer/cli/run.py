"""``ct-infer run``: photos + detections + model → MD JSON for Timelapse, in one command."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ct_infer.cli.common import load_predictor, rollup_settings, run_settings
from ct_infer.cli.options import (
    BatchOpt,
    Bf16Opt,
    CompileOpt,
    DeviceOpt,
    ModelArg,
    PrecisionOpt,
    RollupOpt,
    RollupSpecOpt,
    RuntimeOpt,
    SmoothingOpt,
    TargetMappingOpt,
    TaxonomyOpt,
    TopKOpt,
    WorkersOpt,
    overwrite_option,
    threshold_option,
)
from ct_infer.precision import Precision
from ct_infer.runtime import Runtime
from ct_io.cli_fields import options_from
from ct_io.cli_storage import IMAGE_ROOT_HELP, StorageOptionOpt, open_image_root
from ct_io.clitools import console
from ct_io.engines import EngineChoice

if TYPE_CHECKING:
    from ct_infer.run import RunReport


@options_from(EngineChoice, into="engine")
def run_cmd(
    images_dir: Annotated[
        str,
        typer.Argument(help="Camera-trap photos and video clips: " + IMAGE_ROOT_HELP),
    ],
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
        typer.Option(help="Detector plugin to run instead of --detections (see ct-crop)."),
    ] = None,
    detector_option: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE option of the detector (repeat)."),
    ] = None,
    every_n_frames: Annotated[
        int | None,
        typer.Option(
            "--every-n-frames",
            help="With --detector, video clips: detect every N-th frame (default 10).",
        ),
    ] = None,
    frames_per_second: Annotated[
        float | None,
        typer.Option(
            "--frames-per-second", help="With --detector, video clips: N frames per second."
        ),
    ] = None,
    detection_threshold: Annotated[
        float,
        typer.Option(help="Classify detections with at least this confidence."),
    ] = 0.2,
    category: Annotated[
        list[str] | None,
        typer.Option(help="Detection categories to classify (default animal)."),
    ] = None,
    target_mapping: TargetMappingOpt = None,
    rollup: RollupOpt = None,
    taxonomy: TaxonomyOpt = None,
    rollup_spec: RollupSpecOpt = None,
    sequence_gap: Annotated[
        float | None,
        typer.Option(
            help="Smooth over sequences: frames of a folder at most this many seconds apart (EXIF time)."
        ),
    ] = None,
    smoothing: SmoothingOpt = 0.5,
    threshold: Annotated[
        float, threshold_option("Leave out classes below this confidence in the JSON.")
    ] = 0.0,
    top_k: TopKOpt = 5,
    classifier_name: Annotated[
        str | None,
        typer.Option(help="Written to info.classifier (default: the bundle's name)."),
    ] = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.AUTO,
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    runtime: RuntimeOpt = Runtime.TORCH,
    overwrite: Annotated[
        bool, overwrite_option("Reclassify everything instead of resuming.")
    ] = False,
    storage_option: StorageOptionOpt = None,
    *,
    engine: dict[str, Any],
) -> None:
    """Photos and clips → crops in memory → classify → MD JSON for Timelapse, plus a per-class summary.

    A clip's sampled frames are classified like photos, smoothed within the clip and rolled
    up per clip (clip_classifications); clips are written as MegaDetector per-video entries.
    """
    from ct_crop.video_detect import sampling_from_options
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

    images = check_images_dir(open_image_root(images_dir, storage_option))
    if (detections is None) == (detector is None):
        raise CamtrapError(
            "give exactly one of --detections (an MD JSON) or --detector (a detector plugin)"
        )
    settings = run_settings(batch_size, workers, device, precision, compile_model, bf16, runtime)
    predictor = load_predictor(model, None, None, settings)
    classifier = predictor.classifier
    mapping = read_target_mapping(target_mapping) if target_mapping else None
    rollup_fields = rollup_settings(  # checked before the long part
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
            sampling=sampling_from_options(every_n_frames, frames_per_second),
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
            **rollup_fields,  # type: ignore[arg-type]
        ),
        target_mapping=mapping,
        sequence_gap=sequence_gap,
        overwrite=overwrite,
    )
    from ct_infer.engine_jobs import predictor_loader

    loader = functools.partial(
        predictor_loader,
        model,
        None,
        None,
        settings.device,
        settings.precision,
        settings.compile,
        runtime=settings.runtime,
    )
    report = run_pipeline(
        predictor,
        images,
        md,
        output,
        settings,
        options,
        engine=EngineChoice(**engine),
        loader=loader,
    )
    _print_summary(report, output, rolled_up=rollup is not None)
    console.print(
        f"ran on {predictor.device} with {predictor.runtime.runtime} in "
        f"{predictor.precision.describe()}",
        highlight=False,
    )


def _print_summary(report: RunReport, output: Path, rolled_up: bool) -> None:
    """Detections per predicted class, the counts, and the first failures."""
    from rich.table import Table

    assert report.summary is not None
    clips = int(report.summary["clips"].sum())
    table = Table("predicted class", "detections", *(["clips"] if clips else []), title=f"{output}")
    for row in report.summary.itertuples(index=False):
        table.add_row(str(row[0]), str(row[1]), *([str(row[2])] if clips else []))
    console.print(table)
    rolled = (
        f", {report.merge.rolled_up} named at a taxon above the labels"
        if rolled_up and report.merge is not None
        else ""
    )
    console.print(
        f"{report.images} images, {report.boxes} detections: {report.classified} classified, "
        f"{report.resumed} from an earlier run, {len(report.failures)} failures{rolled}"
        + (f"; {clips} video clips rolled up" if clips else ""),
        highlight=False,
    )
    for file, k, reason in report.failures[:10]:
        console.print(
            f"[yellow]failed[/] {file}" + (f" box {k}" if k is not None else "") + f": {reason}",
            highlight=False,
        )
