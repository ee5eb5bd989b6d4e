from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ct_crop.analyze import analyze_failures, counts, read_failed_list
from ct_crop.cli import app


def test_failed_images_are_sorted_into_five_statuses(edge_images: Path) -> None:
    names = ["ok.jpg", "missing.jpg", "notes.txt", "truncated.jpg", "zero.jpg", "garbage.jpg", "../up.jpg"]
    verdicts = {v.image: v.status for v in analyze_failures(names, edge_images)}
    assert verdicts == {
        "ok.jpg": "good",
        "missing.jpg": "nonexistent",
        "notes.txt": "non_image",
        "truncated.jpg": "truncated",
        "zero.jpg": "bad",
        "garbage.jpg": "bad",
        "../up.jpg": "bad",
    }
    assert counts(analyze_failures(names, edge_images)) == {"good": 1, "nonexistent": 1, "non_image": 1, "truncated": 1, "bad": 3}


def test_reads_every_log_format(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("image,box_index,kind,reason\nx.jpg,,bad,r\nx.jpg,1,unusable_box,r\ny.jpg,,bad,r\n")
    assert read_failed_list(tmp_path / "a.csv") == ["x.jpg", "y.jpg"]
    (tmp_path / "md_log.json").write_text(json.dumps({"images_missing_detections": ["m.jpg"], "images_failed_download_or_crop": ["f.jpg"], "num_new_crops": 3}))
    assert read_failed_list(tmp_path / "md_log.json") == ["m.jpg", "f.jpg"]
    assert read_failed_list(tmp_path / "md_log.json", ["images_failed_download_or_crop"]) == ["f.jpg"]
    md = {"info": {"format_version": "1.5"}, "detection_categories": {"1": "animal"}, "images": [{"file": "ok.jpg", "detections": []}, {"file": "bad.jpg", "failure": "x", "detections": None}]}
    (tmp_path / "md.json").write_text(json.dumps(md))
    assert read_failed_list(tmp_path / "md.json") == ["bad.jpg"]
    (tmp_path / "list.txt").write_text("a.jpg\n\nb.jpg\n")
    assert read_failed_list(tmp_path / "list.txt") == ["a.jpg", "b.jpg"]


def test_cli_prints_a_table_and_writes_csv(edge_images: Path, tmp_path: Path) -> None:
    log = tmp_path / "failed.txt"
    log.write_text("ok.jpg\nzero.jpg\ntruncated.jpg\n")
    r = CliRunner().invoke(app, ["analyze-failures", str(log), "-i", str(edge_images), "--out", str(tmp_path / "out.csv")])
    assert r.exit_code == 0, r.output
    assert "truncated" in r.output and "nonexistent" in r.output
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "image,status,reason" and lines[1].startswith("ok.jpg,good")
    assert [line.split(",")[1] for line in lines[1:]] == ["good", "truncated", "bad"]
