"""Calibration and mislabel review, on an evaluation of real crops (the report and the
review page have test_report.py and test_review_page.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.bundle import read_bundle_meta
from ct_infer.calibration import apply_temperature, fit_temperature
from ct_infer.cli import app
from ct_infer.mislabeled import find_candidates, write_candidate_lists

LABELS = ["antelope", "bird", "carnivore", "primate"]


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture(scope="module")
def eval_dir(
    tiny_bundle: Path,
    crops_dir: Path,
    crop_paths: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    base = tmp_path_factory.mktemp("review")
    rows = [
        {
            "path": p,
            "dataset": "md",
            "location": p.split("_")[1],
            "dataset_class": "x",
            "confidence": 1.0,
            "label": LABELS[i % 4],
        }
        for i, p in enumerate(crop_paths)
    ]
    pd.DataFrame(rows).to_csv(base / "classification_ds.csv", index=False)
    locs = sorted({("md", r["location"]) for r in rows})
    (base / "splits.json").write_text(
        json.dumps(
            {
                "train": [list(x) for x in locs[::2]],
                "val": [list(x) for x in locs[1::2]],
                "test": [],
            }
        )
    )
    _invoke(
        [
            "evaluate",
            str(tiny_bundle),
            str(base),
            str(crops_dir),
            "-o",
            str(base / "eval"),
            "--workers",
            "0",
            "--split",
            "train",
            "--split",
            "val",
        ]
    )
    return base / "eval"


def test_temperature_fit_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    targets = np.array([rng.choice(5, p=p) for p in true_p])
    overconfident = apply_temperature(true_p, 1 / 2.5)  # logits × 2.5
    fit = fit_temperature(overconfident, targets)
    assert fit.temperature == pytest.approx(2.5, rel=0.1)
    assert fit.nll_after < fit.nll_before and fit.ece_after < fit.ece_before


def test_calibrate_stores_temperature_in_the_bundle(
    tiny_bundle: Path, eval_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cal.safetensors"
    text = _invoke(
        ["calibrate", str(tiny_bundle), str(eval_dir / "outputs_val.csv.gz"), "-o", str(out)]
    )
    assert "temperature" in text
    t = read_bundle_meta(out).temperature
    assert t != 1.0 and 0.05 <= t <= 20


def test_mislabeled_candidates_by_hand() -> None:
    frame = pd.DataFrame(
        {
            "path": [
                "ds1/a.jpg___crop00.jpg",
                "ds1/b.jpg___crop00.jpg",
                "ds2/c.jpg___crop01_v5.jpg",
            ],
            "label": ["antelope", "bird", "bird"],
            "antelope": [0.98, 0.97, 0.5],
            "bird": [0.01, 0.02, 0.4],
            "carnivore": [0.01, 0.01, 0.1],
            "primate": [0.0, 0.0, 0.0],
        }
    )
    c = find_candidates(frame, LABELS, 0.9)
    assert c["path"].tolist() == ["ds1/b.jpg___crop00.jpg"] and c["image"].tolist() == ["ds1/b.jpg"]
    assert c["predicted"].tolist() == ["antelope"] and c["margin"].iloc[0] == pytest.approx(0.95)
    assert len(find_candidates(frame, LABELS, 0.05)) == 2


def test_mislabeled_command_writes_lists_and_timelapse_json(eval_dir: Path, md_json: Path) -> None:
    _invoke(
        [
            "mislabeled",
            str(eval_dir),
            "--margin",
            "0.0",
            "--split",
            "val",
            "--detections",
            str(md_json),
        ]
    )
    table = pd.read_csv(eval_dir / "mislabeled_candidates_val.csv")
    outputs = pd.read_csv(eval_dir / "outputs_val.csv.gz")
    predicted = np.array(LABELS)[outputs[LABELS].to_numpy().argmax(1)]
    assert len(table) == int((predicted != outputs["label"]).sum())
    # the dataset of each crop comes from the classification_ds.csv beside the eval folder
    assert set(table["dataset"]) == {"md"}
    listed = (eval_dir / "mislabeled_candidates_val_md.txt").read_text().split()
    assert sorted(listed) == sorted(set(table["image"]))
    doc = json.loads((eval_dir / "mislabeled_candidates_val_md.json").read_text())
    assert sorted(im["file"] for im in doc["images"]) == sorted(listed)  # only the candidates
    classified = [
        d for im in doc["images"] for d in im["detections"] or [] if d.get("classifications")
    ]
    assert len(classified) == len(table)
    assert all(d["classifications"][-1][1] == 1.0 for d in classified)


def test_lists_name_images_per_dataset(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "path": ["ds1/cam1/a.jpg___crop00.jpg", "cam2/b.jpg___crop01_v5a.jpg"],
            "label": ["bird", "bird"],
            "antelope": [0.9, 0.9],
            "bird": [0.1, 0.1],
            "carnivore": [0.0, 0.0],
            "primate": [0.0, 0.0],
        }
    )
    # combined layout: the first folder is the dataset, dropped from the lists by default
    by_folder = find_candidates(frame.iloc[:1], LABELS, 0.5)
    write_candidate_lists(by_folder, "test", tmp_path)
    assert (tmp_path / "mislabeled_candidates_test_ds1.txt").read_text() == "cam1/a.jpg\n"
    write_candidate_lists(by_folder, "test", tmp_path, include_dataset=True)
    assert (tmp_path / "mislabeled_candidates_test_ds1.txt").read_text() == "ds1/cam1/a.jpg\n"
    # one dataset whose images sit in location folders: cam2 is not a dataset
    named = find_candidates(frame.iloc[1:], LABELS, 0.5, "idfg")
    write_candidate_lists(named, "test", tmp_path)
    assert (tmp_path / "mislabeled_candidates_test_idfg.txt").read_text() == "cam2/b.jpg\n"
    table = find_candidates(frame, LABELS, 0.5, {frame["path"][1]: "idfg"})
    assert table.set_index("image")["dataset"].to_dict() == {
        "ds1/cam1/a.jpg": "ds1",
        "cam2/b.jpg": "idfg",
    }


def test_mislabeled_with_cct_truth_on_ground_truth_crops(
    tiny_bundle: Path, md_dir: Path, md_json: Path, crops_dir: Path, tmp_path: Path
) -> None:
    """Seed step 10 on ground-truth crops: true labels and boxes from a CCT, a classifier CSV
    without labels, datasets from the dataset table; Timelapse files per split and dataset."""
    from PIL import Image

    from ct_io.cct import from_records, write_cct
    from ct_io.md import validate_md_dict
    from ct_io.problems import errors_only

    md = json.loads(md_json.read_text())
    gt_crops = tmp_path / "gt_crops"
    gt_crops.mkdir()
    images, annotations, truth, boxes, datasets = [], [], {}, {}, {}
    for i, im in enumerate(md["images"]):
        kept = [(k, d) for k, d in enumerate(im["detections"] or []) if d["conf"] >= 0.2]
        if not kept:
            continue
        w, h = Image.open(md_dir / "images" / im["file"]).size
        images.append({"id": i, "file_name": im["file"], "width": w, "height": h})
        for j, (k, det) in enumerate(kept):
            x, y, bw, bh = det["bbox"]
            annotations.append(
                {
                    "id": f"{i}-{j}",
                    "image_id": i,
                    "category_id": i % 4,
                    "bbox": [x * w, y * h, bw * w, bh * h],
                }
            )
            name = f"{im['file']}___crop{j:02d}.jpg"  # a ground-truth crop: no detector suffix
            shutil.copy(crops_dir / f"{im['file']}___crop{k:02d}_v5a.jpg", gt_crops / name)
            truth[name], boxes[name] = LABELS[i % 4], det["bbox"]
            datasets[name] = im["file"].split("_")[0]
    cct = tmp_path / "cct.json"
    write_cct(
        from_records(
            images, annotations, [{"id": c, "name": lb.title()} for c, lb in enumerate(LABELS)]
        ),
        cct,
    )
    ds_table = tmp_path / "classification_ds.csv"
    pd.DataFrame({"path": list(datasets), "dataset": list(datasets.values())}).to_csv(
        ds_table, index=False
    )
    probs_csv = tmp_path / "probs" / "classified.csv"
    _invoke(["classify", str(tiny_bundle), str(gt_crops), str(probs_csv), "--workers", "0"])
    out = tmp_path / "review"
    _invoke(
        ["mislabeled", str(probs_csv), "--cct", str(cct), "--margin", "0", "--dataset-csv", str(ds_table), "-o", str(out)]
    )  # fmt: skip
    probs = pd.read_csv(probs_csv)
    predicted = dict(
        zip(probs["path"], np.array(LABELS)[probs[LABELS].to_numpy().argmax(1)], strict=True)
    )
    wrong = {p for p, lb in truth.items() if predicted[p] != lb}
    table = pd.read_csv(out / "mislabeled_candidates_all.csv")
    assert set(table["path"]) == wrong and len(wrong) > 0
    assert all(truth[p] == lb for p, lb in zip(table["path"], table["label"], strict=True))
    for dataset, group in table.groupby("dataset"):
        assert group["dataset"].eq(datasets[group["path"].iloc[0]]).all()
        listed = (out / f"mislabeled_candidates_all_{dataset}.txt").read_text().split()
        assert listed == sorted(set(group["image"]))
        doc = json.loads((out / f"mislabeled_candidates_all_{dataset}.json").read_text())
        assert not errors_only(validate_md_dict(doc))
        assert sorted(im["file"] for im in doc["images"]) == listed
        cats = doc["classification_categories"]
        for path, label in zip(group["path"], group["label"], strict=True):
            file, k = path.split("___crop")[0], int(path.split("___crop")[1][:2])
            det = next(im for im in doc["images"] if im["file"] == file)["detections"][k]
            assert det["conf"] == 1.0 and det["bbox"] == pytest.approx(boxes[path], abs=1e-3)
            assert cats[det["classifications"][-1][0]] == f"label: {label}"


def test_save_mislabeled_feeds_ct_taxonomy(tmp_path: Path) -> None:
    from ct_taxonomy.mislabeled import read_mislabeled_csv

    export = tmp_path / "timelapse.csv"
    pd.DataFrame(
        {
            "File": ["a.jpg", "b.jpg", "c.jpg"],
            "RelativePath": ["idfg\\cam1", "idfg\\cam1", "idfg\\cam2"],
            "mislabeled": ["true", "false", "true"],
            "correct_class": ["Elk", "", ""],
        }
    ).to_csv(export, index=False)
    folder = tmp_path / "known"
    _invoke(["save-mislabeled", str(export), str(folder)])
    corrections = read_mislabeled_csv(folder / "idfg.csv")
    assert corrections == {"cam1/a.jpg": "elk", "cam2/c.jpg": None}
    # a second review updates, never duplicates
    pd.DataFrame(
        {
            "File": ["a.jpg"],
            "RelativePath": ["idfg/cam1"],
            "mislabeled": ["True"],
            "correct_class": ["moose"],
        }
    ).to_csv(export, index=False)
    _invoke(["save-mislabeled", str(export), str(folder)])
    assert read_mislabeled_csv(folder / "idfg.csv")["cam1/a.jpg"] == "moose"
