"""Fixtures of the fault-injection suite (helpers in ``faultkit``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # faultkit, for the test modules

from faultkit import FileServer, cli, crop_demo_args, dataset_args, run_ok


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in demo source: images, a CCT with boxes and MD JSON (``demo/demo/``)."""
    out = tmp_path_factory.mktemp("demo")
    run_ok(cli("ct-io", "fetch", "demo", out, "-o", "num_images=160", "-o", "num_locations=8"))
    return out / "demo"


@pytest.fixture(scope="session")
def demo_crops(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-crops") / "crops"
    run_ok(cli("ct-crop", "crop", *crop_demo_args(demo), out))
    return out


@pytest.fixture(scope="session")
def demo_dataset(demo: Path, demo_crops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """classification_ds.csv, label_index.json and splits.json of the demo crops."""
    out = tmp_path_factory.mktemp("demo-ds")
    run_ok(cli("ct-splits", "dataset", out, *dataset_args(demo, demo_crops)))
    run_ok(cli("ct-splits", "split", out, "--trials", "2000"))
    return out


@pytest.fixture(scope="session")
def md_crops(md_test: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ct-crop's crops of the real MegaDetector detections (24 crops, 96 px)."""
    out = tmp_path_factory.mktemp("md-crops") / "crops"
    run_ok(cli("ct-crop", "crop", "-i", md_test / "images", "-d", md_test / "md_output_v5a.json",
               "--size", "96", "-w", "1", out))  # fmt: skip
    return out


@pytest.fixture()
def http_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.stop()
