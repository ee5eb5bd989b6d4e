from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ct_io.cct import from_records
from ct_io.errors import CamtrapError
from ct_io.tables import QueriedImage
from ct_splits.dataset import (
    build_dataset,
    cct_image_table,
    drop_rare_labels,
    images_from_queried,
    label_names,
    match_test,
)
from ct_splits.manifest import read_crops_manifest

MANIFEST_HEADER = (
    "crop,image,box_index,source,detector,category,confidence,box_x,box_y,box_w,box_h\n"
)


def _queried() -> dict[str, QueriedImage]:
    return {
        "cct/a.jpg": QueriedImage(
            dataset="cct", location="13", dataset_class="mountain_lion", label=["puma"]
        ),
        "cct/b.jpg": QueriedImage(
            dataset="cct", location="unknown_location", dataset_class="deer", label=["deer"]
        ),
        "idfg/c.jpg": QueriedImage(
            dataset="idfg", location="7", dataset_class="elk", label=["elk", "deer"]
        ),
    }


def _write_crops(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"jpeg")


def test_queried_images_and_manifest_make_the_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crops = tmp_path / "crops"
    manifest = tmp_path / "crops.csv"
    manifest.write_text(
        MANIFEST_HEADER
        + "cct/a.jpg___crop00.jpg,cct/a.jpg,0,gt,,animal,1.0,0,0,5,5\n"
        + "cct/a.jpg___crop01_mdv5a.jpg,cct/a.jpg,1,detector,mdv5a,animal,0.95,0,0,5,5\n"
        + "cct/a.jpg___crop02_mdv5a.jpg,cct/a.jpg,2,detector,mdv5a,animal,0.5,0,0,5,5\n"
        + "cct/b.jpg___crop00_mdv5a.jpg,cct/b.jpg,0,detector,mdv5a,person,0.99,0,0,5,5\n"
        + "cct/b.jpg___crop01_mdv5a.jpg,cct/b.jpg,1,detector,mdv5a,animal,0.99,0,0,5,5\n"
        + "idfg/c.jpg___crop00_mdv5a.jpg,idfg/c.jpg,0,detector,mdv5a,animal,0.9,0,0,5,5\n"
        + "other/z.jpg___crop00.jpg,other/z.jpg,0,gt,,animal,1.0,0,0,5,5\n"
        + "../../evil.jpg,cct/a.jpg,3,gt,,animal,1.0,0,0,5,5\n"
        + "idfg/missing.jpg___crop00.jpg,idfg/c.jpg,1,gt,,animal,1.0,0,0,5,5\n"
    )
    _write_crops(
        crops,
        [
            "cct/a.jpg___crop00.jpg",
            "cct/a.jpg___crop01_mdv5a.jpg",
            "cct/a.jpg___crop02_mdv5a.jpg",
            "cct/b.jpg___crop01_mdv5a.jpg",
            "idfg/c.jpg___crop00_mdv5a.jpg",
        ],
    )
    images = images_from_queried(_queried(), pseudo="dataset")
    frame, log = build_dataset(
        images, read_crops_manifest(manifest), threshold=0.8, crops_dir=crops
    )
    assert frame["path"].tolist() == [
        "cct/a.jpg___crop00.jpg",
        "cct/a.jpg___crop01_mdv5a.jpg",
        "cct/b.jpg___crop01_mdv5a.jpg",
        "idfg/c.jpg___crop00_mdv5a.jpg",
    ]
    assert frame["location"].tolist() == ["13", "13", "unknown_location", "7"]
    assert frame["label"].tolist() == ["puma", "puma", "deer", "elk,deer"]
    assert frame["confidence"].tolist() == [1.0, 0.95, 0.99, 0.9]
    assert log.skipped == {
        "detector confidence below 0.8": 1,
        "detector category not in animal": 1,
        "image not among the selected images": 1,
        "unsafe crop path": 1,
        "crop file missing": 1,
    }
    assert log.unknown_location_rows == 1
    assert "no location" in caplog.text
    assert label_names(frame) == ["deer", "elk", "puma"]


def test_manifest_columns_are_read_by_name_and_missing_ones_are_named(tmp_path: Path) -> None:
    loose = tmp_path / "loose.csv"
    loose.write_text(
        "conf,file_name,path,extra\n0.4,a.jpg,a.jpg___crop00_md.jpg,x\n,b.jpg,b.jpg___crop00.jpg,y\n"
    )
    m = read_crops_manifest(loose)
    assert m["source"].tolist() == ["detector", "gt"]
    assert m["confidence"].tolist() == [0.4, 1.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("crop,confidence\nx.jpg,1\n")
    with pytest.raises(CamtrapError, match="no image column"):
        read_crops_manifest(bad)
    text = tmp_path / "text.csv"
    text.write_text("crop,image,confidence\nx.jpg,a.jpg,high\n")
    with pytest.raises(CamtrapError, match="not a number"):
        read_crops_manifest(text)


def test_cct_input_pseudo_locations_per_sequence_and_location_from_sequence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ds = from_records(
        images=[
            {"id": 1, "file_name": "s1/1.jpg", "location": 5, "seq_id": "s1"},
            {"id": 2, "file_name": "s1/2.jpg", "seq_id": "s1"},  # takes location 5 from s1
            {"id": 3, "file_name": "s2/1.jpg", "seq_id": "s2"},  # no location anywhere in s2
            {"id": 4, "file_name": "s2/2.jpg", "seq_id": "s2"},
        ],
        annotations=[
            {"id": i, "image_id": i, "category_id": 1 if i < 3 else 2} for i in range(1, 5)
        ],
        categories=[{"id": 1, "name": "fox"}, {"id": 2, "name": "owl"}],
    )
    table = cct_image_table(ds, "park", pseudo="sequence")
    assert table["location"].tolist() == [
        "5",
        "5",
        "unknown_location/seq:s2",
        "unknown_location/seq:s2",
    ]
    assert table["label"].tolist() == ["fox", "fox", "owl", "owl"]
    assert "no location" in caplog.text


def test_min_locs_and_match_test() -> None:
    frame = pd.DataFrame(
        {
            "path": [f"p{i}" for i in range(6)],
            "dataset": "d",
            "location": ["1", "2", "3", "1", "1", "2"],
            "dataset_class": "",
            "confidence": 1.0,
            "label": ["a", "a", "a", "b", "b", "b"],
        }
    )
    kept, dropped = drop_rare_labels(frame, 3)
    assert dropped == ["b"] and set(kept["label"]) == {"a"}
    earlier = frame.assign(path=[f"old{i}" for i in range(6)])
    merged, appended = match_test(frame, earlier, [("d", "2")])
    assert appended == 2
    assert sorted(merged.loc[merged["location"] == "2", "path"]) == ["old1", "old5"]
    assert len(merged) == 6


def test_min_locs_counts_each_label_of_a_multilabel_row() -> None:
    """``carnivore,fox`` at one location is not one rare label: carnivore (3 locations)
    and fox (2) are each counted; only the rare label (badger) leaves its row."""
    frame = pd.DataFrame(
        {
            "path": [f"p{i}" for i in range(4)],
            "dataset": "d",
            "location": ["1", "2", "2", "3"],
            "dataset_class": "",
            "confidence": 1.0,
            "label": ["carnivore,fox", "fox", "carnivore", "badger,carnivore"],
        }
    )
    kept, dropped = drop_rare_labels(frame, 2)
    assert dropped == ["badger"]
    assert kept["label"].tolist() == ["carnivore,fox", "fox", "carnivore", "carnivore"]
    assert kept["path"].tolist() == ["p0", "p1", "p2", "p3"]


def test_threshold_out_of_range() -> None:
    with pytest.raises(CamtrapError, match="threshold"):
        build_dataset(
            pd.DataFrame({"image": []}),
            pd.DataFrame(columns=["crop", "image", "source", "category", "confidence"]),
            threshold=2,
        )


def test_crops_of_video_frames_are_rows_of_their_clip(tmp_path: Path) -> None:
    """Frames take their clip's location and label, and the clip is their sequence; with
    every clip at an unknown location, a split still keeps each clip's frames together."""
    from ct_splits.splitting import SplitOptions, make_splits, split_of_rows

    images = [{"id": f"c{i}", "file_name": f"cam{i % 2}/clip{i}.mp4"} for i in range(8)] + [
        {"id": "p", "file_name": "cam0/photo.jpg", "location": "cam0"}
    ]
    ds = from_records(
        images=images,
        annotations=[
            {"id": im["id"], "image_id": im["id"], "category_id": 1 + (k % 2)}
            for k, im in enumerate(images)
        ],
        categories=[{"id": 1, "name": "fox"}, {"id": 2, "name": "owl"}],
    )
    table = cct_image_table(ds, "park", pseudo="image")
    crops = [
        f"cam{i % 2}/clip{i}.mp4/frame{n:06d}.jpg___crop00_md.jpg"
        for i in range(8)
        for n in (0, 10, 20)
    ] + ["cam0/photo.jpg___crop00_md.jpg"]
    manifest = pd.DataFrame(
        {
            "crop": crops,
            "image": [c.split("___")[0] for c in crops],
            "source": "detector",
            "category": "animal",
            "confidence": 0.9,
        }
    )
    frame, report = build_dataset(table, manifest)
    assert len(frame) == 25 and not report.skipped
    rows = frame.set_index("path")
    row = rows.loc["cam1/clip3.mp4/frame000010.jpg___crop00_md.jpg"]
    assert (row["image"], row["label"], row["seq_id"]) == (
        "cam1/clip3.mp4",
        "owl",
        "clip:cam1/clip3.mp4",
    )
    assert pd.isna(rows.loc["cam0/photo.jpg___crop00_md.jpg", "seq_id"])
    result = make_splits(frame, SplitOptions(val_frac=0.25, test_frac=0.25, trials=50))
    frame["split"] = split_of_rows(frame, result.splits).to_numpy()
    clips = frame[frame["path"].str.contains(".mp4/")]
    per_clip = clips.groupby(clips["path"].str.split("/frame").str[0])["split"].nunique()
    assert (per_clip == 1).all() and clips["split"].nunique() > 1
