"""``ct-infer run`` and ``merge`` on a folder mixing photos and video clips (the demo
source's synthetic clips, plus hostile clips): per-frame classifications, per-clip
roll-ups, MegaDetector's per-video form, failures counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_io.md import md_to_dict, read_md, validate_md_dict, write_md
from ct_io.md_video import to_frame_level
from ct_io.video_fixtures import HOSTILE_CLIPS

CLIPS = 3  # the mixed_media fixture's demo clips (conftest)
SAMPLED = [0, 4, 8, 12]  # their frames with detections (clip_frames=16, clip_frame_sample=4)


def run(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def clip_entries(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {im["file"]: im for im in doc["images"] if im["file"].startswith("loc_")}


def test_run_on_photos_and_clips(
    mixed_media: tuple[Path, Path], tiny_bundle: Path, tmp_path: Path
) -> None:
    images, md = mixed_media
    out = tmp_path / "out.json"
    text = run(["run", str(images), str(tiny_bundle), "-d", str(md), "-o", str(out), "-w", "0"])
    doc = json.loads(out.read_text())
    assert [p for p in validate_md_dict(doc)] == []
    clips = {f: im for f, im in clip_entries(doc).items() if f.endswith(".mp4")}
    assert len(clips) == CLIPS
    frame_dets = 0
    for im in clips.values():  # MegaDetector's per-video form, classified frame by frame
        assert im["frame_rate"] == 8.0 and im["frames_processed"] == SAMPLED
        for det in im["detections"]:
            assert det["frame_number"] in SAMPLED
            if det["conf"] >= 0.2:
                assert det["classifications"], det
                frame_dets += 1
        rolled = im["clip_classifications"]
        assert rolled[0][0] in doc["classification_categories"]
        assert [c for _, c in rolled] == sorted((c for _, c in rolled), reverse=True)
    assert frame_dets > 0
    summary = pd.read_csv(tmp_path / "out.summary.csv")
    assert list(summary.columns) == ["class", "detections", "clips"]
    rolled_up = [im for im in doc["images"] if "clip_classifications" in im]
    assert summary["clips"].sum() == len(rolled_up) == CLIPS
    photo_dets = sum(
        1
        for im in doc["images"]
        if im["file"].endswith(".jpg")
        for d in im["detections"] or []
        if "classifications" in d
    )
    assert summary["detections"].sum() == photo_dets + frame_dets
    # every hostile clip is a counted failure with its reason; nothing crashed
    for name in HOSTILE_CLIPS:
        assert f"bad/{name}" in text
    n_failures = int(text.split(" failures")[0].rsplit(" ", 1)[-1])
    assert n_failures == len(HOSTILE_CLIPS)
    assert f"{len(rolled_up)} video clips rolled up" in " ".join(text.split())
    again = run(["run", str(images), str(tiny_bundle), "-d", str(md), "-o", str(out), "-w", "0"])
    assert "0 classified" in again


def test_clip_rollup_is_the_confidence_weighted_mean(
    mixed_media: tuple[Path, Path], tiny_bundle: Path, tmp_path: Path
) -> None:
    """The roll-up combines the frames' probabilities (the smoothing machinery at strength
    1); with --smoothing 1 every frame's detections carry the clip's classification."""
    images, md = mixed_media
    out = tmp_path / "out.json"
    run(["run", str(images), str(tiny_bundle), "-d", str(md), "-o", str(out), "-w", "0"])
    probs = pd.read_csv(tmp_path / "out.json.classifications.csv.gz")
    labels = [c for c in probs.columns if c != "path"]
    doc = json.loads(out.read_text())
    cats = doc["classification_categories"]
    for clip, im in clip_entries(doc).items():
        if not clip.endswith(".mp4"):
            continue
        rows = probs[probs["path"].str.startswith(clip + "/")]
        confs = []
        for path in rows["path"]:
            frame = int(path.split("/frame")[1][:6])
            k = int(path.split("___crop")[1][:2])
            frame_dets = [d for d in im["detections"] if d["frame_number"] == frame]
            confs.append(frame_dets[k]["conf"])
        w = np.asarray(confs)
        mean = (rows[labels].to_numpy() * w[:, None]).sum(axis=0) / w.sum()
        top = labels[int(np.argmax(mean))]
        assert cats[im["clip_classifications"][0][0]] == top
        assert im["clip_classifications"][0][1] == pytest.approx(mean.max(), abs=1e-4)
    out1 = tmp_path / "smooth1.json"
    run(
        [
            "run",
            str(images),
            str(tiny_bundle),
            "-d",
            str(md),
            "-o",
            str(out1),
            "-w",
            "0",
            "--smoothing",
            "1",
        ]
    )
    for clip, im in clip_entries(json.loads(out1.read_text())).items():
        if clip.endswith(".mp4"):
            tops = {d["classifications"][0][0] for d in im["detections"] if "classifications" in d}
            assert tops == {im["clip_classifications"][0][0]}


def test_frame_level_input_comes_out_per_video(
    mixed_media: tuple[Path, Path], tiny_bundle: Path, tmp_path: Path
) -> None:
    """MegaDetector's frame-level form in, the per-video form (frame rates read from the
    clips) out, with the same classifications."""
    images, md = mixed_media
    frames, _ = to_frame_level(read_md(md))
    frame_md = tmp_path / "frames.json"
    write_md(frames, frame_md)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run(["run", str(images), str(tiny_bundle), "-d", str(md), "-o", str(a), "-w", "0"])
    run(["run", str(images), str(tiny_bundle), "-d", str(frame_md), "-o", str(b), "-w", "0"])
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    assert clip_entries(da) == clip_entries(db)


def test_merge_per_video_results_with_crops_from_ct_crop(
    mixed_media: tuple[Path, Path], tiny_bundle: Path, tmp_path: Path
) -> None:
    """ct-crop crops the clips' frames, ct-infer classifies the crops, merge writes them
    into the per-video results with roll-ups; frame-level results stay frame-level."""
    from ct_crop.cli import app as crop_app

    images, md = mixed_media
    crops = tmp_path / "crops"
    r = CliRunner().invoke(
        crop_app, ["crop", str(crops), "-i", str(images), "-d", str(md), "-w", "1"]
    )
    assert r.exit_code == 0, r.output
    assert any(p.name.endswith(".jpg") for p in crops.glob("loc_*/clip_*.mp4/*"))
    csv = tmp_path / "classified.csv"
    run(["classify", str(tiny_bundle), str(crops), str(csv), "-w", "0"])
    merged = tmp_path / "merged.json"
    run(["merge", str(csv), "-d", str(md), "-o", str(merged)])
    doc = json.loads(merged.read_text())
    assert [p for p in validate_md_dict(doc)] == []
    clips = {f: im for f, im in clip_entries(doc).items() if f.endswith(".mp4")}
    assert all("clip_classifications" in im for im in clips.values())
    assert all(
        "classifications" in d
        for im in clips.values()
        for d in im["detections"]
        if d["conf"] >= 0.2
    )
    frames, _ = to_frame_level(read_md(md))
    write_md(frames, tmp_path / "frames.json")
    run(["merge", str(csv), "-d", str(tmp_path / "frames.json"), "-o", str(tmp_path / "m2.json")])
    doc2 = md_to_dict(read_md(tmp_path / "m2.json"))
    assert any("/frame0000" in im["file"] for im in doc2["images"])
