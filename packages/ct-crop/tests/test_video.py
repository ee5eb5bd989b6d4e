"""Cropping boxes from video frames and detecting on sampled frames."""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ct_crop.boxes import build_jobs
from ct_crop.crop import CropSettings, RunOptions, run_crop
from ct_crop.detect import detect_cached
from ct_crop.manifest import read_manifest
from ct_crop.render import crop_box
from ct_io import hookimpl
from ct_io.md import MDDetection, MDImage, md_to_dict, parse_md, validate_md_dict, write_md
from ct_io.md_video import to_frame_level
from ct_io.plugins import make_plugin_manager
from ct_io.video import Sampling, read_frames
from ct_io.video_fixtures import write_clip, write_hostile_clips

BOX = [0.25, 0.2, 0.5, 0.5]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo, two clips (H.264 with B-frames, MJPEG AVI) and the hostile clips."""
    d = tmp_path_factory.mktemp("media")
    write_clip(d / "cam1" / "clip.mp4", frames=30, width=96, height=64)
    write_clip(d / "cam2" / "clip.avi", frames=12, codec="mjpeg", width=96, height=64)
    Image.new("RGB", (80, 60), (90, 120, 30)).save(d / "cam1" / "photo.jpg")
    write_hostile_clips(d / "bad")
    return d


def per_video_md(clips: Iterable[str]) -> dict[str, Any]:
    det = {"category": "1", "conf": 0.9, "bbox": BOX}
    images: list[dict[str, Any]] = [{"file": "cam1/photo.jpg", "detections": [det]}]
    for clip in clips:
        images.append(
            {
                "file": clip,
                "frame_rate": 10.0,
                "frames_processed": [0, 10, 20],
                "detections": [
                    {**det, "frame_number": 0},
                    {**det, "conf": 0.1, "frame_number": 10},  # below the threshold
                    {**det, "bbox": [0.0, 0.0, 0.3, 0.3], "frame_number": 10},
                    {**det, "frame_number": 20},
                ],
            }
        )
    return {
        "info": {"format_version": "1.5", "detector": "mdv5a"},
        "detection_categories": {"1": "animal"},
        "images": images,
    }


def test_crops_from_video_frames_carry_the_frame_number(media: Path, tmp_path: Path) -> None:
    md = parse_md(per_video_md(["cam1/clip.mp4", "cam2/clip.avi", *hostile_names(media)]))
    jobs, skipped = build_jobs(md=md, threshold=0.2)
    out = tmp_path / "crops"
    summary = run_crop(jobs, media, out, CropSettings(), RunOptions(workers=1))
    rows = read_manifest(out / "crops.csv")
    clip_crops = sorted(c for c in rows["crop"] if c.startswith("cam1/clip.mp4/"))
    assert clip_crops == [
        "cam1/clip.mp4/frame000000.jpg___crop00_mdv5a.jpg",
        "cam1/clip.mp4/frame000010.jpg___crop01_mdv5a.jpg",  # box 1 of frame 10 (box 0 < 0.2)
        "cam1/clip.mp4/frame000020.jpg___crop00_mdv5a.jpg",
    ]
    # frame 20 of the AVI is past its 12 frames: a failure for that frame, not a crash
    assert "cam2/clip.avi/frame000010.jpg___crop01_mdv5a.jpg" in set(rows["crop"])
    assert "cam1/photo.jpg___crop00_mdv5a.jpg" in set(rows["crop"])
    row = rows.set_index("crop").loc["cam1/clip.mp4/frame000010.jpg___crop01_mdv5a.jpg"]
    assert (row["image"], row["box_index"], row["image_width"]) == (
        "cam1/clip.mp4/frame000010.jpg",
        1,
        96,
    )
    # the crop is exactly the box of that frame as a full decode gives it
    frame = {f.index: f.image for f in read_frames(media / "cam1/clip.mp4")}[10]
    expected = crop_box(frame, [0.0, 0.0, 0.3, 0.3])
    assert expected is not None
    with Image.open(out / "cam1/clip.mp4/frame000010.jpg___crop01_mdv5a.jpg") as got:
        assert got.size == expected.size
        diff = np.abs(np.asarray(got, np.int16) - np.asarray(expected, np.int16)).mean()
    assert diff < 3  # JPEG quality 95
    failures = {(f["image"], f["kind"]): f["reason"] for f in summary.failures}
    assert ("cam2/clip.avi/frame000020.jpg", "bad") in failures
    for name, words in hostile_names(media).items():
        assert any(img == name and words in why for (img, _), why in failures.items()), name
    assert summary.images == 1 + 3 + 3 + 3 * len(hostile_names(media))  # frames count as images
    assert not skipped
    # resumable: a rerun makes nothing and writes the same manifest
    before = (out / "crops.csv").read_bytes()
    again = run_crop(jobs, media, out, CropSettings(), RunOptions(workers=1))
    assert again.crops_made == 0 and again.crops_existing == summary.crops
    assert (out / "crops.csv").read_bytes() == before


def hostile_names(media: Path) -> dict[str, str]:
    from ct_io.video_fixtures import HOSTILE_CLIPS

    return {f"bad/{name}": words for name, words in HOSTILE_CLIPS.items()}


def test_frame_level_results_and_extracted_frame_folders(media: Path, tmp_path: Path) -> None:
    """MegaDetector's frame-level form crops the same; when ``clip.mp4`` is a folder of
    frames MegaDetector extracted, the frames are read as the photos they are."""
    md = parse_md(per_video_md(["cam1/clip.mp4"]))
    frame_md = to_frame_level(md)[0]
    a, b = tmp_path / "a", tmp_path / "b"
    run_crop(build_jobs(md=md)[0], media, a, CropSettings(), RunOptions(workers=1))
    run_crop(build_jobs(md=frame_md)[0], media, b, CropSettings(), RunOptions(workers=1))
    assert (a / "crops.csv").read_bytes() == (b / "crops.csv").read_bytes()
    extracted = tmp_path / "extracted"
    for f in read_frames(media / "cam1/clip.mp4", Sampling(every_n=10)):
        target = extracted / "cam1" / "clip.mp4" / f"frame{f.index:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        f.image.save(target, quality=95)
    summary = run_crop(
        build_jobs(md=frame_md)[0], extracted, tmp_path / "c", CropSettings(), RunOptions(workers=1)
    )
    assert summary.crops_made == 3
    assert [f["image"] for f in summary.failures] == ["cam1/photo.jpg"]  # not copied there


def test_clips_of_a_cct_use_their_frames_detections(media: Path, tmp_path: Path) -> None:
    from ct_io.cct import from_records

    cct = from_records(
        [{"id": 1, "file_name": "cam1/clip.mp4", "location": "cam1"}],
        [{"id": 1, "image_id": 1, "category_id": 1}],
        [{"id": 1, "name": "deer"}],
    )
    jobs, _ = build_jobs(cct=cct, md=parse_md(per_video_md(["cam1/clip.mp4"])))
    assert [j.file for j in jobs] == [
        "cam1/clip.mp4/frame000000.jpg",
        "cam1/clip.mp4/frame000010.jpg",
        "cam1/clip.mp4/frame000020.jpg",
    ]


def test_crop_cli_on_a_clip_with_workers(media: Path, tmp_path: Path) -> None:
    from ct_crop.cli import app

    write_md(parse_md(per_video_md(["cam1/clip.mp4", "cam2/clip.avi"])), tmp_path / "md.json")
    r = CliRunner().invoke(
        app,
        [
            "crop",
            str(tmp_path / "out"),
            "-i",
            str(media),
            "-d",
            str(tmp_path / "md.json"),
            "-w",
            "2",
            "--size",
            "32",
        ],
    )
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "out" / "cam1" / "clip.mp4").glob("*.jpg"))) == 3
    with Image.open(next((tmp_path / "out" / "cam2" / "clip.avi").glob("*.jpg"))) as im:
        assert max(im.size) == 32


# ---------------------------------------------------------------- detection on frames


class FileDetector:
    """Reads files only: gets clip frames as JPEGs; one box per image, conf = mean level."""

    version = "files-1"
    calls: ClassVar[list[list[str]]] = []

    def __init__(self, options: object = None) -> None:
        pass

    def detect(self, images_dir: Path, files: Sequence[str]) -> Iterator[MDImage]:
        FileDetector.calls.append(list(files))
        for f in files:
            with Image.open(images_dir / f) as im:
                level = float(np.asarray(im.convert("L")).mean()) / 255
            yield MDImage(f, [MDDetection("1", round(level, 3), [0.1, 0.1, 0.2, 0.2])])


class FrameDetector(FileDetector):
    """Also takes in-memory frames."""

    version = "frames-1"
    frames_seen: ClassVar[list[str]] = []

    def detect_frames(self, frames: Iterable[tuple[str, Image.Image]]) -> Iterator[MDImage]:
        for name, image in frames:
            FrameDetector.frames_seen.append(name)
            level = float(np.asarray(image.convert("L")).mean()) / 255
            dets = [MDDetection("1", round(level, 3), [0.1, 0.1, 0.2, 0.2])] if level > 0.1 else []
            yield MDImage(name, dets)


@pytest.mark.parametrize("detector_cls", [FileDetector, FrameDetector], ids=["files", "frames"])
def test_detect_on_sampled_frames_writes_per_video_entries(
    detector_cls: type[FileDetector], media: Path, tmp_path: Path
) -> None:
    FileDetector.calls, FrameDetector.frames_seen = [], []
    files = ["cam1/photo.jpg", "cam1/clip.mp4", "bad/text.mp4", "bad/truncated.avi"]
    results, new = detect_cached(
        detector_cls(),
        media,
        files,
        tmp_path / "cache",
        dataset="d",
        sampling=Sampling(every_n=7),
    )
    assert new == 4
    data = md_to_dict(results)
    assert [p for p in validate_md_dict(data)] == []
    by = {im["file"]: im for im in data["images"]}
    clip = by["cam1/clip.mp4"]
    assert clip["frame_rate"] == 10.0 and clip["frames_processed"] == [0, 7, 14, 21, 28]
    # FrameDetector finds nothing in the dark frame 0, which is still listed as processed
    first = 0 if detector_cls is FileDetector else 7
    assert [d["frame_number"] for d in clip["detections"]] == list(range(first, 29, 7))
    assert (
        by["bad/text.mp4"]["detections"] is None and "not a video" in by["bad/text.mp4"]["failure"]
    )
    assert by["bad/text.mp4"]["frame_rate"] == -1.0
    assert "truncated" in by["bad/truncated.avi"]["failure"]
    if detector_cls is FrameDetector:
        assert FrameDetector.frames_seen[:5] == [
            f"cam1/clip.mp4/frame{n:06d}.jpg" for n in (0, 7, 14, 21, 28)
        ]
        assert FileDetector.calls == [["cam1/photo.jpg"]]
    else:
        assert FileDetector.calls[1] == [
            f"cam1/clip.mp4/frame{n:06d}.jpg" for n in (0, 7, 14, 21, 28)
        ]


@hookimpl
def ct_register_detectors(register):  # type: ignore[no-untyped-def]
    register("frames", FrameDetector, description="test detector on frames")


def test_detect_cli_on_a_folder_of_photos_and_clips(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ct_crop import cli
    from ct_io import plugins

    pm = make_plugin_manager(load_entry_points=False)
    pm.register_plugin(
        types.SimpleNamespace(ct_register_detectors=ct_register_detectors), "t", distribution="t"
    )
    monkeypatch.setattr(plugins, "get_plugin_manager", lambda: pm)
    out = tmp_path / "det.json"
    r = CliRunner().invoke(
        cli.app,
        [
            "detect",
            str(media / "cam1"),
            str(out),
            "--detector",
            "frames",
            "--frames-per-second",
            "2",
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert r.exit_code == 0, r.output
    from ct_io.md import read_md

    md = read_md(out)
    assert [im.file for im in md.images] == ["clip.mp4", "photo.jpg"]
    assert md.images[0].extra["frames_processed"] == [0, 5, 10, 15, 20, 25]
