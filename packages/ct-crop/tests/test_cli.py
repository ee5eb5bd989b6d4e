from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ct_crop.cli import app


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from ct_crop.cli import main; sys.argv = ['ct-crop', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_every_command_has_help() -> None:
    for cmd in ("crop", "detect", "analyze-failures"):
        r = CliRunner().invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output


def test_crop_cli_on_real_images(md_test: Path, tmp_path: Path) -> None:
    r = _run(
        "crop",
        str(tmp_path / "c"),
        "-i",
        str(md_test / "images"),
        "-d",
        str(md_test / "md_output_v5a.json"),
        "--size",
        "64",
        "--strategy",
        "pad",
        "--margin",
        "0.1",
        "--fill",
        "128",
    )
    assert r.returncode == 0, r.stderr
    assert "24 crops made" in r.stdout
    r = _run(
        "crop",
        str(tmp_path / "c"),
        "-i",
        str(md_test / "images"),
        "-d",
        str(md_test / "md_output_v5a.json"),
        "--size",
        "64",
        "--strategy",
        "pad",
        "--margin",
        "0.1",
        "--fill",
        "128",
    )
    assert "0 crops made, 24 already there" in r.stdout


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    r = _run("crop", str(tmp_path / "c"), "-i", str(tmp_path))
    assert r.returncode == 2 and "nothing to crop" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.json").write_text("{not json")
    r = _run("crop", str(tmp_path / "c"), "-i", str(tmp_path), "-d", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "malformed" in r.stderr.lower() and "Traceback" not in r.stderr
    r = _run(
        "crop",
        str(tmp_path / "c"),
        "-i",
        str(tmp_path),
        "-d",
        str(tmp_path / "bad.json"),
        "--strategy",
        "round",
    )
    assert r.returncode == 2 and "round" in r.stderr
