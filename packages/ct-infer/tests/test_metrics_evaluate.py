from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.metrics import calibration_curve, per_label_stats, score, top_confusions

LABELS = ["a", "b", "c"]


def test_score_by_hand() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    targets = np.array([0, 1, 1, 2])
    s = score(probs, targets, LABELS)
    assert s.overall["acc_top1"] == pytest.approx(0.5)  # rows 0 and 3
    assert s.overall["acc_top3"] == 1.0
    assert s.overall["loss"] == pytest.approx(-np.log([0.7, 0.3, 0.4, 0.6]).mean())
    assert s.confusion.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]
    stats = s.label_stats.set_index("label")
    assert stats.loc["a", "precision"] == 0.5 and stats.loc["a", "recall"] == 1.0
    assert stats.loc["b", "recall"] == 0.0 and stats.loc["b", "support"] == 2
    assert s.overall["macro_recall"] == pytest.approx((1 + 0 + 1) / 3)
    weighted = score(probs, targets, LABELS, np.array([1.0, 0.0, 0.0, 3.0]))
    assert weighted.overall["acc_weighted_top1"] == 1.0 and weighted.overall["acc_top1"] == 0.5
    assert weighted.overall["loss_weighted"] == pytest.approx((-np.log(0.7) - 3 * np.log(0.6)) / 4)


def test_top_confusions_and_calibration() -> None:
    confusion = np.array([[5, 3, 0], [1, 4, 0], [0, 0, 2]])
    top = top_confusions(confusion, LABELS, 5)
    assert top.iloc[0].to_dict() == {"true": "a", "predicted": "b", "count": 3, "share": 3 / 8}
    assert len(top) == 2
    table = calibration_curve(np.array([0.05, 0.95, 0.91, 0.55]), np.array([0, 1, 0, 1]), bins=10)
    assert table["count"].sum() == 4 and table.iloc[-1]["accuracy"] == 0.5
    assert per_label_stats(np.zeros((2, 2), int), ["x", "y"])["precision"].tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def dataset_dir(crop_paths: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """classification_ds.csv + splits.json over the real crops; labels by source dataset."""
    folder = tmp_path_factory.mktemp("ds")
    rows = []
    for p in crop_paths:
        label = (
            "primate"
            if "enonkishu" in p
            else "antelope"
            if p.startswith("snapshot")
            else "carnivore"
            if "idaho" in p or "wcs" in p
            else "bird"
        )
        dataset = p.split("_")[0]
        rows.append(
            {
                "path": p,
                "dataset": dataset,
                "location": p.split("_")[1],
                "dataset_class": label,
                "confidence": 0.9,
                "label": label,
            }
        )
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "classification_ds.csv", index=False)
    locs = sorted({(r["dataset"], r["location"]) for r in rows})
    splits = {
        "train": [list(x) for x in locs[::3]],
        "val": [list(x) for x in locs[1::3]],
        "test": [list(x) for x in locs[2::3]],
    }
    (folder / "splits.json").write_text(json.dumps(splits))
    (folder / "label_index.json").write_text(
        json.dumps(dict(enumerate(["antelope", "bird", "carnivore", "primate"])))
    )
    return folder


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)


def test_evaluate_writes_the_four_outputs(
    tiny_bundle: Path, dataset_dir: Path, crops_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    _run(
        [
            "evaluate",
            str(tiny_bundle),
            str(dataset_dir),
            str(crops_dir),
            "-o",
            str(out),
            "--workers",
            "0",
        ]
    )
    overall = pd.read_csv(out / "overall_metrics.csv")
    assert set(overall["split"]) == {"train", "val", "test"}
    assert {
        "loss",
        "acc_top1",
        "acc_top3",
        "loss_weighted",
        "acc_weighted_top1",
        "macro_recall",
    } <= set(overall.columns)
    total = 0
    matrices = np.load(out / "confusion_matrices.npz")
    for split in ("train", "val", "test"):
        outputs = pd.read_csv(out / f"outputs_{split}.csv.gz")
        total += len(outputs)
        assert (
            list(outputs.columns[:3]) == ["path", "label", "weight"]
            and (outputs["weight"] == 1.0).all()
        )
        probs = outputs[["antelope", "bird", "carnivore", "primate"]].to_numpy()
        top1 = (
            np.array(["antelope", "bird", "carnivore", "primate"])[probs.argmax(1)]
            == outputs["label"]
        ).mean()
        row = overall.set_index("split").loc[split]
        assert row["acc_top1"] == pytest.approx(top1)
        assert matrices[split].sum() == len(outputs)
    assert total == 24
    stats = pd.read_csv(out / "label_stats.csv")
    assert list(stats.columns) == ["split", "label", "precision", "recall", "f1", "support"]


def test_evaluate_with_weights_and_target_mapping(
    tiny_bundle: Path, dataset_dir: Path, crops_dir: Path, tmp_path: Path
) -> None:
    ds = pd.read_csv(dataset_dir / "classification_ds.csv")
    ds["weight"] = np.where(ds["label"] == "antelope", 0.5, 2.0)
    ds["label"] = np.where(ds["label"].isin(["antelope", "primate"]), "mammal_prey", "other")
    ds.to_csv(tmp_path / "ds.csv", index=False)
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"mammal_prey": ["antelope", "primate"], "other": ["bird", "carnivore"]})
    )
    out = tmp_path / "eval"
    _run(
        [
            "evaluate",
            str(tiny_bundle),
            str(tmp_path),
            str(crops_dir),
            "-o",
            str(out),
            "--workers",
            "0",
            "--dataset-csv",
            str(tmp_path / "ds.csv"),
            "--splits-json",
            str(dataset_dir / "splits.json"),
            "--target-mapping",
            str(mapping),
            "--split",
            "train",
            "--split",
            "test",
        ]
    )
    outputs = pd.read_csv(out / "outputs_train.csv.gz")
    assert list(outputs.columns) == ["path", "label", "weight", "mammal_prey", "other"]
    np.testing.assert_allclose(outputs[["mammal_prey", "other"]].sum(axis=1), 1.0, atol=1e-4)
    assert set(outputs["weight"]) <= {0.5, 2.0}
    assert set(pd.read_csv(out / "overall_metrics.csv")["split"]) == {"train", "test"}


def test_unknown_labels_point_to_target_mapping(
    tiny_bundle: Path, dataset_dir: Path, crops_dir: Path, tmp_path: Path
) -> None:
    from ct_io.errors import CamtrapError

    ds = pd.read_csv(dataset_dir / "classification_ds.csv").assign(label="zebra")
    ds.to_csv(tmp_path / "classification_ds.csv", index=False)
    result = CliRunner().invoke(
        app,
        ["evaluate", str(tiny_bundle), str(tmp_path), str(crops_dir), "-o", str(tmp_path / "e")],
    )
    assert isinstance(result.exception, CamtrapError) and "--target-mapping" in str(
        result.exception
    )


def test_sample_weight_modes() -> None:
    from ct_infer.evaluate import row_weights
    from ct_io.errors import CamtrapError

    frame = pd.DataFrame({"label": ["a", "a", "a", "b"], "weight": ["1", "2", "0.5", "1"]})
    assert row_weights(frame, "auto").tolist() == [1.0, 2.0, 0.5, 1.0]
    assert row_weights(frame.drop(columns="weight"), "auto").tolist() == [1.0] * 4
    balanced = row_weights(frame, "label")  # each label weighs the same in total
    assert balanced[:3].sum() == pytest.approx(balanced[3]) and balanced.sum() == pytest.approx(4)
    with pytest.raises(CamtrapError, match="no 'weight' column"):
        row_weights(frame.drop(columns="weight"), "column")
    with pytest.raises(CamtrapError, match="non-negative"):
        row_weights(frame.assign(weight=["x", "1", "1", "1"]), "column")
