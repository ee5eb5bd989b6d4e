from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from conftest import write_config
from ct_io.options import ConfigError
from ct_train import checkpoint
from ct_train.config import load_config
from ct_train.distributed import DistInfo
from ct_train.engine import set_trainable, start
from ct_train.session import build_session


def test_fit_learns_writes_run_folder_and_best_checkpoint(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "runs" / "tiny" / "base", dataset, {"train": {"epochs": 4}})
    result = start(cfg, pm=pm)
    run = cfg.parent
    assert {p.name for p in run.iterdir()} >= {
        "config.yml",
        "resolved_config.yml",
        "checkpoints",
        "final_metrics.json",
    }
    assert result["splits"]["test"]["acc_top1"] > 0.6  # three colours are easy
    best = checkpoint.load(run / "checkpoints" / "best.pt")
    assert best["meta"]["labels"] == ["bear", "deer", "fox"] and best["meta"]["input_size"] == 32
    assert (
        best["meta"]["metric"] == "val/recall_macro"
        and best["meta"]["epoch"] == result["best_epoch"]
    )
    assert (
        json.loads((run / "final_metrics.json").read_text())["best_epoch"] == result["best_epoch"]
    )


def test_finetune_trains_only_the_head_with_frozen_batchnorm(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path / "ft", dataset, {"train": {"finetune": 1}}))
    s = build_session(cfg, DistInfo(), pm)
    s.net.train()
    set_trainable(s, head_only=True)
    module = s.model.module
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    bn = module.features[1]
    assert not bn.training
    set_trainable(s, head_only=False)
    assert all(p.requires_grad for p in module.parameters())


def test_finetune_epoch_keeps_backbone_and_bn_stats_fixed(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(
        tmp_path / "ft",
        dataset,
        {"train": {"epochs": 1, "finetune": 1, "early_stop": {"patience": 0}}},
    )
    start(cfg, pm=pm)
    s = build_session(load_config(cfg), DistInfo(), pm)  # same seed: the initial weights
    initial = s.model.module.state_dict()
    after = checkpoint.load(cfg.parent / "checkpoints" / "last.pt")["model"]
    assert torch.equal(initial["features.0.weight"], after["features.0.weight"])
    assert torch.equal(initial["features.1.running_mean"], after["features.1.running_mean"])
    assert not torch.equal(initial["fc.weight"], after["fc.weight"])


def test_early_stopping_after_patience(dataset: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    # lr 0: nothing improves after the first epoch, so patience 2 stops after epoch 2
    cfg = write_config(
        tmp_path / "es",
        dataset,
        {
            "optim": {"lr": 1e-12},
            "train": {
                "epochs": 10,
                "early_stop": {"patience": 2, "metric": "val/loss", "mode": "min"},
            },
        },
    )
    result = start(cfg, pm=pm)
    progress = checkpoint.load(cfg.parent / "checkpoints" / "last.pt")["progress"]
    assert progress["finished"] and progress["epoch"] <= 4 and result["best_epoch"] <= 1


def test_unreadable_crops_are_counted_not_fatal(dataset: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    for name in ("bear_0.jpg", "deer_1.jpg"):
        (data / "crops" / "loc0" / name).write_bytes(b"garbage")
    cfg = write_config(
        tmp_path / "bad", data, {"train": {"epochs": 1}, "sampling": {"method": "shuffle"}}
    )
    result = start(cfg, pm=pm)
    assert result["unreadable_crops"] == 2


def test_bad_plugin_options_fail_before_training(dataset: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "x", dataset, {"model": {"options": {"widht": 4}}})
    with pytest.raises(ConfigError, match="widht"):
        start(cfg, pm=pm)
    cfg = write_config(
        tmp_path / "y", dataset, {"loggers": [{"name": "tensorboard", "options": {"sub_dir": "x"}}]}
    )
    with pytest.raises(ConfigError, match="sub_dir"):
        start(cfg, pm=pm)
    assert not (tmp_path / "y" / "checkpoints").exists()


def test_bf16_autocast_channels_last_trains(dataset: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(
        tmp_path / "bf16", dataset, {"train": {"epochs": 1, "amp": "bf16", "channels_last": True}}
    )
    result = start(cfg, pm=pm)
    assert math.isfinite(result["splits"]["val"]["loss"]) and result["splits"]["val"]["loss"] < 10


def test_pretrained_checkpoint_starts_from_its_weights_and_a_new_head_size_stays_fresh(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    """The seed's ``--pretrained /path/to/checkpoint`` (e.g. MegaClassifier as a start)."""
    import attrs

    from ct_train.backbone import build_model

    cfg = write_config(tmp_path / "first", dataset, {"train": {"epochs": 1}})
    start(cfg, pm=pm)
    best = cfg.parent / "checkpoints" / "best.pt"
    trained = checkpoint.load(best)["model"]
    model_cfg = attrs.evolve(load_config(cfg).model, pretrained=str(best))
    same = build_model(model_cfg, 3, pm).module.state_dict()
    assert all(torch.equal(same[k], trained[k]) for k in trained)
    other = build_model(model_cfg, 5, pm).module.state_dict()  # 5 labels: head re-initialised
    assert other["fc.weight"].shape == (5, 8)
    body = [k for k in trained if not k.startswith("fc.")]
    assert body and all(torch.equal(other[k], trained[k]) for k in body)
