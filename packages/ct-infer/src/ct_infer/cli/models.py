"""Model commands: list backbones, inspect, export and calibrate a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_infer.cli.options import ExportFormat, ModelArg
from ct_io.clitools import console


def backbones_cmd() -> None:
    """List the registered backbones (built-ins and plugins)."""
    from ct_infer.backbones import backbone_registry

    for reg in backbone_registry():
        console.print(
            f"[bold]{reg.name}[/]  {reg.description}  [dim]({reg.distribution})[/]", highlight=False
        )


def info_cmd(model: ModelArg) -> None:
    """Show what a bundle or export holds: backbone, labels, preprocessing, calibration."""
    import json

    from ct_infer.predictor import load_classifier

    loaded = load_classifier(model)
    meta = loaded.meta.to_json() if loaded.meta else {"labels": loaded.labels}
    console.print_json(json.dumps({"kind": loaded.kind, **meta}))


def export_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle (.safetensors) to export.")],
    output: Annotated[
        Path, typer.Argument(help="Output file (.pt for TorchScript, .onnx for ONNX).")
    ],
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="What to write (default: from OUTPUT's suffix)."),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Compare the export's outputs with the bundle's.")
    ] = True,
) -> None:
    """Export a bundle as a self-contained TorchScript or ONNX model (runs without camtrap)."""
    from ct_infer.bundle import load_bundle
    from ct_infer.export import export_bundle, max_abs_difference
    from ct_io.errors import CamtrapError

    kind = fmt.value if fmt else "onnx" if output.suffix.lower() == ".onnx" else "torchscript"
    loaded = load_bundle(bundle)
    export_bundle(loaded, output, kind)  # type: ignore[arg-type]
    console.print(f"wrote {kind} model {output}")
    if check:
        diff = max_abs_difference(loaded, output)
        if diff > 1e-3:
            raise CamtrapError(f"{output}: export differs from the bundle by {diff:.3g} in logits")
        console.print(f"checked: largest logit difference {diff:.2g}")


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
    """Fit temperature scaling on validation outputs and store it in the bundle (a
    multi-label bundle: one temperature for every label's sigmoid, by binary NLL)."""
    from ct_infer.bundle import load_bundle, save_tensors
    from ct_infer.calibration import fit_sigmoid_temperature, fit_temperature
    from ct_infer.evaluate import read_outputs
    from ct_infer.metrics import label_indices
    from ct_infer.multilabel import multi_hot
    from ct_io.errors import CamtrapError

    loaded = load_bundle(bundle)
    frame, labels = read_outputs(val_outputs)
    if labels != loaded.meta.labels:
        raise CamtrapError(
            f"{val_outputs}: label columns differ from the bundle's labels — outputs of another model?"
        )
    probs = frame[labels].to_numpy()
    if loaded.meta.multilabel:  # one temperature for every label's sigmoid
        fit = fit_sigmoid_temperature(probs, multi_hot(frame["label"].tolist(), labels))
    else:
        fit = fit_temperature(probs, label_indices(frame["label"].tolist(), labels))
    # the outputs were made at the bundle's old temperature
    temperature = loaded.meta.temperature * fit.temperature
    save_tensors(output, loaded.state_dict, loaded.with_meta(temperature=temperature).meta)
    console.print(
        f"temperature {temperature:.3f} on {fit.count} crops: NLL {fit.nll_before:.4f} → {fit.nll_after:.4f}, "
        f"ECE {fit.ece_before:.4f} → {fit.ece_after:.4f}; wrote {output}",
        highlight=False,
    )
