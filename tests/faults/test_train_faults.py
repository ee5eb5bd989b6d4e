"""``ct-train train`` (seeded, CPU, a tiny timm network, a checkpoint every step) killed at
seeded random steps, resumed, and compared with an uninterrupted run: same final weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from faultkit import assert_whole, cli, counts, kill_when, run_ok, temp_files

pytestmark = pytest.mark.faults


def write_config(run_dir: Path, data: Path, crops: Path) -> Path:
    cfg = {
        "data": {"dir": str(data), "crops_dir": str(crops), "batch_size": 8,
                 "num_workers": 0, "image_size": 32},
        "model": {"backbone": "timm:test_efficientnet", "pretrained": "none"},
        "optim": {"lr": 0.01, "weight_decay": 0.0},
        "train": {"epochs": 2, "amp": "off", "seed": 3, "checkpoint_every_steps": 1,
                  "early_stop": {"patience": 0}},
        "loggers": [],
    }  # fmt: skip
    run_dir.mkdir(parents=True)
    (run_dir / "config.yml").write_text(yaml.safe_dump(cfg))
    return run_dir / "config.yml"


def checkpoint(run_dir: Path, name: str = "last.pt") -> dict:  # type: ignore[type-arg]
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)


def global_step(run_dir: Path) -> int:
    try:
        return int(checkpoint(run_dir)["progress"]["global_step"])
    except FileNotFoundError:
        return 0


def test_train_killed_at_random_steps_then_resumed_ends_with_the_same_weights(
    demo_dataset: Path, demo_crops: Path, tmp_path: Path
) -> None:
    whole = write_config(tmp_path / "whole", demo_dataset, demo_crops)
    run_ok(cli("ct-train", "train", whole))
    steps = global_step(whole.parent)
    assert steps >= 6

    killed = write_config(tmp_path / "killed", demo_dataset, demo_crops)
    landed = []
    for n in counts(5, 2, 1, steps - 1):
        ready = lambda n=n: global_step(killed.parent) >= n  # noqa: E731
        if kill_when(cli("ct-train", "train", killed), ready):
            landed.append(global_step(killed.parent))
            assert_whole(killed.parent)
            assert not (killed.parent / "final_metrics.json").exists()
    assert landed and min(landed) < steps, f"no kill landed mid-training ({landed} of {steps})"
    run_ok(cli("ct-train", "train", killed))

    for name in ("last.pt", "best.pt"):
        a, b = checkpoint(whole.parent, name)["model"], checkpoint(killed.parent, name)["model"]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs after resume"
    assert (whole.parent / "final_metrics.json").read_bytes() == (
        killed.parent / "final_metrics.json"
    ).read_bytes()
    assert temp_files(killed.parent) == []
