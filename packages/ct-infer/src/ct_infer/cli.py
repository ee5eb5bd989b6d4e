"""``ct-infer`` console script.

Heavy libraries (torch, timm, matplotlib) are imported inside the commands, so ``--help``
stays fast and never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import console, run_cli, setup_logging

app = typer.Typer(
    help="ct-infer: run camera-trap classifiers — bundles, classification, evaluation, "
    "merging into MegaDetector JSON for Timelapse, mislabel review, reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelArg = Annotated[Path, typer.Argument(help="Model: a bundle (.safetensors), or a TorchScript (.pt) / ONNX export.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Crops per batch.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-j", help="Decoding processes (default: CPU count, at most 8; 0 = none).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]
Bf16Opt = Annotated[bool, typer.Option("--bf16", help="Run under bfloat16 autocast (faster on recent GPUs and CPUs).")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the network (slow start, faster on long runs).")]
LabelIndexOpt = Annotated[Path | None, typer.Option("--label-index", help="label_index.json, for a foreign model without metadata.")]
ImageSizeOpt = Annotated[int | None, typer.Option("--image-size", help="Input size, for a foreign model without metadata.")]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


def _settings(batch_size: int, workers: int | None, device: str, bf16: bool, compile_model: bool):  # type: ignore[no-untyped-def]
    from ct_infer.classify import RunSettings

    settings = RunSettings(batch_size=batch_size, device=device, bf16=bf16, compile=compile_model)
    if workers is not None:
        settings.workers = workers
    return settings


def _predictor(model: Path, label_index: Path | None, image_size: int | None, settings, calibrate: bool = True):  # type: ignore[no-untyped-def]
    from ct_infer.predictor import Predictor, load_classifier
    from ct_io.tables import read_label_index

    labels = read_label_index(label_index) if label_index else None
    classifier = load_classifier(model, labels=labels, input_size=image_size)
    return Predictor(classifier, device=settings.device, bf16=settings.bf16, compile=settings.compile, calibrate=calibrate)


@app.command("backbones")
def backbones_cmd() -> None:
    """List the registered backbones (built-ins and plugins)."""
    from ct_infer.backbones import backbone_registry

    for reg in backbone_registry():
        console.print(f"[bold]{reg.name}[/]  {reg.description}  [dim]({reg.distribution})[/]", highlight=False)


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
    output: Annotated[Path, typer.Argument(help="Output file (.pt for TorchScript, .onnx for ONNX).")],
    fmt: Annotated[str | None, typer.Option("--format", help="torchscript or onnx (default: from the suffix).")] = None,
    check: Annotated[bool, typer.Option(help="Compare the export's outputs with the bundle's.")] = True,
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
    crops: Annotated[Path, typer.Argument(help="Crops folder, or a CSV manifest with a 'path' column.")],
    output: Annotated[Path, typer.Argument(help="Output CSV (.csv or .csv.gz): path + one probability column per label.")],
    crops_dir: Annotated[Path | None, typer.Option("--crops-dir", help="Folder the manifest's paths are relative to (default: the manifest's folder).")] = None,
    batch_size: BatchOpt = 64,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    label_index: LabelIndexOpt = None,
    image_size: ImageSizeOpt = None,
    no_calibration: Annotated[bool, typer.Option("--no-calibration", help="Ignore the bundle's fitted temperature.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over instead of resuming.")] = False,
) -> None:
    """Classify crops into a probability CSV. Rerunning resumes after the rows already written."""
    from ct_infer.classify import classify_crops, crops_from_source, write_failures

    settings = _settings(batch_size, workers, device, bf16, compile_model)
    root, paths = crops_from_source(crops, crops_dir)
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


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
