from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from ct_io.tables import Splits, write_classification_ds, write_label_index, write_splits

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # tinyplugin, for in-process and subprocess tests

LABELS = ("bear", "deer", "fox")
COLOURS = {"bear": (40, 30, 20), "deer": (170, 120, 60), "fox": (220, 80, 20)}


def make_dataset(root: Path, per_location: int = 6, size: int = 40, seed: int = 0) -> Path:
    """Tiny coloured crops for 3 labels at 6 locations (4 train, 1 val, 1 test)."""
    rng = np.random.default_rng(seed)
    rows = []
    for loc in range(6):
        for label in LABELS:
            for i in range(per_location):
                rel = f"loc{loc}/{label}_{i}.jpg"
                noise = rng.integers(-30, 30, size=(size, size + 8, 3))
                pixels = np.clip(np.array(COLOURS[label]) + noise, 0, 255).astype(np.uint8)
                path = root / "crops" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, quality=90)
                rows.append(
                    {
                        "path": rel,
                        "dataset": "demo",
                        "location": f"loc{loc}",
                        "dataset_class": label,
                        "confidence": float(rng.uniform(0.5, 1.0)),
                        "label": label,
                    }
                )
    write_classification_ds(pd.DataFrame(rows), root / "classification_ds.csv")
    write_label_index(list(LABELS), root / "label_index.json")
    loc = lambda i: ("demo", f"loc{i}")  # noqa: E731
    write_splits(
        Splits(train=[loc(i) for i in range(4)], val=[loc(4)], test=[loc(5)]), root / "splits.json"
    )
    return root


def write_config(run_dir: Path, data_dir: Path, extra: dict[str, Any] | None = None) -> Path:
    """A fast CPU config for the tiny backbone; ``extra`` merged on top."""
    from ct_train.config import deep_merge

    cfg: dict[str, Any] = {
        "data": {
            "dir": str(data_dir),
            "crops_dir": str(data_dir / "crops"),
            "batch_size": 8,
            "num_workers": 0,
            "image_size": 32,
        },
        "model": {"backbone": "tiny", "pretrained": "none"},
        "optim": {"lr": 0.01, "weight_decay": 0.0},
        "train": {"epochs": 2, "amp": "off", "log_every_steps": 1},
        "loggers": [{"name": "console", "options": {"progress": False}}],
    }
    cfg = deep_merge(cfg, extra or {})
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture
def pm():  # type: ignore[no-untyped-def]
    import tinyplugin

    return tinyplugin.plugin_manager()
