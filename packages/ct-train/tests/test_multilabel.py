"""Multi-label training (the seed's "label: comma-separated list"): sigmoid per label,
BCE-family losses, mAP and per-label P/R, rarest-label sampling, bundle → ct-infer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import COLOURS, write_config
from ct_io.errors import CamtrapError, PluginError
from ct_io.tables import Splits, write_classification_ds, write_label_index, write_splits
from ct_train.config import load_config
from ct_train.engine import start
from ct_train.losses import BinaryCrossEntropy, SigmoidFocalLoss, build_loss
from ct_train.sampling import sampling_weights
from ct_train.tables import load_tables

LABELS = ("bear", "deer", "fox")
SETS = ("bear", "deer", "fox", "bear,fox", "deer,fox")


def make_multilabel_dataset(root: Path, per_set: int = 4, size: int = 40, seed: int = 0) -> Path:
    """Crops painted in the colours of their labels (a band per label) at 6 locations."""
    rng = np.random.default_rng(seed)
    rows = []
    for loc in range(6):
        for labels in SETS:
            names = labels.split(",")
            for i in range(per_set):
                rel = f"loc{loc}/{labels.replace(',', '+')}_{i}.jpg"
                pixels = np.zeros((size, size, 3))
                band = size // len(names)
                for j, name in enumerate(names):
                    pixels[:, j * band : (j + 1) * band] = COLOURS[name]
                pixels = np.clip(pixels + rng.integers(-25, 25, pixels.shape), 0, 255)
                path = root / "crops" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
                rows.append(
                    {
                        "path": rel,
                        "dataset": "demo",
                        "location": f"loc{loc}",
                        "dataset_class": labels,
                        "confidence": 1.0,
                        "label": labels,
                    }
                )
    write_classification_ds(pd.DataFrame(rows), root / "classification_ds.csv")
    write_label_index(list(LABELS), root / "label_index.json")
    loc = lambda i: ("demo", f"loc{i}")  # noqa: E731
    write_splits(
        Splits(train=[loc(i) for i in range(4)], val=[loc(4)], test=[loc(5)]), root / "splits.json"
    )
    return root


@pytest.fixture(scope="module")
def ml_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_multilabel_dataset(tmp_path_factory.mktemp("ml"))


ML = {"train": {"multilabel": True, "epochs": 4}, "loss": {"name": "bce"}}


def test_a_row_with_several_labels_needs_the_multilabel_setting(
    ml_dataset: Path, tmp_path: Path
) -> None:
    cfg = load_config(write_config(tmp_path / "run", ml_dataset))
    with pytest.raises(
        CamtrapError, match=r"train.multilabel: true \(ct-train train --multilabel\)"
    ):
        load_tables(cfg.data)
    tables = load_tables(cfg.data, multilabel=True)
    assert tables.class_counts("train") == [8 * 4, 8 * 4, 12 * 4]  # crops carrying each label


def test_rows_are_weighted_by_their_rarest_label() -> None:
    # label 0 on 8 rows, label 1 on 2 rows (both also carry label 0), label 2 on 2 rows
    targets = np.array([[1, 0, 0]] * 6 + [[1, 1, 0]] * 2 + [[0, 0, 1]] * 2, np.float32)
    probs = sampling_weights(targets, np.ones(10), 3, "label_weighted")
    assert probs is not None and probs.sum() == pytest.approx(1.0)
    assert probs[6] == probs[8] > probs[0]  # rows with a rare label drawn more often
    draws = {j: float((probs * targets[:, j]).sum()) for j in range(3)}
    assert draws[1] == pytest.approx(draws[2])  # the two rare labels equally often
    assert draws[0] >= draws[1]


def test_multilabel_losses_give_one_value_per_example() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.0, 3.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    bce = BinaryCrossEntropy()(logits, targets)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, reduction="none"
    ).mean(1)
    assert torch.allclose(bce, expected) and bce.shape == (2,)
    assert SigmoidFocalLoss()(logits, targets).shape == (2,)
    balanced = build_loss("class_balanced", {"base": "bce"}, 3, [100, 10, 1])
    assert balanced.multilabel and balanced(logits, targets).shape == (2,)  # type: ignore[operator]
    assert not getattr(build_loss("cross_entropy", {}, 3, [1, 1, 1]), "multilabel", False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train": {"multilabel": True}}, "single-label loss .* use bce, sigmoid_focal"),
        ({"loss": {"name": "bce"}}, "multi-label loss .* set train.multilabel: true"),
    ],
)
def test_a_loss_of_the_other_kind_stops_before_the_first_epoch(
    ml_dataset: Path, dataset: Path, tmp_path: Path, pm: Any, override: dict[str, Any], message: str
) -> None:
    data = ml_dataset if override.get("train") else dataset
    cfg = write_config(tmp_path / "run", data, override)
    with pytest.raises(PluginError, match=message):
        start(cfg, pm=pm)
    assert not (cfg.parent / "checkpoints" / "last.pt").exists()


def test_multilabel_training_to_bundle_to_ct_infer(ml_dataset: Path, tmp_path: Path) -> None:
    """Train with the built-in timm backbone, then bundle and evaluate with ct-infer."""
    from ct_infer.bundle import load_bundle
    from ct_infer.cli import app as infer_app
    from ct_train.cli import app as train_app
    from ct_train.predict import predict

    cfg_path = write_config(
        tmp_path / "runs" / "ml",
        ml_dataset,
        {**ML, "model": {"backbone": "timm:test_efficientnet"}},
    )
    result = start(cfg_path)
    test = result["splits"]["test"]
    assert {"mAP", "recall_macro", "precision_macro", "label_ap/fox"} <= set(test)
    assert 0.0 <= test["mAP"] <= 1.0
    run = cfg_path.parent
    metrics = predict(load_config(cfg_path), "best.pt", "test")
    outputs = pd.read_csv(run / "predictions" / "outputs_test.csv.gz")
    assert set(outputs["label"]) == set(SETS)
    sums = outputs[list(LABELS)].sum(axis=1)
    assert not np.allclose(sums, 1.0)  # a sigmoid per label, not a softmax
    assert metrics["mAP"] == pytest.approx(test["mAP"], abs=1e-6)

    made = CliRunner().invoke(train_app, ["bundle", str(run)])
    assert made.exit_code == 0, (made.output, made.exception)
    meta = load_bundle(run / "model" / "ml.safetensors").meta
    assert meta.multilabel
    # calibrated on val with one sigmoid temperature (or left at 1, and the command said why)
    cal = meta.extra.get("calibration")
    if cal is not None:
        assert cal["method"].startswith("sigmoid") and meta.temperature == cal["temperature"]
        assert f"temperature {round(cal['temperature'], 3)}" in made.output
    else:
        assert meta.temperature == 1.0
        said = " ".join(made.output.split())
        assert "no mistake to calibrate on" in said or "ran to its bound" in said, said

    res = CliRunner().invoke(
        infer_app, ["evaluate", "--run", str(run), "--split", "test", "--workers", "0"]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    overall = pd.read_csv(run / "evaluation" / "overall_metrics.csv")
    assert overall["mAP"].iloc[0] == pytest.approx(test["mAP"], abs=0.05)
    stats = pd.read_csv(run / "evaluation" / "label_stats.csv")
    assert list(stats.columns) == ["split", "label", "precision", "recall", "f1", "support", "ap"]
    assert (
        json.loads((run / "final_metrics.json").read_text())["splits"]["test"]["mAP"] == test["mAP"]
    )

    page = CliRunner().invoke(
        infer_app, ["report", str(run / "evaluation"), "-o", str(run / "report")]
    )
    assert page.exit_code == 0, (page.output, page.exception)
    html = (run / "report" / "report.html").read_text()
    assert "Multi-label" in html and "average precision per label" in html
    assert "<th>mAP</th>" in html


def _val_context(tmp_path: Path, probs: np.ndarray, targets: np.ndarray) -> Any:
    """A bundle-stage context whose run folder holds these val outputs."""
    from ct_train.engine import save_outputs
    from ct_train.pipeline.stages import Context, RunPaths

    cfg = load_config(write_config(tmp_path / "run", tmp_path / "data", ML))
    ctx = Context(cfg, RunPaths.of(cfg))
    result = type("R", (), {"probs": probs, "targets": targets})()
    save_outputs(ctx.paths.val_outputs, result)  # type: ignore[arg-type]
    return ctx


def test_multilabel_bundle_calibration_fits_one_sigmoid_temperature(tmp_path: Path) -> None:
    from ct_train.pipeline.model_stages import fit_calibration

    rng = np.random.default_rng(0)
    z = rng.normal(size=(800, 3)) * 2
    targets = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(np.float32)
    probs = 1 / (1 + np.exp(-2.5 * z))  # logits 2.5× too large
    fit, why = fit_calibration(
        _val_context(tmp_path, probs, targets), list(LABELS), multilabel=True
    )
    assert fit is not None and why == ""
    assert fit.temperature == pytest.approx(2.5, rel=0.15)
    assert fit.nll_after < fit.nll_before and fit.count == 800


def test_multilabel_val_without_mistakes_leaves_temperature_at_1(tmp_path: Path) -> None:
    """Every (crop, label) on the right side of 0.5: no temperature to fit."""
    from ct_train.pipeline.model_stages import fit_calibration

    targets = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1]], np.float32)
    probs = np.where(targets > 0, 0.8, 0.3)
    ctx = _val_context(tmp_path, probs, targets)
    fit, why = fit_calibration(ctx, list(LABELS), multilabel=True)
    assert fit is None and "no mistake to calibrate on: temperature left at 1" in why
    # one label wrong on one crop: now there is a temperature to fit (here below 1: the
    # other cells are under-confident)
    probs[0, 1] = 0.6
    ctx = _val_context(tmp_path / "b", probs, targets)
    fit, why = fit_calibration(ctx, list(LABELS), multilabel=True)
    assert fit is not None and why == "" and 0.05 < fit.temperature < 1


def test_multilabel_val_outputs_of_the_wrong_shape_say_to_retrain(tmp_path: Path) -> None:
    from ct_train.pipeline.model_stages import fit_calibration

    ctx = _val_context(tmp_path, np.full((4, 3), 0.5), np.array([0, 1, 2, 0]))  # softmax targets
    with pytest.raises(CamtrapError, match=r"rerun the train stage \(--force train\)"):
        fit_calibration(ctx, list(LABELS), multilabel=True)
