from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture
def md_test_images(md_test: Path) -> Path:
    """The real photos of the committed fixture set (``md_test`` comes from the root conftest)."""
    return md_test / "images"


def _reference_score(
    df: pd.DataFrame,
    split_of_loc: dict[str, str],
    targets: dict[str, float],
    distribution: float = 0.0,
) -> float:
    """MegaDetector's formula (plus animl-ml's val/test distribution term), one split at a time."""
    key = df["dataset"].astype(str) + "/" + df["location"].astype(str)
    counts = df.groupby(["label", key]).size().unstack("label", fill_value=0)
    label_count, loc_count = counts.sum(), (counts > 0).sum()
    overall = label_count / label_count.sum()
    score = 0.0
    for split, target in targets.items():
        rows = counts.loc[[k for k in counts.index if split_of_loc[k] == split]]
        if distribution and split != "train" and target > 0:
            size = rows.sum().sum()
            dist = rows.sum() / size if size else rows.sum() * 0.0
            score += distribution * ((dist - overall) ** 2).sum()
        score += 2 * ((rows.sum() / label_count - target) ** 2).sum()
        score += (((rows > 0).sum() / loc_count - target) ** 2).sum()
    return float(score)


@pytest.fixture
def reference_score():
    """A plain pandas implementation of the reference score (MegaDetector + animl-ml)."""
    return _reference_score
