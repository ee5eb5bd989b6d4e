"""Start-up stays light: ``--help`` loads no heavy library (pandas alone takes ~2.4 s on
a busy 2-core machine; the target is ``--help`` within 0.5 s). Checked in a fresh
interpreter through the console script's ``main``, by what lands in ``sys.modules``."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ct_io.testing import modules_loaded_by


def test_help_imports_no_heavy_library() -> None:
    loaded, _ = modules_loaded_by("ct-crop", "ct_crop.cli", ["--help"])
    assert loaded == []


def test_crop_from_detections_alone_loads_no_table_library(tmp_path: Path) -> None:
    """``crop --detections`` without ``--cct`` reads no CCT, so it must not pay for pandas,
    numpy or pyarrow (start-up dominates a small job: 31 photos took 0.9 s with pandas, 0.5 s
    without, against 0.35 s for MegaDetector's crop_detections; bench/bench_crop.py)."""
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(images / "a.jpg")
    md = {
        "info": {"format_version": "1.4", "detector": "mdv5a"},
        "detection_categories": {"1": "animal"},
        "images": [
            {
                "file": "a.jpg",
                "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]}],
            }
        ],
    }
    (tmp_path / "md.json").write_text(json.dumps(md))
    out = tmp_path / "crops"
    args = ["crop", str(out), "-i", str(images), "-d", str(tmp_path / "md.json"), "-w", "1"]
    loaded, _ = modules_loaded_by("ct-crop", "ct_crop.cli", args)
    assert (out / "crops.csv").read_text().count("\n") == 2  # the header and one crop
    assert not {"pandas", "numpy", "pyarrow"} & set(loaded)
