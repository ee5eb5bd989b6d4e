"""A run killed with SIGKILL mid-epoch and resumed ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import write_config
from ct_train.engine import start

RUNNER = str(Path(__file__).parent / "run_training.py")

#: 3 epochs × 9 steps, a checkpoint every 2 steps, worker processes, augmentation on,
#: dropout and BatchNorm in the model: everything that could make a resumed run drift.
EXTRA = {
    "model": {"options": {"sleep_s": 0.05}},
    "data": {"num_workers": 2, "batch_size": 8},
    "optim": {"warmup_epochs": 0.5},
    "train": {"epochs": 3, "checkpoint_every_steps": 2, "early_stop": {"patience": 0}},
    "loggers": [],
}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def progress(run_dir: Path) -> tuple[int, int]:
    try:
        p = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["progress"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return (0, 0)
    return p["epoch"], p["step_in_epoch"]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    whole = write_config(tmp_path / "whole", dataset, EXTRA)
    start(whole, ["model.options.sleep_s=0"], pm=pm)

    killed = write_config(tmp_path / "killed", dataset, EXTRA)
    proc = subprocess.Popen(
        [sys.executable, RUNNER, str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while progress(killed.parent) < (1, 4) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    epoch, step = progress(killed.parent)
    assert epoch == 1 and 0 < step < 9, f"killed at epoch {epoch} step {step}, wanted mid-epoch 1"

    start(killed, ["model.options.sleep_s=0"], pm=pm)  # resume, in this process
    a, b = final_weights(whole.parent), final_weights(killed.parent)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"


def test_no_resume_starts_over(dataset: Path, tmp_path: Path, pm) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "run", dataset, {"train": {"epochs": 1}, "loggers": []})
    start(cfg, pm=pm)
    first = torch.load(cfg.parent / "checkpoints" / "last.pt", weights_only=True)["progress"][
        "global_step"
    ]
    # --resume on a finished run trains no further; --no-resume trains again from scratch
    start(cfg, ["train.epochs=2"], pm=pm)
    resumed = torch.load(cfg.parent / "checkpoints" / "last.pt", weights_only=True)["progress"]
    assert resumed["epoch"] == 2 and resumed["global_step"] == 2 * first
    start(cfg, resume=False, pm=pm)
    again = torch.load(cfg.parent / "checkpoints" / "last.pt", weights_only=True)["progress"]
    assert again["epoch"] == 1 and again["global_step"] == first


def test_a_checkpoint_write_cut_short_leaves_no_temp_file_after_the_rerun(
    dataset: Path, tmp_path: Path, pm
) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "run", dataset, {"train": {"epochs": 1}, "loggers": []})
    ckpt = cfg.parent / "checkpoints"
    ckpt.mkdir(parents=True)
    stale = ckpt / ".last.pt.k1ll3d.tmp"  # what a SIGKILL during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    start(cfg, pm=pm)
    assert not stale.exists()
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
def test_corrupt_checkpoint_is_one_line_error(tmp_path: Path, name: str) -> None:
    from ct_io.errors import CamtrapError
    from ct_train import checkpoint

    path = tmp_path / name
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CamtrapError, match="not a readable ct-train checkpoint"):
        checkpoint.load(path)
