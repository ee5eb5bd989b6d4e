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
