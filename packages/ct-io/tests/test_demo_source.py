"""The built-in ``demo`` data source: a deterministic synthetic camera-trap dataset."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ct_io.cct import BBOX_COLUMNS, read_cct, validate_cct
from ct_io.jsonio import read_json
from ct_io.md import read_md, validate_md_dict
from ct_io.options import ConfigError
from ct_io.sources import FetchedDataset, fetch, get_data_source
from ct_io.sources.demo import DemoOptions, DemoSource

SMALL = {"num_images": 36, "num_locations": 3, "width": 160, "height": 120}


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory) -> FetchedDataset:
    """The dataset exactly as ``ct-io fetch demo OUT`` makes it (default options)."""
    return fetch("demo", tmp_path_factory.mktemp("demo"))


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def is_gray(path: Path) -> bool:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    return bool(
        np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 8
        and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 8
    )


def test_registered_as_a_builtin_data_source():
    reg = get_data_source("demo")
    assert reg.factory is DemoSource and reg.options is DemoOptions
    assert reg.distribution == "ct-io"


def test_fetch_layout(default_demo):
    root = default_demo.cct_path.parent
    assert default_demo.name == "demo"
    assert default_demo.cct_path == root / "demo_cct.json"
    assert default_demo.detections_path == root / "demo_md.json"
    assert default_demo.images_dir == root / "images"


def test_default_dataset_validates_clean(default_demo):
    ds = read_cct(default_demo.cct_path)
    assert validate_cct(ds, images_dir=default_demo.images_dir) == []
    assert validate_md_dict(read_json(default_demo.detections_path)) == []
    md = read_md(default_demo.detections_path)
    assert md.info.format_version == "1.5"
    assert sorted(md.by_file()) == sorted(ds.images["file_name"])


def test_default_counts_locations_and_species(default_demo):
    ds = read_cct(default_demo.cct_path)
    assert len(ds.images) == 300
    assert ds.images["location"].nunique() == 6
    assert all(isinstance(v, str) for v in ds.images["location"])
    assert ds.category_names == {0: "empty", 1: "deer", 2: "fox", 3: "badger", 4: "boar", 5: "hare"}
    assert set(ds.annotations["category_id"]) == {0, 1, 2, 3, 4, 5}
    assert (ds.images["width"] == 640).all() and (ds.images["height"] == 480).all()


def test_images_are_real_jpegs_of_the_stated_size(default_demo):
    ds = read_cct(default_demo.cct_path)
    for name in ds.images["file_name"].iloc[::37]:
        with Image.open(default_demo.images_dir / name) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (640, 480))


def test_sequences_of_three_frames_one_second_apart(default_demo):
    im = read_cct(default_demo.cct_path).images
    assert im["seq_id"].nunique() == 100
    for _, frames in im.groupby("seq_id"):
        assert frames["frame_num"].tolist() == [0, 1, 2]
        assert (frames["seq_num_frames"] == 3).all()
        assert frames["location"].nunique() == 1
        times = [dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in frames["datetime"]]
        assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [1, 1]


def test_the_same_animal_moves_a_little_between_frames(default_demo):
    ds = read_cct(default_demo.cct_path)
    boxed = ds.annotations.dropna(subset=["bbox_x"]).merge(
        ds.images, left_on="image_id", right_on="id"
    )
    single = boxed.groupby("seq_id").filter(
        lambda g: len(g) == 3 and g["category_id"].nunique() == 1
    )
    moves = []
    for _, g in single.groupby("seq_id"):
        centre = (g["bbox_x"] + g["bbox_w"] / 2).to_numpy()
        moves.append(np.abs(np.diff(centre)).max())
    assert len(moves) > 20
    assert 2 < np.median(moves) < 100  # moving, but not jumping across the frame


def test_night_frames_are_grayscale_and_at_night(default_demo):
    im = read_cct(default_demo.cct_path).images
    gray = [is_gray(default_demo.images_dir / f) for f in im["file_name"]]
    hours = [int(t[11:13]) for t in im["datetime"]]
    night = [h >= 20 or h < 5 for h in hours]
    assert gray == night
    assert 0.15 < np.mean(gray) < 0.45  # night_fraction 0.3


def test_blanks_are_category_empty_without_boxes(default_demo):
    ds = read_cct(default_demo.cct_path)
    an = ds.annotations
    empty = an[an["category_id"] == 0]
    assert empty[list(BBOX_COLUMNS)].isna().all().all()
    assert an[an["category_id"] != 0][list(BBOX_COLUMNS)].notna().all().all()
    blank_images = set(empty["image_id"])
    assert not blank_images & set(an[an["category_id"] != 0]["image_id"])
    assert 0.05 < len(blank_images) / len(ds.images) < 0.3  # blank_fraction 0.15


def test_boxes_are_inside_the_image_and_some_animals_leave_the_frame(default_demo):
    an = read_cct(default_demo.cct_path).annotations.dropna(subset=["bbox_x"])
    x, y, w, h = (an[c].to_numpy() for c in BBOX_COLUMNS)
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 640).all() and (y + h <= 480).all()
    assert (w >= 4).all() and (h >= 4).all()
    at_edge = (x == 0) | (y == 0) | (x + w == 640) | (y + h == 480)
    assert 0 < at_edge.sum() < len(an) / 2
    assert (h.max() / h.min()) > 4  # varied sizes


def test_md_boxes_are_jittered_gt_boxes_plus_low_confidence_false_positives(default_demo):
    ds = read_cct(default_demo.cct_path)
    md = read_md(default_demo.detections_path)
    gt = collections.defaultdict(list)
    files = dict(zip(ds.images["id"], ds.images["file_name"], strict=True))
    for row in ds.annotations.dropna(subset=["bbox_x"]).itertuples():
        gt[files[row.image_id]].append(
            np.array([row.bbox_x / 640, row.bbox_y / 480, row.bbox_w / 640, row.bbox_h / 480])
        )
    matched, unmatched_confs, n_gt = 0, [], 0
    for image in md.images:
        assert image.detections is not None
        n_gt += len(gt[image.file])
        for det in image.detections:
            x, y, w, h = det.bbox
            assert x >= 0 and y >= 0 and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9 and w > 0 and h > 0
            if any(iou(np.array(det.bbox), g) > 0.5 for g in gt[image.file]):
                matched += 1
            else:
                unmatched_confs.append(det.conf)
    assert matched >= 0.9 * n_gt
    assert unmatched_confs and max(unmatched_confs) <= 0.2  # false positives are low-confidence
    confs = [d.conf for _, _, d in md.iter_detections()]
    assert np.median(confs) > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_each_location_favours_its_own_species(default_demo):
    ds = read_cct(default_demo.cct_path)
    labels = ds.annotations[ds.annotations["category_id"] != 0].merge(
        ds.images, left_on="image_id", right_on="id"
    )
    share = pd.crosstab(labels["location"], labels["category_id"], normalize="index")
    assert share.idxmax(axis=1).nunique() >= 4  # different locations, different dominant species
    assert share.max(axis=1).mean() > 0.4
    assert labels.groupby("category_id")["location"].nunique().min() >= 3  # yet species are spread


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = fetch("demo", tmp_path / "a", {**SMALL, "seed": 7})
    b = fetch("demo", tmp_path / "b", {**SMALL, "seed": 7})
    c = fetch("demo", tmp_path / "c", {**SMALL, "seed": 8})
    fa, fb = files_of(a.cct_path.parent), files_of(b.cct_path.parent)
    assert fa == fb and len(fa) == 36 + 3
    assert files_of(c.cct_path.parent) != fa


def test_options_shape_the_dataset(tmp_path):
    result = fetch(
        "demo",
        tmp_path,
        {
            **SMALL,
            "num_images": 40,
            "num_species": 4,
            "frames_per_sequence": 5,
            "night_fraction": 0.0,
            "blank_fraction": 0.0,
            "name": "tiny",
        },
    )
    assert result.cct_path == tmp_path / "tiny" / "tiny_cct.json"
    ds = read_cct(result.cct_path)
    assert len(ds.images) == 40 and ds.images["location"].nunique() == 3
    assert ds.category_names == {0: "empty", 1: "deer", 2: "fox", 3: "badger", 4: "boar"}
    assert (ds.images["seq_num_frames"] == 5).all()
    assert 0 not in set(ds.annotations["category_id"])
    assert not any(is_gray(result.images_dir / f) for f in ds.images["file_name"])
    assert validate_cct(ds, images_dir=result.images_dir) == []


def test_all_night_all_blank(tmp_path):
    result = fetch("demo", tmp_path, {**SMALL, "night_fraction": 1.0, "blank_fraction": 1.0})
    ds = read_cct(result.cct_path)
    assert set(ds.annotations["category_id"]) == {0}
    assert all(is_gray(result.images_dir / f) for f in ds.images["file_name"])


def test_last_sequence_is_shortened_to_hit_num_images(tmp_path):
    ds = read_cct(fetch("demo", tmp_path, {**SMALL, "num_images": 37}).cct_path)
    assert len(ds.images) == 37
    assert sorted(ds.images.groupby("seq_id")["seq_num_frames"].first().tolist())[0] == 1


def test_rerun_with_same_options_is_a_no_op_and_repairs_missing_files(tmp_path):
    first = fetch("demo", tmp_path, SMALL)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert fetch("demo", tmp_path, SMALL) == first
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before
    victim = next(first.images_dir.rglob("*.jpg"))
    data = victim.read_bytes()
    victim.unlink()
    fetch("demo", tmp_path, SMALL)
    assert victim.read_bytes() == data
    assert not list(tmp_path.rglob("*.tmp"))


def test_changed_options_regenerate(tmp_path):
    fetch("demo", tmp_path, SMALL)
    result = fetch("demo", tmp_path, {**SMALL, "num_images": 45})
    assert len(read_cct(result.cct_path).images) == 45


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_species": 3}, "'num_species' must be >= 4"),
        ({"num_species": 7}, "'num_species' must be <= 6"),
        ({"num_images": 2}, "must be at least num_locations"),
        ({"night_fraction": 1.5}, "'night_fraction' must be <= 1.0"),
        ({"name": "../evil"}, "must be a plain folder name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, options, message):
    with pytest.raises(ConfigError) as info:
        fetch("demo", tmp_path, options)
    assert message in str(info.value)
    assert not list(tmp_path.iterdir())


def test_progress_is_reported(tmp_path):
    from rich.progress import Progress

    with Progress(disable=True) as progress:
        DemoSource(DemoOptions(**SMALL)).fetch(tmp_path, progress)
        [task] = progress.tasks
        assert task.completed == task.total == 36


def test_demo_clips_are_h264_with_megadetector_video_results(tmp_path: Path) -> None:
    """``num_clips`` adds short H.264 clips, one CCT image each (the clip is its sequence),
    and MegaDetector per-video entries on every ``clip_frame_sample``-th frame."""
    from ct_io.md_video import to_frame_level
    from ct_io.video import Sampling, probe, read_frames

    options = {**SMALL, "num_clips": 3, "clip_frames": 12, "clip_fps": 6, "clip_frame_sample": 4}
    got = DemoSource(DemoOptions(**options)).fetch(tmp_path / "a")
    again = DemoSource(DemoOptions(**options)).fetch(tmp_path / "b")
    assert files_of(got.images_dir) == files_of(again.images_dir)  # deterministic bytes
    clips = sorted(p.relative_to(got.images_dir).as_posix() for p in got.images_dir.rglob("*.mp4"))
    assert clips == ["loc_01/clip_0000.mp4", "loc_02/clip_0001.mp4", "loc_03/clip_0002.mp4"]
    info = probe(got.images_dir / clips[0])
    assert (info.codec, info.frame_rate, info.frame_count, info.width) == ("h264", 6.0, 12, 160)
    assert len(list(read_frames(got.images_dir / clips[0], Sampling(every_n=4)))) == 3
    assert got.detections_path is not None
    raw = read_json(got.detections_path)
    assert [p for p in validate_md_dict(raw)] == []
    md = read_md(got.detections_path)
    entries = {im.file: im for im in md.images if im.file.endswith(".mp4")}
    assert set(entries) == set(clips)
    for im in entries.values():
        assert im.extra["frame_rate"] == 6.0 and im.extra["frames_processed"] == [0, 4, 8]
        assert all(d.extra["frame_number"] in (0, 4, 8) for d in im.detections or [])
    frames, _ = to_frame_level(md)
    assert sum(1 for im in frames.images if ".mp4/frame" in im.file) == 9
    cct = read_cct(got.cct_path)
    rows = cct.images.set_index("file_name").loc[clips]
    assert rows["seq_id"].tolist() == ["clip_0000", "clip_0001", "clip_0002"]
    assert rows["location"].tolist() == ["loc_01", "loc_02", "loc_03"]
    assert not validate_cct(cct, images_dir=got.images_dir) or all(
        p.severity == "warning" for p in validate_cct(cct, images_dir=got.images_dir)
    )
