"""``ct-infer evaluate``: a model on dataset splits → outputs and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ct_infer.cli.common import load_predictor, run_settings
from ct_infer.cli.options import (
    Bf16Opt,
    CompileOpt,
    DeviceOpt,
    ImageSizeOpt,
    LabelIndexOpt,
    PrecisionOpt,
    RuntimeOpt,
    Weights,
    WorkersOpt,
    overwrite_option,
)
from ct_infer.precision import Precision
from ct_infer.runtime import Runtime
from ct_io.clitools import console

if TYPE_CHECKING:
    from ct_infer.metrics import SplitScores


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
        typer.Option(help="Override DATASET_DIR/classification_ds.csv."),
    ] = None,
    splits_json: Annotated[
        Path | None,
        typer.Option(help="Override DATASET_DIR/splits.json (absent: one split 'all')."),
    ] = None,
    target_mapping: Annotated[
        Path | None,
        typer.Option(help="JSON target label → classifier labels: score against other labels."),
    ] = None,
    weights: Annotated[
        Weights,
        typer.Option(
            help="auto (a 'weight' column if present), none, column, or label (inverse label frequency)."
        ),
    ] = Weights.auto,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", "-b", help="Crops per batch (default: the run's, else 64)."),
    ] = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.AUTO,
    bf16: Bf16Opt = False,
    compile_model: CompileOpt = False,
    runtime: RuntimeOpt = Runtime.TORCH,
    label_index: LabelIndexOpt = None,
    image_size: ImageSizeOpt = None,
    overwrite: Annotated[bool, overwrite_option("Recompute outputs instead of resuming.")] = False,
) -> None:
    """Evaluate a model on dataset splits: outputs_{split}.csv.gz, overall_metrics.csv, confusion_matrices.npz, label_stats.csv."""
    from ct_infer.evaluate import evaluate
    from ct_infer.mapping import read_target_mapping
    from ct_infer.training_run import resolve_evaluation
    from ct_io.tables import read_label_index

    inputs = resolve_evaluation(
        model,
        dataset_dir,
        crops_dir,
        run=run,
        dataset_csv=dataset_csv,
        splits_json=splits_json,
        label_index=label_index,
        image_size=image_size,
        batch_size=batch_size,
        workers=workers,
        output_dir=output_dir,
        splits=splits,
        target_mapping=target_mapping is not None,
    )
    if inputs.training is not None:
        console.print(
            f"from {inputs.training.source}: model {inputs.model}, "
            f"dataset {inputs.dataset_dir}, crops {inputs.crops_dir}",
            highlight=False,
        )
    mapping = read_target_mapping(target_mapping) if target_mapping else None
    settings = run_settings(
        inputs.batch_size, inputs.workers, device, precision, compile_model, bf16, runtime
    )
    predictor = load_predictor(inputs.model, inputs.label_index, inputs.image_size, settings)
    results = evaluate(
        predictor,
        inputs.dataset_csv,
        inputs.crops_dir,
        inputs.output_dir,
        settings,
        splits_json=inputs.splits_json,
        split_names=inputs.splits,
        target_mapping=mapping,
        target_labels=read_label_index(inputs.target_labels) if inputs.target_labels else None,
        weights=weights.value,
        overwrite=overwrite,
    )
    ran_on = f"ran on {predictor.device} with {predictor.runtime.runtime} in {predictor.precision.describe()}"
    _print_results(results, inputs.output_dir, ran_on)


def _print_results(results: dict[str, SplitScores], output_dir: Path, ran_on: str) -> None:
    """One row of overall metrics per split, and where the files are."""
    from rich.table import Table

    second = "mAP" if any("mAP" in r.overall for r in results.values()) else "acc_top3"
    table = Table(
        "split", "crops", "loss", "top-1", second.replace("acc_top", "top-"), "macro recall"
    )
    for split, r in results.items():
        o = r.overall
        table.add_row(
            split,
            f"{o['count']:.0f}",
            f"{o['loss']:.3f}",
            f"{o['acc_top1']:.3f}",
            f"{o[second]:.3f}",
            f"{o['macro_recall']:.3f}",
        )
    console.print(table)
    console.print(
        f"wrote {output_dir}/overall_metrics.csv, label_stats.csv, confusion_matrices.npz, "
        f"outputs_*.csv.gz ({ran_on})",
        highlight=False,
    )
