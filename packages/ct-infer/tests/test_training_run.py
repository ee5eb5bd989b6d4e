"""``ct-infer evaluate`` with a training run's settings: a ct-train run folder
(resolved_config.yml + model/<name>.safetensors) or the seed's params.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from ct_infer.cli import app
from ct_infer.training_run import read_training_run, resolve_evaluation
from ct_io.errors import CamtrapError

LABELS = ["antelope", "bird", "carnivore", "primate"]


@pytest.fixture(scope="module")
def dataset_files(crop_paths: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    rows = [
        {
            "path": p,
            "dataset": "md",
            "location": p.split("_")[1],
            "dataset_class": "x",
            "confidence": 1.0,
            "label": LABELS[i % 4],
        }
        for i, p in enumerate(crop_paths)
    ]
    pd.DataFrame(rows).to_csv(folder / "classification_ds.csv", index=False)
    locs = sorted({("md", r["location"]) for r in rows})
    splits = {"train": locs[::3], "val": locs[1::3], "test": locs[2::3]}
    (folder / "splits.json").write_text(
        json.dumps({k: [list(x) for x in v] for k, v in splits.items()})
    )
    (folder / "label_index.json").write_text(
        json.dumps({str(i): lb for i, lb in enumerate(LABELS)})
    )
    return folder


def _ct_train_run(root: Path, dataset_files: Path, crops_dir: Path, tiny_bundle: Path) -> Path:
    """A ct-train run folder as `ct-train run` leaves it, then moved: its recorded
    paths point at the old place."""
    run = root / "run-moved"
    run.mkdir()
    for name in ("classification_ds.csv", "splits.json", "label_index.json"):
        shutil.copy(dataset_files / name, run / name)
    (run / "model").mkdir()
    shutil.copy(tiny_bundle, run / "model" / "deer-v1.safetensors")
    old = "/nonexistent/old/place/run1"
    config = {
        "data": {
            "dir": old,
            "crops_dir": str(crops_dir),
            "dataset_csv": "classification_ds.csv",
            "label_index": "label_index.json",
            "splits": "splits.json",
            "image_size": None,
            "batch_size": 64,
            "num_workers": 0,
        },
        "model": {"backbone": "timm:test_efficientnet", "pretrained": "none", "options": {}},
        "evaluate": {"splits": ["val", "test"], "batch_size": 8},
        "export": {"name": "deer-v1", "formats": ["onnx"]},
        "run_dir": old,
        "digest": "0123456789abcdef",
    }
    (run / "resolved_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_evaluate_a_moved_ct_train_run_folder(
    tmp_path: Path, dataset_files: Path, crops_dir: Path, tiny_bundle: Path
) -> None:
    run = _ct_train_run(tmp_path, dataset_files, crops_dir, tiny_bundle)
    info = read_training_run(run)
    assert (
        info.dataset_dir == run.resolve()
        and info.model == (run / "model" / "deer-v1.safetensors").resolve()
    )
    assert info.splits == ("val", "test") and info.batch_size == 8 and info.workers == 0
    text = _invoke(["evaluate", str(run)])  # everything from the run folder
    assert "model/deer-v1.safetensors" in "".join(text.split())
    overall = pd.read_csv(run / "evaluation" / "overall_metrics.csv")
    assert overall["split"].tolist() == ["val", "test"]
    assert list(pd.read_csv(run / "evaluation" / "outputs_val.csv.gz").columns[3:]) == LABELS
    # arguments and options override the run's settings
    other = tmp_path / "other"
    _invoke(
        [
            "evaluate",
            "--run",
            str(run / "resolved_config.yml"),
            "--split",
            "train",
            "-o",
            str(other),
        ]
    )
    assert pd.read_csv(other / "overall_metrics.csv")["split"].tolist() == ["train"]


def test_evaluate_a_foreign_model_with_seed_params(
    tmp_path: Path, dataset_files: Path, crops_dir: Path, tiny_bundle: Path
) -> None:
    """The seed's way: params.json + a compiled model that carries no labels or size."""
    import torch

    from ct_infer.backbones import model_from_bundle
    from ct_infer.bundle import load_bundle

    model = model_from_bundle(load_bundle(tiny_bundle))
    compiled = tmp_path / "ckpt_compiled.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 64, 64)), str(compiled))
    log_dir = tmp_path / "logs" / "20200803_145515"
    log_dir.mkdir(parents=True)
    params = {
        "dataset_dir": str(dataset_files),
        "cropped_images_dir": str(crops_dir),
        "model_name": "efficientnet-b0",
        "batch_size": 4,
        "num_workers": 0,
        "multilabel": False,
        "label_weighted": True,
    }
    (log_dir / "params.json").write_text(json.dumps(params))
    info = read_training_run(log_dir / "params.json")
    assert info.image_size == 224 and info.model is None and info.output_dir == log_dir.resolve()
    _invoke(["evaluate", str(compiled), "--params", str(log_dir / "params.json"), "--split", "val"])
    outputs = pd.read_csv(log_dir / "outputs_val.csv.gz")
    assert list(outputs.columns) == ["path", "label", "weight", *LABELS] and len(outputs) > 0


def test_bad_run_folders_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(CamtrapError, match="not a training run folder"):
        read_training_run(tmp_path)
    (tmp_path / "resolved_config.yml").write_text("data: [unclosed\n")
    with pytest.raises(CamtrapError, match="not valid YAML"):
        read_training_run(tmp_path)
    (tmp_path / "resolved_config.yml").write_text("data:\n  image_size: big\n")
    with pytest.raises(CamtrapError, match=r"data\.image_size must be a whole number"):
        read_training_run(tmp_path)
    (tmp_path / "resolved_config.yml").write_text("data: {}\n")
    with pytest.raises(CamtrapError, match="no model bundle found"):
        read_training_run(tmp_path).require_model()
    result = CliRunner().invoke(app, ["evaluate"])
    assert isinstance(result.exception, CamtrapError) and "--run" in str(result.exception)


def test_resolve_evaluation_fills_from_the_run_and_lets_arguments_win(
    tmp_path: Path, dataset_files: Path, crops_dir: Path, tiny_bundle: Path
) -> None:
    run = _ct_train_run(tmp_path, dataset_files, crops_dir, tiny_bundle).resolve()
    from_run = resolve_evaluation(run, None, None)  # a MODEL folder is the run
    assert from_run.model == run / "model" / "deer-v1.safetensors"
    assert (from_run.dataset_dir, from_run.crops_dir) == (run, crops_dir)
    assert from_run.dataset_csv == run / "classification_ds.csv"
    assert from_run.splits_json == run / "splits.json" and from_run.splits == ("val", "test")
    assert from_run.label_index == run / "label_index.json" and from_run.target_labels is None
    assert (from_run.batch_size, from_run.workers) == (8, 0)
    assert from_run.output_dir == run / "evaluation" and from_run.training is not None

    given = resolve_evaluation(
        tiny_bundle,
        dataset_files,
        crops_dir,
        run=run,
        batch_size=3,
        workers=2,
        splits=["train"],
        output_dir=tmp_path / "out",
        target_mapping=True,
    )
    assert given.model == tiny_bundle and given.dataset_dir == dataset_files
    assert given.splits_json == dataset_files / "splits.json" and given.splits == ("train",)
    assert (given.batch_size, given.workers, given.output_dir) == (3, 2, tmp_path / "out")
    # scoring against mapped targets: the dataset's labels are the targets, not the model's
    assert given.label_index is None and given.target_labels == dataset_files / "label_index.json"

    plain = resolve_evaluation(tiny_bundle, tmp_path, crops_dir)  # no run, no splits.json
    assert plain.training is None and plain.splits_json is None and plain.label_index is None
    assert (plain.batch_size, plain.workers, plain.output_dir) == (64, None, Path("evaluation"))
    assert plain.splits == ("train", "val", "test")
    with pytest.raises(CamtrapError, match="MODEL is a folder"):
        resolve_evaluation(run, None, None, run=run)
    with pytest.raises(CamtrapError, match="give CROPS_DIR"):
        resolve_evaluation(tiny_bundle, dataset_files, None)
