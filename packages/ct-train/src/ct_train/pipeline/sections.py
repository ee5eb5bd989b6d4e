"""The config sections of the pipeline stages before and after training (``ct-train run``).

They sit in ``config.yml`` next to the training sections and are validated the same way
(unknown keys rejected, one line per problem with its path). Every section has defaults,
so a config with only ``sources:`` runs the whole chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from attrs import define, field


@define
class SourceConfig:
    """One data source (``ct-io sources`` lists them), fetched by name with its options."""

    name: str  # demo, animl, lila, folder, or a plugin's name
    options: dict[str, Any] = field(factory=dict)
    #: Name of the dataset in the combined data (default: the name the source reports).
    dataset: str | None = None


@define
class LabelsConfig:
    """Which images become which classifier label (ct-taxonomy)."""

    #: Label spec (.json or .csv); none: every dataset category except ``empty`` is a label.
    spec: Path | None = None
    taxonomy: Path | None = None  # taxonomy CSV, needed when the spec names taxa
    #: Folder of known-mislabeled lists (<dataset>.csv); none: the run's ``mislabeled/``
    #: folder when it exists (``ct-infer review`` writes there).
    mislabeled: Path | None = None
    allow_multilabel: bool = False
    seed: int = 123  # max_count sampling


@define
class DetectorConfig:
    """The detector, run only on selected images without ground-truth boxes whose source
    brought no MegaDetector JSON (results cached per detector version)."""

    name: str = "megadetector"
    options: dict[str, Any] = field(factory=dict)
    enabled: bool = True  # false: such images are left out instead
    cache_dir: Path = Path("mdcache")


@define
class CropConfig:
    """How boxes become crops (ct-crop); the crops go to ``data.crops_dir``."""

    boxes: Literal["auto", "gt", "detector", "both"] = "auto"
    threshold: float = 0.2  # detector boxes below this confidence are not cropped
    categories: list[str] = field(factory=lambda: ["animal"])
    strategy: Literal["square", "pad", "tight", "center"] = "square"
    margin: float = 0.0
    min_size: int = 0
    size: int | None = None  # longest side of the saved crops; none: full resolution
    quality: int = 95
    workers: int = 0  # 0: one per CPU core
    engine: str = "local"  # local, or ray (pip install 'ct-crop[ray]'): who crops
    ray_address: str | None = None  # engine ray: the cluster to join; none: start a local one
    shard_size: int = 0  # engine ray: images per shard (0: the default)


@define
class TableConfig:
    """How crops and selected images become ``classification_ds.csv`` (ct-splits)."""

    threshold: float = 0.8  # detector crops below this confidence are left out
    min_locs: int | None = None  # drop labels seen at fewer locations
    pseudo_locations: Literal["sequence", "dataset", "image"] = "sequence"


@define
class SplitsConfig:
    """The location split (ct-splits): ``splits.json``."""

    method: Literal["random", "smallest_first"] = "random"
    val_frac: float = 0.2
    test_frac: float = 0.2
    trials: int = 10_000
    seed: int = 0
    group_by: list[str] = field(factory=lambda: ["location", "sequence"])


@define
class EvaluateConfig:
    """The best checkpoint on every split with ct-infer (``evaluation/``)."""

    splits: list[str] = field(factory=lambda: ["train", "val", "test"])
    batch_size: int = 64


@define
class ExportConfig:
    """The model bundle (``model/<name>.safetensors``) and its exports."""

    name: str | None = None  # bundle name; default: the run folder's name
    #: Fit temperature scaling on the val split and store the temperature in the bundle.
    calibrate: bool = True
    formats: list[Literal["torchscript", "onnx"]] = field(factory=lambda: ["torchscript", "onnx"])


@define
class ReportConfig:
    """The HTML report (ct-infer report): metrics, and the crops behind them."""

    label: str | None = None  # crop grids of only this label (none: every label)
    split: str | None = None  # crop grids of only this split (none: every split)
    per_class: int = 8  # crops shown per predicted class and per confusion
