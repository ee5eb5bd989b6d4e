from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ct_crop.boxes import BoxChoice, build_jobs, crop_name
from ct_crop.crop import CropSettings, RunOptions, run_crop
from ct_crop.geometry import Strategy
from ct_crop.images import load_image
from ct_crop.manifest import MANIFEST_COLUMNS, read_manifest
from ct_io.cct import from_records
from ct_io.errors import CamtrapError
from ct_io.md import MDDetection, MDImage, MDResults, read_md

THRESHOLD = 0.2


def _real_jobs(md_test: Path):  # type: ignore[no-untyped-def]
    return build_jobs(md=read_md(md_test / "md_output_v5a.json"), threshold=THRESHOLD)


def test_real_images_every_box_above_threshold_is_cropped(md_test: Path, tmp_path: Path) -> None:
    md = read_md(md_test / "md_output_v5a.json")
    jobs, skipped = build_jobs(md=md, threshold=THRESHOLD)
    expected = {
        crop_name(im.file, k, "megadetector_v5_camonly_mosaic_xlarge_dist_5a_last")
        for im, k, det in md.iter_detections()
        if det.conf >= THRESHOLD and md.detection_categories[det.category] == "animal"
    }
    assert len(expected) == 24 and not skipped  # the fixture's boxes with conf >= 0.2
    out = tmp_path / "crops"
    summary = run_crop(
        jobs, md_test / "images", out, CropSettings(strategy=Strategy.TIGHT), RunOptions(workers=2)
    )
    assert summary.crops_made == 24 and summary.failures == []
    manifest = read_manifest(out / "crops.csv")
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert set(manifest["crop"]) == expected
    assert all((out / c).is_file() for c in expected)
    # every crop is exactly the image's pixels at the manifest's box (tight, full resolution)
    decoded: dict[str, np.ndarray] = {}
    for row in manifest.itertuples():
        img = decoded.setdefault(row.image, np.asarray(load_image(md_test / "images" / row.image)))
        crop = np.asarray(Image.open(out / row.crop), dtype=int)
        ref = img[row.box_y : row.box_y + row.box_h, row.box_x : row.box_x + row.box_w].astype(int)
        assert crop.shape == ref.shape == (row.height, row.width, 3)
        err = np.abs(crop - ref).mean()
        assert err < 6  # JPEG at quality 95, 4:2:0 chroma
        shifted = img[
            row.box_y + 2 : row.box_y + row.box_h + 2, row.box_x + 2 : row.box_x + row.box_w + 2
        ].astype(int)
        if shifted.shape == ref.shape:
            assert err < np.abs(crop - shifted).mean()  # aligned to the pixel, not just similar
        det = md.by_file()[row.image].detections[row.box_index]  # type: ignore[index]
        x, _, w, _ = det.bbox  # type: ignore[misc]
        assert abs(row.box_x - x * row.image_width) < 1 and abs(row.box_w - w * row.image_width) < 2
        assert row.confidence == det.conf


def test_output_size_and_reduced_decoding_match_full_decoding(
    md_test: Path, tmp_path: Path
) -> None:
    jobs, _ = _real_jobs(md_test)
    big = [j for j in jobs if j.file.startswith("snapshot_kruger_")]
    assert big, "the kruger photo has one large box: reduced decoding applies"
    settings = CropSettings(strategy=Strategy.SQUARE, size=448)
    run_crop(big, md_test / "images", tmp_path / "a", settings, RunOptions(workers=1))
    row = read_manifest(tmp_path / "a" / "crops.csv").iloc[0]
    assert (row.width, row.height) == (448, 448)
    fast = np.asarray(Image.open(tmp_path / "a" / row.crop), dtype=int)
    # the same crop from a full decode, resized afterwards
    from ct_crop.render import crop_box

    full = load_image(md_test / "images" / row.image)
    det = read_md(md_test / "md_output_v5a.json").by_file()[row.image].detections[row.box_index]  # type: ignore[index]
    slow = np.asarray(crop_box(full, det.bbox, "square", size=448), dtype=int)  # type: ignore[arg-type]
    assert np.abs(fast - slow).mean() < 4


def test_rerun_skips_existing_crops_and_rewrites_the_same_manifest(
    md_test: Path, tmp_path: Path
) -> None:
    jobs, _ = _real_jobs(md_test)
    out = tmp_path / "crops"
    first = run_crop(jobs, md_test / "images", out, CropSettings(), RunOptions(workers=1))
    manifest = (out / "crops.csv").read_bytes()
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    second = run_crop(jobs, md_test / "images", out, CropSettings(), RunOptions(workers=1))
    assert (first.crops_made, second.crops_made, second.crops_existing) == (24, 0, 24)
    assert (out / "crops.csv").read_bytes() == manifest
    assert stamp == {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    with pytest.raises(CamtrapError, match="other settings"):
        run_crop(
            jobs,
            md_test / "images",
            out,
            CropSettings(strategy=Strategy.PAD),
            RunOptions(workers=1),
        )
    third = run_crop(
        jobs,
        md_test / "images",
        out,
        CropSettings(strategy=Strategy.PAD),
        RunOptions(workers=1, overwrite=True),
    )
    assert third.crops_made == 24


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_kill_minus_nine_then_rerun_equals_an_uninterrupted_run(
    md_test: Path, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    md = json.loads((md_test / "md_output_v5a.json").read_text())
    entries = []
    for r in range(6):
        (images / f"r{r}").mkdir(parents=True)
        for im in md["images"]:
            (images / f"r{r}" / im["file"]).symlink_to(md_test / "images" / im["file"])
            entries.append({**im, "file": f"r{r}/{im['file']}"})
    md["images"] = entries
    (tmp_path / "md.json").write_text(json.dumps(md))
    args = [
        sys.executable,
        "-m",
        "ct_crop.cli",
        "crop",
        "-i",
        str(images),
        "-d",
        str(tmp_path / "md.json"),
        "-w",
        "2",
        "--size",
        "96",
    ]
    code = "import sys; from ct_crop.cli import main; sys.argv = ['ct-crop', *sys.argv[1:]]; main()"
    cmd = [sys.executable, "-c", code, *args[3:]]
    subprocess.run([*cmd, str(tmp_path / "whole")], check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*cmd, str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(killed.rglob("*.jpg"))) < 20:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    made_before = len(list(killed.rglob("*.jpg")))
    assert 20 <= made_before < 144 and not (killed / "crops.csv").exists(), (
        "the kill must land mid-run"
    )
    subprocess.run([*cmd, str(killed)], check=True, capture_output=True)
    whole, resumed = _snapshot(tmp_path / "whole"), _snapshot(killed)
    assert sorted(whole) == sorted(resumed)
    assert whole == resumed
    assert len([k for k in whole if k.endswith(".jpg")]) == 144  # 6 copies x 24 boxes


def test_ground_truth_boxes_and_detector_fallback(md_test: Path, tmp_path: Path) -> None:
    md = read_md(md_test / "md_output_v5a.json")
    files = sorted(im.file for im in md.images)[:3]
    sizes = {f: Image.open(md_test / "images" / f).size for f in files}
    images = [
        {"id": i, "file_name": f, "width": sizes[f][0], "height": sizes[f][1], "location": "a"}
        for i, f in enumerate(files)
    ]
    anns = [
        {"id": "a0", "image_id": 0, "category_id": 5, "bbox": [10, 20, 300, 200]},
        {"id": "a1", "image_id": 0, "category_id": 0},
        {"id": "a2", "image_id": 0, "category_id": 5, "bbox": [500, 400, 100, 50]},
        {"id": "a3", "image_id": 1, "category_id": 5},
    ]
    cct = from_records(images, anns, [{"id": 0, "name": "empty"}, {"id": 5, "name": "deer"}])
    jobs, _ = build_jobs(
        cct=cct, md=md, threshold=THRESHOLD, detector_version="mdv5a", choice=BoxChoice.AUTO
    )
    by_file = {j.file: j for j in jobs}
    assert [b.crop_name for b in by_file[files[0]].boxes] == [
        f"{files[0]}___crop00.jpg",
        f"{files[0]}___crop01.jpg",
    ]
    assert (
        all(
            b.source == "detector" and b.crop_name.endswith("_mdv5a.jpg")
            for b in by_file.get(files[1], ()).boxes
        )
        if files[1] in by_file
        else True
    )
    out = tmp_path / "crops"
    run_crop(
        jobs, md_test / "images", out, CropSettings(strategy=Strategy.TIGHT), RunOptions(workers=1)
    )
    manifest = read_manifest(out / "crops.csv")
    gt = manifest[manifest["source"] == "gt"]
    assert gt[["box_x", "box_y", "box_w", "box_h"]].values.tolist() == [
        [10, 20, 300, 200],
        [500, 400, 100, 50],
    ]
    assert set(gt["category"]) == {"deer"} and set(gt["confidence"]) == {1.0}


def test_bad_images_and_boxes_are_logged_never_fatal(edge_images: Path, tmp_path: Path) -> None:
    names = [
        "ok.jpg",
        "cmyk.jpg",
        "gray.jpg",
        "deep16.png",
        "alpha.png",
        "png_named.jpg",
        "truncated.jpg",
        "zero.jpg",
        "garbage.jpg",
        "notes.txt",
        "missing.jpg",
        "rot6.jpg",
        "../escape.jpg",
    ]
    dets = [
        MDDetection("1", 0.9, [0.1, 0.1, 0.5, 0.5]),
        MDDetection("1", 0.9, [1.5, 1.5, 0.1, 0.1]),
        MDDetection("1", 0.9, [0.2, 0.2, 0.0, 0.3]),
    ]
    md = MDResults(
        images=[MDImage(n, list(dets)) for n in names]
        + [MDImage("failed.jpg", None, failure="Exception"), MDImage("ok.jpg", [])]
    )
    jobs, skipped = build_jobs(md=md, threshold=0.5)
    out = tmp_path / "crops"
    summary = run_crop(
        jobs, edge_images, out, CropSettings(), RunOptions(workers=2), skipped=skipped
    )
    made = {r["image"] for r in summary.rows}
    assert made == {
        "ok.jpg",
        "cmyk.jpg",
        "gray.jpg",
        "deep16.png",
        "alpha.png",
        "png_named.jpg",
        "rot6.jpg",
    }
    log = {(f["image"], f["box_index"]): f["kind"] for f in summary.failures}
    assert log[("truncated.jpg", None)] == "truncated"
    assert log[("zero.jpg", None)] == "bad" and log[("garbage.jpg", None)] == "bad"
    assert log[("notes.txt", None)] == "non_image" and log[("missing.jpg", None)] == "nonexistent"
    assert (
        log[("../escape.jpg", None)] == "unsafe_path"
        and log[("failed.jpg", None)] == "detector_failure"
    )
    assert log[("ok.jpg", 1)] == "unusable_box" and log[("ok.jpg", 2)] == "unusable_box"
    assert log[("ok.jpg", None)] == "duplicate"
    with (out / "crop_failures.csv").open(newline="") as fh:
        rows = [tuple(r[:3]) for r in csv.reader(fh)]
    assert ("truncated.jpg", "", "truncated") in rows and ("ok.jpg", "1", "unusable_box") in rows
    assert rows[0] == ("image", "box_index", "kind") and rows[1:] == sorted(
        rows[1:], key=lambda r: (r[0], int(r[1] or -1))
    )
    rot = next(r for r in summary.rows if r["image"] == "rot6.jpg")
    assert (rot["image_width"], rot["image_height"]) == (48, 64)
    # with --load-truncated the truncated image crops
    again = run_crop(
        jobs,
        edge_images,
        out,
        CropSettings(),
        RunOptions(workers=1, allow_truncated=True),
        skipped=skipped,
    )
    assert "truncated.jpg" in {r["image"] for r in again.rows} and again.crops_made == 1


def test_save_full_images_writes_the_decoded_image(edge_images: Path, tmp_path: Path) -> None:
    md = MDResults(images=[MDImage("rot6.jpg", [MDDetection("1", 0.9, [0.1, 0.1, 0.5, 0.5])])])
    jobs, _ = build_jobs(md=md)
    run_crop(
        jobs,
        edge_images,
        tmp_path / "c",
        CropSettings(),
        RunOptions(workers=1, save_full_images=True),
    )
    assert Image.open(tmp_path / "c" / "full_images" / "rot6.jpg").size == (48, 64)


def test_ground_truth_boxes_follow_the_cct_image_size(edge_images: Path, tmp_path: Path) -> None:
    images = [
        {
            "id": 1,
            "file_name": "ok.jpg",
            "width": 32,
            "height": 24,
            "location": "a",
        },  # annotated at half size
        {
            "id": 2,
            "file_name": "rot6.jpg",
            "width": 64,
            "height": 48,
            "location": "a",
        },  # size stored unrotated
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 8, 6]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [4, 4, 8, 6]},
    ]
    jobs, _ = build_jobs(cct=from_records(images, anns, [{"id": 1, "name": "fox"}]))
    summary = run_crop(
        jobs,
        edge_images,
        tmp_path / "c",
        CropSettings(strategy=Strategy.TIGHT),
        RunOptions(workers=1),
    )
    boxes = {r["image"]: (r["box_x"], r["box_y"], r["box_w"], r["box_h"]) for r in summary.rows}
    assert boxes == {"ok.jpg": (8, 8, 16, 12), "rot6.jpg": (4, 4, 8, 6)}


def test_resumed_image_decodes_as_the_whole_run_did(md_test: Path, tmp_path: Path) -> None:
    # One image with a large and a small box: the small one forbids reduced decoding, so a
    # rerun that only lacks the large crop must still decode at full size.
    md = read_md(md_test / "md_output_v5a.json")
    name = "snapshot_camdeboo_CDB_S1_A05_A05_R2_CDB_S1_A05_R2_IMAG0084.JPG"
    entry = md.by_file()[name]
    md.images = [entry]
    jobs, _ = build_jobs(md=md, threshold=THRESHOLD)
    settings = CropSettings(size=64)
    run_crop(jobs, md_test / "images", tmp_path / "whole", settings, RunOptions(workers=1))
    run_crop(jobs, md_test / "images", tmp_path / "resumed", settings, RunOptions(workers=1))
    largest = max((tmp_path / "resumed").glob("*.jpg"), key=lambda p: p.stat().st_size)
    largest.unlink()
    run_crop(jobs, md_test / "images", tmp_path / "resumed", settings, RunOptions(workers=1))
    assert _snapshot(tmp_path / "whole") == _snapshot(tmp_path / "resumed")


def test_crop_boxes_builds_the_jobs_and_keeps_only_the_images_asked_for(
    md_test: Path, tmp_path: Path
) -> None:
    """The one function ``ct-crop crop`` and the pipeline's crop stage both call."""
    from ct_crop.boxes import BoxSelection
    from ct_crop.crop import crop_boxes, settings_changed

    md = read_md(md_test / "md_output_v5a.json")
    animal = {k for k, v in md.detection_categories.items() if v == "animal"}
    first = sorted(
        im.file
        for im in md.images
        if any(d.conf >= 0.5 and d.category in animal for d in im.detections or [])
    )[0]
    out = tmp_path / "crops"
    summary = crop_boxes(
        md_test / "images",
        out,
        md=md,
        boxes=BoxSelection(threshold=0.5, categories=["animal"]),
        options=RunOptions(workers=1),
        images={first},
    )
    wanted = [
        crop_name(first, k, "megadetector_v5_camonly_mosaic_xlarge_dist_5a_last")
        for k, det in enumerate(md.by_file()[first].detections or [])
        if det.conf >= 0.5 and det.category in animal
    ]
    assert wanted and sorted(read_manifest(out / "crops.csv")["crop"]) == sorted(wanted)
    assert summary.images == 1 and summary.crops_made == len(wanted)
    assert not settings_changed(out, CropSettings())
    assert settings_changed(out, CropSettings(strategy=Strategy.PAD))
    assert not settings_changed(tmp_path / "nothing-yet", CropSettings(strategy=Strategy.PAD))
    with pytest.raises(CamtrapError, match="nothing to crop"):
        crop_boxes(md_test / "images", out)
