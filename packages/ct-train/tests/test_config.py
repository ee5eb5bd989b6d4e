from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ct_io.options import ConfigError
from ct_train.config import PRESETS, build_config, load_config, parse_overrides, save_resolved


def test_defaults_and_relative_paths_resolve_against_the_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "resnet-18" / "baseline"
    run.mkdir(parents=True)
    (run / "config.yml").write_text("data:\n  dir: ../../../data\n  crops_dir: /abs/crops\n")
    cfg = load_config(run / "config.yml")
    assert cfg.run_dir == run.resolve()
    assert cfg.data.dir == (tmp_path / "data").resolve()
    assert cfg.data.crops_dir == Path("/abs/crops")
    assert cfg.optim.optimizer == "adamw" and cfg.train.early_stop.metric == "val/recall_macro"
    assert cfg.train.early_stop.patience == 8


def test_unknown_keys_and_bad_types_one_line_each_with_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(
            {"optim": {"lr": "fast", "lrr": 1}, "data": {"augment": {"hflip": "x"}}, "bogus": 1},
            tmp_path,
        )
    lines = err.value.lines
    assert any("$.optim.lr" in line for line in lines)
    assert any("lrr" in line and "$.optim" in line for line in lines)
    assert any("$.data.augment.hflip" in line for line in lines)
    assert any("bogus" in line for line in lines)
    assert len(lines) >= 4


def test_range_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(
            {
                "data": {"batch_size": 0, "augment": {"scale": [0.9, 0.1]}},
                "train": {"finetune": -1},
            },
            tmp_path,
        )
    text = str(err.value)
    assert (
        "$.data.batch_size" in text
        and "$.data.augment.scale" in text
        and "$.train.finetune" in text
    )


def test_overrides_parse_numbers_lists_and_nested_keys(tmp_path: Path) -> None:
    over = parse_overrides(
        [
            "optim.lr=3e-5",
            "train.epochs=2",
            "data.augment.scale=[0.5, 1.0]",
            "model.pretrained=none",
        ]
    )
    assert over == {
        "optim": {"lr": 3e-5},
        "train": {"epochs": 2},
        "data": {"augment": {"scale": [0.5, 1.0]}},
        "model": {"pretrained": "none"},
    }
    (tmp_path / "config.yml").write_text("optim:\n  lr: 0.1\n")
    cfg = load_config(
        tmp_path / "config.yml", ["optim.lr=3e-5", "sampling.weight_by_detection_conf=cal.npz"]
    )
    assert cfg.optim.lr == 3e-5
    assert cfg.sampling.weight_by_detection_conf == (tmp_path / "cal.npz").resolve()


def test_megaclassifier_preset_under_the_file(tmp_path: Path) -> None:
    cfg = build_config({"preset": "megaclassifier", "optim": {"weight_decay": 1e-5}}, tmp_path)
    assert cfg.optim.lr == PRESETS["megaclassifier"]["optim"]["lr"] == 3e-5
    assert cfg.optim.weight_decay == 1e-5  # the file wins over the preset
    assert cfg.sampling.method == "label_weighted" and cfg.sampling.weight_by_detection_conf is True
    assert cfg.train.epochs == 50 and cfg.train.finetune == 0
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config({"preset": "megaclasifier"}, tmp_path)


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = build_config({"optim": {"lr": 0.5}}, tmp_path)
    path = save_resolved(cfg)
    data = yaml.safe_load(path.read_text())
    assert data["optim"]["lr"] == 0.5 and len(data["digest"]) == 16
    data.pop("digest")
    again = build_config(data, tmp_path)
    assert again == cfg


def test_malformed_yaml_is_one_line(tmp_path: Path) -> None:
    from ct_io.errors import CamtrapError

    (tmp_path / "config.yml").write_text("optim: [\n")
    with pytest.raises(CamtrapError, match="not valid YAML"):
        load_config(tmp_path / "config.yml")
    with pytest.raises(CamtrapError, match="not found"):
        load_config(tmp_path / "missing.yml")
