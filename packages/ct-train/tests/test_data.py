from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ct_io.errors import CamtrapError
from ct_train.config import Augment, DataConfig, SamplingConfig
from ct_train.data import UNREADABLE, CropDataset, eval_transform, load_image, train_transform
from ct_train.tables import calibrate, load_tables


def data_config(root: Path) -> DataConfig:
    return DataConfig(dir=root, crops_dir=root / "crops")


def test_tables_split_by_location_with_targets(dataset: Path) -> None:
    t = load_tables(data_config(dataset))
    assert t.labels == ["bear", "deer", "fox"]
    assert len(t.split("train")) == 72 and len(t.split("val")) == 18 and len(t.split("test")) == 18
    assert set(t.split("val")["location"]) == {"loc4"}
    assert (t.frame["weight"] == 1).all() and t.class_counts() == [24, 24, 24]


def test_detection_confidence_weights_train_only_and_calibrated(
    dataset: Path, tmp_path: Path
) -> None:
    t = load_tables(data_config(dataset), SamplingConfig(weight_by_detection_conf=True))
    train = t.split("train")
    assert (
        np.allclose(train["weight"], train["confidence"]) and (t.split("val")["weight"] == 1).all()
    )
    npz = tmp_path / "cal.npz"
    np.savez(npz, x=np.array([0.0, 0.5, 1.0]), y=np.array([0.0, 0.9, 1.0]))
    t2 = load_tables(data_config(dataset), SamplingConfig(weight_by_detection_conf=npz))
    assert np.allclose(
        t2.split("train")["weight"], np.interp(train["confidence"], [0, 0.5, 1], [0, 0.9, 1])
    )
    np.savez(tmp_path / "bad.npz", a=np.zeros(2))
    with pytest.raises(CamtrapError, match="x and y"):
        calibrate(np.array([0.5]), tmp_path / "bad.npz")


def test_unknown_label_and_hostile_path_are_one_line_errors(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "d"
    shutil.copytree(dataset, root, ignore=shutil.ignore_patterns("crops"))
    csv = root / "classification_ds.csv"
    text = csv.read_text()
    csv.write_text(text.replace(",fox\n", ",wolf\n", 1))
    with pytest.raises(CamtrapError, match=r"'wolf' are not in label_index\.json"):
        load_tables(data_config(root))
    csv.write_text(text.replace("loc0/bear_0.jpg", "../../etc/passwd", 1))
    with pytest.raises(CamtrapError, match="unsafe crop path"):
        load_tables(data_config(root))


def test_draft_decodes_big_jpeg_at_reduced_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (10, 200, 30)).save(path)
    assert load_image(path, 224).size == (400, 300)  # 1/4 scale, still ≥ 224
    assert load_image(path, None).size == (1600, 1200)


def test_exif_rotated_and_cmyk_and_png_named_jpg_load_as_rgb(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg", 32).size == (40, 60)
    Image.new("CMYK", (30, 30)).save(tmp_path / "cmyk.jpg")
    assert load_image(tmp_path / "cmyk.jpg", 32).mode == "RGB"
    Image.new("RGB", (30, 30)).save(tmp_path / "png.jpg", format="PNG")
    assert load_image(tmp_path / "png.jpg", 32).size == (30, 30)


def test_transforms_shapes_and_seeded_augmentation(dataset: Path) -> None:
    t = load_tables(data_config(dataset)).split("train")
    ds = CropDataset(
        dataset / "crops", t, train_transform(32, Augment(), (0.5,) * 3, (0.25,) * 3), 32
    )
    a, _target, weight, row = ds[(3, 1234)]
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32 and row == 3 and weight == 1.0
    assert torch.equal(ds[(3, 1234)][0], a)  # the same seed, the same augmentation
    assert not torch.equal(ds[(3, 999)][0], a)
    ev = CropDataset(dataset / "crops", t, eval_transform(32, (0.5,) * 3, (0.25,) * 3), 32)
    assert torch.equal(ev[3][0], ev[3][0]) and ev[3][0].shape == (3, 32, 32)


def test_unreadable_crop_becomes_ignored_target(dataset: Path, tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    import pandas as pd

    frame = pd.DataFrame({"path": ["bad.jpg"], "target": [1], "weight": [1.0]})
    image, target, *_ = CropDataset(crops, frame, eval_transform(32, (0.5,) * 3, (0.25,) * 3), 32)[
        0
    ]
    assert target == UNREADABLE and image.shape == (3, 32, 32)


def test_several_labels_in_one_row_stop_with_one_line(dataset: Path, tmp_path: Path) -> None:
    """Without ``train.multilabel`` such a table stops before any work, saying how to train it."""
    root = tmp_path / "d"
    shutil.copytree(dataset, root, ignore=shutil.ignore_patterns("crops"))
    csv = root / "classification_ds.csv"
    rows = csv.read_text().splitlines()
    rows[1] = rows[1].replace(",bear", ',"bear,deer"')  # the label column holds two labels
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(CamtrapError, match=r"row 2 has several labels .*train.multilabel: true"):
        load_tables(data_config(root))
