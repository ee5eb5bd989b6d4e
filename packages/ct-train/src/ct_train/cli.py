"""``ct-train`` console script: train a classifier from a run folder's ``config.yml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ct_io.clitools import console, run_cli, setup_logging
from ct_io.errors import CamtrapError

app = typer.Typer(
    help="ct-train: train camera-trap species classifiers (runs/<model>/<experiment>/config.yml).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

SET_HELP = "Override a config value: --set optim.lr=3e-5 --set train.epochs=2 (repeatable)."


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    setup_logging(verbose)


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
) -> None:
    """Train (and validate each epoch); checkpoints, logs and final metrics land in the run folder.

    Runs under torchrun for several GPUs or machines:
    torchrun --nproc_per_node 4 -m ct_train train runs/b3/base/config.yml
    """
    from ct_train.config import load_config

    cfg = load_config(config, set_ or [])  # a bad config fails here, before torch is imported
    from ct_train.engine import fit

    result = fit(cfg, resume=resume)
    for split, metrics in result["splits"].items():
        console.print(
            f"[bold]{split}[/]: top-1 {metrics.get('acc_top1', 0):.3f}  top-3 {metrics.get('acc_top3', 0):.3f}  "
            f"macro recall {metrics.get('recall_macro', 0):.3f}  ({int(metrics.get('count', 0))} crops)",
            highlight=False,
        )
    console.print(
        f"best epoch {result['best_epoch']}; weights in {Path(config).parent / 'checkpoints' / 'best.pt'}"
    )


@app.command()
def predict(
    config: Annotated[Path, typer.Option("--config", help="The run's config.yml.")],
    checkpoint: Annotated[
        str,
        typer.Option(
            "--checkpoint",
            help="Checkpoint file (looked up as given, in the run folder, then in its checkpoints/).",
        ),
    ] = "best.pt",
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "val",
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Predict one split with a checkpoint: predictions/outputs_<split>.csv.gz and metrics_<split>.json."""
    from ct_train.config import load_config
    from ct_train.predict import predict as run_predict

    metrics = run_predict(load_config(config, set_ or []), checkpoint, split)
    console.print(
        f"[bold]{split}[/]: top-1 {metrics['acc_top1']:.3f}  top-3 {metrics['acc_top3']:.3f}  macro recall {metrics['recall_macro']:.3f}"
        f"  → {Path(config).parent / 'predictions' / f'outputs_{split}.csv.gz'}",
        highlight=False,
    )


STAGES_HELP = "fetch, select, detect, crop, table, split, train, bundle, evaluate, export, report"


@app.command("run")
def run_cmd(
    config: Annotated[
        Path,
        typer.Argument(
            help="runs/<model>/<experiment>/config.yml with sources, labels, ... sections."
        ),
    ],
    from_: Annotated[
        str | None, typer.Option("--from", help=f"Start at this stage ({STAGES_HELP}).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Stop after this stage.")] = None,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="Rerun this stage even when up to date (repeatable)."),
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Run the whole chain: sources → selection → detector → crops → table → splits → train → bundle → evaluate → exports → report.

    Each stage writes files in the run folder and is skipped when its inputs and config
    section are unchanged since it last finished; the first failing stage stops the run.
    """
    from ct_train.config import load_config
    from ct_train.pipeline.runner import check_range, run_pipeline

    check_range(from_, to)
    cfg = load_config(config, set_ or [])
    result = run_pipeline(cfg, start=from_, stop=to, force=force or [])
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
