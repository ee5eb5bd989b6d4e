"""``ct-infer`` console script: the typer app and its commands, one module per job.

Heavy libraries (torch, timm, matplotlib) are imported inside the commands, so ``--help``
stays fast and never imports torch.
"""

from __future__ import annotations

from ct_infer.cli.classify import classify_cmd
from ct_infer.cli.evaluate import evaluate_cmd
from ct_infer.cli.merge import merge_cmd
from ct_infer.cli.models import backbones_cmd, calibrate_cmd, export_cmd, info_cmd
from ct_infer.cli.report import report_cmd
from ct_infer.cli.review import mislabeled_cmd, save_mislabeled_cmd
from ct_infer.cli.review_page import review_cmd
from ct_infer.cli.run import run_cmd
from ct_io.clitools import make_app, run_cli

app = make_app(
    "ct-infer: run camera-trap classifiers — bundles, classification, evaluation, "
    "merging into MegaDetector JSON for Timelapse, mislabel review (in Timelapse or on a "
    "local web page), reports."
)


# in the order `ct-infer --help` lists them
app.command("backbones")(backbones_cmd)
app.command("info")(info_cmd)
app.command("export")(export_cmd)
app.command("classify")(classify_cmd)
app.command("evaluate")(evaluate_cmd)
app.command("merge")(merge_cmd)
app.command("run")(run_cmd)
app.command("calibrate")(calibrate_cmd)
app.command("mislabeled")(mislabeled_cmd)
app.command("save-mislabeled")(save_mislabeled_cmd)
app.command("review")(review_cmd)
app.command("report")(report_cmd)


def main() -> None:
    """Console-script entry point."""
    run_cli(app)


__all__ = ["app", "main"]
