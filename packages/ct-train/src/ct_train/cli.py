"""``ct-train`` console script: train a classifier from a run folder's ``config.yml``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import console, make_app, run_cli
from ct_io.errors import CamtrapError

app = make_app(
    "ct-train: train camera-trap species classifiers (runs/<model>/<experiment>/config.yml)."
)


class Split(StrEnum):
    """The splits of ``splits.json``."""

    train = "train"
    val = "val"
    test = "test"


SET_HELP = "Override a config value: --set optim.lr=3e-5 --set train.epochs=2 (repeatable)."


@app.command()
def train(
    config: Annotated[
        Path,
        typer.Argument(help="runs/<model>/<experiment>/config.yml; the run writes next to it."),
    ],
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Continue from checkpoints/last.pt if present (default), or start over.",
        ),
    ] = True,
    multilabel: Annotated[
        bool,
        typer.Option(
            "--multilabel",
            help="Several labels per crop (label 'deer,fox'): sigmoid per label, mAP; the same "
            "as --set train.multilabel=true. Needs a multi-label loss (loss.name: bce).",
        ),
    ] = False,
) -> None:
    """Train (and validate each epoch); checkpoints, logs and final metrics land in the run folder.

    Runs under torchrun for several GPUs or machines:
    torchrun --nproc_per_node 4 -m ct_train train runs/b3/base/config.yml
    """
    from ct_train.config import load_config

    overrides = [*(set_ or []), *(["train.multilabel=true"] if multilabel else [])]
    cfg = load_config(config, overrides)  # a bad config fails here, before torch is imported
    from ct_train.distributed import is_main_process
    from ct_train.engine import fit

    result = fit(cfg, resume=resume)
    if not is_main_process():  # under torchrun every rank returns; one summary is enough
        return
    for split, metrics in result["splits"].items():
        second = (
            f"mAP {metrics['mAP']:.3f}"
            if "mAP" in metrics
            else f"top-3 {metrics.get('acc_top3', 0):.3f}"
        )
        console.print(
            f"[bold]{split}[/]: top-1 {metrics.get('acc_top1', 0):.3f}  {second}  "
            f"macro recall {metrics.get('recall_macro', 0):.3f}  ({int(metrics.get('count', 0))} crops)",
            highlight=False,
        )
    console.print(
        f"best epoch {result['best_epoch']}; weights in {Path(config).parent / 'checkpoints' / 'best.pt'}"
    )


@app.command()
def predict(
    config: Annotated[Path, typer.Option(help="The run's config.yml.")],
    checkpoint: Annotated[
        str,
        typer.Option(
            help="Checkpoint file (looked up as given, in the run folder, then in its checkpoints/)."
        ),
    ] = "best.pt",
    split: Annotated[Split, typer.Option(help="The split to predict.")] = Split.val,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Predict one split with a checkpoint: predictions/outputs_<split>.csv.gz and metrics_<split>.json."""
    from ct_train.config import load_config
    from ct_train.predict import predict as run_predict

    metrics = run_predict(load_config(config, set_ or []), checkpoint, split.value)
    console.print(
        f"[bold]{split}[/]: top-1 {metrics['acc_top1']:.3f}  top-3 {metrics['acc_top3']:.3f}  macro recall {metrics['recall_macro']:.3f}"
        f"  → {Path(config).parent / 'predictions' / f'outputs_{split}.csv.gz'}",
        highlight=False,
    )


class StageName(StrEnum):
    """The stages of ``ct-train run``, in order (``ct_train.pipeline.runner.STAGE_NAMES``)."""

    fetch = "fetch"
    select = "select"
    detect = "detect"
    crop = "crop"
    table = "table"
    split = "split"  # type: ignore[assignment]  # a stage name, shadowing str.split
    train = "train"
    bundle = "bundle"
    evaluate = "evaluate"
    export = "export"
    report = "report"


@app.command("bundle")
def bundle_cmd(
    config: Annotated[Path, typer.Argument(help="The run's config.yml, or its run folder.")],
    force: Annotated[
        bool, typer.Option("--force", help="Remake the bundle even when it is up to date.")
    ] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Turn the run's best checkpoint into a model bundle (model/<name>.safetensors) for ct-infer.

    The pipeline's bundle stage as a command, for runs trained with ct-train train:
    weights, labels, preprocessing, calibration on val. ct-infer evaluate --run finds it.
    """
    from ct_train.config import load_config
    from ct_train.make_bundle import config_path, make_bundle

    path, said = make_bundle(load_config(config_path(config), set_ or []), force=force)
    console.print(f"[green]wrote[/] {path}", highlight=False)
    if said:
        console.print(f"calibration: {said}", highlight=False)


@app.command("run")
def run_cmd(
    config: Annotated[
        Path,
        typer.Argument(
            help="runs/<model>/<experiment>/config.yml with sources, labels, ... sections."
        ),
    ],
    from_: Annotated[StageName | None, typer.Option("--from", help="Start at this stage.")] = None,
    to: Annotated[StageName | None, typer.Option(help="Stop after this stage.")] = None,
    force: Annotated[
        list[StageName] | None,
        typer.Option(help="Rerun this stage even when up to date (repeatable)."),
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Run the whole chain: sources → selection → detector → crops → table → splits → train → bundle → evaluate → exports → report.

    Each stage writes files in the run folder and is skipped when its inputs and config
    section are unchanged since it last finished; the first failing stage stops the run.
    """
    from ct_train.config import load_config
    from ct_train.pipeline.runner import check_range, run_pipeline

    start, stop = from_.value if from_ else None, to.value if to else None
    check_range(start, stop)
    cfg = load_config(config, set_ or [])
    result = run_pipeline(cfg, start=start, stop=stop, force=[s.value for s in force or []])
    console.print(result.table())
    if result.error is not None:
        raise CamtrapError(result.error)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Argument(help="Folder for the demo data, runs and report.")] = Path(
        "demo-run"
    ),
    skip_random: Annotated[
        bool,
        typer.Option(
            "--skip-random-split", help="Do not train the naive random-split model for comparison."
        ),
    ] = False,
) -> None:
    """Train, evaluate and export a classifier on the built-in synthetic dataset (offline, ~5 min on 2 CPU cores).

    Also trains the same model on a naive random split by image, to show how much a
    random split overstates accuracy compared with a split by location.
    """
    from ct_train.pipeline.demo import run_demo

    run_demo(out, compare_random=not skip_random)


@app.command("losses")
def list_losses_cmd() -> None:
    """List the losses plugins provide (config: loss.name, loss.options)."""
    from ct_train.losses import list_losses

    for reg in list_losses():
        console.print(
            f"[bold]{reg.name}[/]  {reg.description}  [dim]({reg.distribution})[/]", highlight=False
        )


def main() -> None:
    """Console-script entry point."""
    run_cli(app)
