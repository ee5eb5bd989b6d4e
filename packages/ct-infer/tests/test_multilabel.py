"""Multi-label classifiers in ct-infer: a sigmoid per label, mAP and per-label P/R, and
merge keeping every label above the threshold and every true label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ct_infer.crops import crop_name
from ct_infer.merge import MergeOptions, merge_classifications
from ct_infer.multilabel import average_precision, labels_above, multi_hot, score_multilabel
from ct_io.errors import CamtrapError
from ct_io.md import md_to_dict, read_md, validate_md_dict

LABELS = ["antelope", "bird", "carnivore", "primate"]


def test_average_precision_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    truth = np.array([1, 0, 1, 0, 0], bool)
    assert average_precision(scores, truth) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert np.isnan(average_precision(scores, np.zeros(5, bool)))
    # ties count pessimistically: the negative ranks first
    assert average_precision(np.array([0.5, 0.5]), np.array([1, 0], bool)) == pytest.approx(0.5)


def test_score_multilabel() -> None:
    truth = multi_hot(["antelope,bird", "bird", "primate"], LABELS)
    probs = np.array([[0.9, 0.6, 0.1, 0.2], [0.2, 0.7, 0.1, 0.6], [0.1, 0.2, 0.3, 0.8]])
    s = score_multilabel(probs, truth, LABELS, threshold=0.5)
    stats = s.label_stats.set_index("label")
    assert stats.loc["bird", "recall"] == 1.0 and stats.loc["primate", "precision"] == 0.5
    assert s.overall["exact_match"] == pytest.approx(2 / 3)
    assert s.overall["acc_top1"] == 1.0
    assert s.overall["mAP"] == pytest.approx(np.nanmean(stats["ap"]))
    assert s.confusion.shape == (4, 2, 2) and s.confusion[3].tolist() == [[1, 1], [0, 1]]
    assert labels_above(probs[:1], LABELS, 0.5) == ["antelope,bird"]
    with pytest.raises(ValueError, match="wolf"):
        multi_hot(["wolf"], LABELS)


def test_a_multilabel_bundle_gives_a_sigmoid_per_label(tmp_path: Path, tiny_bundle_factory) -> None:  # type: ignore[no-untyped-def]
    import torch

    from ct_infer.predictor import Predictor, load_classifier

    single = Predictor(load_classifier(tiny_bundle_factory("single")), device="cpu")
    multi = Predictor(load_classifier(tiny_bundle_factory("multi", multilabel=True)), device="cpu")
    batch = torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)
    assert np.allclose(single.probabilities(batch).sum(1), 1.0, atol=1e-5)
    p = multi.probabilities(batch)
    assert multi.classifier.multilabel and not np.allclose(p.sum(1), 1.0)
    assert np.allclose(p, torch.sigmoid(multi.logits(batch)).numpy())


def _frame(md_json: Path) -> pd.DataFrame:
    doc = json.loads(md_json.read_text())
    paths = [
        crop_name(im["file"], k, "v5a")
        for im in doc["images"]
        for k, det in enumerate(im["detections"] or [])
        if det["conf"] >= 0.2
    ]
    probs = np.tile([0.9, 0.7, 0.05, 0.3], (len(paths), 1))  # independent sigmoids
    frame = pd.DataFrame(probs, columns=LABELS)
    frame.insert(0, "path", paths)
    frame.insert(1, "label", "antelope,bird")
    return frame


def test_merge_keeps_every_label_above_threshold_and_every_true_label(md_json: Path) -> None:
    frame = _frame(md_json)
    merged, report = merge_classifications(
        read_md(md_json), frame, LABELS, MergeOptions(threshold=0.25, label="last")
    )
    doc = md_to_dict(merged)
    assert validate_md_dict(doc) == []
    names = doc["classification_categories"]
    det = next(d for im in doc["images"] for d in im["detections"] or [] if "classifications" in d)
    assert [names[c[0]] for c in det["classifications"]] == [
        "antelope",
        "bird",
        "primate",
        "label: antelope",
        "label: bird",
    ]
    assert report.matched == len(frame)
    with pytest.raises(CamtrapError, match="several true labels"):
        merge_classifications(read_md(md_json), frame, LABELS, MergeOptions(relative_conf=True))


def _overconfident_sigmoids(t: float, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """(probs, 0/1 targets): targets drawn from sigmoid(z), probs = sigmoid(t · z)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, len(LABELS))) * 2
    targets = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(np.float32)
    return 1 / (1 + np.exp(-t * z)), targets


def test_sigmoid_temperature_fit_recovers_a_known_temperature() -> None:
    from ct_infer.calibration import apply_sigmoid_temperature, fit_sigmoid_temperature

    probs, targets = _overconfident_sigmoids(2.5)
    fit = fit_sigmoid_temperature(probs, targets)
    assert fit.temperature == pytest.approx(2.5, rel=0.1)
    assert fit.nll_after < fit.nll_before and fit.ece_after < fit.ece_before
    assert fit.count == len(probs)
    back = apply_sigmoid_temperature(probs, fit.temperature)
    assert np.abs(back - 1 / (1 + np.exp(-np.log(probs / (1 - probs)) / 2.5))).max() < 0.05
    with pytest.raises(ValueError, match="shape"):
        fit_sigmoid_temperature(probs, targets[:, :2])


def test_a_multilabel_bundle_applies_its_temperature_to_each_sigmoid(
    tiny_bundle_factory,  # type: ignore[no-untyped-def]
) -> None:
    import torch

    from ct_infer.predictor import Predictor, load_classifier

    bundle = tiny_bundle_factory("multi-cal", multilabel=True, temperature=2.0)
    calibrated = Predictor(load_classifier(bundle), device="cpu")
    raw = Predictor(load_classifier(bundle), device="cpu", calibrate=False)
    batch = torch.randint(0, 255, (3, 64, 64, 3), dtype=torch.uint8)
    logits = raw.logits(batch)
    assert np.allclose(
        calibrated.probabilities(batch), torch.sigmoid(logits / 2).numpy(), atol=1e-6
    )
    assert not np.allclose(raw.probabilities(batch), calibrated.probabilities(batch), atol=1e-3)


def test_calibrate_fits_one_sigmoid_temperature_for_a_multilabel_bundle(
    tiny_bundle_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from ct_infer.bundle import read_bundle_meta
    from ct_infer.cli import app

    probs, targets = _overconfident_sigmoids(2.5, n=600)
    frame = pd.DataFrame(probs, columns=LABELS)
    truth = [",".join(np.array(LABELS)[row > 0]) or LABELS[0] for row in targets]
    frame.insert(0, "path", [f"c{i}.jpg" for i in range(len(frame))])
    frame.insert(1, "label", truth)
    frame.to_csv(tmp_path / "outputs_val.csv.gz", index=False)
    bundle = tiny_bundle_factory("multi-uncal", multilabel=True)
    out = tmp_path / "cal.safetensors"
    args = ["calibrate", str(bundle), str(tmp_path / "outputs_val.csv.gz"), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    # the softmax fit of independent sigmoids lands elsewhere; the binary fit finds ~2.5
    assert read_bundle_meta(out).temperature == pytest.approx(2.5, rel=0.15)
