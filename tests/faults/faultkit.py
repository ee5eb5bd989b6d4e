"""Helpers of the fault-injection suite: every long command is killed with SIGKILL at seeded random points,
rerun to completion, and compared with an uninterrupted run.

Helpers here are small copies of the packages' own test fixtures (the demo source, the
local HTTP file server, the tiny bundle) so this suite imports no package's test folder.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEED = 20260  # every kill point comes from random.Random(SEED + test-specific offset)

#: Names the writers use for work in progress: never outputs, and never left after a rerun.
TEMP_MARKERS = (".tmp", ".part", ".partial")


def cli(name: str, *args: str | Path) -> list[str]:
    """The argv of one of the workspace's console scripts, from this interpreter's venv."""
    return [str(BIN / name), *map(str, args)]


def run_ok(cmd: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def kill_when(
    cmd: Sequence[str],
    ready: Callable[[], bool],
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> bool:
    """Start ``cmd``, SIGKILL its whole process group as soon as ``ready()`` holds.

    Returns False when the command finished on its own before the kill (the caller decides
    whether that is acceptable).
    """
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                return False
            assert time.monotonic() < deadline, f"{cmd[0]}: kill condition never met"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            with_group_killed(proc)
        proc.wait(timeout=30)
    return proc.returncode == -signal.SIGKILL


def with_group_killed(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def after(seconds: float) -> Callable[[], bool]:
    """A ``ready`` condition: true once ``seconds`` have passed."""
    start = time.monotonic()
    return lambda: time.monotonic() - start >= seconds


def delays(offset: int, n: int, lo: float, hi: float) -> list[float]:
    rng = random.Random(SEED + offset)
    return sorted(round(rng.uniform(lo, hi), 3) for _ in range(n))


def counts(offset: int, n: int, lo: int, hi: int) -> list[int]:
    rng = random.Random(SEED + offset)
    return sorted(rng.randint(lo, hi) for _ in range(n))


def count_files(folder: Path, suffix: str) -> int:
    """Finished files ending in ``suffix`` under ``folder``, safe while a writer is running
    (os.walk skips folders that vanish mid-walk; hidden temp folders are not entered)."""
    n = 0
    for _root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.endswith(TEMP_MARKERS)]
        n += sum(1 for f in files if f.endswith(suffix) and not f.startswith("."))
    return n


def is_temp(path: Path, root: Path) -> bool:
    return any(
        part.startswith(".") or part.endswith(TEMP_MARKERS) for part in path.relative_to(root).parts
    )


def outputs(folder: Path) -> dict[str, bytes]:
    """Every finished output file under ``folder`` (temp files and partial folders left out)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not is_temp(p, folder)
    }


def temp_files(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if is_temp(p, folder)]


def assert_whole(folder: Path) -> None:
    """No output under ``folder`` is half-written: each JSON, CSV and image parses in full
    (work in progress, including chunk files inside ``*.partial`` folders, included)."""
    from PIL import Image

    if not folder.exists():
        return
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if not path.is_file() or any(p.startswith(".") for p in rel) or path.suffix == ".tmp":
            continue  # a temp file of an atomic write, a temp folder, a download in progress
        name = path.name.removesuffix(".gz")
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        if name.endswith(".json"):
            json.loads(data)
        elif name.endswith(".csv"):
            pd.read_csv(io.BytesIO(data))
            assert data.endswith(b"\n") or not data, f"{path}: cut off mid-row"
        elif name.endswith((".jpg", ".png")):
            with Image.open(io.BytesIO(data)) as im:
                im.load()


def crop_demo_args(demo: Path) -> list[str]:
    return [
        "-i", str(demo / "images"),
        "--cct", str(demo / "demo_cct.json"),
        "-d", str(demo / "demo_md.json"),
        "--size", "48",
        "-w", "1",
    ]  # fmt: skip


def dataset_args(demo: Path, crops: Path) -> list[str]:
    return ["-c", str(crops), "--cct", str(demo / "demo_cct.json"), "--min-locs", "3"]


class FileServer:
    """Serves ``files`` (URL path → bytes) over HTTP/1.1 on loopback, ``chunk_delay``
    seconds per 16 KiB (a trimmed copy of ct-io's sources test server)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files: dict[str, bytes] = {}
        self.chunk_delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                from urllib.parse import unquote, urlsplit

                data = server.files.get(unquote(urlsplit(self.path).path))
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                try:
                    for i in range(0, len(data or b""), 1 << 14):
                        self.wfile.write((data or b"")[i : i + (1 << 14)])
                        time.sleep(server.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)  # type: ignore[arg-type]

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
