"""``ct-infer merge`` in every mode on the real MD test output: true-label-only tables,
merges that match nothing, validator-clean output, and the seed's review-subset options
(issue 15 items 2–4 and the seed's merge options). Probabilities are drawn at random for
the real detections, so these tests need no model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.crops import crop_name
from ct_infer.merge import MergeOptions, merge_classifications, read_classifier_csv
from ct_infer.review_subset import ReviewSubset
from ct_infer.rollup import lineages_from_meta
from ct_io.errors import CamtrapError, EmptyResultError
from ct_io.md import md_to_dict, read_md, validate_md_dict

LABELS = ["antelope", "bird", "carnivore", "primate"]
MIN_CONF = 0.2


def _crop_rows(md_doc: dict, prefix: str = "") -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """(crop path, image file) of every detection with conf >= 0.2."""
    return [
        (prefix + crop_name(im["file"], k, "v5a"), im["file"])
        for im in md_doc["images"]
        for k, det in enumerate(im["detections"] or [])
        if det["conf"] >= MIN_CONF
    ]


def outputs_frame(md_json: Path, seed: int = 0, *, prefix: str = "") -> pd.DataFrame:
    """An evaluate-style table: path, dataset metadata, true label, one peaked probability
    per label (so some classes fall below the 0.1 default threshold)."""
    rows = _crop_rows(json.loads(md_json.read_text()), prefix)
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([0.3] * len(LABELS), size=len(rows))
    frame = pd.DataFrame(probs, columns=LABELS)
    frame.insert(0, "path", [p for p, _ in rows])
    frame.insert(1, "dataset", "md_test")
    frame.insert(2, "location", "somewhere")
    frame.insert(3, "label", [LABELS[i % len(LABELS)] for i in range(len(rows))])
    return frame


def dataset_table(md_json: Path) -> pd.DataFrame:
    """A ``classification_ds.csv``: metadata and true labels, no probabilities."""
    frame = outputs_frame(md_json)[["path", "dataset", "location", "label"]]
    return frame.assign(dataset_class=frame["label"], confidence=0.9)


def _classified(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return [d for im in doc["images"] for d in (im["detections"] or []) if "classifications" in d]


# ------------------------------------------------------------------ item 2: true labels only


def test_a_table_of_true_labels_merges_its_labels(md_json: Path, tmp_path: Path) -> None:
    table = dataset_table(md_json)
    csv = tmp_path / "classification_ds.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "labels.json"
    result = CliRunner().invoke(
        app, ["merge", str(csv), "-d", str(md_json), "-o", str(out), "--label", "first"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"true labels of {len(table)} of {len(table)} crops merged" in result.output
    doc = json.loads(out.read_text())
    assert validate_md_dict(doc) == []
    names = doc["classification_categories"]
    assert sorted(names.values()) == [f"label: {x}" for x in sorted(set(table["label"]))]
    got = {}
    for im in doc["images"]:
        for k, det in enumerate(im["detections"] or []):
            if "classifications" in det:
                (entry,) = det["classifications"]
                assert entry[1] == 1.0
                got[crop_name(im["file"], k, "v5a")] = names[entry[0]]
    assert got == {p: f"label: {x}" for p, x in zip(table["path"], table["label"], strict=True)}


def test_metadata_columns_are_never_probabilities(md_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "outputs_test.csv.gz"
    outputs_frame(md_json).to_csv(csv, index=False)
    _, labels = read_classifier_csv(str(csv))
    assert labels == LABELS
    table = tmp_path / "classification_ds.csv"
    dataset_table(md_json).to_csv(table, index=False)
    frame, labels = read_classifier_csv(str(table))
    assert labels == sorted(set(frame["label"]))  # the labels it names


def test_a_text_column_under_a_label_name_is_a_clear_error(md_json: Path) -> None:
    frame = outputs_frame(md_json).assign(bird="oops")
    with pytest.raises(CamtrapError, match=r"'bird' .* holds 'oops', not a probability"):
        merge_classifications(read_md(md_json), frame, LABELS, MergeOptions())


# ------------------------------------------------------------------ item 3: nothing merged


def test_merging_nothing_exits_1_naming_a_crop_and_an_image(md_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "cls.csv"
    frame = outputs_frame(md_json)
    frame.assign(path="other/" + frame["path"].str.replace(".JPG", "_x.JPG")).to_csv(
        csv, index=False
    )
    out = tmp_path / "x.json"
    code = "import sys; from ct_infer.cli import main; sys.argv[0] = 'ct-infer'; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "merge", str(csv), "-d", str(md_json), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert f"none of the {len(frame)} crops names a detection" in message
    assert "crop 'other/" in message and "of image 'other/" in message
    assert "its images are like 'snapshot_camdeboo" in message
    assert not out.exists()


def test_a_leading_dataset_folder_suggests_strip_prefix(md_json: Path) -> None:
    frame = outputs_frame(md_json, prefix="md_test/")
    with pytest.raises(EmptyResultError, match="--strip-prefix md_test"):
        merge_classifications(read_md(md_json), frame, LABELS, MergeOptions())
    _, report = merge_classifications(
        read_md(md_json), frame, LABELS, MergeOptions(strip_prefix="md_test")
    )
    assert report.matched == len(frame)


def test_rows_that_are_not_crop_names_say_how_crops_are_named(md_json: Path) -> None:
    frame = outputs_frame(md_json).assign(path="a.jpg")
    with pytest.raises(EmptyResultError, match="___cropNN"):
        merge_classifications(read_md(md_json), frame, LABELS, MergeOptions())


# ------------------------------------------------------------------ item 4: validator-clean


LINEAGES = lineages_from_meta(
    {
        "antelope": "class:mammalia;order:artiodactyla",
        "bird": "class:aves",
        "carnivore": "class:mammalia;order:carnivora",
        "primate": "class:mammalia;order:primates",
    }
)
MODES = {
    "plain": MergeOptions(),
    "no-threshold": MergeOptions(threshold=0.0),
    "threshold-topk": MergeOptions(threshold=0.2, top_k=2),
    "relative-last": MergeOptions(relative_conf=True, label="last"),
    "relative-first": MergeOptions(relative_conf=True, label="first", threshold=0.0),
    "label-last": MergeOptions(label="last"),
    "label-first": MergeOptions(label="first"),
    "rollup-label-first": MergeOptions(label="first", rollup_threshold=0.6, lineages=LINEAGES),
    "rollup-label-last": MergeOptions(label="last", rollup_threshold=0.6, lineages=LINEAGES),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_passes_the_validator_without_warnings(md_json: Path, mode: str) -> None:
    merged, report = merge_classifications(
        read_md(md_json), outputs_frame(md_json), LABELS, MODES[mode]
    )
    doc = md_to_dict(merged)
    assert validate_md_dict(doc) == []
    assert report.matched == len(outputs_frame(md_json))
    if MODES[mode].label:
        names = doc["classification_categories"]
        for det in _classified(doc):
            where = 0 if MODES[mode].label == "first" else -1
            assert names[det["classifications"][where][0]].startswith("label: ")


def test_label_last_keeps_the_top_prediction_first(md_json: Path) -> None:
    frame = outputs_frame(md_json)
    merged, _ = merge_classifications(read_md(md_json), frame, LABELS, MergeOptions(label="last"))
    doc = md_to_dict(merged)
    best = frame.set_index("path")[LABELS].idxmax(axis=1)
    for im in doc["images"]:
        for k, det in enumerate(im["detections"] or []):
            if "classifications" in det:
                top = doc["classification_categories"][det["classifications"][0][0]]
                assert top == best[crop_name(im["file"], k, "v5a")]


def test_the_validator_still_flags_unsorted_predictions() -> None:
    doc = {
        "info": {"format_version": "1.5"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "a", "1": "b", "2": "label: a"},
        "images": [
            {
                "file": "x.jpg",
                "detections": [
                    {
                        "category": "1",
                        "conf": 0.9,
                        "bbox": [0.1, 0.1, 0.2, 0.2],
                        "classifications": [["0", 0.2], ["1", 0.7], ["2", 1.0]],
                    }
                ],
            }
        ],
    }
    problems = validate_md_dict(doc)
    assert [p.path for p in problems] == ["images[0].detections[0].classifications[1]"]


# ------------------------------------------------------------------ the seed's merge options


def test_default_threshold_and_typical_threshold(md_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "cls.csv"
    frame = outputs_frame(md_json)
    frame.to_csv(csv, index=False)
    out = tmp_path / "merged.json"
    args = ["merge", str(csv), "-d", str(md_json), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--typical-confidence-threshold", "0.6"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(out.read_text())
    assert doc["info"]["classifier_metadata"] == {"typical_classification_threshold": 0.6}
    confs = [c[1] for det in _classified(doc) for c in det["classifications"]]
    assert min(confs) >= 0.1  # the seed's default --threshold
    assert (frame[LABELS].to_numpy() < 0.1).any()  # ... which did leave classes out
    result = CliRunner().invoke(app, [*args, "--threshold", "0.3"])
    assert result.exit_code == 0
    doc = json.loads(out.read_text())
    assert "classifier_metadata" not in doc["info"]  # --threshold filters; it is not typical


def _two_datasets(md_json: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """The MD test output as two datasets (``east/...``, ``west/...``) and its outputs."""
    doc = json.loads(md_json.read_text())
    for i, im in enumerate(doc["images"]):
        im["file"] = f"{'east' if i % 2 else 'west'}/{im['file']}"
    path = tmp_path / "two.json"
    path.write_text(json.dumps(doc))
    frame = outputs_frame(path).drop(columns=["dataset"])
    return path, frame


def test_datasets_keeps_their_crops_and_images(md_json: Path, tmp_path: Path) -> None:
    path, frame = _two_datasets(md_json, tmp_path)
    subset = MergeOptions(subset=ReviewSubset(datasets=("east",)))
    merged, report = merge_classifications(read_md(path), frame, LABELS, subset)
    assert report.matched == int(frame["path"].str.startswith("east/").sum()) > 0
    files = [im.file for im in merged.images]
    assert files and all(f.startswith("east/") for f in files)
    assert len(files) == sum(1 for im in read_md(path).images if im.file.startswith("east/"))
    with pytest.raises(CamtrapError, match="--datasets north: no crop"):
        merge_classifications(
            read_md(path), frame, LABELS, MergeOptions(subset=ReviewSubset(datasets=("north",)))
        )


def test_samples_per_label_is_a_reproducible_review_subset(md_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "cls.csv"
    frame = outputs_frame(md_json)
    frame.to_csv(csv, index=False)

    def run(seed: int) -> dict:  # type: ignore[type-arg]
        out = tmp_path / f"subset{seed}.json"
        result = CliRunner().invoke(
            app,
            [
                *("merge", str(csv), "-d", str(md_json), "-o", str(out), "--label", "last"),
                *("--samples-per-label", "2", "--seed", str(seed)),
            ],
        )
        assert result.exit_code == 0, (result.output, result.exception)
        doc: dict = json.loads(out.read_text())  # type: ignore[type-arg]
        return doc

    doc = run(7)
    names = doc["classification_categories"]
    per_label = pd.Series([names[d["classifications"][-1][0]] for d in _classified(doc)])
    assert per_label.value_counts().to_dict() == {f"label: {x}": 2 for x in LABELS}
    assert all(any("classifications" in d for d in im["detections"]) for im in doc["images"])
    again = run(7)  # same seed, same subset
    assert again["images"] == doc["images"]
    seeds = {json.dumps(_classified(run(s))) for s in (1, 2, 3)}
    assert len(seeds) > 1
