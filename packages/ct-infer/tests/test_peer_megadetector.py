"""MegaDetector's own validator accepts our merged files. Marked ``peer``: run by
``nox -s peer``, which installs ``megadetector``; the other sessions deselect these tests."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from ct_infer.merge import MergeOptions, merge_classifications
from ct_infer.rollup import lineages_from_meta
from ct_io.md import read_md, write_md

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def validate() -> ModuleType:
    """MegaDetector's validator; its absence is a failure (``nox -s peer`` installs it)."""
    try:
        import megadetector.postprocessing.validate_batch_results as module
    except ImportError as exc:
        pytest.fail(f"megadetector is not installed ({exc}): run these tests with `nox -s peer`")
    return module


LABELS = ["antelope", "bird", "carnivore", "primate"]


@pytest.mark.parametrize(
    "options",
    [
        MergeOptions(),
        MergeOptions(threshold=0.1, top_k=2),
        MergeOptions(relative_conf=True, label="last"),
        MergeOptions(label="first", sequences={}),
        MergeOptions(label="last", typical_threshold=0.5),
        MergeOptions(
            top_k=3,
            rollup_threshold=0.6,
            lineages=lineages_from_meta(
                {
                    "antelope": "class:mammalia;order:artiodactyla",
                    "bird": "class:aves",
                    "carnivore": "class:mammalia;order:carnivora",
                    "primate": "class:mammalia;order:primates",
                }
            ),
        ),
    ],
    ids=["plain", "threshold-topk", "relative-label", "label-first", "label-last", "rollup"],
)
def test_megadetector_validator_accepts_merged_output(
    options: MergeOptions,
    tiny_bundle: Path,
    crops_dir: Path,
    crop_paths: list[str],
    md_json: Path,
    tmp_path: Path,
    validate: ModuleType,
) -> None:
    from ct_infer.classify import RunSettings, classify_crops
    from ct_infer.predictor import Predictor, load_classifier

    csv = tmp_path / "c.csv"
    classify_crops(
        Predictor(load_classifier(tiny_bundle), device="cpu"),
        crops_dir,
        crop_paths,
        csv,
        RunSettings(workers=0, device="cpu"),
        progress=False,
    )
    frame = pd.read_csv(csv).assign(label="primate")
    merged, report = merge_classifications(read_md(md_json), frame, LABELS, options)
    assert report.matched == 24  # the fixture's boxes with conf >= 0.2
    out = tmp_path / "merged.json"
    write_md(merged, out)
    result = validate.validate_batch_results(str(out))["validation_results"]
    assert result["errors"] == []
    assert result["warnings"] == []


# ---------------------------------------------------------------- video results


def test_megadetector_validator_accepts_video_results(
    mixed_media: tuple[Path, Path], tiny_bundle: Path, tmp_path: Path, validate: ModuleType
) -> None:
    """``ct-infer run`` on photos and clips (per-video form with roll-ups, and from
    frame-level input), and the frame-level form itself, all pass MegaDetector's validator."""
    from typer.testing import CliRunner

    from ct_infer.cli import app
    from ct_io.md_video import to_frame_level

    images, md = mixed_media
    frames = tmp_path / "frames.json"
    write_md(to_frame_level(read_md(md))[0], frames)
    outputs = []
    for name, detections in (("videos", md), ("from-frames", frames)):
        out = tmp_path / f"{name}.json"
        args = ["run", str(images), str(tiny_bundle), "-d", str(detections), "-o", str(out)]
        result = CliRunner().invoke(app, [*args, "-w", "0"])
        assert result.exit_code == 0, result.output
        outputs.append(out)
    for path in [md, frames, *outputs]:
        report = validate.validate_batch_results(str(path))["validation_results"]
        assert report["errors"] == [], path.name
        assert report["warnings"] == [], path.name


def test_per_video_form_matches_megadetectors_own_conversion(
    mixed_media: tuple[Path, Path], tmp_path: Path
) -> None:
    """MegaDetector's frame_results_to_video_results (all frames kept) gives the clips the
    same detections, frame numbers and frame rates as ct_io.md_video.to_video_level."""
    import json

    from megadetector.detection import video_utils

    from ct_io.md import md_to_dict
    from ct_io.md_video import to_frame_level, to_video_level

    _, md = mixed_media
    frames, _ = to_frame_level(read_md(md))
    frames.images = [
        im for im in frames.images if im.file.startswith("loc_") and ".mp4/" in im.file
    ]
    frame_file = tmp_path / "frames.json"
    write_md(frames, frame_file)
    rates = {im.file: 8.0 for im in read_md(md).images if im.file.startswith("loc_")}
    options = video_utils.FrameToVideoOptions()
    options.include_all_processed_frames = True
    theirs_file = tmp_path / "theirs.json"
    video_utils.frame_results_to_video_results(
        str(frame_file), str(theirs_file), options, video_filename_to_frame_rate=rates
    )
    theirs = {im["file"]: im for im in json.loads(theirs_file.read_text())["images"]}
    ours = {im["file"]: im for im in md_to_dict(to_video_level(frames, None, rates))["images"]}
    assert theirs.keys() == ours.keys() and len(ours) == 3
    for clip, im in ours.items():
        assert im["frame_rate"] == theirs[clip]["frame_rate"]
        assert im["detections"] == theirs[clip]["detections"]


def test_megadetector_validator_accepts_true_labels_only(
    crop_paths: list[str], md_json: Path, tmp_path: Path, validate: ModuleType
) -> None:
    """A ``classification_ds.csv`` (true labels, no probabilities) merged on its own."""
    frame = pd.DataFrame({"path": crop_paths, "dataset": "md", "label": "bird"})
    merged, report = merge_classifications(read_md(md_json), frame, LABELS, MergeOptions())
    assert report.labels_only and report.matched == 24
    out = tmp_path / "labels.json"
    write_md(merged, out)
    result = validate.validate_batch_results(str(out))["validation_results"]
    assert result["errors"] == [] and result["warnings"] == []
