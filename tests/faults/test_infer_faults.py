"""``ct-infer classify`` killed after N chunks of rows (N seeded-random) and ``ct-infer merge``
killed at random moments, each then rerun and compared with an uninterrupted run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from faultkit import (
    after,
    assert_whole,
    cli,
    count_files,
    counts,
    delays,
    kill_when,
    outputs,
    run_ok,
    temp_files,
)

pytestmark = pytest.mark.faults

#: classify keeps 4096 rows in memory before it writes a chunk; 8 makes 15 chunks of 120
#: crops, so the kills land between (and during) chunk writes.
CLASSIFY = (
    "import sys, ct_infer.classify as c; c.CHUNK_ROWS = 8; "
    "from ct_infer.cli import main; sys.argv[0] = 'ct-infer'; main()"
)


def classify(bundle: Path, crops: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", CLASSIFY, "classify", str(bundle), str(crops), str(out),
            "-b", "8", "-w", "1", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def many_crops(md_crops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's 24 real crops five times over (copies: classify refuses symlinks out of
    the folder), 120 in all."""
    out = tmp_path_factory.mktemp("many-crops")
    for r in range(5):
        (out / f"r{r}").mkdir()
        for crop in sorted(md_crops.glob("*.jpg")):
            shutil.copyfile(crop, out / f"r{r}" / crop.name)
    return out


def test_classify_killed_three_times_then_rerun_equals_an_uninterrupted_run(
    tiny_bundle: Path, many_crops: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    run_ok(classify(tiny_bundle, many_crops, whole / "out.csv"))
    expected = outputs(whole)
    assert list(expected) == ["out.csv"] and expected["out.csv"].count(b"\n") == 121

    killed = tmp_path / "killed"
    partial = killed / "out.csv.partial"
    landed = 0
    for n in counts(3, 3, 1, 13):
        ready = lambda n=n: count_files(partial, ".csv") >= n  # noqa: E731
        # each run resumes after the chunks before it, so a later n may already be met
        landed += kill_when(classify(tiny_bundle, many_crops, killed / "out.csv"), ready)
        assert_whole(killed)
        assert not (killed / "out.csv").exists(), "output written before the last crop"
    assert landed, "no kill landed mid-run"
    run_ok(classify(tiny_bundle, many_crops, killed / "out.csv"))
    assert outputs(killed) == expected
    assert temp_files(killed) == []


def test_merge_killed_then_rerun_equals_an_uninterrupted_run(
    tiny_bundle: Path, md_crops: Path, md_test: Path, tmp_path: Path
) -> None:
    scores = tmp_path / "scores.csv"
    run_ok(classify(tiny_bundle, md_crops, scores))

    def merge(out: Path) -> list[str]:
        return cli("ct-infer", "merge", scores, "-d", md_test / "md_output_v5a.json", "-o", out)

    def merged(folder: Path) -> dict[str, object] | None:
        """The merged JSON less its wall-clock completion stamp (None if not written)."""
        if not (folder / "merged.json").exists():
            return None
        data = json.loads((folder / "merged.json").read_text())
        assert data["info"].pop("classification_completion_time")
        return data

    whole = tmp_path / "whole"
    run_ok(merge(whole / "merged.json"))
    expected = merged(whole)
    assert list(outputs(whole)) == ["merged.json"]

    killed = tmp_path / "killed"
    landed = 0
    for seconds in delays(4, 4, 0.3, 2.5):
        landed += kill_when(merge(killed / "merged.json"), after(seconds))
        assert_whole(killed)
        assert merged(killed) in (None, expected), "a killed merge left a different file"
    assert landed, "every merge finished before its kill: aim earlier"
    run_ok(merge(killed / "merged.json"))
    assert list(outputs(killed)) == ["merged.json"] and merged(killed) == expected
    assert temp_files(killed) == []
