"""Shared pieces of the hostile-input suite: run a console script as a user would, and the
rule every outcome must keep (no traceback ever reaches the user)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TRACEBACK = "Traceback (most recent call last)"
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _load_source_servers():  # type: ignore[no-untyped-def]
    """ct-io's protocol-server fixtures (local HTTP, moto S3, Azurite), reused, not copied."""
    path = REPO / "packages" / "ct-io" / "tests" / "sources" / "conftest.py"
    spec = importlib.util.spec_from_file_location("ct_io_source_servers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


servers = _load_source_servers()
FileServer = servers.FileServer
moto_server = servers.moto_server
azurite = servers.azurite


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> Result:
    """Run a console script (``ct-io``, ``ct-crop`` ...) as a subprocess in ``cwd``."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    full_env.pop("CAMTRAP_DEBUG", None)
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_no_traceback(result: Result) -> None:
    assert TRACEBACK not in result.text, result.text[-3000:]


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, allow_nan=True))
    return path


# --- images ------------------------------------------------------------------------------


def _save(img: Any, path: Path, fmt: str, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    path.write_bytes(buf.getvalue())
    return path


def make_images(folder: Path) -> dict[str, str]:
    """Every kind of awkward image the suite feeds the tools: name -> what it is."""
    from PIL import Image

    rgb = Image.new("RGB", (64, 48), (120, 90, 60))
    for x in range(20, 40):
        for y in range(10, 30):
            rgb.putpixel((x, y), (250, 10, 10))
    kinds: dict[str, str] = {}
    _save(rgb, folder / "good.jpg", "JPEG")
    kinds["good.jpg"] = "good"
    (folder / "zero.jpg").write_bytes(b"")
    kinds["zero.jpg"] = "zero-byte"
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    kinds["truncated.jpg"] = "truncated"
    _save(rgb.convert("CMYK"), folder / "cmyk.jpg", "JPEG")
    kinds["cmyk.jpg"] = "cmyk"
    _save(rgb.convert("I;16"), folder / "sixteen.png", "PNG")
    kinds["sixteen.png"] = "16-bit"
    _save(rgb.convert("RGBA"), folder / "rgba.png", "PNG")
    kinds["rgba.png"] = "rgba"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    _save(rgb, folder / "rotated.jpg", "JPEG", exif=exif.tobytes())
    kinds["rotated.jpg"] = "exif-rotated"
    _save(rgb, folder / "png_named.jpg", "PNG")
    kinds["png_named.jpg"] = "png-as-jpg"
    (folder / "text.jpg").write_text("not an image at all")
    kinds["text.jpg"] = "not-an-image"
    _save(rgb, folder / "ünïcødé ñame 鹿.jpg", "JPEG")
    kinds["ünïcødé ñame 鹿.jpg"] = "unicode"
    _save(rgb, folder / "with space" / "a b.jpg", "JPEG")
    kinds["with space/a b.jpg"] = "spaces"
    long_name = "l" * 200 + ".jpg"
    _save(rgb, folder / long_name, "JPEG")
    kinds[long_name] = "long-name"
    return kinds


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "data" / "images"
    return folder, make_images(folder)
