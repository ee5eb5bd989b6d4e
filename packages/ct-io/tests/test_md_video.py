"""MegaDetector's two video result forms: read, converted both ways, validated, written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ct_io.cli import app
from ct_io.md import md_to_dict, parse_md, read_md, validate_md_dict, write_md
from ct_io.md_video import has_video_entries, to_frame_level, to_video_level, videos_of
from ct_io.problems import errors_only

#: What MegaDetector's process_video writes (format 1.5: frame_rate, frames_processed,
#: frame_number per detection), plus a photo, a failed clip and a clip with nothing found.
PER_VIDEO: dict[str, Any] = {
    "info": {"format_version": "1.5", "detector": "md_v5a.0.0.pt"},
    "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
    "images": [
        {"file": "cam1/photo.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]},
        {
            "file": "cam1/clip.mp4",
            "frame_rate": 30.0,
            "frames_processed": [0, 10, 20, 30],
            "timelapse_note": "kept",
            "detections": [
                {"category": "1", "conf": 0.8, "bbox": [0.1, 0.2, 0.3, 0.4], "frame_number": 0},
                {"category": "1", "conf": 0.7, "bbox": [0.5, 0.2, 0.3, 0.4], "frame_number": 0},
                {"category": "2", "conf": 0.6, "bbox": [0.2, 0.2, 0.1, 0.4], "frame_number": 20},
            ],
        },
        {"file": "cam2/empty.AVI", "frame_rate": 15.0, "frames_processed": [0, 10], "detections": []},
        {
            "file": "cam2/broken.mp4",
            "frame_rate": -1.0,
            "frames_processed": [],
            "failure": "Failure processing video: cannot open",
            "detections": None,
        },
    ],
}  # fmt: skip


def test_per_video_results_validate_and_round_trip(tmp_path: Path) -> None:
    assert errors_only(validate_md_dict(PER_VIDEO)) == []
    md = parse_md(copy.deepcopy(PER_VIDEO))
    assert has_video_entries(md)
    assert videos_of(md) == ["cam1/clip.mp4", "cam2/empty.AVI", "cam2/broken.mp4"]
    out = tmp_path / "md.json"
    write_md(md, out)
    assert md_to_dict(read_md(out)) == PER_VIDEO


def test_per_video_to_frame_level_and_back_is_lossless() -> None:
    md = parse_md(copy.deepcopy(PER_VIDEO))
    frames, videos = to_frame_level(md)
    files = [im.file for im in frames.images]
    assert files == [
        "cam1/photo.jpg",
        "cam1/clip.mp4/frame000000.jpg",
        "cam1/clip.mp4/frame000010.jpg",
        "cam1/clip.mp4/frame000020.jpg",
        "cam1/clip.mp4/frame000030.jpg",
        "cam2/empty.AVI/frame000000.jpg",
        "cam2/empty.AVI/frame000010.jpg",
        "cam2/broken.mp4",
    ]
    by = frames.by_file()
    assert [d.conf for d in by["cam1/clip.mp4/frame000000.jpg"].detections or []] == [0.8, 0.7]
    assert by["cam1/clip.mp4/frame000010.jpg"].detections == []
    assert "frame_number" not in (by["cam1/clip.mp4/frame000020.jpg"].detections or [])[0].extra
    assert md_to_dict(to_video_level(frames, videos)) == PER_VIDEO


def test_frame_level_results_become_per_video_with_frame_rates() -> None:
    """MegaDetector's frame-level form (run on extracted frames) → the Timelapse form."""
    frame_level = {
        "info": {"format_version": "1.4"},
        "detection_categories": {"1": "animal"},
        "images": [
            {"file": "v/a.mp4/frame000005.jpg", "detections": []},
            {"file": "v/a.mp4/frame000000.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": [0, 0, 0.5, 0.5]}]},
            {"file": "v/b.jpg", "detections": []},
            {"file": "v/a.mp4/frame000010.jpg", "detections": None, "failure": "bad frame"},
        ],
    }  # fmt: skip
    md = parse_md(frame_level)
    assert not has_video_entries(md) and videos_of(md) == ["v/a.mp4"]
    video = md_to_dict(to_video_level(md, frame_rates={"v/a.mp4": 25.0}))
    assert video["images"] == [
        {
            "file": "v/a.mp4",
            "frame_rate": 25.0,
            "frames_processed": [0, 5],  # the failed frame left out, as MegaDetector does
            "detections": [
                {"category": "1", "conf": 0.5, "bbox": [0, 0, 0.5, 0.5], "frame_number": 0}
            ],
        },
        {"file": "v/b.jpg", "detections": []},
    ]
    assert errors_only(validate_md_dict(video)) == []


def test_video_entries_are_validated() -> None:
    bad = copy.deepcopy(PER_VIDEO)
    clip = bad["images"][1]
    del clip["frame_rate"]
    clip["frames_processed"] = [0, "ten"]
    del clip["detections"][1]["frame_number"]
    clip["detections"][2]["frame_number"] = -3
    problems = validate_md_dict(bad)
    text = {(p.path, p.severity) for p in problems}
    assert ("images[1].frame_rate", "warning") in text
    assert ("images[1].frames_processed", "error") in text
    assert ("images[1].detections[1].frame_number", "error") in text
    assert ("images[1].detections[2].frame_number", "error") in text


def test_ct_io_validate_accepts_both_forms(tmp_path: Path) -> None:
    md = parse_md(copy.deepcopy(PER_VIDEO))
    write_md(md, tmp_path / "videos.json")
    write_md(to_frame_level(md)[0], tmp_path / "frames.json")
    runner = CliRunner()
    for name in ("videos.json", "frames.json"):
        result = runner.invoke(app, ["validate", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
