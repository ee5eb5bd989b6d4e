"""The ``ct-io`` command line: validate, info, fetch (in-process and as a real subprocess)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ct_io.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def invoke(*args: str):
    return runner.invoke(app, list(args), env=ENV)


def run_ct_io(*args: str) -> subprocess.CompletedProcess[str]:
    """``ct-io ARGS`` in a fresh interpreter, through the real console-script entry point."""
    code = "import sys; from ct_io.cli import main; sys.argv[0] = 'ct-io'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**ENV, "PATH": ""},
        check=False,
    )


def test_validate_detects_kinds_and_passes_good_files(
    write_json_file, make_cct, make_md, md_test_json
):
    cct = write_json_file(make_cct(), name="cct.json")
    md = write_json_file(make_md(), name="md.json")
    result = invoke("validate", str(cct), str(md), str(md_test_json))
    assert result.exit_code == 0, result.output
    assert "cct.json: cct ok (0 errors, 0 warnings)" in result.output
    assert "md.json: md ok (0 errors, 0 warnings)" in result.output
    assert "md_output_v5a.json: md ok" in result.output


def test_validate_exits_1_and_prints_problems_with_paths(write_json_file, make_cct, make_md):
    good = write_json_file(make_cct(), name="good.json")
    doc = make_md()
    doc["images"][0]["detections"][0]["bbox"] = [0.1, 0.2, 1.2, 0.4]
    bad = write_json_file(doc, name="bad.json")
    result = invoke("validate", str(good), str(bad))
    assert result.exit_code == 1
    assert "bad.json: md INVALID (1 errors" in result.output
    assert (
        "images[0].detections[0].bbox: width 1.2 > 1 — bbox must be normalized [x, y, w, h]"
        in result.output
    )
    assert "good.json: cct ok" in result.output


def test_validate_warnings_alone_pass(write_json_file, make_cct):
    doc = make_cct()
    del doc["images"][0]["location"]
    result = invoke("validate", str(write_json_file(doc)))
    assert result.exit_code == 0
    assert (
        "(0 errors, 1 warnings)" in result.output and "warning images[0].location" in result.output
    )


def test_validate_caps_printed_problems(write_json_file, make_cct):
    doc = make_cct(annotations=[{"id": i, "image_id": "nope", "category_id": 1} for i in range(30)])
    result = invoke("validate", "--max-problems", "5", str(write_json_file(doc)))
    assert result.exit_code == 1
    assert "… 25 more" in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"images": [', "malformed JSON"),
        ('{"hello": 1}', "neither COCO Camera Traps nor MegaDetector JSON"),
    ],
)
def test_validate_unparseable_or_unknown_files(write_json_file, content, expected):
    result = invoke("validate", str(write_json_file(raw=content)))
    assert result.exit_code == 1
    assert expected in result.output


def test_validate_missing_file(tmp_path):
    result = invoke("validate", str(tmp_path / "nope.json"))
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_validate_images_dir(tmp_path, write_json_file, make_cct):
    result = invoke("validate", "--images-dir", str(tmp_path), str(write_json_file(make_cct())))
    assert result.exit_code == 0
    assert "3 warnings" in result.output and "not found under" in result.output


def table_rows(output: str) -> dict[str, list[str]]:
    """Rich table rows as ``first cell -> other cells``."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def test_info_summarizes_a_cct(write_json_file, make_cct):
    result = invoke("info", str(write_json_file(make_cct())))
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert rows["images"] == ["3"] and rows["annotations"] == ["3"] and rows["with boxes"] == ["2"]
    assert rows["locations"] == ["2"] and rows["sequences"] == ["1"]
    assert rows["deer"] == ["1", "1", "1"] and rows["empty"] == ["1", "1", "1"]


def test_info_summarizes_md_with_confidence_histogram(md_test_json):
    result = invoke("info", str(md_test_json))
    assert result.exit_code == 0, result.output
    raw = json.loads(md_test_json.read_text())
    confs = [d["conf"] for im in raw["images"] for d in im["detections"]]
    rows = table_rows(result.output)
    assert rows["format_version"] == ["1.1"]
    assert rows["images"] == ["13"] and rows["detections"] == [str(len(confs))]
    assert rows["animal"] == [
        str(sum(1 for im in raw["images"] for d in im["detections"] if d["category"] == "1"))
    ]
    top_bin = sum(1 for c in confs if c >= 0.9)
    assert rows["0.9–1.0"][0] == str(top_bin)


def test_cli_errors_are_one_red_line_and_exit_2(tmp_path, write_json_file):
    bad = write_json_file(raw='{"images": [{"id": 1', name="trunc.json")
    proc = run_ct_io("info", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "trunc.json" in lines[0]
    proc = run_ct_io("validate", str(bad))
    assert proc.returncode == 1 and "INVALID" in proc.stdout


def test_fetch_unknown_source_suggests_close_match(tmp_path):
    proc = run_ct_io("fetch", "dmeo", str(tmp_path))
    assert proc.returncode == 2
    assert "did you mean 'demo'" in proc.stderr


def test_fetch_rejects_bad_options(tmp_path):
    result = runner.invoke(app, ["fetch", "demo", str(tmp_path), "-o", "num_species=9"], env=ENV)
    assert result.exception is not None and "num_species" in str(result.exception)
    result = runner.invoke(app, ["fetch", "demo", str(tmp_path), "-o", "colour=blue"], env=ENV)
    assert "colour" in str(result.exception)


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("validate", "info", "plugins", "fetch"):
        assert command in result.output
