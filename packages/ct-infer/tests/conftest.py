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


# ---------------------------------------------------------------- review and report


def write_outputs(
    eval_dir: Path, split: str, paths: list[str], labels: list[str], truth: list[str], seed: int
) -> None:
    """An ``outputs_{split}.csv.gz`` as evaluate writes it, with made-up probabilities: the
    true label wins for two crops in three, so every split has mistakes."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(labels)) * 0.3, size=len(paths))
    for i, label in enumerate(truth):
        if i % 3:
            j = labels.index(label)
            probs[i, j] = probs[i].max() + 0.5
            probs[i] /= probs[i].sum()
    frame = pd.DataFrame(probs, columns=labels)
    frame.insert(0, "weight", 1.0)
    frame.insert(0, "label", truth)
    frame.insert(0, "path", paths)
    eval_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(eval_dir / f"outputs_{split}.csv.gz", index=False)


@pytest.fixture
def synthetic_run(tmp_path: Path, crops_dir: Path, crop_paths: list[str]) -> Path:
    """A ct-train run folder of the fixture's real crops: dataset table, label index, a
    selection report mapping labels to dataset classes, and evaluation outputs of train and
    val (val without any primate) — what ``ct-infer review`` and ``report`` read."""
    import shutil

    import pandas as pd
    import yaml

    run = tmp_path / "run"
    shutil.copytree(crops_dir, run / "crops")
    labels = TINY_LABELS
    truth = [labels[i % 4] for i in range(len(crop_paths))]
    half = len(crop_paths) // 2
    val_truth = [t if t != "primate" else "bird" for t in truth[half:]]
    rows = [
        {
            "path": p,
            "dataset": "md",
            "location": p.split("_")[1],
            "dataset_class": t,
            "confidence": 1.0,
            "label": t,
            "image": "md/" + p.split("___crop")[0],
        }
        for p, t in zip(crop_paths, truth[:half] + val_truth, strict=True)
    ]
    pd.DataFrame(rows).to_csv(run / "classification_ds.csv", index=False)
    (run / "label_index.json").write_text(json.dumps(dict(enumerate(labels))))
    (run / "selection").mkdir()
    report = {"labels": {lb: {"dataset_labels": [f"md|{lb.title()} sp"]} for lb in labels}}
    (run / "selection" / "selection_report.json").write_text(json.dumps(report))
    config = {"run_dir": str(run), "data": {"dir": ".", "crops_dir": "crops"}, "labels": {}}
    (run / "resolved_config.yml").write_text(yaml.safe_dump(config))
    write_outputs(run / "evaluation", "train", crop_paths[:half], labels, truth[:half], 1)
    write_outputs(run / "evaluation", "val", crop_paths[half:], labels, val_truth, 2)
    return run


@pytest.fixture
def classified_md(tmp_path: Path, md_json: Path) -> Path:
    """The fixture's MD JSON with made-up classifications, as ``ct-infer run`` writes them:
    best class confidences from 0.3 to 0.9, so some fall below 0.5."""
    md = json.loads(md_json.read_text())
    md["info"]["format_version"] = "1.4"
    md["classification_categories"] = {str(i): lb for i, lb in enumerate(TINY_LABELS)}
    n = 0
    for im in md["images"]:
        for det in im["detections"] or []:
            if det["conf"] >= MIN_CONF:
                top = 0.3 + 0.6 * ((n * 7) % 10) / 10
                det["classifications"] = [[str(n % 4), round(top, 3)], [str((n + 1) % 4), 0.1]]
                n += 1
    out = tmp_path / "new_photos.json"
    out.write_text(json.dumps(md))
    return out
