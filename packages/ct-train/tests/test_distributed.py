"""Two CPU processes under torchrun (gloo) train one shared model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write_config

RUNNER = str(Path(__file__).parent / "run_ddp.py")


@pytest.mark.slow
def test_two_gloo_processes_train_one_model(dataset: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "ddp", dataset, {"train": {"epochs": 2}, "loggers": []})
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        RUNNER,
        str(cfg),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-12000:]

    r0 = torch.load(cfg.parent / "rank0.pt", weights_only=True)
    r1 = torch.load(cfg.parent / "rank1.pt", weights_only=True)
    for key, value in r0["model"].items():
        if "running" in key or "num_batches" in key:
            continue  # BatchNorm statistics are per process (DDP does not sync buffers it does not own)
        assert torch.equal(value, r1["model"][key]), f"{key} differs between ranks"
    # each rank drew its own half of the epoch: 72 train crops → 36 per rank → 4 steps of 8
    assert set(r0["seen"]) != set(r1["seen"])
    last = torch.load(cfg.parent / "checkpoints" / "last.pt", weights_only=True)
    assert last["progress"]["global_step"] == 2 * 4
    assert (cfg.parent / "final_metrics.json").is_file()
    assert not (cfg.parent / "checkpoints" / "rank1").exists()
    # images_per_s is the whole job's rate, not one process's: both ranks report the same
    # number, above either rank's own rate (two ranks in step: about twice one)
    rates = [json.loads((cfg.parent / f"rates{r}.json").read_text()) for r in (0, 1)]
    for epoch0, epoch1 in zip(*rates, strict=True):
        assert epoch0["reported"] == epoch1["reported"]
        assert epoch0["reported"] > max(epoch0["own"], epoch1["own"])


@pytest.mark.slow
def test_the_final_summary_prints_once_under_torchrun(dataset: Path, tmp_path: Path) -> None:
    """``ct-train train`` under torchrun: every rank returns from training; only rank 0
    prints the summary (issue 15 item 8). A built-in backbone: the console script loads
    installed plugins only."""
    cfg = write_config(
        tmp_path / "ddp",
        dataset,
        {
            "model": {"backbone": "timm:test_efficientnet"},
            "train": {"epochs": 1},
            "loggers": [],
        },
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "ct_train", "train", str(cfg)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-12000:]
    assert done.stdout.count("best epoch 0") == 1, done.stdout
    assert done.stdout.count("test: top-1") == 1, done.stdout
