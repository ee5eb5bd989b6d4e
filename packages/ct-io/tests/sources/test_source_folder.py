"""The ``folder`` source: label-named sub-folders, locations from paths, or a CCT + images."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ct_io.cct import read_cct
from ct_io.cli import app
from ct_io.errors import CamtrapError
from ct_io.options import ConfigError
from ct_io.sources import fetch

LAYOUT = {  # site/label → number of images
    "site_a/bobcat": 3,
    "site_a/empty": 2,
    "site_b/bobcat": 1,
    "site_b/coyote": 2,
}


@pytest.fixture()
def sorted_photos(tmp_path: Path, md_images: list[Path]) -> Path:
    root = tmp_path / "photos"
    pics = iter(md_images)
    for folder, n in LAYOUT.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            shutil.copy(next(pics), root / folder / f"IMG_{i:03d}.JPG")
    (root / "site_b" / "coyote" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "site_a" / "bobcat" / ".hidden.jpg").write_bytes(b"x")
    (root / "site_a" / "bobcat" / "notes.txt").write_text("not an image")
    (root / ".thumbs").mkdir()
    (root / ".thumbs" / "t.jpg").write_bytes(b"x")
    return root


def test_label_folders_with_location_from_a_path_component(sorted_photos, tmp_path, md_images):
    result = fetch(
        "folder", tmp_path / "out", {"root": str(sorted_photos), "location_component": 0}
    )
    assert result.name == "photos" and result.images_dir == sorted_photos
    assert result.cct_path == tmp_path / "out" / "photos" / "photos_cct.json"
    ds = read_cct(result.cct_path)
    assert len(ds.images) == sum(LAYOUT.values()) + 1  # + broken.jpg, flagged corrupt
    assert ds.category_names == {0: "empty", 1: "bobcat", 2: "coyote"}
    labels = Counter(ds.annotations["category_id"].map(ds.category_names))
    assert labels == {"bobcat": 4, "empty": 2, "coyote": 3}
    locs = dict(zip(ds.images["file_name"], ds.images["location"], strict=True))
    assert all(locs[f] == f.split("/")[0] for f in locs)
    im = ds.images.set_index("file_name")
    assert bool(im.loc["site_b/coyote/broken.jpg", "corrupt"]) is True
    with Image.open(sorted_photos / "site_a/bobcat/IMG_000.JPG") as pic:
        assert (
            im.loc["site_a/bobcat/IMG_000.JPG", "width"],
            im.loc["site_a/bobcat/IMG_000.JPG", "height"],
        ) == pic.size
    assert not any(".hidden" in f or ".thumbs" in f for f in ds.images["file_name"])


def test_location_and_label_from_regexes(sorted_photos, tmp_path):
    opts = {
        "root": str(sorted_photos),
        "location_regex": r"site_(?P<location>[a-z])/",
        "label_regex": r"/(?P<label>[a-z]+)/IMG",
        "read_headers": False,
    }
    ds = read_cct(fetch("folder", tmp_path / "out", opts).cct_path)
    assert set(ds.images["location"]) == {"a", "b"}
    assert "broken.jpg" not in " ".join(ds.images["file_name"])  # no label match → left out
    assert len(ds.images) == sum(LAYOUT.values())


def test_cct_plus_images_leaves_out_missing_and_unsafe_files(tmp_path, md_images):
    root = tmp_path / "imgs"
    (root / "cam1").mkdir(parents=True)
    shutil.copy(md_images[0], root / "cam1" / "a.jpg")
    shutil.copy(md_images[1], root / "cam1" / "b.jpg")
    cct = {
        "info": {},
        "images": [
            {"id": 1, "file_name": "cam1/a.jpg"},
            {"id": 2, "file_name": "cam1/b.jpg"},
            {"id": 3, "file_name": "cam1/gone.jpg"},
            {"id": 4, "file_name": "../../etc/passwd"},
        ],
        "annotations": [{"id": i, "image_id": i, "category_id": 1} for i in (1, 2, 3, 4)],
        "categories": [{"id": 1, "name": "fox"}],
    }
    (tmp_path / "mine.json").write_text(json.dumps(cct))
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "folder",
            str(root),
            str(tmp_path / "out"),
            "--cct",
            str(tmp_path / "mine.json"),
            "--dataset",
            "mine",
            "--location-regex",
            r"^(cam\d+)/",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1 images: missing on disk" in res.output and "1 images: unsafe path" in res.output
    ds = read_cct(tmp_path / "out" / "mine" / "mine_cct.json")
    assert ds.images["id"].tolist() == [1, 2]
    assert ds.images["location"].tolist() == ["cam1", "cam1"]
    assert ds.annotations["image_id"].tolist() == [1, 2]


def test_folder_without_labelled_images_is_a_clear_error(tmp_path, md_images):
    (tmp_path / "flat").mkdir()
    shutil.copy(md_images[0], tmp_path / "flat" / "x.jpg")
    with pytest.raises(CamtrapError, match="no image has a label folder"):
        fetch("folder", tmp_path / "out", {"root": str(tmp_path / "flat")})
    with pytest.raises(CamtrapError, match="not a folder"):
        fetch("folder", tmp_path / "out", {"root": str(tmp_path / "nope")})


def test_bad_regex_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"location_regex: not a valid regex"):
        fetch("folder", tmp_path, {"root": str(tmp_path), "location_regex": "site_(["})
