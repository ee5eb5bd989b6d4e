"""How console scripts fail: usage errors and one-line errors without tracebacks, exit
statuses, and text from data printed verbatim (rich must not eat ``[...]``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def ct_io(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from ct_io.cli import main; sys.argv[0] = 'ct-io'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def md_file(path: Path, bbox: list[float], info: dict[str, str]) -> Path:
    detection = {"category": "1", "conf": 0.9, "bbox": bbox}
    data = {
        "info": info,
        "detection_categories": {"1": "animal"},
        "images": [{"file": "a.jpg", "detections": [detection]}],
    }
    path.write_text(json.dumps(data))
    return path


def test_validate_prints_hints_with_brackets(tmp_path: Path) -> None:
    folder = tmp_path / "photos[2023]"
    folder.mkdir()
    bad = md_file(folder / "md.json", [0.5, 0.4, 1.2, 0.3], {"format_version": "1.5"})
    result = ct_io("validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}: md INVALID" in result.stdout
    assert "width 1.2 > 1 — bbox must be normalized [x, y, w, h]" in result.stdout


def test_one_line_errors_keep_brackets(tmp_path: Path) -> None:
    bad = md_file(tmp_path / "md.json", [0.5, 0.4, 1.2, 0.3], {"format_version": "1.5"})
    result = ct_io("info", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"error: {bad}: images[0].detections[0].bbox: width 1.2 > 1 — "
        "bbox must be normalized [x, y, w, h]"
    )


def test_validate_exit_status(tmp_path: Path) -> None:
    good = md_file(tmp_path / "good.json", [0.5, 0.4, 0.2, 0.3], {"format_version": "1.5"})
    bad = md_file(tmp_path / "bad.json", [0.5, 0.4, 1.2, 0.3], {"format_version": "1.5"})
    assert ct_io("validate", str(good)).returncode == 0
    assert ct_io("validate", str(good), str(bad)).returncode == 1, "exit 1 when any file is invalid"


def test_usage_errors_are_click_messages_not_tracebacks() -> None:
    for args, message in [
        (["nosuch"], "No such command 'nosuch'"),
        (["plugins", "--jsn"], "No such option: --jsn"),
        (["validate"], "Missing argument"),
    ]:
        result = ct_io(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert message in result.stderr
