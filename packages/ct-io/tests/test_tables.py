"""The pipeline's own tables: classification_ds.csv, label_index.json, splits.json, queried_images.json."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from ct_io.errors import CamtrapError, FormatError
from ct_io.tables import (
    UNKNOWN_LOCATION,
    QueriedBox,
    QueriedImage,
    Splits,
    check_disjoint,
    read_classification_ds,
    read_csv,
    read_label_index,
    read_queried_images,
    read_splits,
    write_classification_ds,
    write_csv,
    write_label_index,
    write_queried_images,
    write_splits,
)

# ---------------------------------------------------------------- label_index.json


def test_label_index_round_trip(tmp_path):
    write_label_index(["bear", "bobcat", "deer"], tmp_path / "label_index.json")
    assert json.loads((tmp_path / "label_index.json").read_text()) == {
        "0": "bear",
        "1": "bobcat",
        "2": "deer",
    }
    assert read_label_index(tmp_path / "label_index.json") == ["bear", "bobcat", "deer"]


def test_label_index_is_ordered_by_integer_key(write_json_file):
    labels = [f"l{i}" for i in range(12)]
    doc = {str(i): label for i, label in reversed(list(enumerate(labels)))}
    assert read_label_index(write_json_file(doc)) == labels  # "10" sorts after "9"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "non-empty object"),
        ([], "non-empty object"),
        ({"a": "x"}, "keys must be integers"),
        ({"0": "x", "2": "y"}, "contiguous"),
        ({"0": "x", "1": ""}, "non-empty string"),
        ({"0": "x", "1": 3}, "non-empty string"),
        ({"0": "x", "1": "x"}, "duplicate label"),
    ],
)
def test_bad_label_index(write_json_file, doc, message):
    with pytest.raises(FormatError, match=message):
        read_label_index(write_json_file(doc))


# ---------------------------------------------------------------- splits.json


def test_splits_round_trip_sorted(tmp_path):
    splits = Splits(train=[("ds", "b"), ("ds", "a")], val=[("ds", "c")], test=[("other", "a")])
    write_splits(splits, tmp_path / "splits.json")
    assert json.loads((tmp_path / "splits.json").read_text()) == {
        "train": [["ds", "a"], ["ds", "b"]],
        "val": [["ds", "c"]],
        "test": [["other", "a"]],
    }
    back = read_splits(tmp_path / "splits.json")
    assert back.train == [("ds", "a"), ("ds", "b")]
    assert back.split_of()[("other", "a")] == "test"


def test_splits_must_be_disjoint(tmp_path, write_json_file):
    overlapping = Splits(train=[("ds", "a")], val=[("ds", "a")])
    with pytest.raises(FormatError, match="also in train"):
        check_disjoint(overlapping)
    with pytest.raises(FormatError):
        write_splits(overlapping, tmp_path / "splits.json")
    assert not (tmp_path / "splits.json").exists()
    with pytest.raises(FormatError, match=r"test: location \('ds', 'a'\) is also in train"):
        read_splits(write_json_file({"train": [["ds", "a"]], "val": [], "test": [["ds", "a"]]}))


def test_same_location_name_in_two_datasets_is_two_locations():
    check_disjoint(Splits(train=[("ds1", "loc")], test=[("ds2", "loc")]))


def test_splits_locations_are_strings_and_missing_splits_are_empty(write_json_file):
    splits = read_splits(write_json_file({"train": [["ds", 12]]}))
    assert splits.train == [("ds", "12")] and splits.val == [] and splits.test == []


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ([], "$"),
        ({"train": "ds/a"}, "train"),
        ({"train": [["ds", "a", "b"]]}, "train[0]"),
        ({"val": ["a"]}, "val[0]"),
    ],
)
def test_bad_splits(write_json_file, doc, path):
    with pytest.raises(FormatError) as info:
        read_splits(write_json_file(doc))
    assert info.value.problems[0].path == path


# ---------------------------------------------------------------- queried_images.json


def test_queried_images_round_trip(tmp_path):
    images = {
        "ds/b.jpg": QueriedImage("ds", "loc2", "Deer", ["deer"]),
        "ds/a.jpg": QueriedImage(
            "ds", "loc1", "Fox", ["fox"], bbox=[QueriedBox([0.1, 0.2, 0.3, 0.4])]
        ),
    }
    write_queried_images(images, tmp_path / "q.json")
    raw = json.loads((tmp_path / "q.json").read_text())
    assert list(raw) == ["ds/a.jpg", "ds/b.jpg"]
    assert raw["ds/a.jpg"] == {
        "dataset": "ds",
        "location": "loc1",
        "class": "Fox",
        "label": ["fox"],
        "bbox": [{"category": "animal", "bbox": [0.1, 0.2, 0.3, 0.4]}],
    }
    assert "bbox" not in raw["ds/b.jpg"]
    assert read_queried_images(tmp_path / "q.json") == images


def test_queried_images_without_location_get_unknown_location(write_json_file):
    back = read_queried_images(
        write_json_file({"ds/x.jpg": {"dataset": "ds", "class": "c", "label": ["c"]}})
    )
    assert back["ds/x.jpg"].location == UNKNOWN_LOCATION


def test_bad_queried_images(write_json_file):
    with pytest.raises(FormatError) as info:
        read_queried_images(
            write_json_file({"ds/x.jpg": {"dataset": "ds"}, "ds/y.jpg": {"label": ["a"]}})
        )
    assert [p.path for p in info.value.problems] == ["ds/x.jpg", "ds/y.jpg"]


# ---------------------------------------------------------------- classification_ds.csv


def _crops() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": ["deer", "fox"],
            "path": ["ds/a.jpg___crop00.jpg", "ds/b.jpg___crop00_mdv5a.jpg"],
            "dataset": ["ds", "ds"],
            "location": ["007", None],
            "dataset_class": ["Deer", "Red fox"],
            "confidence": [1.0, 0.87],
            "extra_note": ["x", "y"],
        }
    )


@pytest.mark.parametrize("name", ["classification_ds.csv", "classification_ds.csv.gz"])
def test_classification_ds_round_trip(tmp_path, name):
    write_classification_ds(_crops(), tmp_path / name)
    back = read_classification_ds(tmp_path / name)
    assert list(back.columns) == [
        "path",
        "dataset",
        "location",
        "dataset_class",
        "confidence",
        "label",
        "extra_note",
    ]
    assert back["location"].tolist() == ["007", UNKNOWN_LOCATION]  # leading zero kept: a string
    assert back["confidence"].tolist() == [1.0, 0.87]
    assert back["label"].tolist() == ["deer", "fox"]


def test_gzipped_csv_is_deterministic(tmp_path):
    write_csv(_crops(), tmp_path / "a.csv.gz")
    write_csv(_crops(), tmp_path / "b.csv.gz")
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.csv.gz").read_bytes()).startswith(b"label,path")


def test_classification_ds_missing_columns(tmp_path):
    with pytest.raises(CamtrapError, match="lacks column"):
        write_classification_ds(_crops().drop(columns=["dataset"]), tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("path,label\na.jpg,deer\n")
    with pytest.raises(CamtrapError, match=r"missing column\(s\) dataset, location"):
        read_classification_ds(tmp_path / "y.csv")


def test_classification_ds_bad_confidence(tmp_path):
    (tmp_path / "c.csv").write_text(
        "path,dataset,location,dataset_class,confidence,label\na.jpg,ds,l,c,high,deer\n"
    )
    with pytest.raises(CamtrapError, match="row 2: confidence is not a number"):
        read_classification_ds(tmp_path / "c.csv")


def test_read_csv_errors_are_one_line(tmp_path):
    with pytest.raises(CamtrapError, match="file not found"):
        read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CamtrapError, match="cannot read CSV"):
        read_csv(tmp_path / "empty.csv")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CamtrapError, match="cannot read CSV"):
        read_csv(tmp_path / "bad.csv.gz")
