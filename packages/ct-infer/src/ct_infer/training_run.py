"""Evaluation defaults read from a training run folder, as the seed's ``evaluate_model.py``
reads ``params.json``.

Two layouts are understood:

- a ``ct-train`` run folder: ``resolved_config.yml`` (``data.dir``, ``data.crops_dir``,
  ``data.dataset_csv``/``label_index``/``splits``, ``data.image_size``,
  ``data.num_workers``, ``evaluate.splits``, ``evaluate.batch_size``, ``export.name``) and
  the bundle ``model/<export.name or folder name>.safetensors``; outputs go to
  ``evaluation/``;
- the seed's log folder: ``params.json`` (``dataset_dir``, ``cropped_images_dir``,
  ``model_name``, ``batch_size``, ``num_workers``); its checkpoints are pickles, which are
  never loaded, so the model is given on the command line (a bundle or TorchScript file).

Paths recorded under the run folder's old location are rebased onto where the folder is
now, so a run folder can be moved or copied to another machine. :func:`resolve_evaluation`
combines what was given on the command line with these defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from attrs import frozen

from ct_io.errors import CamtrapError

CT_TRAIN_CONFIG = "resolved_config.yml"
#: A run's own folder of known-mislabeled lists, used when ``labels.mislabeled`` is not set.
MISLABELED_DIR = "mislabeled"
SEED_PARAMS = "params.json"


@frozen
class TrainingRun:
    """What a training run says about evaluating its model; ``None`` where it says nothing."""

    source: Path
    dataset_dir: Path | None = None
    crops_dir: Path | None = None
    dataset_csv: Path | None = None
    label_index: Path | None = None
    splits_json: Path | None = None
    splits: tuple[str, ...] | None = None
    image_size: int | None = None
    batch_size: int | None = None
    workers: int | None = None
    model: Path | None = None
    output_dir: Path | None = None
    backbone: str | None = None
    #: The known-mislabeled lists the run's selection applies (``labels.mislabeled``, else
    #: the run's ``mislabeled/`` folder, where ``ct-infer review`` writes).
    mislabeled_dir: Path | None = None

    def require_model(self) -> Path:
        """The run's bundle, or an error saying what to do."""
        if self.model is None:
            make = (
                f"make one from its best checkpoint with `ct-train bundle {self.source.parent}`, or "
                if self.source.name == CT_TRAIN_CONFIG
                else ""
            )
            raise CamtrapError(
                f"{self.source}: no model bundle found for this run — {make}give MODEL "
                "(a bundle .safetensors or a TorchScript/ONNX export); pickled checkpoints are never loaded"
            )
        return self.model


def read_training_run(path: str | os.PathLike[str]) -> TrainingRun:
    """Read a run folder, its ``resolved_config.yml`` or a seed ``params.json``."""
    p = Path(path)
    if p.is_dir():
        for name in (CT_TRAIN_CONFIG, SEED_PARAMS):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise CamtrapError(
                f"{p}: not a training run folder (no {CT_TRAIN_CONFIG} from ct-train, no {SEED_PARAMS})"
            )
    if not p.is_file():
        raise CamtrapError(f"{p}: file not found")
    if p.suffix.lower() in (".yml", ".yaml"):
        return _from_ct_train(p, _read_yaml(p))
    from ct_io.jsonio import read_json

    data = read_json(p)
    if not isinstance(data, dict):
        raise CamtrapError(f"{p}: expected a JSON object of training parameters")
    return _from_seed_params(p, data)


def _read_yaml(p: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CamtrapError(f"{p}: not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise CamtrapError(f"{p}: expected a mapping of config sections")
    return data


def _section(data: Mapping[str, Any], name: str, p: Path) -> Mapping[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise CamtrapError(f"{p}: section {name!r} must be a mapping")
    return value


def _int(value: Any, key: str, p: Path) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CamtrapError(f"{p}: {key} must be a whole number, got {value!r}")
    return value


def _rebase(value: Any, old_root: PurePath | None, new_root: Path) -> Path | None:
    """A recorded path, moved along with the run folder when it lay inside it."""
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute():
        return new_root / path
    if old_root is not None and not path.exists():
        try:
            return new_root / path.relative_to(old_root)
        except ValueError:
            pass
    return path


def _from_ct_train(p: Path, data: Mapping[str, Any]) -> TrainingRun:
    run_dir = p.parent.resolve()
    recorded = data.get("run_dir")
    old_root = PurePath(str(recorded)) if recorded else None
    d = _section(data, "data", p)
    ev = _section(data, "evaluate", p)
    export = _section(data, "export", p)
    model = _section(data, "model", p)
    labels = _section(data, "labels", p)
    dataset_dir = _rebase(d.get("dir") or ".", old_root, run_dir)
    assert dataset_dir is not None
    splits = ev.get("splits")
    if splits is not None and not (
        isinstance(splits, list) and all(isinstance(s, str) for s in splits)
    ):
        raise CamtrapError(f"{p}: evaluate.splits must be a list of split names")
    return TrainingRun(
        source=p,
        dataset_dir=dataset_dir,
        crops_dir=_rebase(d.get("crops_dir") or "crops", old_root, run_dir),
        dataset_csv=dataset_dir / str(d.get("dataset_csv") or "classification_ds.csv"),
        label_index=dataset_dir / str(d.get("label_index") or "label_index.json"),
        splits_json=dataset_dir / str(d.get("splits") or "splits.json"),
        splits=tuple(splits) if splits else None,
        image_size=_int(d.get("image_size"), "data.image_size", p),
        batch_size=_int(ev.get("batch_size"), "evaluate.batch_size", p),
        workers=_int(d.get("num_workers"), "data.num_workers", p),
        model=_find_bundle(run_dir, export.get("name")),
        output_dir=run_dir / "evaluation",
        backbone=str(model["backbone"]) if model.get("backbone") else None,
        mislabeled_dir=_rebase(labels.get("mislabeled"), old_root, run_dir)
        or run_dir / MISLABELED_DIR,
    )


def _find_bundle(run_dir: Path, name: Any) -> Path | None:
    """``model/<name>.safetensors`` (name: export.name, else the folder's); else the only bundle."""
    folder = run_dir / "model"
    wanted = folder / f"{name or run_dir.name}.safetensors"
    if wanted.is_file():
        return wanted
    found = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    return found[0] if len(found) == 1 else None


def _from_seed_params(p: Path, data: Mapping[str, Any]) -> TrainingRun:
    log_dir = p.parent.resolve()
    dataset_dir = _rebase(data.get("dataset_dir"), None, log_dir)
    model_name = data.get("model_name")
    return TrainingRun(
        source=p,
        dataset_dir=dataset_dir,
        crops_dir=_rebase(data.get("cropped_images_dir"), None, log_dir),
        dataset_csv=dataset_dir / "classification_ds.csv" if dataset_dir else None,
        label_index=dataset_dir / "label_index.json" if dataset_dir else None,
        splits_json=dataset_dir / "splits.json" if dataset_dir else None,
        image_size=_seed_image_size(model_name),
        batch_size=_int(data.get("batch_size"), "batch_size", p),
        workers=_int(data.get("num_workers"), "num_workers", p),
        output_dir=log_dir,  # the seed writes evaluation files into the log folder
        backbone=str(model_name) if model_name else None,
    )


def _seed_image_size(model_name: Any) -> int | None:
    """The input size the seed used: EfficientNet's native size, 224 for ResNets."""
    if not isinstance(model_name, str):
        return None
    if model_name.startswith("efficientnet-b"):
        from efficientnet_pytorch import EfficientNet

        try:
            return int(EfficientNet.get_image_size(model_name))
        except (AssertionError, ValueError, KeyError):
            return None
    return 224 if model_name.startswith("resnet") else None


DEFAULT_SPLITS = ("train", "val", "test")
DEFAULT_BATCH_SIZE = 64


@frozen
class EvaluationInputs:
    """What ``ct-infer evaluate`` runs on, once a training run's defaults are applied."""

    model: Path
    dataset_dir: Path
    crops_dir: Path
    dataset_csv: Path
    splits_json: Path | None  # None: one split 'all'
    label_index: Path | None  # labels for a model without metadata
    target_labels: Path | None  # the dataset's label index, to order mapped target labels
    image_size: int | None
    batch_size: int
    workers: int | None
    output_dir: Path
    splits: tuple[str, ...]
    training: TrainingRun | None  # the run the defaults came from


def resolve_evaluation(
    model: Path | None,
    dataset_dir: Path | None,
    crops_dir: Path | None,
    *,
    run: Path | None = None,
    dataset_csv: Path | None = None,
    splits_json: Path | None = None,
    label_index: Path | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    output_dir: Path | None = None,
    splits: Sequence[str] | None = None,
    target_mapping: bool = False,
) -> EvaluationInputs:
    """Fill what was not given from the training run ``run`` (a ``MODEL`` folder counts
    as one); given values always win. Errors say what to give."""
    if model is not None and model.is_dir():
        if run is not None:
            raise CamtrapError(f"{model}: MODEL is a folder; give a model file with --run")
        run, model = model, None
    training = read_training_run(run) if run is not None else None
    if model is None:
        if training is None:
            raise CamtrapError(
                "give MODEL DATASET_DIR CROPS_DIR, or a training run (--run RUN_DIR)"
            )
        model = training.require_model()
    from_run = dataset_dir is None and training is not None
    if dataset_dir is None and training is not None:
        dataset_dir = training.dataset_dir
    if crops_dir is None and training is not None:
        crops_dir = training.crops_dir
    if dataset_dir is None or crops_dir is None:
        missing = "DATASET_DIR" if dataset_dir is None else "CROPS_DIR"
        where = f" ({training.source} does not say)" if training else ""
        raise CamtrapError(f"give {missing}{where}")
    labels_file: Path | None
    if from_run and training is not None:
        csv = dataset_csv or training.dataset_csv or dataset_dir / "classification_ds.csv"
        split_file = splits_json or training.splits_json
        labels_file = training.label_index
    else:
        csv = dataset_csv or dataset_dir / "classification_ds.csv"
        split_file = splits_json or dataset_dir / "splits.json"
        labels_file = dataset_dir / "label_index.json"
    if splits_json is None and split_file is not None and not split_file.is_file():
        split_file = None
    labels_found = labels_file if labels_file is not None and labels_file.is_file() else None
    if label_index is None and training is not None and not target_mapping:
        label_index = labels_found
    return EvaluationInputs(
        model=model,
        dataset_dir=dataset_dir,
        crops_dir=crops_dir,
        dataset_csv=csv,
        splits_json=split_file,
        label_index=label_index,
        target_labels=labels_found if target_mapping else None,
        image_size=image_size
        if image_size is not None or training is None
        else training.image_size,
        batch_size=batch_size
        if batch_size is not None
        else (training.batch_size if training else None) or DEFAULT_BATCH_SIZE,
        workers=workers if workers is not None or training is None else training.workers,
        output_dir=output_dir or (training.output_dir if training else None) or Path("evaluation"),
        splits=tuple(splits or (training.splits if training else None) or DEFAULT_SPLITS),
        training=training,
    )
