"""Epoch 0's rate without its start-up (issue 15 item 9)."""

from __future__ import annotations

import time
import types
from pathlib import Path

from conftest import write_config
from ct_train.config import load_config
from ct_train.distributed import DistInfo
from ct_train.engine import train_one_epoch
from ct_train.session import build_session
from ct_train.throughput import EpochClock, epoch_rates


def test_the_first_step_is_start_up_and_the_rest_is_the_rate() -> None:
    ticks = iter([0.0, 5.0, 6.0, 7.0])  # start-up 5 s, then 1 s per step
    sums: dict[str, float] = {}
    clock = EpochClock(sums, clock=lambda: next(ticks))
    for _ in range(3):
        clock.step(8)
    rates = epoch_rates([sums])
    assert rates == {"images_per_s": 8.0, "startup_s": 5.0}


def test_a_resumed_epoch_books_its_own_start_up_and_old_sums_still_load() -> None:
    sums = {"loss": 1.0, "correct": 2.0, "count": 16.0, "seconds": 2.0}  # before this change
    ticks = iter([0.0, 3.0, 4.0])
    clock = EpochClock(sums, clock=lambda: next(ticks))
    clock.step(8)
    clock.step(8)
    assert sums["startup_s"] == 3.0 and sums["seconds"] == 3.0 and sums["timed"] == 8.0


def test_one_step_epochs_and_ranks() -> None:
    assert epoch_rates([{"startup_s": 2.0, "startup_images": 8.0}])["images_per_s"] == 4.0
    ranks = [
        {"seconds": 2.0, "timed": 16.0, "startup_s": 1.0},
        {"seconds": 2.0, "timed": 16.0, "startup_s": 3.0},
    ]
    # the whole job's rate: two processes at 8 images/s each are 16 images/s
    assert epoch_rates(ranks) == {"images_per_s": 16.0, "startup_s": 3.0}
    # a slower rank holds the job back: 32 images in its 4 s
    ranks[1]["seconds"] = 4.0
    assert epoch_rates(ranks)["images_per_s"] == 8.0
    # one-step epochs on two ranks: 16 images in the slower start-up
    one_step = [
        {"startup_s": 2.0, "startup_images": 8.0},
        {"startup_s": 1.0, "startup_images": 8.0},
    ]
    assert epoch_rates(one_step)["images_per_s"] == 8.0


def test_a_slow_loader_start_does_not_drag_the_epoch_rate(
    dataset: Path, tmp_path: Path, pm, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Workers that take 100 s (of a shifted clock) to deliver the first batch."""
    import ct_train.throughput as throughput

    shift = [0.0]
    clock = types.SimpleNamespace(perf_counter=lambda: time.perf_counter() + shift[0])
    monkeypatch.setattr(throughput, "time", clock)
    cfg = load_config(write_config(tmp_path / "run", dataset, {"train": {"epochs": 1}}))
    s = build_session(cfg, DistInfo(), pm)
    loader = s.train_loader

    class SlowStart:
        def __iter__(self):  # type: ignore[no-untyped-def]
            batches = iter(loader)
            shift[0] += 100.0
            yield from batches

    s.train_loader = SlowStart()  # type: ignore[assignment]
    metrics = train_one_epoch(s, 0, [], lambda: None)
    assert metrics["startup_s"] >= 100.0
    steady_seconds = (s.steps_per_epoch - 1) * cfg.data.batch_size / metrics["images_per_s"]
    assert steady_seconds < 50.0  # the 100 s wait is not in the rate
