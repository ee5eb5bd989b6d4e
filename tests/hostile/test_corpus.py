"""Bad inputs through the real console scripts: each case names its expected outcome.

Every outcome keeps the same rule: no Python traceback reaches the user; either a one-line
error (exit 1 or 2) that says what to do, or a completed run with the failures counted.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from .conftest import assert_no_traceback, make_images, run_cli, write_json

CATS = [{"id": 1, "name": "deer"}]
GOOD_IMAGE = {"id": "g", "file_name": "good.jpg", "width": 64, "height": 48, "location": "L"}


def cct(
    images: list[dict[str, Any]], anns: list[dict[str, Any]], cats: Any = CATS
) -> dict[str, Any]:
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}


def box_cct(bbox: Any) -> dict[str, Any]:
    return cct([GOOD_IMAGE], [{"id": "a", "image_id": "g", "category_id": 1, "bbox": bbox}])


class Bomb:
    def __reduce__(self) -> Any:
        return (os.system, ("touch PWNED",))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A work folder: data/images with every awkward image, and hostile files beside it."""
    make_images(tmp_path / "data" / "images")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jpg").write_bytes(
        (tmp_path / "data" / "images" / "good.jpg").read_bytes()
    )
    (tmp_path / "data" / "images" / "link.jpg").symlink_to(tmp_path / "outside" / "secret.jpg")
    (tmp_path / "malformed.json").write_text('{"images": [ {"id": 1,, }]')
    full = json.dumps(box_cct([1, 2, 3, 4]))
    (tmp_path / "truncated.json").write_text(full[: len(full) // 2])
    (tmp_path / "zero.json").write_bytes(b"")
    (tmp_path / "nan_box.json").write_text(full.replace("[1, 2, 3, 4]", "[NaN, 2, 3, 4]"))
    (tmp_path / "inf_box.json").write_text(full.replace("[1, 2, 3, 4]", "[1e999, 2, 3, 4]"))
    write_json(tmp_path / "types.json", {"images": "x", "annotations": 5, "categories": {"a": 1}})
    write_json(tmp_path / "neg_box.json", box_cct([-5, -5, 10, 10]))
    write_json(tmp_path / "big_box.json", box_cct([0, 0, 100000, 100000]))
    write_json(tmp_path / "short_box.json", box_cct([1, 2, 3]))
    write_json(tmp_path / "str_box.json", box_cct(["a", 1, 2, 3]))
    write_json(
        tmp_path / "dups.json",
        cct(
            [GOOD_IMAGE, GOOD_IMAGE],
            [
                {"id": "a", "image_id": "g", "category_id": 1},
                {"id": "a", "image_id": "missing", "category_id": 9},
            ],
        ),
    )
    write_json(tmp_path / "empty.json", cct([], [], []))
    names = [
        p.relative_to(tmp_path / "data" / "images").as_posix()
        for p in (tmp_path / "data" / "images").rglob("*")
        if p.is_file() or p.is_symlink()
    ]
    names += [
        "missing.jpg",
        "../outside/secret.jpg",
        str(tmp_path / "outside" / "secret.jpg"),
        "a/../../../x.jpg",
    ]
    images = [
        {"id": f"i{k}", "file_name": n, "width": 64, "height": 48, "location": f"L{k % 3}"}
        for k, n in enumerate(names)
    ]
    anns = [
        {"id": f"a{k}", "image_id": f"i{k}", "category_id": 1, "bbox": [20, 10, 20, 20]}
        for k in range(len(names))
    ]
    write_json(tmp_path / "hostile.json", cct(images, anns))
    (tmp_path / "spec_bad.json").write_text('{"deer": {"dataset_labels": ')
    write_json(
        tmp_path / "spec_types.json", {"deer": {"dataset_labels": "hostile", "max_count": "ten"}}
    )
    (tmp_path / "spec_bad.csv").write_text(
        "output_label,type,content\ndeer,nonsense_type,hostile|deer\n"
    )
    write_json(tmp_path / "spec_ok.json", {"deer": {"dataset_labels": {"hostile": ["deer"]}}})
    (tmp_path / "bomb.pt").write_bytes(pickle.dumps(Bomb()))
    (tmp_path / "bomb.safetensors").write_bytes(pickle.dumps(Bomb()))
    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "crops.csv").write_text("path\nx.jpg\n")
    (tmp_path / "crops" / "x.jpg").write_bytes(
        (tmp_path / "data" / "images" / "good.jpg").read_bytes()
    )
    (tmp_path / "bad_md.json").write_text(
        '{"images": [{"file": "../../etc/passwd", "detections": [{"category": "1", "conf": "high", "bbox": [0, 0, 2, 2]}]}]}'
    )
    (tmp_path / "probs.csv").write_text("path,deer\n../../../evil.jpg,0.9\n")
    return tmp_path


# (case id, argv, allowed exit codes, text the output must contain)
CASES: list[tuple[str, list[str], set[int], str]] = [
    ("validate-malformed-json", ["ct-io", "validate", "malformed.json"], {1}, "malformed JSON"),
    ("validate-truncated-json", ["ct-io", "validate", "truncated.json"], {1}, "truncated"),
    ("info-zero-byte-json", ["ct-io", "info", "zero.json"], {2}, "zero.json"),
    ("validate-wrong-types", ["ct-io", "validate", "types.json"], {1}, "must be a list"),
    ("validate-nan-box", ["ct-io", "validate", "nan_box.json"], {1}, "NaN"),
    ("validate-inf-box", ["ct-io", "validate", "inf_box.json"], {1}, "out of range"),
    ("info-inf-box", ["ct-io", "info", "inf_box.json"], {2}, "out of range"),
    ("validate-negative-box", ["ct-io", "validate", "neg_box.json"], {0, 1}, "bbox"),
    ("validate-oversized-box", ["ct-io", "validate", "big_box.json"], {0, 1}, "bbox"),
    ("validate-short-box", ["ct-io", "validate", "short_box.json"], {1}, "bbox"),
    ("validate-string-box", ["ct-io", "validate", "str_box.json"], {1}, "bbox"),
    ("validate-duplicates", ["ct-io", "validate", "dups.json"], {1}, "duplicate id"),
    ("validate-missing-image", ["ct-io", "validate", "dups.json"], {1}, "is not an image id"),
    (
        "validate-hostile-paths",
        ["ct-io", "validate", "hostile.json", "--images-dir", "data/images"],
        {1},
        "'..' component",
    ),
    ("validate-empty", ["ct-io", "validate", "empty.json"], {0}, "ok"),
    ("info-hostile", ["ct-io", "info", "hostile.json"], {0}, "deer"),
    (
        "crop-hostile-images-and-paths",
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "hostile.json", "-w", "1"],
        {0},
        "failed",
    ),
    (
        "crop-empty",
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "empty.json", "-w", "1"],
        {0},
        "0 images",
    ),
    (
        "crop-negative-box",
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "neg_box.json", "-w", "1"],
        {0},
        "done",
    ),
    (
        "crop-oversized-box",
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "big_box.json", "-w", "1"],
        {0},
        "done",
    ),
    (
        "crop-nan-box",
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "nan_box.json", "-w", "1"],
        {2},
        "NaN",
    ),
    (
        "crop-bad-md",
        ["ct-crop", "crop", "out", "-i", "data/images", "-d", "bad_md.json", "-w", "1"],
        {1, 2},
        "bad_md.json",
    ),
    (
        "select-malformed-spec",
        ["ct-taxonomy", "select", "spec_bad.json", "-o", "sel", "-d", "hostile.json"],
        {1, 2},
        "spec_bad.json",
    ),
    (
        "select-wrong-types-spec",
        ["ct-taxonomy", "select", "spec_types.json", "-o", "sel", "-d", "hostile.json"],
        {1, 2},
        "dataset_labels",
    ),
    ("validate-bad-csv-spec", ["ct-taxonomy", "validate", "spec_bad.csv"], {1, 2}, "nonsense_type"),
    (
        "select-empty-dataset",
        ["ct-taxonomy", "select", "spec_ok.json", "-o", "sel", "-d", "hostile=empty.json"],
        {0, 1, 2},
        "",
    ),
    (
        "select-missing-dataset-file",
        ["ct-taxonomy", "select", "spec_ok.json", "-o", "sel", "-d", "hostile=nope.json"],
        {1, 2},
        "nope.json",
    ),
    (
        "dataset-empty-manifest",
        ["ct-splits", "dataset", "ds", "-c", "crops", "--cct", "empty.json"],
        {1, 2},
        "",
    ),
    (
        "classify-pickle-bomb-pt",
        ["ct-infer", "classify", "bomb.pt", "crops", "p.csv"],
        {1, 2},
        "bomb.pt",
    ),
    (
        "classify-pickle-bomb-safetensors",
        ["ct-infer", "classify", "bomb.safetensors", "crops", "p.csv"],
        {1, 2},
        "bomb.safetensors",
    ),
    (
        "merge-malformed-md",
        ["ct-infer", "merge", "probs.csv", "-o", "m.json", "-d", "malformed.json"],
        {1, 2},
        "malformed.json",
    ),
    (
        "merge-hostile-crop-path",
        ["ct-infer", "merge", "probs.csv", "-o", "m.json", "-d", "bad_md.json"],
        {1, 2},
        "",
    ),
    ("train-missing-config", ["ct-train", "train", "nope/config.yml"], {1, 2}, "config.yml"),
    ("train-malformed-config", ["ct-train", "train", "malformed.json"], {1, 2}, "malformed.json"),
]


@pytest.mark.parametrize(
    ("argv", "codes", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gives_a_clear_outcome(
    work: Path, argv: list[str], codes: set[int], needle: str
) -> None:
    result = run_cli(argv, cwd=work)
    assert_no_traceback(result)
    assert result.code in codes, result.text[-2000:]
    assert needle in result.text, result.text[-2000:]
    if result.code != 0:
        errors = [line for line in result.err.splitlines() if line.startswith("error")]
        assert len(errors) <= 1 or argv[1] == "validate", result.err
    assert not (work / "PWNED").exists(), "a pickle payload ran"
    assert sorted(p.name for p in (work / "outside").iterdir()) == ["secret.jpg"]


def test_crop_counts_every_bad_image_and_writes_nothing_outside(work: Path) -> None:
    result = run_cli(
        ["ct-crop", "crop", "out", "-i", "data/images", "--cct", "hostile.json", "-w", "1"],
        cwd=work,
    )
    assert result.code == 0, result.text
    failures = (work / "out" / "crop_failures.csv").read_text()
    for name, kind in [
        ("zero.jpg", "bad"),
        ("truncated.jpg", "bad"),
        ("text.jpg", "bad"),
        ("missing.jpg", "nonexistent"),
        ("../outside/secret.jpg", "unsafe_path"),
        ("a/../../../x.jpg", "unsafe_path"),
    ]:
        assert f"{name},,{kind}" in failures, failures
    made = (work / "out" / "crops.csv").read_text()
    for name in [
        "cmyk.jpg",
        "sixteen.png",
        "rgba.png",
        "rotated.jpg",
        "png_named.jpg",
        "ünïcødé ñame 鹿.jpg",
        "with space/a b.jpg",
        "l" * 200 + ".jpg",
    ]:
        assert name in made, name
    out = (work / "out").resolve()
    for p in work.rglob("*"):
        if p.is_file() and p.stat().st_mtime_ns and "out" in p.parts:
            assert p.resolve().is_relative_to(out) or p.is_symlink()
    assert sorted(p.name for p in (work / "outside").iterdir()) == ["secret.jpg"]


def test_a_50000_class_label_index_and_one_location_label(work: Path, tmp_path: Path) -> None:
    labels = {str(i): f"species_{i:05d}" for i in range(50_000)}
    write_json(tmp_path / "li.json", labels)
    # a dataset whose one label sits at a single location: dataset keeps it, split says what to do
    images = [
        {"id": f"i{k}", "file_name": f"f{k}.jpg", "width": 64, "height": 48, "location": "only"}
        for k in range(5)
    ]
    anns = [
        {"id": f"a{k}", "image_id": f"i{k}", "category_id": 1, "bbox": [1, 1, 10, 10]}
        for k in range(5)
    ]
    write_json(work / "one_loc.json", cct(images, anns))
    rows = [
        "crop,image,box_index,source,detector,category,confidence,box_x,box_y,box_w,box_h,crop_x,crop_y,crop_w,crop_h,width,height,image_width,image_height"
    ]
    rows += [
        f"f{k}.jpg___crop00.jpg,f{k}.jpg,0,gt,,deer,,1,1,10,10,1,1,10,10,10,10,64,48"
        for k in range(5)
    ]
    (work / "oc").mkdir()
    (work / "oc" / "crops.csv").write_text("\n".join(rows) + "\n")
    ds = run_cli(
        ["ct-splits", "dataset", "ds1", "-c", "oc", "--cct", "one_loc.json", "--no-check-files"],
        cwd=work,
    )
    assert_no_traceback(ds)
    assert ds.code == 0, ds.text
    sp = run_cli(["ct-splits", "split", "ds1", "--trials", "50"], cwd=work)
    assert_no_traceback(sp)
    assert sp.code in {0, 1, 2}, sp.text
    merged = run_cli(
        [
            "ct-infer",
            "merge",
            "probs.csv",
            "-o",
            "m.json",
            "--label-index",
            str(tmp_path / "li.json"),
            "-d",
            "bad_md.json",
        ],
        cwd=work,
    )
    assert_no_traceback(merged)
