from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ct_infer.backbones import model_from_bundle
from ct_infer.bundle import load_bundle, save_tensors
from ct_infer.classify import RunSettings, classify_crops
from ct_infer.cli import app
from ct_infer.export import export_bundle, max_abs_difference
from ct_infer.predictor import Predictor, load_classifier


@pytest.fixture(scope="module")
def calibrated_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    b = load_bundle(tiny_bundle).with_meta(temperature=1.7)
    return save_tensors(tmp_path_factory.mktemp("cal") / "cal.safetensors", b.state_dict, b.meta)


@pytest.mark.parametrize("fmt,suffix", [("torchscript", ".pt"), ("onnx", ".onnx")])
def test_export_matches_bundle_on_real_crops(
    fmt: str,
    suffix: str,
    calibrated_bundle: Path,
    crops_dir: Path,
    crop_paths: list[str],
    tmp_path: Path,
) -> None:
    bundle = load_bundle(calibrated_bundle)
    out = export_bundle(bundle, tmp_path / f"model{suffix}", fmt)  # type: ignore[arg-type]
    assert max_abs_difference(bundle, out) < 1e-4
    settings = RunSettings(batch_size=8, workers=0, device="cpu")
    ref = classify_crops(
        Predictor(load_classifier(calibrated_bundle)),
        crops_dir,
        crop_paths,
        tmp_path / "a.csv",
        settings,
        progress=False,
    )
    exported = load_classifier(out)
    assert exported.labels == bundle.meta.labels and exported.calibrated_inside
    classify_crops(
        Predictor(exported), crops_dir, crop_paths, tmp_path / "b.csv", settings, progress=False
    )
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert ref.classified == len(crop_paths) == len(b)
    assert (a["path"] == b["path"]).all()
    np.testing.assert_allclose(
        a[bundle.meta.labels].to_numpy(), b[bundle.meta.labels].to_numpy(), atol=1e-4
    )


def test_torchscript_runs_without_camtrap(calibrated_bundle: Path, tmp_path: Path) -> None:
    """The seed's run_classifier.py way: torch.jit.load + softmax, nothing of ours imported."""
    import subprocess
    import sys

    out = export_bundle(load_bundle(calibrated_bundle), tmp_path / "m.pt", "torchscript")
    code = f"import torch; m = torch.jit.load({str(out)!r}); print(tuple(m(torch.zeros(1, 3, 64, 64)).softmax(1).shape))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "(1, 4)"


def test_foreign_torchscript_needs_labels_and_size(tiny_bundle: Path, tmp_path: Path) -> None:
    from ct_io.errors import CamtrapError

    model = model_from_bundle(load_bundle(tiny_bundle))
    plain = tmp_path / "foreign.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 64, 64)), str(plain))
    with pytest.raises(CamtrapError, match="--label-index and --image-size"):
        load_classifier(plain)
    loaded = load_classifier(plain, labels=["a", "b", "c", "d"], input_size=64)
    assert loaded.preprocessing.input_size == 64 and not loaded.calibrated_inside


def test_cli_export_checks_numerically(tiny_bundle: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(tiny_bundle), str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "largest logit difference" in result.output
