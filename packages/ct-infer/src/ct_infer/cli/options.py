"""Arguments and options that several ``ct-infer`` commands share, declared once.

Each alias carries the flag names and help text; commands set the default, e.g.
``device: DeviceOpt = "auto"``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ct_infer.precision import Precision
from ct_infer.runtime import Runtime
from ct_io.clitools import workers_option


class Weights(StrEnum):
    """Sample weights of ``evaluate`` (``ct_infer.evaluate.WeightMode``)."""

    auto = "auto"
    none = "none"
    column = "column"
    label = "label"


class TrueLabelAt(StrEnum):
    """Where ``merge --label`` puts the true label (``ct_infer.merge.MergeOptions.label``)."""

    first = "first"
    last = "last"


class ExportFormat(StrEnum):
    """What ``export`` writes (``ct_infer.export.ExportFormat``)."""

    torchscript = "torchscript"
    onnx = "onnx"


ModelArg = Annotated[
    Path,
    typer.Argument(help="Model: a bundle (.safetensors), or a TorchScript (.pt) / ONNX export."),
]

# how crops are decoded and run through the network (classify, evaluate, run)
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size", "-b", help="Crops per batch (default: 32 on CPU, 128 on CUDA, 64 on MPS)."
    ),
]
WorkersOpt = Annotated[
    int | None, workers_option("Decoding processes (default: CPU count, at most 8; 0 = none).")
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
]
PrecisionOpt = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="auto: bf16 on CPUs with native bf16 (AVX-512 bf16, AMX) and CUDA GPUs that have "
        "it, fp16 on other CUDA GPUs, fp32 otherwise (emulated bf16 is several times slower).",
        case_sensitive=False,
    ),
]
Bf16Opt = Annotated[
    bool, typer.Option("--bf16", hidden=True, help="Deprecated: use --precision bf16.")
]
RuntimeOpt = Annotated[
    Runtime,
    typer.Option(
        "--runtime",
        help="What runs a bundle: torch, onnxruntime (CPU, fp32; exported to ONNX once and "
        "cached by content; needs ct-infer[onnx]), or auto (onnxruntime on a CPU in fp32 when "
        "installed, torch otherwise).",
        case_sensitive=False,
    ),
]
CompileOpt = Annotated[
    bool,
    typer.Option("--compile", help="torch.compile the network (slow start, faster on long runs)."),
]

# a foreign model (TorchScript/ONNX) carries no metadata (classify, evaluate)
LabelIndexOpt = Annotated[
    Path | None,
    typer.Option("--label-index", help="label_index.json, for a foreign model without metadata."),
]
ImageSizeOpt = Annotated[
    int | None,
    typer.Option("--image-size", help="Input size, for a foreign model without metadata."),
]

# what goes into the merged MegaDetector JSON (merge, run)
TopKOpt = Annotated[
    int | None, typer.Option("--top-k", help="Keep at most this many classes per detection.")
]
SmoothingOpt = Annotated[
    float, typer.Option("--smoothing", help="Sequence smoothing strength 0..1.")
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

# ground-truth boxes (merge, mislabeled)
ImagesDirOpt = Annotated[
    Path | None,
    typer.Option("--images-dir", help="With --cct lacking width/height: read image sizes here."),
]


def overwrite_option(help: str) -> typer.models.OptionInfo:
    """``--overwrite``, with what starting over means for the command."""
    return typer.Option("--overwrite", help=help)


def threshold_option(help: str) -> typer.models.OptionInfo:
    """``--threshold``: the lowest class confidence written to the JSON."""
    return typer.Option("--threshold", help=help)
