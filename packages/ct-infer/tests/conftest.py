"""Shared fixtures: the real camera-trap photos and MegaDetector output committed under
``tests/data`` (``md_test``, from the root conftest), their detector crops, and small models
(random tiny ones, and offline-ImageNet Lite0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ct_crop.render import crop_box
from ct_infer.crops import crop_name

DETECTOR_VERSION = "v5a"
MIN_CONF = 0.2


@pytest.fixture(scope="session")
def md_dir(md_test: Path) -> Path:
    return md_test


@pytest.fixture(scope="session")
def md_json(md_dir: Path) -> Path:
    return md_dir / "md_output_v5a.json"


@pytest.fixture(scope="session")
def crops_dir(md_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Square crops of every detection with conf >= 0.2 (24 crops), named by convention."""
    from PIL import Image

    out = tmp_path_factory.mktemp("crops")
    md = json.loads((md_dir / "md_output_v5a.json").read_text())
    for im in md["images"]:
        with Image.open(md_dir / "images" / im["file"]) as img:
            rgb = img.convert("RGB")
        for k, det in enumerate(im["detections"] or []):
            if det["conf"] < MIN_CONF:
                continue
            crop = crop_box(rgb, det["bbox"])
            assert crop is not None
            crop.save(out / crop_name(im["file"], k, DETECTOR_VERSION), quality=90)
    return out


@pytest.fixture(scope="session")
def crop_paths(crops_dir: Path) -> list[str]:
    return sorted(p.name for p in crops_dir.iterdir())


TINY_LABELS = ["antelope", "bird", "carnivore", "primate"]


def make_tiny_bundle(
    path: Path, labels: list[str] = TINY_LABELS, seed: int = 0, **meta: object
) -> Path:
    """A randomly initialised tiny timm network (64 px) saved as a bundle."""
    import torch

    from ct_infer.backbones import build_backbone
    from ct_infer.bundle import make_meta, save_bundle

    torch.manual_seed(seed)
    built = build_backbone("timm:test_efficientnet", len(labels), None, {"input_size": 64})
    save_bundle(
        path,
        built.module,
        make_meta("timm:test_efficientnet", labels, built.preprocessing, built.options, **meta),
    )  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny.safetensors")


@pytest.fixture(scope="session")
def lite0_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EfficientNet-Lite0 with the offline ImageNet weights and ImageNet class names."""
    from timm.data import ImageNetInfo

    from ct_infer.backbones import build_backbone
    from ct_infer.bundle import make_meta, save_bundle

    info = ImageNetInfo()
    labels = [f"{i:03d} {info.index_to_description(i).split(',')[0]}" for i in range(1000)]
    built = build_backbone("efficientnet-lite0", 1000, "offline-imagenet")
    path = tmp_path_factory.mktemp("lite0") / "lite0.safetensors"
    save_bundle(
        path,
        built.module,
        make_meta(
            "efficientnet-lite0", labels, built.preprocessing, built.options, name="lite0-imagenet"
        ),
    )
    return path


@pytest.fixture(scope="session")
def tiny_bundle_factory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Make more tiny bundles: ``factory(name, labels=..., seed=..., **meta)``."""
    folder = tmp_path_factory.mktemp("bundles")

    def factory(name: str, labels: list[str] = TINY_LABELS, seed: int = 0, **meta: object) -> Path:
        return make_tiny_bundle(folder / f"{name}.safetensors", labels, seed, **meta)

    return factory


@pytest.fixture(scope="session")
def mixed_media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(images folder, MD JSON): 6 demo photos, 3 demo clips (16 frames at 8 fps, MD-style
    detections on every 4th frame), the hostile clips (a detection on frame 20 each)."""
    from ct_io.sources.demo import DemoOptions, DemoSource
    from ct_io.video_fixtures import HOSTILE_CLIPS, write_hostile_clips

    root = tmp_path_factory.mktemp("mixed")
    got = DemoSource(
        DemoOptions(
            num_images=6,
            num_locations=2,
            width=160,
            height=120,
            blank_fraction=0.0,
            num_clips=3,
            clip_frames=16,
            clip_fps=8,
            clip_frame_sample=4,
        )
    ).fetch(root)
    write_hostile_clips(got.images_dir / "bad")
    assert got.detections_path is not None
    doc = json.loads(got.detections_path.read_text())
    box = {"category": "1", "conf": 0.9, "bbox": [0.2, 0.2, 0.4, 0.4], "frame_number": 20}
    doc["images"] += [  # frame 20: past where the damaged clips break off
        {"file": f"bad/{n}", "frame_rate": 10.0, "frames_processed": [20], "detections": [box]}
        for n in HOSTILE_CLIPS
    ]
    md = root / "md.json"
    md.write_text(json.dumps(doc))
    return got.images_dir, md
