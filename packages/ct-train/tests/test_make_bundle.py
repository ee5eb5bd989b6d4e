"""A run trained with ``ct-train train`` → ``ct-train bundle`` → ``ct-infer evaluate --run``
(issue 15 item 10). A built-in backbone, so ct-infer can rebuild it from the bundle."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from conftest import write_config
from ct_io.errors import CamtrapError
from ct_train.engine import start


def test_a_trained_run_becomes_a_bundle_ct_infer_evaluates(dataset: Path, tmp_path: Path) -> None:
    from ct_infer.cli import app as infer_app
    from ct_train.cli import app as train_app

    cfg = write_config(
        tmp_path / "runs" / "tiny" / "base",
        dataset,
        {"model": {"backbone": "timm:test_efficientnet"}, "train": {"epochs": 1}},
    )
    run = cfg.parent
    start(cfg)
    before = CliRunner().invoke(infer_app, ["evaluate", "--run", str(run), "--split", "val"])
    assert isinstance(before.exception, CamtrapError)
    assert f"ct-train bundle {run}" in str(before.exception)  # says what to do

    made = CliRunner().invoke(train_app, ["bundle", str(run)])
    assert made.exit_code == 0, (made.output, made.exception)
    bundle = run / "model" / "base.safetensors"
    assert bundle.is_file() and str(bundle) in made.output.replace("\n", "")

    after = CliRunner().invoke(
        infer_app, ["evaluate", "--run", str(run), "--split", "val", "--workers", "0"]
    )
    assert after.exit_code == 0, (after.output, after.exception)
    assert (run / "evaluation" / "outputs_val.csv.gz").is_file()


def test_bundle_before_training_says_to_train(dataset: Path, tmp_path: Path) -> None:
    from ct_train.cli import app as train_app

    cfg = write_config(tmp_path / "run", dataset)
    res = CliRunner().invoke(train_app, ["bundle", str(cfg)])
    assert isinstance(res.exception, CamtrapError)
    assert "best.pt not found — train first (ct-train train" in str(res.exception)
