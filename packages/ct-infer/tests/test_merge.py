from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.classify import RunSettings, classify_crops
from ct_infer.cli import app
from ct_infer.merge import MergeOptions, merge_classifications
from ct_infer.predictor import Predictor, load_classifier
from ct_infer.smoothing import sequences_from_times, smooth
from ct_io.md import md_to_dict, read_md, validate_md_dict
from ct_io.problems import errors_only

LABELS = ["antelope", "bird", "carnivore", "primate"]


@pytest.fixture(scope="module")
def classifier_csv(
    tiny_bundle: Path,
    crops_dir: Path,
    crop_paths: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("merge") / "classifier.csv.gz"
    classify_crops(
        Predictor(load_classifier(tiny_bundle), device="cpu"),
        crops_dir,
        crop_paths,
        out,
        RunSettings(batch_size=16, workers=0, device="cpu"),
        progress=False,
    )
    return out


def _classified(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return [d for im in doc["images"] for d in (im["detections"] or []) if "classifications" in d]


def test_merge_writes_valid_sorted_classifications(
    classifier_csv: Path, md_json: Path, tmp_path: Path
) -> None:
    out = tmp_path / "merged.json"
    result = CliRunner().invoke(
        app,
        [
            "merge",
            str(classifier_csv),
            "-d",
            str(md_json),
            "-o",
            str(out),
            "--classifier-name",
            "tiny-v1",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert not errors_only(validate_md_dict(doc))
    assert doc["classification_categories"] == {str(i): n for i, n in enumerate(LABELS)}
    assert doc["info"]["classifier"] == "tiny-v1" and doc["info"]["format_version"] == "1.5"
    assert "classification_completion_time" in doc["info"]
    classified = _classified(doc)
    assert len(classified) == 24 and all(d["conf"] >= 0.2 for d in classified)
    for det in classified:
        confs = [c[1] for c in det["classifications"]]
        assert confs == sorted(confs, reverse=True) and len(confs) == 4
        assert sum(confs) == pytest.approx(1.0, abs=1e-3)
    original = json.loads(md_json.read_text())
    assert len(doc["images"]) == len(original["images"])  # nothing dropped


def test_threshold_and_top_k(classifier_csv: Path, md_json: Path) -> None:
    frame = pd.read_csv(classifier_csv)
    merged, report = merge_classifications(
        read_md(md_json), frame, LABELS, MergeOptions(threshold=0.2, top_k=2)
    )
    assert report.matched == 24
    for det in _classified(md_to_dict(merged)):
        assert len(det["classifications"]) <= 2 and all(c[1] >= 0.2 for c in det["classifications"])


def test_relative_conf_and_true_label(classifier_csv: Path, md_json: Path) -> None:
    frame = pd.read_csv(classifier_csv).assign(label="bird")
    merged, _ = merge_classifications(
        read_md(md_json), frame, LABELS, MergeOptions(relative_conf=True, label="last", threshold=0)
    )
    doc = md_to_dict(merged)
    assert doc["classification_categories"]["5"] == "label: bird"
    probs = frame.set_index("path")[LABELS]
    for det in _classified(doc):
        assert det["classifications"][-1] == ["5", 1.0]
        margins = [c for c in det["classifications"][:-1]]
        assert all(c[1] > 0 and c[0] != "1" for c in margins)
    # margins are exact differences from the true label's probability
    row = probs.iloc[0]
    expected = {LABELS.index(k): v - row["bird"] for k, v in row.items() if v - row["bird"] > 0}
    first = merged.by_file()[probs.index[0].split("___")[0]]
    k = int(probs.index[0].split("___crop")[1][:2])
    got = {int(c[0]): c[1] for c in first.detections[k].classifications[:-1]}  # type: ignore[index]
    assert got.keys() == expected.keys()
    assert all(abs(got[j] - expected[j]) < 1e-3 for j in got)
    first_label, _ = merge_classifications(
        read_md(md_json), frame, LABELS, MergeOptions(label="first")
    )
    assert _classified(md_to_dict(first_label))[0]["classifications"][0] == ["5", 1.0]


def test_unmatched_rows_are_counted(classifier_csv: Path, md_json: Path) -> None:
    frame = pd.read_csv(classifier_csv)
    extra = frame.iloc[:2].copy()
    extra["path"] = ["elsewhere.jpg___crop00_v5a.jpg", "not-a-crop-name.jpg"]
    _merged, report = merge_classifications(
        read_md(md_json), pd.concat([frame, extra]), LABELS, MergeOptions()
    )
    assert report.matched == 24 and report.unmatched == ["elsewhere.jpg___crop00_v5a.jpg"]
    assert report.unparsable == ["not-a-crop-name.jpg"]


def test_relative_conf_needs_true_labels(classifier_csv: Path, md_json: Path) -> None:
    from ct_io.errors import CamtrapError

    with pytest.raises(CamtrapError, match="'label' column"):
        merge_classifications(
            read_md(md_json), pd.read_csv(classifier_csv), LABELS, MergeOptions(relative_conf=True)
        )


def test_sequence_smoothing(classifier_csv: Path, md_json: Path, tmp_path: Path) -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    out = smooth(probs, ["s1", "s1", None], np.array([1.0, 1.0, 1.0]), strength=1.0)
    np.testing.assert_allclose(out[0], [0.55, 0.45]) and np.testing.assert_allclose(
        out[1], [0.55, 0.45]
    )
    np.testing.assert_allclose(out[2], [0.5, 0.5])
    # every detection of the two Camdeboo frames in one "sequence": predictions converge
    md = read_md(md_json)
    files = [im.file for im in md.images]
    sequences = {f: "camdeboo" for f in files if "camdeboo" in f}
    frame = pd.read_csv(classifier_csv)
    plain, _ = merge_classifications(md, frame, LABELS, MergeOptions())
    smoothed, _ = merge_classifications(
        md, frame, LABELS, MergeOptions(sequences=sequences, smoothing=1.0)
    )

    def tops(res) -> set:  # type: ignore[no-untyped-def,type-arg]
        return {
            d.classifications[0][0]
            for im in res.images
            if "camdeboo" in im.file
            for d in im.detections or []
            if d.classifications
        }

    assert len(tops(smoothed)) == 1
    assert len(tops(plain)) >= 1
    seqs = sequences_from_times(
        {
            "a/1.jpg": pd.Timestamp("2020-01-01 10:00:00"),
            "a/2.jpg": pd.Timestamp("2020-01-01 10:00:05"),
            "a/3.jpg": pd.Timestamp("2020-01-01 11:00:00"),
            "b/1.jpg": pd.Timestamp("2020-01-01 10:00:01"),
        }
    )
    assert (
        seqs["a/1.jpg"] == seqs["a/2.jpg"] != seqs["a/3.jpg"] and seqs["b/1.jpg"] != seqs["a/1.jpg"]
    )


def test_ground_truth_crops_merge_with_detector_crops(
    md_dir: Path, md_json: Path, tmp_path: Path
) -> None:
    """Seed step 9: outputs of ground-truth crops (no detector suffix) land on GT boxes."""
    from PIL import Image

    from ct_io.cct import from_records, write_cct

    md = json.loads(md_json.read_text())
    images, annotations, rows = [], [], []
    for i, im in enumerate(md["images"][:5]):
        w, h = Image.open(md_dir / "images" / im["file"]).size
        images.append({"id": i, "file_name": im["file"]})  # no width/height: read from the image
        for k, box in enumerate([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.2, 0.1]]):
            annotations.append(
                {
                    "id": f"{i}-{k}",
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [box[0] * w, box[1] * h, box[2] * w, box[3] * h],
                }
            )
            rows.append(
                {
                    "path": f"{im['file']}___crop{k:02d}.jpg",
                    "label": "bird",
                    **{lb: 0.25 for lb in LABELS},
                }
            )
    cct = tmp_path / "cct.json"
    write_cct(from_records(images, annotations, [{"id": 1, "name": "animal"}]), cct)
    det_rows = pd.DataFrame(
        [
            {
                "path": f"{md['images'][0]['file']}___crop00_v5a.jpg",
                "label": "bird",
                **{lb: 0.25 for lb in LABELS},
            }
        ]
    )
    csv = tmp_path / "outputs_test.csv"
    pd.concat([pd.DataFrame(rows), det_rows]).to_csv(csv, index=False)
    out = tmp_path / "merged.json"
    result = CliRunner().invoke(
        app,
        [
            "merge",
            str(csv),
            "-o",
            str(out),
            "--detections",
            str(md_json),
            "--cct",
            str(cct),
            "--images-dir",
            str(md_dir / "images"),
            "--label",
            "last",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "11 of 11 crops merged" in result.output
    doc = json.loads(out.read_text())
    assert not errors_only(validate_md_dict(doc))
    first = next(im for im in doc["images"] if im["file"] == md["images"][0]["file"])
    n_det = len(md["images"][0]["detections"])
    assert len(first["detections"]) == n_det + 2
    gt = first["detections"][n_det + 1]
    assert gt["conf"] == 1.0 and gt["bbox"] == pytest.approx([0.5, 0.5, 0.2, 0.1], abs=1e-3)
    assert gt["classifications"][-1] == ["5", 1.0]
