"""``ct-crop crop`` killed after N crops (N seeded-random), three times over, then rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultkit import assert_whole, cli, count_files, counts, kill_when, outputs, run_ok, temp_files

pytestmark = pytest.mark.faults


def test_crop_killed_three_times_then_rerun_equals_an_uninterrupted_run(
    md_test: Path, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    md = json.loads((md_test / "md_output_v5a.json").read_text())
    entries = []
    for r in range(5):  # 5 copies of the fixture's 24-crop set: 120 crops, time to aim the kills
        (images / f"r{r}").mkdir(parents=True)
        for im in md["images"]:
            (images / f"r{r}" / im["file"]).symlink_to(md_test / "images" / im["file"])
            entries.append({**im, "file": f"r{r}/{im['file']}"})
    md["images"] = entries
    (tmp_path / "md.json").write_text(json.dumps(md))
    args = ["-i", images, "-d", tmp_path / "md.json", "-w", "2", "--size", "96"]

    whole = tmp_path / "whole"
    run_ok(cli("ct-crop", "crop", *args, whole))
    expected = outputs(whole)
    assert len([k for k in expected if k.endswith(".jpg")]) == 120

    killed = tmp_path / "killed"
    landed = []
    crops = lambda: count_files(killed, ".jpg")  # noqa: E731
    for n in counts(1, 3, 5, 110):
        if kill_when(cli("ct-crop", "crop", *args, killed), lambda n=n: crops() >= n):
            landed.append(crops())
            assert_whole(killed)
            assert not (killed / "crops.csv").exists(), "manifest written before the crops"
    assert landed, "no kill landed mid-run"
    run_ok(cli("ct-crop", "crop", *args, killed))
    assert outputs(killed) == expected
    assert temp_files(killed) == []
