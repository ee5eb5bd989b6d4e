"""``ct-infer run``: photos + MD JSON + bundle → merged MD JSON, on the real test images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ct_infer.classify import RunSettings
from ct_infer.cli import app
from ct_infer.predictor import Predictor, load_classifier
from ct_infer.run import RunOptions, classify_images
from ct_io.md import read_md, validate_md_dict
from ct_io.problems import errors_only

TAXONOMY = {
    "antelope": "class:mammalia;order:artiodactyla;family:bovidae",
    "bird": "class:aves",
    "carnivore": "class:mammalia;order:carnivora",
    "primate": "class:mammalia;order:primates",
}


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_run_end_to_end(tiny_bundle: Path, md_dir: Path, md_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "timelapse.json"
    text = _run(
        [
            "run",
            str(md_dir / "images"),
            str(tiny_bundle),
            "-d",
            str(md_json),
            "-o",
            str(out),
            "--workers",
            "2",  # worker processes decode the photos
            "--top-k",
            "2",
            "--classifier-name",
            "tiny",
        ]
    )
    assert "24 classified" in text
    doc = json.loads(out.read_text())
    assert not errors_only(validate_md_dict(doc))
    classified = [
        d for im in doc["images"] for d in im["detections"] or [] if d.get("classifications")
    ]
    assert len(classified) == 24 and all(len(d["classifications"]) <= 2 for d in classified)
    summary = pd.read_csv(tmp_path / "timelapse.summary.csv")
    assert summary["detections"].sum() == 24
    assert doc["info"]["classifier"] == "tiny"
    again = _run(
        [
            "run",
            str(md_dir / "images"),
            str(tiny_bundle),
            "-d",
            str(md_json),
            "-o",
            str(out),
            "--workers",
            "0",
        ]
    )
    assert "0 classified, 24 from an earlier run" in again


def test_in_memory_crops_match_crop_files(
    tiny_bundle: Path,
    md_dir: Path,
    md_json: Path,
    crops_dir: Path,
    crop_paths: list[str],
    tmp_path: Path,
) -> None:
    """The same model gives (nearly) the same probabilities on in-memory crops and on crop files."""
    from ct_infer.classify import classify_crops

    predictor = Predictor(load_classifier(tiny_bundle), device="cpu")
    settings = RunSettings(batch_size=16, workers=0, device="cpu")
    mem, report = classify_images(
        predictor,
        md_dir / "images",
        read_md(md_json),
        tmp_path / "mem.csv",
        settings,
        RunOptions(),
        version="v5a",
        progress=False,
    )
    assert report.classified == 24 and not report.failures
    classify_crops(
        predictor, crops_dir, crop_paths, tmp_path / "files.csv", settings, progress=False
    )
    files = pd.read_csv(tmp_path / "files.csv").set_index("path").sort_index()
    mem = mem.set_index("path").sort_index()
    assert list(mem.index) == list(files.index)
    agree = (mem.to_numpy().argmax(1) == files.to_numpy().argmax(1)).mean()
    assert agree >= 0.9  # JPEG re-encoding of crop files differs slightly
    assert np.abs(mem.to_numpy() - files.to_numpy()).mean() < 0.05


def test_bad_images_are_reported_not_fatal(
    tiny_bundle: Path, md_dir: Path, md_json: Path, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    shutil.copytree(md_dir / "images", images)
    md = json.loads(md_json.read_text())
    victim = next(
        im["file"] for im in md["images"] if any(d["conf"] >= 0.2 for d in im["detections"])
    )
    (images / victim).write_bytes((images / victim).read_bytes()[:2000])  # truncated
    md["images"].append(
        {
            "file": "missing.jpg",
            "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}],
        }
    )
    bad_md = tmp_path / "md.json"
    bad_md.write_text(json.dumps(md))
    out = tmp_path / "out.json"
    text = _run(
        ["run", str(images), str(tiny_bundle), "-d", str(bad_md), "-o", str(out), "--workers", "0"]
    )
    assert "failures" in text and "missing.jpg" in text
    doc = json.loads(out.read_text())
    assert len(doc["images"]) == len(md["images"])


def test_target_mapping_rollup_and_sequences(
    tiny_bundle_factory, md_dir: Path, md_json: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    bundle = tiny_bundle_factory("taxo", taxonomy=TAXONOMY)
    out = tmp_path / "rolled.json"
    _run(
        [
            "run",
            str(md_dir / "images"),
            str(bundle),
            "-d",
            str(md_json),
            "-o",
            str(out),
            "--workers",
            "0",
            "--rollup",
            "0.6",
            "--sequence-gap",
            "60",
        ]
    )
    doc = json.loads(out.read_text())
    names = set(doc["classification_categories"].values())
    assert any(
        n.startswith("rollup: ") for n in names
    )  # no label reaches 0.6 (near-uniform tiny model); class mammalia (3 labels) does
    assert "rollup: class mammalia" in names
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"mammal": ["antelope", "carnivore", "primate"], "bird": ["bird"]})
    )
    out2 = tmp_path / "mapped.json"
    _run(
        [
            "run",
            str(md_dir / "images"),
            str(bundle),
            "-d",
            str(md_json),
            "-o",
            str(out2),
            "--workers",
            "0",
            "--target-mapping",
            str(mapping),
        ]
    )
    doc2 = json.loads(out2.read_text())
    assert set(doc2["classification_categories"].values()) == {"mammal", "bird"}


def test_run_needs_one_detection_source(tiny_bundle: Path, md_dir: Path, tmp_path: Path) -> None:
    from ct_io.errors import CamtrapError

    result = CliRunner().invoke(
        app, ["run", str(md_dir / "images"), str(tiny_bundle), "-o", str(tmp_path / "x.json")]
    )
    assert isinstance(result.exception, CamtrapError) and "--detections" in str(result.exception)


def test_run_with_a_detector_plugin_instead_of_md_json(
    tiny_bundle: Path, md_dir: Path, md_json: Path, tmp_path: Path
) -> None:
    """`run --detector`: a detector plugin makes the MD JSON (cached beside the output).
    The plugin here replays MegaDetector's real output for these photos."""
    import types
    from collections.abc import Iterator, Sequence

    from ct_infer.run import default_paths, detect_images, run_pipeline
    from ct_io import hookimpl
    from ct_io.md import MDImage
    from ct_io.plugins import make_plugin_manager

    recorded = read_md(md_json).by_file()
    calls: list[int] = []

    class Replay:
        version = "v5a-replay"

        def __init__(self) -> None:
            self.detection_categories = {"1": "animal", "2": "person", "3": "vehicle"}

        def detect(self, images_dir: Path, files: Sequence[str]) -> Iterator[MDImage]:
            calls.append(len(files))
            for f in files:
                assert (images_dir / f).is_file()
                yield recorded[f]

    @hookimpl
    def ct_register_detectors(register):  # type: ignore[no-untyped-def]
        register("replay", Replay, description="replays recorded detections")

    pm = make_plugin_manager(load_entry_points=False)
    pm.register_plugin(
        types.SimpleNamespace(ct_register_detectors=ct_register_detectors),
        "replay",
        distribution="tests",
    )
    out = tmp_path / "out.json"
    cache = default_paths(out)["detections"]
    md = detect_images("replay", {}, md_dir / "images", cache, pm)
    assert calls == [13] and cache.is_file() and len(md.images) == 13
    again = detect_images("replay", {}, md_dir / "images", cache, pm)
    assert calls == [13] and len(again.images) == 13  # from the cache
    report = run_pipeline(
        Predictor(load_classifier(tiny_bundle), device="cpu"),
        md_dir / "images",
        md,
        out,
        RunSettings(batch_size=16, workers=0, device="cpu"),
        RunOptions(),
        progress=False,
    )
    assert (
        report.classified == 24 and json.loads(out.read_text())["info"]["detector"] == "v5a-replay"
    )


def test_run_where_no_image_can_be_read_reports_failures(
    tiny_bundle: Path, md_dir: Path, md_json: Path, tmp_path: Path
) -> None:
    """Symlinks leading outside the images folder are refused (paths come from data files);
    when that leaves nothing to classify, the run still ends with its counts, no traceback."""
    images = tmp_path / "images"
    images.mkdir()
    md = json.loads(md_json.read_text())
    for im in md["images"]:
        (images / im["file"]).parent.mkdir(parents=True, exist_ok=True)
        (images / im["file"]).symlink_to(md_dir / "images" / im["file"])
    out = tmp_path / "out.json"
    text = _run(
        ["run", str(images), str(tiny_bundle), "-d", str(md_json), "-o", str(out), "-w", "0"]
    )
    flat = " ".join(text.split())
    assert "24 detections: 0 classified" in flat and "11 failures" in flat
    assert "through a symlink" in flat
    doc = json.loads(out.read_text())
    assert not any(d.get("classifications") for im in doc["images"] for d in im["detections"] or [])
