"""The benchmark page writer: figures beside their references, targets judged, GPU apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from benchpage import Figure, Section, load, save  # noqa: E402


def test_ratio_and_target_follow_the_direction_of_better() -> None:
    faster = Figure("crop", 300.0, "crops/s", 100.0, "MegaDetector", target=1.5)
    assert faster.ratio == pytest.approx(3.0) and faster.met is True
    slower_time = Figure("load", 4.0, "s", 2.0, "json.load", higher_is_better=False, target=1.0)
    assert slower_time.ratio == pytest.approx(0.5) and slower_time.met is False
    bounded = Figure("peak RSS", 2.4, "GiB", higher_is_better=False, bound=4)
    assert bounded.ratio is None and bounded.met is True
    assert Figure("rate", 10.0, "rows/s").met is None


def test_page_puts_each_figure_beside_its_reference(tmp_path: Path, monkeypatch) -> None:
    import benchpage

    monkeypatch.setattr(benchpage, "RESULTS", tmp_path / "results")
    save(
        Section(
            "crop",
            "Cropping",
            [
                Figure(
                    "full res", 210.0, "crops/s", 140.0, "MegaDetector crop_detections", target=1.5
                )
            ],
            "| detail |",
        )
    )
    save(
        Section(
            "classify_gpu",
            "Batch classification",
            [Figure("b3 @300", 900.0, "crops/s", bound=1500)],
            device="NVIDIA H100",
            gpu=True,
        )
    )
    assert load(tmp_path / "results" / "crop.json").figures[0].reference == 140.0
    page = tmp_path / "benchmarks.md"
    subprocess.run(
        [sys.executable, str(BENCH / "write_page.py"), "--output", str(page),
         "--results", str(tmp_path / "results")],
        check=True, cwd=BENCH,
    )  # fmt: skip
    text = page.read_text()
    crop_row = next(line for line in text.splitlines() if "full res" in line)
    assert "210 crops/s" in crop_row and "140 crops/s" in crop_row
    assert "| 1.50× |" in crop_row and "≥ 1.5×" in crop_row and "| met |" in crop_row
    gpu = text.split("## GPU", 1)[1].split("## Details", 1)[0]
    assert "NVIDIA H100" in gpu and "b3 @300" in gpu and "**missed**" in gpu
    assert "b3 @300" not in text.split("## GPU", 1)[0]
    assert "Not measured in this run:" in text and "train" in text.split("Not measured", 1)[1]


def test_page_writer_refuses_an_empty_results_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "write_page.py"), "--results", str(tmp_path)],
        capture_output=True, text=True, cwd=BENCH,
    )  # fmt: skip
    assert result.returncode != 0 and "run the bench/bench_*.py scripts first" in result.stderr


def test_a_partial_run_keeps_the_pages_other_sections(tmp_path: Path, monkeypatch) -> None:
    import benchpage

    monkeypatch.setattr(benchpage, "RESULTS", tmp_path / "results")
    page = tmp_path / "benchmarks.md"
    write = [sys.executable, str(BENCH / "write_page.py"), "--output", str(page),
             "--results", str(tmp_path / "results")]  # fmt: skip
    save(Section("crop", "Cropping", [Figure("full res", 210.0, "crops/s", 140.0, "MD")], "old"))
    save(Section("splits", "Splits", [Figure("trials", 0.01, "s", 11.3, "MD")], "splits detail"))
    subprocess.run(write, check=True, cwd=BENCH)
    (tmp_path / "results" / "splits.json").unlink()
    save(Section("crop", "Cropping", [Figure("full res", 300.0, "crops/s", 100.0, "MD")], "new"))
    subprocess.run(write, check=True, cwd=BENCH)
    text = page.read_text()
    assert "300 crops/s" in text and "210 crops/s" not in text and "old" not in text
    splits = [line for line in text.splitlines() if line.startswith("| Splits |")]
    assert len(splits) == 1 and "11.3 s" in splits[0]
    assert "### Splits\n" in text and "splits detail" in text
    assert "Carried from the page's earlier run" in text
    subprocess.run([*write, "--fresh"], check=True, cwd=BENCH)
    assert "| Splits |" not in page.read_text()
