"""``ct-infer classify``: crops → probability CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ct_infer.cli.common import predictor_factory, run_settings
from ct_infer.cli.options import (
    BatchOpt,
    Bf16Opt,
    CompileOpt,
    DeviceOpt,
    ImageSizeOpt,
    LabelIndexOpt,
    ModelArg,
    PrecisionOpt,
    RuntimeOpt,
    WorkersOpt,
    overwrite_option,
)
from ct_infer.precision import Precision
from ct_infer.runtime import Runtime
from ct_io.cli_fields import options_from
from ct_io.cli_storage import StorageOptionOpt
from ct_io.clitools import console
from ct_io.engines import EngineChoice


@options_from(EngineChoice, into="engine")
def classify_cmd(
    model: ModelArg,
    crops: Annotated[
        str,
        typer.Argument(
            help="Crops folder, or a CSV manifest with a 'path' column. The folder may be an "
            "object-store URL read without a local copy: s3://bucket/prefix, gs://..., "
            "az://container/prefix, or an Azure container URL (with a SAS token)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(
            help="Output CSV (.csv or .csv.gz): path + one probability column per label."
        ),
    ],
    crops_dir: Annotated[
        str | None,
        typer.Option(
            help="Folder the manifest's paths are relative to (default: the manifest's "
            "folder), or an object-store URL as for CROPS (an https:// base URL works too)."
        ),
    ] = None,
    batch_size: BatchOpt = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.AUTO,
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    runtime: RuntimeOpt = Runtime.TORCH,
    label_index: LabelIndexOpt = None,
    image_size: ImageSizeOpt = None,
    no_calibration: Annotated[
        bool, typer.Option("--no-calibration", help="Ignore the bundle's fitted temperature.")
    ] = False,
    detections: Annotated[
        Path | None,
        typer.Option(help="MD JSON: classify only crops of its detections."),
    ] = None,
    detection_threshold: Annotated[
        float, typer.Option(help="With --detections: minimum confidence.")
    ] = 0.0,
    overwrite: Annotated[bool, overwrite_option("Start over instead of resuming.")] = False,
    storage_option: StorageOptionOpt = None,
    *,
    engine: dict[str, Any],
) -> None:
    """Classify crops into a probability CSV. Rerunning resumes after the rows already written."""
    from ct_infer.classify import classify_crops, crops_from_source, write_failures
    from ct_io.options import parse_key_values

    settings = run_settings(batch_size, workers, device, precision, compile_model, bf16, runtime)
    root, paths = crops_from_source(
        crops, crops_dir, storage_options=parse_key_values(storage_option or [])
    )
    if detections is not None:
        from ct_infer.classify import filter_by_detections
        from ct_io.md import read_md

        paths = filter_by_detections(paths, read_md(detections), detection_threshold)
    loader = predictor_factory(model, label_index, image_size, settings, not no_calibration)
    predictor = loader()
    choice = EngineChoice(**engine)
    report = classify_crops(
        predictor,
        root,
        paths,
        output,
        settings,
        overwrite=overwrite,
        engine=choice,
        loader=loader,
    )
    failed = write_failures(report, output)
    console.print(
        f"{report.classified} crops classified ({report.crops_per_second:.0f}/s on {predictor.device} with "
        f"{predictor.runtime.runtime}, {predictor.precision.describe()}), {report.skipped_done} already done, "
        f"{len(report.failed)} unreadable → {output}",
        highlight=False,
    )
    if failed:
        console.print(f"unreadable crops listed in {failed}")
