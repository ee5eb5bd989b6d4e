"""MegaDetector batch-output JSON: the real file, the variants other tools write, validation."""

from __future__ import annotations

import copy
import json

import pytest

from ct_io.errors import CamtrapError, FormatError
from ct_io.md import MDResults, md_to_dict, parse_md, read_md, validate_md_dict, write_md


def test_real_megadetector_output_loads_validates_and_round_trips(tmp_path, md_test_json):
    raw = json.loads(md_test_json.read_text())
    assert validate_md_dict(raw) == []
    md = read_md(md_test_json)
    assert md.info.format_version == "1.1"
    assert md.info.detector == "megadetector_v5_camonly_mosaic_xlarge_dist_5a_last"
    assert len(md.images) == len(raw["images"]) == 13
    assert md.images[0].extra["max_detection_conf"] == raw["images"][0]["max_detection_conf"]
    assert md_to_dict(md) == raw
    write_md(md, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == raw
    assert read_md(tmp_path / "out.json") == md


def test_models_expose_detections(make_md):
    md = parse_md(make_md())
    assert isinstance(md, MDResults)
    assert list(md.by_file()) == ["a.jpg", "b.jpg"]
    [(image, k, det)] = list(md.iter_detections())
    assert (image.file, k, det.category, det.conf, det.bbox) == (
        "a.jpg",
        0,
        "1",
        0.91,
        [0.1, 0.2, 0.3, 0.4],
    )


def test_speciesnet_numeric_format_version_is_read_as_a_string(make_md):
    doc = make_md(info={"format_version": 1.4})
    problems = validate_md_dict(doc)
    assert [(p.path, p.severity) for p in problems] == [("info.format_version", "warning")]
    md = parse_md(doc)
    assert md.info.format_version == "1.4"
    assert md_to_dict(md)["info"]["format_version"] == "1.4"


def test_animl_3_0_with_empty_category(make_md):
    doc = make_md(
        info={"format_version": "3.0"}, detection_categories={"0": "empty", "1": "animal"}
    )
    doc["images"][1]["detections"] = [{"category": "0", "conf": 0.5, "bbox": [0, 0, 1, 1]}]
    assert validate_md_dict(doc) == []
    assert md_to_dict(parse_md(doc)) == doc


def test_pytorchwildlife_empty_max_detection_conf_survives(make_md):
    doc = make_md()
    doc["images"][1]["max_detection_conf"] = ""
    assert validate_md_dict(doc) == []
    md = parse_md(doc)
    assert md.images[1].extra == {"max_detection_conf": ""}
    assert md_to_dict(md) == doc


def test_failed_images_have_null_detections(make_md):
    doc = make_md(
        images=[{"file": "bad.jpg", "failure": "Failure image access", "detections": None}]
    )
    assert validate_md_dict(doc) == []
    md = parse_md(doc)
    assert md.images[0].detections is None and md.images[0].failure == "Failure image access"
    assert md_to_dict(md) == doc
    # a failure without "detections" is accepted and written canonically with detections: null
    short = make_md(images=[{"file": "bad.jpg", "failure": "Failure image access"}])
    assert md_to_dict(parse_md(short))["images"][0] == {
        "file": "bad.jpg",
        "failure": "Failure image access",
        "detections": None,
    }


def test_null_detections_without_failure_is_a_warning(make_md):
    doc = make_md(images=[{"file": "a.jpg", "detections": None}])
    assert [(p.path, p.severity) for p in validate_md_dict(doc)] == [
        ("images[0].detections", "warning")
    ]


def test_video_fields_survive(make_md):
    doc = make_md(
        images=[
            {
                "file": "clip.mp4",
                "frame_rate": 29.97,
                "frames_processed": [0, 30, 60],
                "detections": [
                    {"category": "1", "conf": 0.8, "bbox": [0.1, 0.1, 0.2, 0.2], "frame_number": 30}
                ],
            }
        ]
    )
    assert validate_md_dict(doc) == []
    md = parse_md(doc)
    assert md.images[0].extra["frame_rate"] == 29.97
    assert md.images[0].detections[0].extra == {"frame_number": 30}
    assert md_to_dict(md) == doc


def test_classifications_and_extra_top_level_keys_survive(tmp_path, make_md):
    doc = make_md(
        classification_categories={"0": "deer", "5": "fox"},
        classification_category_descriptions={
            "0": "animalia;chordata;cervidae",
            "5": "animalia;canidae",
        },
        summary_report="ok",
    )
    doc["info"]["classifier"] = "ct-infer"
    doc["info"]["detector_metadata"] = {"typical_detection_threshold": 0.2}
    doc["images"][0]["detections"][0]["classifications"] = [["5", 0.7], ["0", 0.2]]
    assert validate_md_dict(doc) == []
    write_md(parse_md(doc), tmp_path / "md.json")
    assert json.loads((tmp_path / "md.json").read_text()) == doc


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0.1, 0.2, 1.2, 0.4]),
            "images[0].detections[0].bbox: width 1.2 > 1 — bbox must be normalized [x, y, w, h]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0.1, 0.2, 0.3, 1.5]),
            "images[0].detections[0].bbox: height 1.5 > 1 — bbox must be normalized [x, y, w, h]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0.1, 0.2, -0.3, 0.4]),
            "images[0].detections[0].bbox: negative size (w=-0.3, h=0.4) — bbox must be normalized [x, y, w, h]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[120, 40, 30, 40]),
            "images[0].detections[0].bbox: width 30 > 1 — bbox must be normalized [x, y, w, h]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0.1, 0.2, 0.3]),
            "images[0].detections[0].bbox: [0.1, 0.2, 0.3] is not 4 numbers — bbox must be normalized [x, y, w, h]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(bbox=[0.1, None, 0.3, 0.1]),
            "images[0].detections[0].bbox: [0.1, None, 0.3, 0.1] has a non-finite or non-numeric value",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(conf=1.5),
            "images[0].detections[0].conf: 1.5 outside [0, 1]",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(conf="high"),
            "images[0].detections[0].conf: 'high' is not a finite number",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(category="7"),
            "images[0].detections[0].category: '7' is not in detection_categories — known: 1, 2, 3",
        ),
        (
            lambda d: d["images"][0]["detections"][0].update(category=1),
            "images[0].detections[0].category: missing or not a string id",
        ),
        (
            lambda d: d["images"][1].update(file="../../etc/x"),
            "images[1].file: '../../etc/x': '..' component",
        ),
        (
            lambda d: d["images"][1].update(file="/abs/x.jpg"),
            "images[1].file: '/abs/x.jpg': absolute path",
        ),
        (lambda d: d["images"][1].pop("file"), "images[1].file: missing or not a string"),
        (lambda d: d["images"][1].pop("detections"), "images[1].detections: missing"),
        (
            lambda d: d["images"][1].update(detections={}),
            "images[1].detections: expected a list, got dict",
        ),
        (lambda d: d["info"].pop("format_version"), "info.format_version: missing"),
        (
            lambda d: d["info"].update(format_version="v1"),
            "info.format_version: 'v1' is not a version number",
        ),
        (lambda d: d.pop("detection_categories"), "detection_categories: missing or not an object"),
        (lambda d: d.update(images={}), "images: missing or not a list"),
        (
            lambda d: d.update(classification_categories={"x": "deer"}),
            "classification_categories.x: id must be a non-negative integer string",
        ),
    ],
)
def test_validation_messages_carry_json_paths(make_md, mutate, expected):
    doc = copy.deepcopy(make_md())
    mutate(doc)
    errors = [str(p) for p in validate_md_dict(doc) if p.is_error]
    assert errors and errors[0].startswith(expected), errors
    with pytest.raises(FormatError) as info:
        parse_md(doc, source="x.json")
    assert str(info.value).startswith(f"x.json: {errors[0]}")


def test_unknown_class_and_unsorted_classifications(make_md):
    doc = make_md(classification_categories={"0": "deer"})
    doc["images"][0]["detections"][0]["classifications"] = [["0", 0.1], ["3", 0.6]]
    problems = validate_md_dict(doc)
    assert [(p.path, p.severity) for p in problems] == [
        ("images[0].detections[0].classifications[1]", "error"),
        ("images[0].detections[0].classifications[1]", "warning"),
    ]
    assert "not in classification_categories" in problems[0].message
    assert "not sorted" in problems[1].message


def test_box_past_the_edge_is_a_warning(make_md):
    doc = make_md()
    doc["images"][0]["detections"][0]["bbox"] = [0.8, 0.5, 0.25, 0.4]
    problems = validate_md_dict(doc)
    assert [(p.severity, p.hint) for p in problems] == [("warning", "will be clipped to the image")]
    parse_md(doc)  # warnings do not stop loading


def test_duplicate_files_are_a_warning(make_md):
    doc = make_md()
    doc["images"][1]["file"] = "a.jpg"
    assert [(p.path, p.severity) for p in validate_md_dict(doc)] == [("images[1].file", "warning")]


def test_every_problem_is_reported_not_just_the_first(make_md):
    doc = make_md()
    doc["images"] = [
        {"file": f"{i}.jpg", "detections": [{"category": "1", "conf": 2, "bbox": [0, 0, 0.1, 0.1]}]}
        for i in range(5)
    ]
    with pytest.raises(FormatError) as info:
        parse_md(doc)
    assert [p.path for p in info.value.problems] == [
        f"images[{i}].detections[0].conf" for i in range(5)
    ]
    assert "(and 4 more)" in str(info.value)


def test_top_level_not_an_object(write_json_file):
    assert str(validate_md_dict([1, 2])[0]).startswith("$: expected a JSON object, got list")
    with pytest.raises(FormatError):
        read_md(write_json_file([1, 2]))


@pytest.mark.parametrize("raw", ["", '{"info": {"format_version": "1.5"}, "images": [', "nope"])
def test_malformed_md_files_are_one_line_errors(write_json_file, raw):
    with pytest.raises(CamtrapError) as info:
        read_md(write_json_file(raw=raw))
    assert "\n" not in str(info.value)
    assert "data.json" in str(info.value)
