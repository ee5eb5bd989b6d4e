from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from conftest import write_config
from ct_train.cli import app

RUNNER = str(Path(__file__).parent / "run_training.py")


def test_predict_writes_outputs_per_label(dataset: Path, tmp_path: Path, pm, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ct_train.engine import start

    cfg = write_config(tmp_path / "run", dataset, {"train": {"epochs": 1}})
    start(cfg, pm=pm)
    monkeypatch.setattr("ct_io.plugins.get_plugin_manager", lambda: pm)
    result = CliRunner().invoke(
        app, ["predict", "--config", str(cfg), "--checkpoint", "best.pt", "--split", "test"]
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(cfg.parent / "predictions" / "outputs_test.csv.gz")
    assert list(out.columns) == ["path", "label", "weight", "bear", "deer", "fox"]
    assert len(out) == 18 and (out[["bear", "deer", "fox"]].sum(axis=1).round(4) == 1).all()
    assert "top-1" in result.output


def test_run_offers_the_pipeline_stages_in_order() -> None:
    from ct_train.cli import StageName
    from ct_train.pipeline.runner import STAGE_NAMES

    assert [s.value for s in StageName] == list(STAGE_NAMES)
    result = CliRunner().invoke(app, ["run", "config.yml", "--from", "crops"])
    assert result.exit_code == 2 and "crops" in result.output


def test_bad_config_prints_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("optim:\n  lrr: 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "ct_train", "train", str(tmp_path / "config.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "lrr" in done.stderr and "Traceback" not in done.stderr


def test_train_help_lists_resume_flags() -> None:
    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--no-resume" in result.output and "--set" in result.output
