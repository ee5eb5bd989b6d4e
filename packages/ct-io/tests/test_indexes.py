"""Indexes over a CCT: annotations by image, locations (with pseudo-locations), sequences."""

from __future__ import annotations

import logging

from ct_io.cct import from_records
from ct_io.indexes import (
    annotations_by_image,
    image_labels,
    image_locations,
    images_by_location,
    sequences,
)
from ct_io.tables import UNKNOWN_LOCATION


def dataset():
    images = [
        {"id": "a", "file_name": "a.jpg", "location": "L1", "seq_id": "s1", "frame_num": 1},
        {"id": "b", "file_name": "b.jpg", "location": "L1", "seq_id": "s1", "frame_num": 0},
        {"id": "c", "file_name": "c.jpg", "seq_id": "s2", "frame_num": 0},
        {"id": "d", "file_name": "d.jpg", "seq_id": "s2", "frame_num": 1},
        {"id": "e", "file_name": "e.jpg"},
        {"id": "f", "file_name": "f.jpg", "location": 3},
    ]
    annotations = [
        {"id": 1, "image_id": "a", "category_id": 1},
        {"id": 2, "image_id": "a", "category_id": 2},
        {"id": 3, "image_id": "c", "category_id": 1},
        {"id": 4, "image_id": "a", "category_id": 1},
    ]
    return from_records(images, annotations, [{"id": 1, "name": "deer"}, {"id": 2, "name": "fox"}])


def test_annotations_by_image():
    index = annotations_by_image(dataset())
    assert sorted(index) == ["a", "c"]
    assert index["a"]["id"].tolist() == [1, 2, 4]


def test_pseudo_location_per_dataset_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ct_io.indexes"):
        locs = image_locations(dataset())
    assert locs.tolist() == ["L1", "L1", UNKNOWN_LOCATION, UNKNOWN_LOCATION, UNKNOWN_LOCATION, "3"]
    assert "3 of 6 images have no location" in caplog.text


def test_pseudo_location_per_sequence_keeps_frames_together(caplog):
    with caplog.at_level(logging.WARNING, logger="ct_io.indexes"):
        locs = image_locations(dataset(), pseudo="sequence")
    assert locs.tolist()[2:5] == [
        f"{UNKNOWN_LOCATION}/seq:s2",
        f"{UNKNOWN_LOCATION}/seq:s2",
        f"{UNKNOWN_LOCATION}/img:e",
    ]
    assert "sequence pseudo-locations" in caplog.text


def test_pseudo_location_per_image():
    locs = image_locations(dataset(), pseudo="image")
    assert locs.tolist()[2:5] == [
        f"{UNKNOWN_LOCATION}/img:c",
        f"{UNKNOWN_LOCATION}/img:d",
        f"{UNKNOWN_LOCATION}/img:e",
    ]


def test_no_warning_when_every_image_has_a_location(caplog):
    ds = from_records([{"id": 1, "file_name": "x", "location": "L"}], [], [])
    with caplog.at_level(logging.WARNING):
        assert image_locations(ds).tolist() == ["L"]
    assert caplog.text == ""


def test_images_by_location():
    by_loc = images_by_location(dataset(), pseudo="sequence")
    assert by_loc["L1"] == ["a", "b"]
    assert by_loc["3"] == ["f"]
    assert by_loc[f"{UNKNOWN_LOCATION}/seq:s2"] == ["c", "d"]
    assert all(isinstance(k, str) for k in by_loc)


def test_sequences_are_ordered_by_frame():
    assert sequences(dataset()) == {"s1": ["b", "a"], "s2": ["c", "d"]}
    assert sequences(from_records([{"id": 1, "file_name": "x"}], [], [])) == {}


def test_image_labels_one_row_per_image_and_category():
    labels = image_labels(dataset())
    rows = sorted(
        zip(labels["image_id"], labels["category"], labels["location"].fillna("-"), strict=True)
    )
    assert rows == [("a", "deer", "L1"), ("a", "fox", "L1"), ("c", "deer", "-")]
