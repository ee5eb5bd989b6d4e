"""``ct-splits dataset`` then ``ct-splits split`` (one shell chain), killed at seeded random
moments spread over both commands, then rerun."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from faultkit import (
    after,
    assert_whole,
    cli,
    dataset_args,
    delays,
    kill_when,
    outputs,
    run_ok,
    temp_files,
)

pytestmark = pytest.mark.faults


def chain(demo: Path, crops: Path, out: Path) -> list[str]:
    dataset = cli("ct-splits", "dataset", out, *dataset_args(demo, crops))
    split = cli("ct-splits", "split", out, "--trials", "100000", "--seed", "7")
    return ["sh", "-c", f"{shlex.join(dataset)} && {shlex.join(split)}"]


def test_dataset_and_split_killed_then_rerun_equal_an_uninterrupted_run(
    demo: Path, demo_crops: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    run_ok(chain(demo, demo_crops, whole))
    expected = outputs(whole)
    assert set(expected) == {"classification_ds.csv", "label_index.json", "splits.json"}

    killed = tmp_path / "killed"
    landed = 0
    for seconds in delays(2, 4, 0.5, 6.0):
        landed += kill_when(chain(demo, demo_crops, killed), after(seconds))
        assert_whole(killed)
        done = outputs(killed) if killed.exists() else {}
        for name, data in done.items():  # whatever a killed run left is already final
            assert data == expected[name], f"{name} differs after a kill"
    assert landed, "every run finished before its kill: aim later"
    run_ok(chain(demo, demo_crops, killed))
    assert outputs(killed) == expected
    assert temp_files(killed) == []
