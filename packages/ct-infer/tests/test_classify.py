from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from ct_infer import classify as classify_mod
from ct_infer.backbones import Preprocessing
from ct_infer.classify import RunSettings, classify_crops, crops_from_source
from ct_infer.cli import app
from ct_infer.data import load_crop
from ct_infer.predictor import Predictor, load_classifier
from ct_io.errors import CamtrapError

SETTINGS = RunSettings(batch_size=8, workers=0, device="cpu")


@pytest.fixture
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor(load_classifier(tiny_bundle), device="cpu")


def test_classifies_every_crop_into_probabilities(
    predictor: Predictor, crops_dir: Path, crop_paths: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out.csv.gz"
    report = classify_crops(
        predictor,
        crops_dir,
        crop_paths,
        out,
        RunSettings(batch_size=8, workers=2, device="cpu"),
        progress=False,
    )
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", *predictor.classifier.labels]
    assert sorted(frame["path"]) == crop_paths and report.classified == len(crop_paths) == 24
    np.testing.assert_allclose(frame.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-4)
    assert not (tmp_path / "out.csv.gz.partial").exists()


def test_batched_equals_one_at_a_time(
    predictor: Predictor, crops_dir: Path, crop_paths: list[str], tmp_path: Path
) -> None:
    classify_crops(
        predictor,
        crops_dir,
        crop_paths[:9],
        tmp_path / "a.csv",
        RunSettings(batch_size=9, workers=0, device="cpu"),
        progress=False,
    )
    classify_crops(
        predictor,
        crops_dir,
        crop_paths[:9],
        tmp_path / "b.csv",
        RunSettings(batch_size=1, workers=0, device="cpu"),
        progress=False,
    )
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy(), atol=1e-5)


def test_interrupted_run_resumes_after_written_rows(
    predictor: Predictor,
    crops_dir: Path,
    crop_paths: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full = tmp_path / "full.csv"
    classify_crops(predictor, crops_dir, crop_paths, full, SETTINGS, progress=False)

    monkeypatch.setattr(classify_mod, "CHUNK_ROWS", 8)
    original = Predictor.probabilities
    calls = {"n": 0}

    def dying(self: Predictor, batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Predictor, "probabilities", dying)
    out = tmp_path / "resumed.csv.gz"
    with pytest.raises(KeyboardInterrupt):
        classify_crops(predictor, crops_dir, crop_paths, out, SETTINGS, progress=False)
    assert not out.exists()
    assert len(list((tmp_path / "resumed.csv.gz.partial").glob("chunk-*.csv"))) == 2
    monkeypatch.setattr(Predictor, "probabilities", original)
    report = classify_crops(predictor, crops_dir, crop_paths, out, SETTINGS, progress=False)
    assert report.skipped_done == 16 and report.classified == 8
    a = pd.read_csv(full).sort_values("path", ignore_index=True)
    b = pd.read_csv(out).sort_values("path", ignore_index=True)
    assert (a["path"] == b["path"]).all()
    np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy(), atol=1e-5)

    # new crops appear later: a rerun only classifies those
    again = classify_crops(predictor, crops_dir, crop_paths, out, SETTINGS, progress=False)
    assert again.classified == 0 and again.skipped_done == 24


def test_output_from_another_model_is_not_mixed(
    predictor: Predictor,
    tiny_bundle_factory,
    crops_dir: Path,
    crop_paths: list[str],
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o.csv"
    classify_crops(predictor, crops_dir, crop_paths[:3], out, SETTINGS, progress=False)
    other = Predictor(
        load_classifier(tiny_bundle_factory("other", labels=["x", "y"])), device="cpu"
    )
    with pytest.raises(CamtrapError, match="--overwrite"):
        classify_crops(other, crops_dir, crop_paths, out, SETTINGS, progress=False)
    report = classify_crops(
        other, crops_dir, crop_paths[:3], out, SETTINGS, overwrite=True, progress=False
    )
    assert report.classified == 3 and list(pd.read_csv(out).columns) == ["path", "x", "y"]


def test_bad_crops_are_counted_not_fatal(
    predictor: Predictor, crops_dir: Path, crop_paths: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "crops"
    shutil.copytree(crops_dir, folder)
    good = folder / crop_paths[0]
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[:300])
    (folder / "text.jpg").write_text("not an image")
    Image.open(good).save(folder / "png_named.jpg", format="PNG")
    Image.open(good).convert("CMYK").save(folder / "cmyk.jpg", format="JPEG")
    root, paths = crops_from_source(folder)
    report = classify_crops(predictor, root, paths, tmp_path / "out.csv", SETTINGS, progress=False)
    assert set(report.failed) == {"truncated.jpg", "text.jpg"}
    written = set(pd.read_csv(tmp_path / "out.csv")["path"])
    assert {"png_named.jpg", "cmyk.jpg"} <= written and "text.jpg" not in written
    assert report.classified == 26


def test_reduced_size_decoding_matches_full_decode_closely(
    crops_dir: Path, crop_paths: list[str]
) -> None:
    prep = Preprocessing(64)
    big = max(crop_paths, key=lambda p: Image.open(crops_dir / p).size[0])
    assert Image.open(crops_dir / big).size[0] >= 256  # draft mode really reduces this one
    fast = load_crop(crops_dir / big, prep).astype(float)
    with Image.open(crops_dir / big) as im:
        slow = np.asarray(
            im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=float
        )
    assert fast.shape == (64, 64, 3)
    assert np.abs(fast - slow).mean() < 6.0


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_crop(tmp_path / "r.jpg", Preprocessing(20, resize="squash"))
    assert out[2, 10, 2] > 150 and out[17, 10, 0] > 150  # blue on top, red below after rotation


def test_manifest_input_and_hostile_paths(
    crops_dir: Path, crop_paths: list[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"path": crop_paths[:4], "label": "x"}).to_csv(manifest, index=False)
    root, paths = crops_from_source(manifest, crops_dir)
    assert root == crops_dir and paths == crop_paths[:4]
    pd.DataFrame({"path": ["../../etc/passwd"]}).to_csv(manifest, index=False)
    with pytest.raises(CamtrapError, match="unsafe crop path"):
        crops_from_source(manifest, crops_dir)
    with pytest.raises(CamtrapError, match="no such folder"):
        crops_from_source(tmp_path / "nope")


def test_cli_classify_and_resume(
    tiny_bundle: Path, crops_dir: Path, crop_paths: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "cli.csv.gz"
    runner = CliRunner()
    args = [
        "classify",
        str(tiny_bundle),
        str(crops_dir),
        str(out),
        "--workers",
        "0",
        "--device",
        "cpu",
        "--precision",
        "bf16",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "24 crops classified" in first.output
    assert "bf16: as asked" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "24 already done" in second.output


def test_cli_classify_only_confident_detections(
    tiny_bundle: Path, crops_dir: Path, md_json: Path, tmp_path: Path
) -> None:
    import json

    out = tmp_path / "confident.csv"
    md = json.loads(md_json.read_text())
    expected = sum(1 for im in md["images"] for d in im["detections"] or [] if d["conf"] >= 0.8)
    result = CliRunner().invoke(
        app,
        [
            "classify",
            str(tiny_bundle),
            str(crops_dir),
            str(out),
            "--workers",
            "0",
            "--detections",
            str(md_json),
            "--detection-threshold",
            "0.8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert 0 < len(pd.read_csv(out)) == expected < 24


def test_default_batch_size_follows_the_device() -> None:
    from ct_infer.classify import DEFAULT_BATCH_SIZES

    auto = RunSettings(workers=0)
    assert auto.batch_for("cpu") == DEFAULT_BATCH_SIZES["cpu"] == 32
    assert auto.batch_for("cuda") == DEFAULT_BATCH_SIZES["cuda"] > auto.batch_for("cpu")
    assert RunSettings(batch_size=5, workers=0).batch_for("cuda") == 5
