"""COCO Camera Traps: reading, writing, round trips and validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ct_io.cct import (
    BBOX_COLUMNS,
    cct_to_dict,
    check_cct,
    empty_cct,
    from_records,
    read_cct,
    validate_cct,
    write_cct,
)
from ct_io.errors import CamtrapError, FormatError


def problems_of(path: Path) -> list[str]:
    return [str(p) for p in validate_cct(read_cct(path))]


def errors_of(path: Path) -> list[str]:
    return [str(p) for p in validate_cct(read_cct(path)) if p.is_error]


# ---------------------------------------------------------------- reading


def test_reads_tables_with_boxes_as_columns(write_json_file, make_cct):
    ds = read_cct(write_json_file(make_cct()))
    assert len(ds) == 3
    assert ds.images["id"].tolist() == ["a", "b", "c"]
    assert ds.category_names == {0: "empty", 1: "deer", 2: "fox"}
    boxes = ds.annotations[list(BBOX_COLUMNS)].to_numpy()
    assert boxes[1].tolist() == [300.5, 200.25, 40, 30]
    assert np.isnan(boxes[2]).all()  # the blank has no box
    assert ds.info == {"version": "1.0", "description": "test"}
    assert validate_cct(ds) == []


def test_round_trip_keeps_extra_keys_everywhere(tmp_path, write_json_file, make_cct):
    doc = make_cct(
        licenses=[{"id": 1, "name": "CDLA"}],
        annotations=[
            {
                "id": "an1",
                "image_id": "a",
                "category_id": 1,
                "bbox": [10, 20, 100, 50],
                "sequence_level_annotation": False,
                "count": 2,
                "tags": ["young", "m"],
                "meta": {"by": "x", "n": 1},
            },
            {"id": "an2", "image_id": "b", "category_id": 2},
        ],
    )
    doc["images"][0]["corrupt"] = False
    doc["images"][0]["original_relative_path"] = "cam1/IMG_1.JPG"
    doc["images"][1]["date_captured"] = "2019-05-01 12:00:00"
    doc["categories"][1]["supercategory"] = "mammal"
    ds = read_cct(write_json_file(doc))
    out = tmp_path / "out.json"
    write_cct(ds, out)
    assert json.loads(out.read_text()) == doc
    assert cct_to_dict(ds) == doc


def test_indented_and_compact_output_hold_the_same_data(tmp_path, write_json_file, make_cct):
    ds = read_cct(write_json_file(make_cct()))
    write_cct(ds, tmp_path / "compact.json")
    write_cct(ds, tmp_path / "pretty.json", indent=2)
    assert json.loads((tmp_path / "compact.json").read_text()) == json.loads(
        (tmp_path / "pretty.json").read_text()
    )
    assert (tmp_path / "pretty.json").read_text().count("\n") > 10


def test_int_locations_become_strings_and_int_ids_stay_ints(tmp_path, write_json_file, make_cct):
    doc = make_cct(
        images=[
            {"id": 1, "file_name": "x.jpg", "location": 12},
            {"id": 2, "file_name": "y.jpg", "location": 7},
        ],
        annotations=[
            {"id": 10, "image_id": 1, "category_id": 1},
            {"id": 11, "image_id": 2, "category_id": 0},
        ],
    )
    ds = read_cct(write_json_file(doc))
    assert ds.images["location"].tolist() == ["12", "7"]
    assert ds.images["id"].tolist() == [1, 2]
    write_cct(ds, tmp_path / "out.json")
    back = json.loads((tmp_path / "out.json").read_text())
    assert [im["id"] for im in back["images"]] == [1, 2]
    assert [im["location"] for im in back["images"]] == ["12", "7"]
    assert [an["image_id"] for an in back["annotations"]] == [1, 2]


def test_heterogeneous_types_take_the_fallback_path(tmp_path, write_json_file, make_cct):
    doc = make_cct(
        images=[
            {"id": 1, "file_name": "x.jpg", "location": 5},
            {"id": "two", "file_name": "y.jpg", "location": "north"},
            {"id": 3, "file_name": "z.jpg", "location": 5.0},
        ],
        annotations=[
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
            {"id": "b", "image_id": "two", "category_id": 2, "bbox": [1.5, 2, 3, 4]},
        ],
    )
    ds = read_cct(write_json_file(doc))
    assert ds.images["id"].tolist() == [1, "two", 3]
    assert ds.images["location"].tolist() == ["5", "north", "5"]
    assert ds.annotations["image_id"].tolist() == [1, "two"]
    assert validate_cct(ds) == []
    write_cct(ds, tmp_path / "out.json")
    back = json.loads((tmp_path / "out.json").read_text())
    assert [im["id"] for im in back["images"]] == [1, "two", 3]
    assert back["annotations"][1]["bbox"] == [1.5, 2, 3, 4]


def test_int_image_ids_do_not_match_string_image_ids(write_json_file, make_cct):
    doc = make_cct(
        images=[{"id": 1, "file_name": "x.jpg", "location": "l"}],
        annotations=[{"id": 1, "image_id": "1", "category_id": 1}],
    )
    assert errors_of(write_json_file(doc)) == [
        "annotations[0].image_id: '1' is not an image id — remove the annotation or add its image"
    ]


def test_reads_many_records_in_chunks(tmp_path, monkeypatch, make_cct):
    import ct_io.cct as cct

    monkeypatch.setattr(cct, "_CHUNK", 7)
    images = [
        {"id": i, "file_name": f"{i}.jpg", "location": f"l{i % 3}", "width": 10, "height": 10}
        for i in range(50)
    ]
    annotations = [
        {"id": i, "image_id": i % 50, "category_id": 1, "bbox": [1, 1, 2, 2]} for i in range(60)
    ]
    doc = make_cct(images=images, annotations=annotations)
    (tmp_path / "in.json").write_text(json.dumps(doc))
    ds = read_cct(tmp_path / "in.json")
    assert ds.images["id"].tolist() == list(range(50))
    assert ds.annotations["image_id"].tolist() == [i % 50 for i in range(60)]
    write_cct(ds, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == doc


def test_empty_dataset_round_trips(tmp_path):
    write_cct(empty_cct(), tmp_path / "e.json")
    ds = read_cct(tmp_path / "e.json")
    assert len(ds) == 0 and len(ds.annotations) == 0
    assert validate_cct(ds) == []


def test_from_records_splits_boxes_and_flags_bad_ones():
    ds = from_records(
        [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100, "location": "x"}],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 2, 3, 4]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},
            {"id": 4, "image_id": 1, "category_id": 1},
        ],
        [{"id": 1, "name": "deer"}],
    )
    assert ds.annotations.loc[0, list(BBOX_COLUMNS)].tolist() == [1, 2, 3, 4]
    assert [str(p) for p in validate_cct(ds)] == [
        "annotations[2].bbox: [1, 2, 3] is not 4 numbers — CCT boxes are [x, y, width, height] in pixels",
        "annotations[1].bbox: has a NaN or infinite value — CCT boxes are [x, y, width, height] in pixels",
    ]


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ('{"images": [{"id": 1, "file_na', "malformed JSON"),
        ("{not json}", "malformed JSON"),
        (
            '{"images": [], "annotations": [{"bbox": [NaN, 1, 2, 3]}], "categories": []}',
            "NaN at byte",
        ),
    ],
)
def test_malformed_files_give_one_line_errors(write_json_file, raw, expected):
    path = write_json_file(raw=raw)
    with pytest.raises(CamtrapError) as info:
        read_cct(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(CamtrapError, match="file not found"):
        read_cct(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("doc", "first_problem"),
    [
        ([], "$: expected a JSON object"),
        ({"images": [], "categories": []}, "annotations: missing"),
        ({"images": {}, "annotations": [], "categories": []}, "images: must be a list"),
        (
            {"images": [1], "annotations": [], "categories": []},
            "images[0]: expected an object, got int",
        ),
        (
            {"images": [{"id": 1, "file_name": "a"}, "x"], "annotations": [], "categories": []},
            "images[1]: expected an object, got str",
        ),
        (
            {"info": [], "images": [], "annotations": [], "categories": []},
            "info: must be an object",
        ),
    ],
)
def test_wrong_structure_raises_format_error_with_json_path(write_json_file, doc, first_problem):
    with pytest.raises(FormatError) as info:
        read_cct(write_json_file(doc))
    assert str(info.value.problems[0]).startswith(first_problem)
    assert "\n" not in str(info.value)


def test_missing_keys_are_all_listed(write_json_file):
    with pytest.raises(FormatError) as info:
        read_cct(write_json_file({"info": {}}))
    assert [p.path for p in info.value.problems] == ["images", "annotations", "categories"]
    assert "(and 2 more)" in str(info.value)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ([10, 20, -5, 30], "annotations[0].bbox: non-positive size (w=-5, h=30)"),
        ([10, 20, 0, 30], "annotations[0].bbox: non-positive size (w=0, h=30)"),
        (
            [700, 20, 5, 30],
            "annotations[0].bbox: box [700, 20, 5, 30] lies outside the 640x480 image",
        ),
        (
            [10, -90, 5, 30],
            "annotations[0].bbox: box [10, -90, 5, 30] lies outside the 640x480 image",
        ),
        ([10, 20, 30], "annotations[0].bbox: [10, 20, 30] is not 4 numbers"),
        (["10", 20, 30, 40], "annotations[0].bbox: ['10', 20, 30, 40] is not 4 numbers"),
        ([10, 20, 30, 40, 50], "annotations[0].bbox: [10, 20, 30, 40, 50] is not 4 numbers"),
        ("10,20,30,40", "annotations[0].bbox: '10,20,30,40' is not 4 numbers"),
    ],
)
def test_bad_boxes_are_errors_with_their_path(write_json_file, make_cct, bbox, message):
    doc = make_cct(annotations=[{"id": 1, "image_id": "a", "category_id": 1, "bbox": bbox}])
    errors = errors_of(write_json_file(doc))
    assert len(errors) == 1, errors
    assert errors[0].startswith(message)


def test_nan_box_from_python_records_is_an_error():
    ds = from_records(
        [{"id": 1, "file_name": "a.jpg"}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, float("inf"), 2, 2]}],
        [{"id": 1, "name": "x"}],
    )
    assert "has a NaN or infinite value" in str(validate_cct(ds)[-1])


def test_box_crossing_the_edge_is_a_warning_and_tiny_boxes_hint_normalization(
    write_json_file, make_cct
):
    doc = make_cct(
        annotations=[
            {"id": 1, "image_id": "a", "category_id": 1, "bbox": [600, 400, 100, 100]},
            {"id": 2, "image_id": "a", "category_id": 1, "bbox": [0.1, 0.2, 0.3, 0.4]},
        ]
    )
    problems = validate_cct(read_cct(write_json_file(doc)))
    assert [(p.path, p.severity) for p in problems] == [
        ("annotations[0].bbox", "warning"),
        ("annotations[1].bbox", "warning"),
    ]
    assert "crosses the image edge" in problems[0].message
    assert "normalized" in problems[1].hint


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("../../etc/x", "'..' component"),
        ("a/../../x.jpg", "'..' component"),
        ("/etc/passwd", "absolute path"),
        ("C:\\Users\\x.jpg", "absolute path"),
        ("", "empty path"),
        ("  ", "empty path"),
        (5, "missing or not a string"),
        (None, "missing or not a string"),
    ],
)
def test_hostile_or_missing_file_names_are_flagged(write_json_file, make_cct, file_name, reason):
    doc = make_cct()
    doc["images"][2]["file_name"] = file_name
    errors = errors_of(write_json_file(doc))
    assert len(errors) == 1, errors
    assert errors[0].startswith("images[2].file_name:")
    assert reason in errors[0]


def test_file_names_with_dots_that_are_not_parent_dirs_are_fine(write_json_file, make_cct):
    doc = make_cct()
    doc["images"][2]["file_name"] = "loc2/..hidden/a..b.jpg"
    assert errors_of(write_json_file(doc)) == []


def test_duplicates_and_dangling_references(write_json_file, make_cct):
    doc = make_cct()
    doc["images"].append({"id": "a", "file_name": "dup.jpg", "location": "loc1"})
    doc["categories"].append({"id": 2, "name": "fox again"})
    doc["annotations"] += [
        {"id": "an1", "image_id": "a", "category_id": 1},
        {"id": "an9", "image_id": "zzz", "category_id": 1},
        {"id": "an10", "image_id": "a", "category_id": 42},
    ]
    assert errors_of(write_json_file(doc)) == [
        "images[3].id: duplicate id 'a' — image ids must be unique",
        "categories[3].id: duplicate category id 2 — category ids must be unique",
        "annotations[3].id: duplicate id 'an1' — annotation ids must be unique",
        "annotations[4].image_id: 'zzz' is not an image id — remove the annotation or add its image",
        "annotations[5].category_id: 42 is not a category id — add the category or fix the id",
    ]


def test_wrong_field_types(write_json_file, make_cct):
    doc = make_cct(categories=[{"id": "1", "name": "deer"}, {"id": 0}])
    doc["images"][0]["width"] = "wide"
    doc["images"][1]["height"] = -3
    del doc["images"][2]["id"]
    errors = errors_of(write_json_file(doc))
    assert errors[:4] == [
        "images[2].id: missing — every image needs an id",
        "images[0].width: 'wide' is not a positive number — image sizes are in pixels",
        "images[1].height: -3 is not a positive number — image sizes are in pixels",
        "categories[0].id: '1' is not an integer — category ids are integers (0 is 'empty')",
    ]
    assert "categories[1].name: missing or not a string — every category needs a name" in errors
    # bad image sizes must not produce nonsense "outside the nanx480 image" errors
    assert not any("nan" in e for e in errors)


def test_missing_locations_are_warnings_and_many_are_summarized(write_json_file, make_cct):
    few = make_cct()
    del few["images"][0]["location"]
    problems = validate_cct(read_cct(write_json_file(few)))
    assert [(p.path, p.severity) for p in problems] == [("images[0].location", "warning")]
    many = make_cct(images=[{"id": i, "file_name": f"{i}.jpg"} for i in range(100)], annotations=[])
    problems = validate_cct(read_cct(write_json_file(many, name="many.json")))
    assert len(problems) == 1
    assert "(and 99 more images)" in problems[0].message


def test_images_dir_reports_missing_files(tmp_path, write_json_file, make_cct):
    (tmp_path / "imgs" / "loc1").mkdir(parents=True)
    (tmp_path / "imgs" / "loc1" / "a.jpg").write_bytes(b"x")
    problems = validate_cct(read_cct(write_json_file(make_cct())), images_dir=tmp_path / "imgs")
    assert [(p.path, p.severity) for p in problems] == [
        ("images[1].file_name", "warning"),
        ("images[2].file_name", "warning"),
    ]
    assert "not found under" in problems[0].message


def test_check_cct_raises_on_errors_only(write_json_file, make_cct):
    ok = make_cct()
    del ok["images"][0]["location"]
    check_cct(read_cct(write_json_file(ok)), "ok.json")  # a warning passes
    bad = make_cct(annotations=[{"id": 1, "image_id": "nope", "category_id": 1}])
    with pytest.raises(FormatError, match=r"bad.json: annotations\[0\].image_id"):
        check_cct(read_cct(write_json_file(bad, name="bad.json")), "bad.json")


def test_location_column_is_string_even_without_any_location():
    ds = from_records([{"id": 1, "file_name": "a.jpg"}], [], [{"id": 0, "name": "empty"}])
    assert ds.images["location"].isna().all()
    assert pd.api.types.is_string_dtype(ds.images["location"].dtype)
